"""Gradients on symbolic, non-square shapes, scalars and vectors; output quality."""

import numpy as np
import pytest
from conftest import check_answer, check_numerically, check_same_value

import rewrite as rw
from rewrite.numeric import evaluate, finite_difference, instantiate_dims, random_point, relative_error


def test_readme_example():
    g = rw.gradient("tr(X'*A*X)", wrt="X", shapes={"X": ("n", "k"), "A": ("n", "n")})
    check_answer(g, ("(A + A')*X", "(A + A')*X"))  # and by value, n ≠ k


@pytest.mark.parametrize("expr,wrt,shapes", [
    ("tr(A*X*B)", "X", {"A": ("m", "n"), "X": ("n", "k"), "B": ("k", "m")}),
    ("log(tr(A*X))", "X", {"A": (2, 3), "X": (3, 2)}),
    ("2*det(A)", "A", {"A": (3, 3)}),
    ("tr(A)*tr(B*A)", "A", {"A": (3, 3), "B": (3, 3)}),
    ("(a'*x)^2", "x", {"a": ("n",), "x": ("n",)}),
    ("c*tr(A) + c^2", "c", {"c": (), "A": (3, 3)}),
    ("sum(tanh(W*x))", "W", {"W": (4, 3), "x": (3,)}),
    ("sum(sin(X) .* cos(X))", "X", {"X": (2, 3)}),
    ("norm2(A*x)", "x", {"A": (4, 3), "x": (3,)}),
    ("fro2(X*B - C)", "X", {"X": (2, 3), "B": (3, 4), "C": (2, 4)}),
    ("tr(inv(X)^2)", "X", {"X": (3, 3)}),
    ("tr(X^-2*A)", "X", {"X": (3, 3), "A": (3, 3)}),
    ("sum(X.^3)", "X", {"X": (2, 3)}),
    ("sum(exp(X) ./ (1 + exp(X)))", "X", {"X": (3, 2)}),
    ("tr(diag(x)*A)", "x", {"x": (3,), "A": (3, 3)}),
    ("sum(vec(X).^2)", "X", {"X": (4, 3)}),
    ("sum(exp(vec(X)))", "X", {"X": (4, 3)}),
    ("vec(X)'*vec(A .* X)", "X", {"X": (4, 3), "A": (4, 3)}),
    # sums of vecs and broadcast scalars lifted into vec (vec(A) + 1 is vec(A + 1)), so that
    # the gradient, a matrix, can be read off
    ("norm2(vec(X) .* vec(X) + 1)", "X", {"X": ("m", "n")}),
    ("norm2(vec(K*X) .* vec(K*X) + 1)", "X", {"X": (2, 3), "K": (4, 2)}),
    ("norm2(2*vec(X) + vec(A) - c)", "X", {"X": (4, 3), "A": (4, 3), "c": ()}),
    ("sum(diag(X'*X))", "X", {"X": (4, 3)}),
    ("tr(diag(diag(X)))", "X", {"X": (3, 3)}),
    ("c^2*d + c*tr(A)", "c", {"c": (), "d": (), "A": (3, 3)}),
    ("det(X)^2", "X", {"X": (3, 3)}),
    ("(a'*X*b)^2", "X", {"a": (4,), "X": (4, 3), "b": (3,)}),
    ("tr(F1*F2*X*F3*F4*X*F5)", "X", {"F1": (2, 3), "F2": (3, 4), "X": (4, 5), "F3": (5, 3),
                                      "F4": (3, 4), "F5": (5, 2)}),
])
def test_gradient_matches_finite_differences(expr, wrt, shapes):
    g = rw.gradient(expr, wrt, shapes)
    pos = {"A"} if expr.startswith("log(") else set()
    spd = {"X", "A"} if "inv" in expr or "^-" in expr or "det" in expr else set()
    check_numerically(g, np.random.default_rng(5), spd=spd, positive=pos)


def test_log_trace_is_not_zero():
    g = rw.gradient("log(tr(A))", "A", {"A": (3, 3)})
    assert "0*" not in str(g)
    check_answer(g, spd={"A"})


def test_no_debris_in_output():
    g = rw.gradient("tr(A*X) + tr(A*X)", "X", {"A": (2, 3), "X": (3, 2)})
    s = str(g)
    for junk in ("1*", "+ 0", "''", "eye("):
        assert junk not in s
    check_answer(g)


def test_gradient_of_constant_is_zero_matrix():
    g = rw.gradient("tr(X) - tr(X)", "X", {"X": (3, 3)})
    zero = g.numpy()(X=np.random.default_rng(0).normal(size=(3, 3)))
    assert np.shape(zero) == (3, 3)  # a matrix of zeros, not the number 0
    np.testing.assert_allclose(zero, 0)
    check_answer(rw.gradient("sum(X) - sum(X)", "X", {"X": ("m", "n")}))  # m×n zeros


@pytest.mark.parametrize("shapes", [{"A": (2, 3), "X": (3, 2)}, {"A": ("m", "n"), "X": ("n", "m")}])
def test_differential_is_canonical_trace_form(shapes):
    d = rw.differential("tr(A*X)", "X", shapes)
    assert str(d).startswith("tr(") and "dX" in str(d)
    # by value: the printed df at (X, dX) is the derivative of f along dX
    with_dx = {**shapes, "dX": shapes["X"]}
    f, df = rw.parse("tr(A*X)", shapes).term, rw.parse(str(d), with_dx).term
    both = rw.parse(f"tr(A*X) + {d}", with_dx).term
    rng = np.random.default_rng(0)
    dims = instantiate_dims(both, rng)
    env = random_point(both, rng, dims)
    h = 1e-6
    along = [evaluate(f, {**env, "X": env["X"] + s * env["dX"]}, dims=dims)[0, 0] for s in (h, -h)]
    value = evaluate(df, env, dims=dims)
    assert value.shape == (1, 1)
    assert relative_error(value[0, 0], (along[0] - along[1]) / (2 * h)) < 1e-6


def test_report_fields():
    g = rw.gradient("tr(A*X)", "X", {"A": (2, 3), "X": (3, 2)})
    r = g.report
    assert r.stop_reason == "goal" and not r.stop_reason.is_limit  # the canonical form was reached
    assert r.iterations > 0 and r.enodes > 0 and r.eclasses > 0 and r.seconds > 0
    assert r.fired().get("adj-mul-l", 0) >= 1 and r.fired().get("adj-self", 0) >= 1


def test_simplify_and_equivalent():
    out = rw.simplify("tr(A') + tr(A)", {"A": ("n", "n")})
    assert str(out) == "2*tr(A)"
    check_same_value("tr(A') + tr(A)", str(out), {"A": ("n", "n")})
    assert rw.equivalent("tr(A*B*C)", "tr(C*A*B)")
    # ... which holds by value for non-square factors too
    check_same_value("tr(A*B*C)", "tr(C*A*B)", {"A": ("m", "n"), "B": ("n", "p"), "C": ("p", "m")})
    square = {"A": (3, 3), "B": (3, 3), "C": (3, 3)}
    assert not rw.equivalent("tr(A*B*C)", "tr(A*C*B)", square)
    with pytest.raises(AssertionError, match="differ"):
        check_same_value("tr(A*B*C)", "tr(A*C*B)", square)


def test_numpy_callable_accepts_vectors():
    g = rw.gradient("a'*X*b", "X", {"a": (3,), "X": (3, 5), "b": (5,)})
    a, b = np.arange(3.0), np.arange(5.0)
    np.testing.assert_allclose(g.numpy()(a=a, b=b, X=np.zeros((3, 5))), np.outer(a, b))


def test_limit_reached_is_a_typed_error():
    with pytest.raises(rw.LimitError):
        rw.gradient("tr(A*X*B*X*C*X)", "X", {"A": (2, 2), "X": (2, 2), "B": (2, 2), "C": (2, 2)},
                    limits=rw.Limits(iterations=2))


#: answers printed compactly (golden text, each also checked by value); tests/mutation.py
#: counts a deleted or corrupted rule that changes one of them as caught
COMPACT_OUTPUT = [
    ("norm2sq(X*w - y) + lam*norm2sq(w)", "w", {"X": (5, 3), "w": (3,), "y": (5,), "lam": ()},
     "2*(X'*(X*w - y) + lam*w)"),
    ("sum(log(1 + exp(-y .* (X*w))))", "w", {"X": (5, 3), "w": (3,), "y": (5,)},
     "-X'*(y .* sigmoid(-(y .* (X*w))))"),
    ("log(sum(exp(W*x))) - y'*W*x", "W", {"W": (3, 4), "x": (4,), "y": (3,)},
     "exp(W*x)*x' ./ sum(exp(W*x)) - y*x'"),
    ("tr(B*A*X)", "X", {"X": (3, 4), "A": (5, 3), "B": (4, 5)}, "A'*B'"),
    ("logdet(X'*X)", "X", {"X": (5, 3)}, "2*X*inv(X'*X)"),
    ("det(X)^2", "X", {"X": (3, 3)}, "2*det(X)^2*inv(X)'"),
    # like factors of elementwise products and quotients merged and cancelled
    ("sum(M .* log(M ./ (W*H)) - M + W*H)", "H", {"M": (5, 4), "W": (5, 3), "H": (3, 4)},
     "W'*(1 - M ./ (W*H))"),
    ("det(X)^(1/3)", "X", {"X": (3, 3)}, "1/3*det(X)^(1/3)*inv(X)'"),
    ("sum(exp(X) .* exp(X))", "X", {"X": (5, 3)}, "2*exp(X).^2"),
    ("sum(X ./ (X .* X))", "X", {"X": (5, 3)}, "-(1 ./ X.^2)"),
    # a difference rather than a negated term first; a squared 1×1 as a power
    ("fro2(M - U*V')", "U", {"M": (5, 4), "U": (5, 3), "V": (4, 3)}, "-2*(M - U*V')*V"),
    ("(w'*w)^2", "w", {"w": (3,)}, "4*(w'*w)*w"),
]


@pytest.mark.parametrize("expr,wrt,shapes,expected", COMPACT_OUTPUT)
def test_compact_output(expr, wrt, shapes, expected):
    """Numbers in front, transposes at the leaves, like terms and factors collected; the form
    printed is right by value, at these sizes and, but for logdet(X'*X) (which needs more rows
    than columns), at random distinct sizes for symbolic ones."""
    spd = {"X"} if "det" in expr else set()
    positive = {"M", "W", "H"} if "log(M" in expr else set()
    check_answer(rw.gradient(expr, wrt, shapes), expected, spd=spd, positive=positive, seeds=(1,))
    if not expr.startswith("logdet"):
        names = {5: "m", 3: "n", 4: "p"}
        symbolic = {k: tuple(names[d] for d in v) for k, v in shapes.items()}
        check_answer(rw.gradient(expr, wrt, symbolic), expected, spd=spd, positive=positive, seeds=(1, 2))


def test_functions_declared_in_a_user_file_differentiate(tmp_path):
    """Stock rules written with f(...) (d-fn, transposes, vec) also cover functions from a later
    file; a derivative sympy can only write piecewise is taken in a form the language has."""
    path = tmp_path / "mine.rules"
    path.write_text("function cube(x) = x^3\nfunction softsign(x) = x/(1 + abs(x))\n")
    g = rw.gradient("sum(cube(X))", "X", {"X": (3, 2)}, rules=[path])
    check_answer(g, "3*X.^2", seeds=(2,), engine=rw.Engine([path]))
    g = rw.gradient("sum(softsign(X*b))", "b", {"X": (4, 2), "b": (2,)}, rules=[path])
    check_numerically(g, np.random.default_rng(3))


def test_an_underivable_function_is_a_rule_file_error_at_its_line(tmp_path):
    path = tmp_path / "bad.rules"
    path.write_text("# a comment\nfunction stair(x) = floor(x)\n")
    with pytest.raises(rw.RuleFileError, match=r"bad.rules:2:1: stair"):
        rw.gradient("sum(stair(X))", "X", {"X": (3, 2)}, rules=[path])


def test_zero_terms_do_not_grow_numbers():
    """A zero term scaled again (c*(0*C)) once made a class contain c times itself, and the
    number folding then built ever larger numbers until the time limit."""
    shapes = {"A": (4, 3), "X": (3, 5), "B": (5, 2), "C": (4, 2), "V": (3, 5)}
    g = rw.gradient("tr((2*A'*(A*X*B - C)*B')'*V)", "X", shapes)
    assert g.report.phases[0]["iterations"] < 30
    check_numerically(g, np.random.default_rng(4))


@pytest.mark.parametrize("expr,shape", [
    ("tr(X'')", (3, 3)),
    ("sum(X'')", (2, 4)),
    ("tr(A*X''')", (3, 3)),
    ("tr(A*(X'' .* B))", (4, 3)),
    ("tr(A*inv(inv(inv(X))))", (3, 3)),
    ("tr(K*diag(diag(X')))", (1, 1)),
    ("tr(X)*tr(X) + sum(X)^2 + sum(diag(X))", (1, 1)),
    ("fro2(diag(diag(K*X*L)))", (2, 3)),
])
def test_subterms_equal_to_the_variable(expr, shape):
    """Inputs where a subterm equals the variable (X'', a 1×1 transpose, an involution) once
    failed to reach the canonical form: differentiation had replaced the subterm's d."""
    m, n = shape
    g = rw.gradient(expr, "X", {"X": shape, "A": (n, m), "B": shape, "K": (n, m) if shape != (1, 1)
                                else (1, 1), "L": (n, n)})
    check_numerically(g)


@pytest.mark.parametrize("expr,expected", [
    ("tr(X)*tr(X)", "2*X"),
    ("exp(tr(X))", "exp(X)"),
    ("sum(X .* A)", "A"),
    ("tr(A*X''')", "A"),
])
def test_scalar_and_transpose_debris_tidied(expr, expected):
    shapes = {"X": (1, 1), "A": (1, 1)} if expr != "tr(A*X''')" else {"X": (3, 3), "A": (3, 3)}
    check_answer(rw.gradient(expr, "X", shapes), expected)  # 1×1 (3×3), by value too
    if expr == "tr(A*X''')":  # and at random non-square sizes
        check_answer(rw.gradient(expr, "X", {"X": ("m", "n"), "A": ("m", "n")}), expected)


@pytest.mark.parametrize("text", [
    "sum(sqrt(cos(inv(inv((X*eye(3))'*X)))))",
    "sum(diag(sqrt(exp(cos(inv(inv(((B*X*C)*eye(2))'*((B*X*C)*eye(2)) + eye(2))))))))",
])
def test_an_objective_whose_tidying_leaves_nothing_to_extract_is_tidied_by_adding(text):
    """Overlapping replacing tidy rules ((A*B)' => B'*A', A*eye => A) under inv(inv(·)) once
    left the objective's class with nothing to extract, and the derivation ended in an engine
    error; the objective is then tidied with rules that only add."""
    g = rw.gradient(text, "X", {"X": (3, 3), "B": (2, 3), "C": (3, 2)})
    rng = np.random.default_rng(0)
    # small entries keep cos(·) positive, inside sqrt's domain
    env = {"X": 0.1 * rng.standard_normal((3, 3)), "B": 0.3 * rng.standard_normal((2, 3)),
           "C": 0.3 * rng.standard_normal((3, 2))}
    grad = evaluate(g.term, env)
    fd = finite_difference(g.f, "X", env)
    assert grad.shape == fd.shape == (3, 3) and np.all(np.isfinite(grad))
    assert relative_error(grad, fd) < 1e-6


def test_a_symmetric_inverse_is_not_transposed_and_its_copies_merge():
    """inv(X'*X + lam*eye(n)) is symmetric by construction: the two transposed copies of the
    closed-form ridge objective's gradient become like terms and merge."""
    shapes = {"y": ("m",), "X": ("m", "n"), "lam": ()}
    g = rw.gradient("y'*X*inv(X'*X + lam*eye(n))*X'*y", "X", shapes)
    check_answer(g, "(2*y - 2*X*inv(X'*X + lam*eye(n))*X'*y)*y'*X*inv(X'*X + lam*eye(n))",
                 positive={"lam"})


@pytest.mark.parametrize("expr, shapes, expected", [
    # step' = sign' = 0: the vanishing terms leave no 0*... behind
    ("sum(step(X) .* A) + tr(A'*X)", {"X": (3, 2), "A": (3, 2)}, "A"),
    ("sum(sign(X*B) .* C)*tr(X)", {"X": (3, 3), "B": (3, 2), "C": (3, 2)}, "sum(sign(X*B) .* C)*eye(3)"),
    ("sum(step(X))", {"X": (3, 2)}, "0*X"),
    # X^-1 and inv(X) are one inverse
    ("tr(inv(X)*X^-1)", {"X": (3, 3)}, "-2*inv(X)'^3"),
])
def test_no_zero_debris_and_one_spelling_of_the_inverse(expr, shapes, expected):
    check_answer(rw.gradient(expr, "X", shapes), expected, spd={"X"} if "inv" in expr else ())
