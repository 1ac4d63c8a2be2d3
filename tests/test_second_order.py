"""Second order: Hessians, Hessian-vector products and Jacobians against finite differences."""

import json

import numpy as np
import pytest
from conftest import check_derivative, check_same_value
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rewrite as rw
from rewrite.cli import main
from rewrite.egraph import Program
from rewrite.engine import default_engine
from rewrite.numeric import evaluate, gradient_error, instantiate_dims, random_point
from rewrite.printing import to_latex, to_text
from rewrite.second_order import direction_name
from rewrite.stock import parse, stock_ruleset
from rewrite.verify import derivative_error

TOL = 1e-6

# (name, objective, wrt, shapes, SPD variables)
OBJECTIVES = [
    ("gaussian-nll-sigma", "logdet(S) + x'*inv(S)*x", "S", {"S": ("n", "n"), "x": ("n",)}, {"S"}),
    ("gaussian-nll-sigma-batch", "logdet(S) + tr(inv(S)*Y*Y')/2", "S",
     {"S": ("n", "n"), "Y": ("n", "k")}, {"S"}),
    ("logistic", "sum(softplus(X*w)) - y'*X*w", "w", {"X": ("m", "n"), "w": ("n",), "y": ("m",)},
     set()),
    ("quadratic", "x'*A*x", "x", {"x": ("n",), "A": ("n", "n")}, set()),
    ("trace-quadratic", "tr(X'*A*X)", "X", {"X": ("n", "k"), "A": ("n", "n")}, set()),
    ("logdet", "logdet(X)", "X", {"X": ("n", "n")}, {"X"}),
    ("least-squares-matrix", "fro2(A*X*B - C)", "X",
     {"A": ("m", "n"), "X": ("n", "p"), "B": ("p", "q"), "C": ("m", "q")}, set()),
    ("ridge-logistic", "sum(softplus(X*w)) + 0.5*c*w'*w", "w", {"X": ("m", "n"), "w": ("n",), "c": ()},
     set()),
    ("weighted-quadratic", "x'*A'*diag(b)*A*x", "x", {"x": ("n",), "A": ("m", "n"), "b": ("m",)},
     set()),
]
IDS = [o[0] for o in OBJECTIVES]


@pytest.mark.parametrize("name,f,wrt,shapes,spd", OBJECTIVES, ids=IDS)
def test_hessian_matches_finite_differences(name, f, wrt, shapes, spd):
    h = rw.hessian(f, wrt, shapes)
    assert h.kind == "hessian" and h.wrt == wrt
    assert not _ops(h.term) & {"jac", "grad", "d"}
    # N×N (N = rows·cols of wrt at random distinct sizes), its printed text too, and the
    # gradient it differentiates
    check_derivative(h, spd=spd, seeds=(0, 1))
    for seed in (0, 1):
        value, fd, err = derivative_error(h, np.random.default_rng(seed), spd=spd)
        assert np.allclose(value, value.T, atol=1e-8), "a Hessian is symmetric"
    # the gradient differenced by derivative_error is itself right
    g = rw.gradient(f, wrt, shapes)
    assert gradient_error(g, np.random.default_rng(2), spd=spd)[2] < TOL


@pytest.mark.parametrize("name,f,wrt,shapes,spd", OBJECTIVES, ids=IDS)
def test_hvp_matches_finite_differences_and_the_hessian(name, f, wrt, shapes, spd):
    v = rw.hvp(f, wrt, shapes)
    assert v.direction == "V" and v.term.shape == _var_shape(f, shapes, wrt)
    assert "V" in v.variables and not _ops(v.term) & {"jac", "grad", "d"}
    check_derivative(v, spd=spd, seeds=(0, 3))
    # H*vec(V) equals vec(hvp(V)) at the same point
    h = rw.hessian(f, wrt, shapes)
    rng = np.random.default_rng(5)
    probe = rw.parse(f"tr({f}) + tr(V'*V)", {**shapes, "V": shapes[wrt]}).term
    dims = instantiate_dims(probe, rng, low=2, high=6)
    env = random_point(probe, rng, dims, spd=spd)
    hv = evaluate(v.term, env, v.registry, dims).reshape(-1, order="F")
    hm = evaluate(h.term, env, h.registry, dims)
    assert np.allclose(hm @ np.asarray(env["V"]).reshape(-1, order="F"), hv, rtol=1e-8, atol=1e-8)


def _ops(t):
    out, stack = set(), [t]
    while stack:
        n = stack.pop()
        out.add(n.op)
        stack.extend(n.args)
    return out


def _var_shape(f, shapes, wrt):
    return dict(_walk_vars(rw.parse(f, shapes).term))[wrt]


def _walk_vars(t):
    stack = [t]
    while stack:
        n = stack.pop()
        if n.op == "var":
            yield n.attr, n.shape
        stack.extend(n.args)


A_OPTIMAL = ("kront(inv(S)*diag(a)*inv(S), inv(S)') + kront(inv(S), inv(S)'*diag(a)*inv(S)')",
             "kront(inv(S), inv(S)'*diag(a)*inv(S)') + kront(inv(S)*diag(a)*inv(S), inv(S)')")


def test_compact_forms():
    """Each printed form is also checked by value (check_derivative: the result and its text
    parsed back against finite differences at random distinct sizes, shape included)."""
    one = {"seeds": (0,)}
    check_derivative(rw.hessian("x'*A*x", "x", {"x": ("n",), "A": ("n", "n")}),
                     ("A' + A", "A + A'"), **one)
    h = rw.hessian("sum(softplus(X*w)) - y'*X*w", "w", {"X": ("m", "n"), "w": ("n",), "y": ("m",)})
    log = str(h)
    assert log.startswith("X'*diag(") and log.endswith(")*X") and "kron" not in log
    check_derivative(h, **one)
    check_derivative(rw.hessian("tr(X'*A*X)", "X", {"X": ("n", "k"), "A": ("n", "n")}),
                     ("kron(eye(k), A' + A)", "kron(eye(k), A + A')"), **one)
    check_derivative(rw.hessian("logdet(X)", "X", {"X": ("n", "n")}), "-kront(inv(X), inv(X)')",
                     spd={"X"}, **one)
    check_derivative(rw.hvp("tr(X'*A*X)", "X", {"X": ("n", "k"), "A": ("n", "n")}),
                     ("(A + A')*V", "(A' + A)*V"), **one)
    # no zero terms left over (vec(0*M) is 0*vec(M), then dropped from the sum)
    h = rw.hessian("logdet(S) + x'*inv(S)*x", "S", {"S": ("n", "n"), "x": ("n",)})
    nll = str(h)
    assert "0*" not in nll and nll.count("kront(") == 3
    check_derivative(h, spd={"S"}, **one)
    # vector Hessians carry no Kronecker debris: kron(eye(1), M) is M, diag(b)' is diag(b), and
    # a product of diagonal matrices is one diagonal matrix
    check_derivative(rw.hessian("x'*A'*diag(b)*A*x", "x", {"x": ("n",), "A": ("m", "n"),
                                                          "b": ("m",)}), "2*A'*diag(b)*A", **one)
    assert log.count("diag(") == 1
    # scalars pulled out of Hadamard products and quotients (scale-had-l, scale-hdiv): 0.5 and
    # -0.25 lead, not diag(0.5*...)
    check_derivative(rw.jacobian("sqrt(X)", "X", {"X": ("n", "p")}), "0.5*diag(vec(1 ./ X.^(0.5)))",
                     positive={"X"}, **one)
    check_derivative(rw.hessian("sum(sqrt(X*w))", "w", {"X": ("m", "n"), "w": ("n",)}),
                     "-0.25*X'*diag(1 ./ (X*w).^(1.5))*X", positive={"X", "w"}, **one)
    # scalars pulled out of diag(c*v) and diag(c*A) (scale-diag, scale-diagv): a weighted sum of
    # square roots, and the A-optimal design criterion (a weighted trace of an inverse)
    check_derivative(rw.hessian("a'*diag(sqrt(x))*a", "x", {"a": ("n",), "x": ("n",)}),
                     "-0.25*diag(diag(a*a') ./ x.^(1.5))", positive={"x"}, **one)
    check_derivative(rw.hessian("a'*diag(inv(S))", "S", {"a": ("n",), "S": ("n", "n")}), A_OPTIMAL,
                     spd={"S"}, **one)


def test_unit_kronecker_factors_of_a_product_simplify_away():
    # the unit rules and the mixed-product rule match overlapping nodes of this term; run in the
    # same iteration they would leave the product's class with nothing to extract
    shapes = {"P": ("n", "m"), "A": ("m", "k")}
    out = rw.simplify("kron(eye(1), P)*kron(eye(1), A)", shapes)
    assert str(out) == "P*A" and out.report.stop_reason == "saturated"
    check_same_value("kron(eye(1), P)*kron(eye(1), A)", str(out), shapes)  # n×k, n ≠ m ≠ k


JACOBIANS = [
    ("A*X*B", "X", {"A": ("m", "n"), "X": ("n", "p"), "B": ("p", "q")}, {}),
    ("sigmoid(X*w)", "w", {"X": ("m", "n"), "w": ("n",)}, {}),
    ("A*x + exp(B*x)", "x", {"A": ("m", "n"), "x": ("n",), "B": ("m", "n")}, {}),
    ("b .* x + x ./ c", "x", {"x": ("n",), "b": ("n",), "c": ("n",)}, {"positive": {"c"}}),
    ("X'*A", "X", {"X": ("n", "p"), "A": ("n", "q")}, {}),
    ("inv(X)", "X", {"X": ("n", "n")}, {"spd": {"X"}}),
    ("X*X", "X", {"X": ("n", "n")}, {}),
    # a negative matrix power: a Jacobian's objective is not tidied first, so d(X^-2) needs its
    # own rule (d-mpow-neg)
    ("X^(-2)", "X", {"X": ("n", "n")}, {"spd": {"X"}}),
    # X^0 = I: its differential is 0 (d-mpow-zero)
    ("X^0*A", "X", {"X": ("n", "n"), "A": ("n", "p")}, {}),
    ("(a'*x)*x", "x", {"a": ("n",), "x": ("n",)}, {}),
    ("tr(A*X)", "X", {"A": ("p", "n"), "X": ("n", "p")}, {}),
    ("X'*X", "X", {"X": ("n", "p")}, {}),
    # a gated linear unit: the differential of the gate, d(sigmoid(W*x)) .* (V*x), has its
    # constant factor on the right (jac-had2)
    ("sigmoid(W*x) .* (V*x)", "x", {"W": ("m", "n"), "V": ("m", "n"), "x": ("n",)}, {}),
    # a layer's output flattened (jac-vec)
    ("vec(tanh(W*X))", "W", {"W": ("k", "n"), "X": ("n", "m")}, {}),
    # the diagonal of a square product of non-square factors (jac-diagv), and a vector made a
    # diagonal matrix (jac-diag)
    ("diag(A*X)", "X", {"A": ("n", "m"), "X": ("m", "n")}, {}),
    ("diag(A*x)", "x", {"A": ("m", "n"), "x": ("n",)}, {}),
]


@pytest.mark.parametrize("F,wrt,shapes,kw", JACOBIANS, ids=[j[0] for j in JACOBIANS])
def test_jacobian_matches_finite_differences(F, wrt, shapes, kw):
    j = rw.jacobian(F, wrt, shapes)
    value, fd, err = derivative_error(j, np.random.default_rng(0), **kw)
    assert err < TOL, (F, str(j), err)
    # rows(F)·cols(F) × rows(X)·cols(X): m×n for a vector F and a vector x
    assert value.shape == fd.shape
    # the printed Jacobian is valid input with the same shape
    assert parse(str(j), shapes).shape == j.term.shape


def test_vector_jacobian_is_m_by_n():
    j = rw.jacobian("sigmoid(X*w)", "w", {"X": (4, 3), "w": (3,)})
    assert j.shape == (4, 3)
    check_derivative(j, "diag((1 - sigmoid(X*w)) .* sigmoid(X*w))*X")
    j = rw.jacobian("A*X*B", "X", {"A": (2, 3), "X": (3, 4), "B": (4, 5)})
    assert j.shape == (10, 12)
    check_derivative(j, seeds=(0,))


def test_linear_objective_has_zero_hessian_and_hvp():
    shapes = {"a": ("n",), "x": ("n",)}
    h = rw.hessian("a'*x", "x", shapes)
    assert np.all(h.numpy()(a=np.ones(3), x=np.ones(3)) == 0) and h.shape == ("n", "n")
    check_derivative(h)  # n×n at random n, where the differences are zero
    v = rw.hvp("a'*x", "x", shapes)
    check_derivative(v, "0*V")  # n×1 zeros, not a 1×1 zero


def test_scalar_variable():
    shapes = {"c": (), "A": ("n", "n")}
    h = rw.hessian("c^2*tr(A) + exp(c)", "c", shapes)
    v = rw.hvp("c^2*tr(A) + exp(c)", "c", shapes)
    assert h.shape == (1, 1) and v.shape == (1, 1)
    for d in (h, v):
        assert derivative_error(d, np.random.default_rng(4))[2] < TOL


def test_direction_name_avoids_user_names():
    v = rw.hvp("tr(V*X'*X)", "X", {"V": ("n", "n"), "X": ("m", "n")})
    assert v.direction == "V2" and "V2" in v.variables
    assert derivative_error(v)[2] < TOL
    assert rw.hvp("x'*x", "x", {"x": ("n",)}, direction="U").direction == "U"
    with pytest.raises(rw.WrtError):
        rw.hvp("x'*A*x", "x", {"x": ("n",), "A": ("n", "n")}, direction="A")
    assert direction_name(parse("tr(V2*V)", {"V": (2, 2), "V2": (2, 2)}), "V") == "V3"


def test_unsupported_second_order_raises_typed_error():
    """kron(X, A) of a varying X has no Jacobian rule: an error, never a wrong answer; with four
    symbolic dimensions its shape is beyond the dimension encoding: an error too."""
    with pytest.raises(rw.CanonicalFormError) as e:
        rw.jacobian("kron(X, A)", "X", {"X": (2, 2), "A": (3, 3)})
    assert "no Jacobian is returned" in str(e.value)
    with pytest.raises(rw.UnsupportedError, match="give some sizes as integers"):
        rw.jacobian("kron(X, A)", "X", {"X": ("n", "n"), "A": ("m", "m")})


@pytest.mark.parametrize("F,wrt,shapes", [
    ("diag(X)", "X", {"X": ("n", "n")}),
    ("diag(x)", "x", {"x": ("n",)}),
    ("exp(diag(A*X))", "X", {"A": ("n", "m"), "X": ("m", "n")}),
    ("diag(x)*A*x", "x", {"x": ("n",), "A": ("n", "n")}),
])
def test_jacobian_through_diag(F, wrt, shapes):
    """diag of a varying square matrix (its diagonal) or vector (a diagonal matrix)."""
    j = rw.jacobian(F, wrt, shapes)
    assert derivative_error(j, np.random.default_rng(3))[2] < TOL, str(j)


def test_hessian_through_diag_of_a_varying_vector():
    f, shapes = "tr(A*diag(x)*B*diag(x))", {"x": ("n",), "A": ("n", "n"), "B": ("n", "n")}
    h = rw.hessian(f, "x", shapes)  # its gradient holds diag(M) of a varying M
    for seed in (0, 1):
        assert derivative_error(h, np.random.default_rng(seed))[2] < TOL, str(h)


def test_bad_input_is_a_typed_error():
    with pytest.raises(rw.ShapeError):
        rw.hessian("A*x", "x", {"A": ("m", "n"), "x": ("n",)})
    with pytest.raises(rw.WrtError):
        rw.hessian("x'*x", "y", {"x": ("n",)})
    with pytest.raises(rw.WrtError):
        rw.jacobian("A*x", ["x"], {"A": ("m", "n"), "x": ("n",)})
    with pytest.raises(rw.ShapeError) as e:
        rw.parse("kron(A, B)")
    assert e.value.position is not None


# -- the kron / kront ops ------------------------------------------------------------------
def test_kron_language():
    shapes = {"A": (2, 3), "B": (4, 5)}
    t = parse("kron(A, B)", shapes)
    assert t.shape == (8, 15) and to_text(t) == "kron(A, B)"
    assert parse("kron(A, B)'", {"A": ("m", "n"), "B": ("p", "q")}).shape == ("n*q", "m*p")
    assert to_latex(t) == r"A \otimes B"
    assert to_latex(parse("C*kront(A, B)", {**shapes, "C": (3, 8)})) == (
        r"C \left(A \otimes B\right) K_{3,5}")
    rng = np.random.default_rng(0)
    env = {"A": rng.normal(size=(2, 3)), "B": rng.normal(size=(4, 5)), "Z": rng.normal(size=(3, 5))}
    assert np.allclose(evaluate(t, env), np.kron(env["A"], env["B"]))
    vec = parse("kront(A, B)*vec(Z)", {**shapes, "Z": (3, 5)})
    want = (env["B"] @ env["Z"].T @ env["A"].T).reshape(-1, 1, order="F")
    assert np.allclose(evaluate(vec, env), want)
    # the LaTeX printed for kront, (A ⊗ B) K_{3,5}, by value: K_{3,5} vec(Z) = vec(Z') for 3×5 Z
    K = np.eye(15)[[i * 3 + j for j in range(3) for i in range(5)]]
    assert np.allclose(K @ env["Z"].reshape(-1, 1, order="F"), env["Z"].T.reshape(-1, 1, order="F"))
    assert np.allclose(evaluate(parse("kront(A, B)", shapes), env), np.kron(env["A"], env["B"]) @ K)
    with pytest.raises(rw.ShapeError):
        parse("kron(A, B)*A", shapes)


@pytest.mark.parametrize("lhs,rhs", [
    ("kron(A, B)*kron(C, D)", "kron(A*C, B*D)"),
    ("kron(A, B)*kront(C2, D2)", "kront(A*C2, B*D2)"),
    ("kront(A2, B2)*kron(C, D)", "kront(A2*D, B2*C)"),
    ("kront(A2, B2)*kront(C2, D2)", "kron(A2*D2, B2*C2)"),
    ("kron(A, B)'", "kron(A', B')"),
])
def test_kronecker_rules_are_sound(lhs, rhs):
    shapes = {"A": (2, 3), "B": (4, 5), "C": (3, 2), "D": (5, 3), "C2": (3, 5), "D2": (5, 2),
              "A2": (2, 5), "B2": (4, 3)}
    rng = np.random.default_rng(1)
    env = {k: rng.normal(size=s) for k, s in shapes.items()}
    assert np.allclose(evaluate(parse(lhs, shapes), env), evaluate(parse(rhs, shapes), env))


def test_new_ops_are_declared_by_the_backend():
    text = Program(stock_ruleset()).text
    assert "(Kron M M)" in text and "(KronT M M)" in text and "(Jac M M)" in text
    assert '"~type-kron"' in text and '"~type-jac"' in text
    assert {"jacobian", "kron"} <= set(stock_ruleset().phases)
    assert stock_ruleset().phases["jacobian"] == "collect"


# -- property test ---------------------------------------------------------------------------
TERMS = ["x'*A*x", "sum(softplus(B*x))", "sum(exp(B*x))", "(a'*x)^2", "x'*x", "sum(sigmoid(B*x))",
         "(a'*x)*(x'*A*x)", "a'*x"]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picks=st.lists(st.sampled_from(TERMS), min_size=1, max_size=3, unique=True),
       coeffs=st.lists(st.integers(-3, 3).filter(bool), min_size=3, max_size=3),
       seed=st.integers(0, 1000))
def test_property_hessian_and_hvp_match_finite_differences(picks, coeffs, seed):
    f = " + ".join(f"{c}*({p})" for c, p in zip(coeffs, picks, strict=False))
    shapes = {"x": ("n",), "A": ("n", "n"), "B": ("m", "n"), "a": ("n",)}
    h = rw.hessian(f, "x", shapes)
    _, _, err = derivative_error(h, np.random.default_rng(seed))
    assert err < 1e-5, (f, str(h), err)
    v = rw.hvp(f, "x", shapes)
    _, _, err = derivative_error(v, np.random.default_rng(seed))
    assert err < 1e-5, (f, str(v), err)


# -- CLI -------------------------------------------------------------------------------------
def test_cli_hessian_json(capsys):
    status = main(["hessian", "x'*A*x", "--wrt", "x", "--shape", "x=n", "--shape", "A=n,n",
                   "--format", "json", "--check"])
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and out["kind"] == "hessian" and out["result"] in ("A' + A", "A + A'")
    # the printed result, checked by value (not only by the CLI's own --check)
    check_derivative(rw.hessian("x'*A*x", "x", {"x": ("n",), "A": ("n", "n")}), out["result"],
                     seeds=(0,))
    assert out["shape"] == ["n", "n"] and out["check"]["relative_error"] < TOL
    assert set(out["report"]) >= {"stop_reason", "iterations", "eclasses", "enodes", "seconds"}


def test_cli_hvp_and_jacobian(capsys):
    assert main(["hvp", "logdet(S)", "--wrt", "S", "--shape", "S=3,3", "--check", "--spd", "S",
                 "--direction", "D"]) == 0
    cap = capsys.readouterr()
    assert cap.out.strip() == "-inv(S)'*D'*inv(S)'" and "relative error" in cap.err
    check_derivative(rw.hvp("logdet(S)", "S", {"S": (3, 3)}, direction="D"), cap.out.strip(),
                     spd={"S"}, seeds=(0,))
    shapes = {"A": ("m", "n"), "X": ("n", "p"), "B": ("p", "q")}
    assert main(["jacobian", "A*X*B", "--wrt", "X", "--shape", "A=m,n", "--shape", "X=n,p",
                 "--shape", "B=p,q", "--format", "latex"]) == 0
    latex = capsys.readouterr().out.strip()
    assert latex == r"B^{\top} \otimes A"
    # the same answer as text is right by value (mq × np at distinct m, n, p, q), and the LaTeX
    # printed is its LaTeX
    assert main(["jacobian", "A*X*B", "--wrt", "X", "--shape", "A=m,n", "--shape", "X=n,p",
                 "--shape", "B=p,q"]) == 0
    text = capsys.readouterr().out.strip()
    check_derivative(rw.jacobian("A*X*B", "X", shapes), text, seeds=(0,))
    assert to_latex(parse(text, shapes)) == latex


def test_cli_errors_exit_2(capsys):
    assert main(["jacobian", "kron(X, A)", "--wrt", "X", "--shape", "X=2,2", "--shape", "A=3,3",
                 "--format", "json"]) == 2
    err = json.loads(capsys.readouterr().err)["error"]
    assert err["kind"] == "canonical-form"
    assert main(["hessian", "A*x", "--wrt", "x", "--shape", "A=m,n", "--shape", "x=n"]) == 2
    assert "shape error" in capsys.readouterr().err


def test_default_engine_is_reused():
    assert rw.hessian("x'*x", "x", {"x": (3,)}).numpy()(x=np.ones(3)).tolist() == (
        2 * np.eye(3)).tolist()
    assert default_engine().hessian("x'*x", "x", {"x": (3,)}).term.shape == (3, 3)
