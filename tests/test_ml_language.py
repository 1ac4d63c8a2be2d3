"""The ML additions to the language: relu, max/min, norm1, mean, sum/mean along a dimension,
softmax, logsumexp, the solves A\\B and B/A, the aliases trace/transpose, implicit expansion
and symmetric declarations. Every construct: its value against NumPy, its shape, gradients
against finite differences on non-square shapes (the printed answer parsed back too), the
documented derivative at ties of the non-smooth ones, and the exact errors of misuse."""

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import check_answer, check_derivative

import rewrite as rw
from rewrite.numeric import evaluate, gradient_error

RNG = np.random.default_rng(7)
X34, B34, W35, X54 = (RNG.normal(size=s) for s in ((3, 4), (3, 4), (3, 5), (5, 4)))


def value(text: str, shapes: dict, **env) -> np.ndarray:
    return evaluate(rw.parse(text, shapes).term, env)


# -- values and shapes ---------------------------------------------------------------------
def _softmax(a):
    e = np.exp(a - a.max(axis=0))
    return e / e.sum(axis=0)


VALUES = [
    ("trace(A)", {"A": (3, 3)}, lambda A: np.trace(A), {"A": (3, 3)}),
    ("transpose(X)", {"X": (3, 4)}, lambda X: X.T, {"X": (3, 4)}),
    ("mean(X)", {"X": (3, 4)}, lambda X: X.mean(), {"X": (3, 4)}),
    ("mean(X)", {"X": ("m", "n")}, lambda X: X.mean(), {"X": (3, 4)}),
    ("sum(X, 1)", {"X": (3, 4)}, lambda X: X.sum(axis=0, keepdims=True), {"X": (3, 4)}),
    ("sum(X, 2)", {"X": (3, 4)}, lambda X: X.sum(axis=1, keepdims=True), {"X": (3, 4)}),
    ("mean(X, 1)", {"X": ("m", "n")}, lambda X: X.mean(axis=0, keepdims=True), {"X": (3, 4)}),
    ("mean(X, 2)", {"X": (3, 4)}, lambda X: X.mean(axis=1, keepdims=True), {"X": (3, 4)}),
    ("relu(X)", {"X": (3, 4)}, lambda X: np.maximum(X, 0), {"X": (3, 4)}),
    ("max(X, B)", {"X": (3, 4), "B": (3, 4)}, lambda X, B: np.maximum(X, B), {"X": (3, 4), "B": (3, 4)}),
    ("min(X, B)", {"X": (3, 4), "B": (3, 4)}, lambda X, B: np.minimum(X, B), {"X": (3, 4), "B": (3, 4)}),
    ("max(X, c)", {"X": (3, 4), "c": ()}, lambda X, c: np.maximum(X, c), {"X": (3, 4), "c": (1, 1)}),
    ("min(X, 0)", {"X": (3, 4)}, lambda X: np.minimum(X, 0), {"X": (3, 4)}),
    ("max(0, X)", {"X": (3, 4)}, lambda X: np.maximum(X, 0), {"X": (3, 4)}),
    ("norm1(X)", {"X": (3, 4)}, lambda X: np.abs(X).sum(), {"X": (3, 4)}),
    ("softmax(X)", {"X": (3, 4)}, lambda X: _softmax(X), {"X": (3, 4)}),
    ("softmax(x)", {"x": (3,)}, lambda x: _softmax(x), {"x": (3, 1)}),
    ("logsumexp(X)", {"X": (3, 4)}, lambda X: np.log(np.exp(X).sum(axis=0, keepdims=True)),
     {"X": (3, 4)}),
    ("logsumexp(x)", {"x": (3,)}, lambda x: np.log(np.exp(x).sum()), {"x": (3, 1)}),
    ("A \\ B", {"A": (3, 3), "B": (3, 4)}, lambda A, B: np.linalg.solve(A, B), {"A": (3, 3), "B": (3, 4)}),
    ("B / A", {"A": (4, 4), "B": (3, 4)}, lambda A, B: B @ np.linalg.inv(A), {"A": (4, 4), "B": (3, 4)}),
    ("X / c", {"X": (3, 4), "c": ()}, lambda X, c: X / c, {"X": (3, 4), "c": (1, 1)}),
    ("X - mean(X, 1)", {"X": (3, 4)}, lambda X: X - X.mean(axis=0), {"X": (3, 4)}),
    ("X + r", {"X": (3, 4), "r": (1, 4)}, lambda X, r: X + r, {"X": (3, 4), "r": (1, 4)}),
    ("X .* c", {"X": (3, 4), "c": (3,)}, lambda X, c: X * c, {"X": (3, 4), "c": (3, 1)}),
    ("c - r", {"c": (3,), "r": (1, 4)}, lambda c, r: c - r, {"c": (3, 1), "r": (1, 4)}),
    ("r ./ X", {"X": (3, 4), "r": (1, 4)}, lambda X, r: r / X, {"X": (3, 4), "r": (1, 4)}),
    ("max(X, r)", {"X": (3, 4), "r": (1, 4)}, lambda X, r: np.maximum(X, r), {"X": (3, 4), "r": (1, 4)}),
    ("min(c, X)", {"X": (3, 4), "c": (3,)}, lambda X, c: np.minimum(c, X), {"X": (3, 4), "c": (3, 1)}),
]


@pytest.mark.parametrize("text, shapes, ref, arrays", VALUES, ids=[v[0] for v in VALUES])
def test_value_and_shape_against_numpy(text, shapes, ref, arrays):
    rng = np.random.default_rng(1)
    env = {k: rng.normal(size=s) + (3 * np.eye(s[0]) if k == "A" else 0) for k, s in arrays.items()}
    got = value(text, shapes, **env)
    want = np.atleast_2d(ref(**env))
    assert got.shape == want.shape, (got.shape, want.shape)
    assert np.allclose(got, want, rtol=1e-12, atol=1e-12)
    # printing round-trips: the printed term parses back to the same value and shape
    again = rw.parse(str(rw.parse(text, shapes)), shapes).term
    assert np.allclose(evaluate(again, env), want, rtol=1e-12, atol=1e-12)


SHAPES = [
    ("mean(X)", (1, 1)), ("sum(X, 1)", (1, "n")), ("sum(X, 2)", ("m", 1)),
    ("mean(X, 1)", (1, "n")), ("mean(X, 2)", ("m", 1)), ("softmax(X)", ("m", "n")),
    ("logsumexp(X)", (1, "n")), ("logsumexp(v)", (1, 1)), ("softmax(v)", ("m", 1)),
    ("norm1(X)", (1, 1)), ("relu(X)", ("m", "n")), ("max(X, r)", ("m", "n")),
    ("min(v, r)", ("m", "n")), ("S \\ X", ("m", "n")), ("X / T", ("m", "n")),
    ("transpose(X)", ("n", "m")), ("trace(S)", (1, 1)), ("X + v", ("m", "n")),
]


@pytest.mark.parametrize("text, shape", SHAPES, ids=[s[0] for s in SHAPES])
def test_result_shapes(text, shape):
    sh = {"X": ("m", "n"), "v": ("m",), "r": (1, "n"), "S": ("m", "m"), "T": ("n", "n")}
    assert rw.parse(text, sh).shape == shape


def test_aliases_are_the_same_terms():
    sh = {"A": (3, 3), "X": (3, 4)}
    assert rw.parse("trace(A*X*X')", sh) == rw.parse("tr(A*X*X')", sh)
    assert rw.parse("transpose(X)*A", sh) == rw.parse("X'*A", sh)
    assert str(rw.parse("A \\ X", sh)) == "inv(A)*X"
    assert str(rw.parse("X' / A", sh)) == "X'*inv(A)"
    assert str(rw.parse("sum(X, 1)", sh)) == "ones(3)'*X"
    assert str(rw.parse("sum(X, 2)", sh)) == "X*ones(4)"
    assert str(rw.parse("max(X, 0)", sh)) == "X + relu(-X)"
    assert str(rw.parse("norm1(X)", sh)) == "sum(abs(X))"


# -- gradients ------------------------------------------------------------------------------
GRADIENTS = [
    ("trace(A*X)", "X", {"A": (3, 4), "X": (4, 3)}, "A'"),
    ("sum(transpose(X)*A)", "X", {"A": (2, 5), "X": (2, 3)}, None),
    ("mean(X .* X)", "X", {"X": (3, 5)}, "2/15*X"),
    ("mean(X .* X)", "X", {"X": ("m", "n")}, "2*X ./ (sum(ones(m))*sum(ones(n)))"),
    ("sum(X, 1)*v", "X", {"X": (4, 3), "v": (3,)}, "ones(4)*v'"),
    ("u'*sum(X, 2)", "X", {"X": (4, 3), "u": (4,)}, "u*ones(3)'"),
    ("mean(X, 1)*v", "X", {"X": ("m", "n"), "v": ("n",)}, "ones(m)*v' ./ sum(ones(m))"),
    ("u'*mean(X, 2)", "X", {"X": (4, 3), "u": (4,)}, "1/3*u*ones(3)'"),
    ("sum(relu(W*x + b))", "W", {"W": (3, 4), "x": (4,), "b": (3,)}, "step(W*x + b)*x'"),
    ("sum(max(X, B))", "X", {"X": (3, 4), "B": (3, 4)}, "1 - step(B - X)"),
    ("sum(max(X, B))", "B", {"X": (3, 4), "B": (3, 4)}, "step(B - X)"),
    ("sum(min(X, B))", "X", {"X": (3, 4), "B": (3, 4)}, "1 - step(X - B)"),
    ("sum(max(X, 0))", "X", {"X": (3, 4)}, "1 - step(-X)"),
    ("sum(min(X, c))", "c", {"X": (3, 4), "c": ()}, None),
    ("norm1(X*w - y)", "w", {"X": (5, 3), "w": (3,), "y": (5,)}, "X'*sign(X*w - y)"),
    ("sum(softmax(X) .* Y)", "X", {"X": (3, 4), "Y": (3, 4)}, None),
    ("-sum(Y .* log(softmax(W*X)))", "W", {"W": (3, 5), "X": (5, 4), "Y": (3, 4)},
     "(softmax(W*X) .* (ones(3)*ones(3)'*Y) - Y)*X'"),
    ("logsumexp(W*x)", "W", {"W": (3, 5), "x": (5,)}, "softmax(W*x)*x'"),
    ("sum(logsumexp(W*X))", "X", {"W": (3, 5), "X": (5, 4)}, "W'*softmax(W*X)"),
    ("norm2sq(A\\b - x)", "b", {"A": (3, 3), "b": (3,), "x": (3,)}, "2*inv(A)'*(inv(A)*b - x)"),
    ("norm2sq(A\\b - x)", "A", {"A": (3, 3), "b": (3,), "x": (3,)}, None),
    ("fro2(B/A)", "A", {"A": (3, 3), "B": (4, 3)}, None),
    ("mean((X*w - y).^2)", "w", {"X": (5, 3), "w": (3,), "y": (5,)}, "0.4*X'*(X*w - y)"),
    ("sum(log(1 + exp(-y .* (X*w))))", "w", {"X": (5, 3), "w": (3,), "y": (5,)}, None),
    ("fro2(X - mean(X, 1))", "X", {"X": (4, 3)}, None),
    ("sum(exp(X + r))", "r", {"X": (4, 3), "r": (1, 3)}, "ones(4)'*exp(X + ones(4)*r)"),
    ("sum(X .* c)", "c", {"X": (4, 3), "c": (4,)}, "X*ones(3)"),
    ("sum(sin(c - r))", "r", {"c": (4,), "r": (1, 3)}, None),
    ("sum(X ./ exp(r))", "r", {"X": (4, 3), "r": (1, 3)}, None),
    ("sum(max(X, r))", "r", {"X": (4, 3), "r": (1, 3)}, "ones(4)'*step(ones(4)*r - X)"),
    ("sum(logsumexp(X - mean(X, 2)))", "X", {"X": (3, 5)}, None),
]


@pytest.mark.parametrize("expr, wrt, shapes, golden", GRADIENTS, ids=[f"{g[0]} / {g[1]}" for g in GRADIENTS])
def test_gradient_matches_finite_differences(expr, wrt, shapes, golden):
    g = rw.gradient(expr, wrt, shapes)
    spd = ("A",) if "A" in shapes and shapes["A"][0] == shapes["A"][1] else ()
    check_answer(g, golden, spd=spd)


def test_softmax_cross_entropy_is_the_textbook_answer_when_columns_of_y_sum_to_one():
    sh = {"W": (3, 5), "X": (5, 4), "Y": (3, 4)}
    g = rw.gradient("-sum(Y .* log(softmax(W*X)))", "W", sh)
    rng = np.random.default_rng(3)
    W, X = rng.normal(size=(3, 5)), rng.normal(size=(5, 4))
    Y = np.eye(3)[:, rng.integers(0, 3, size=4)]  # one-hot columns
    textbook = (_softmax(W @ X) - Y) @ X.T
    assert np.allclose(g.numpy()(W=W, X=X, Y=Y), textbook, rtol=1e-12, atol=1e-12)



# -- compact answers of ML objectives ------------------------------------------------------------
CE = {"W": ("k", "n"), "X": ("n", "m"), "Y": ("k", "m"), "b": ("k",)}
NET = {"W1": ("h", "n"), "x": ("n",), "b1": ("h",), "W2": ("k", "h"), "b2": ("k",), "y": ("k",)}
NET_F = "norm2sq(W2*relu(W1*x + b1) + b2 - y)"
CE_W = "(softmax(W*X + b*ones(m)') .* (ones(k)*ones(k)'*Y) - Y)*X'"
CE_B = "(softmax(W*X + b*ones(m)') .* (ones(k)*ones(k)'*Y) - Y)*ones(m)"
NET_DELTA = "step(W1*x + b1) .* (2*W2'*(W2*relu(W1*x + b1) + b2 - y))"
ANSWERS = [
    # softmax cross-entropy of a batch with a bias, the bias spread explicitly or implicitly
    ("-sum(Y .* log(softmax(W*X + b*ones(m)')))", "W", CE, CE_W),
    ("-sum(Y .* log(softmax(W*X + b*ones(m)')))", "b", CE, CE_B),
    ("-sum(Y .* log(softmax(W*X + b)))", "W", CE, CE_W),
    ("-sum(Y .* log(softmax(W*X + b)))", "b", CE, CE_B),
    # a two-layer relu network with biases
    (NET_F, "W1", NET, f"({NET_DELTA})*x'"),
    (NET_F, "b1", NET, NET_DELTA),
    (NET_F, "W2", NET, "2*(W2*relu(W1*x + b1) + b2 - y)*relu(x'*W1' + b1')"),
    (NET_F, "b2", NET, "2*(W2*relu(W1*x + b1) + b2 - y)"),
    # lasso
    ("norm2sq(X*w - y) + lam*norm1(w)", "w", {"X": ("m", "n"), "w": ("n",), "y": ("m",), "lam": ()},
     "2*X'*(X*w - y) + lam*sign(w)"),
    # centring: the centring matrix is idempotent (rules/ml.rules)
    ("fro2(X - mean(X, 2))", "X", {"X": ("m", "n")}, "2*(X - X*ones(n)*ones(n)' ./ sum(ones(n)))"),
    ("fro2(X - mean(X, 1))", "X", {"X": ("m", "n")}, "2*(X - ones(m)*ones(m)'*X ./ sum(ones(m)))"),
    # with numeric sizes the count is a number and the idempotence is not recognised (yet)
    ("fro2(X - mean(X, 2))", "X", {"X": (4, 3)},
     "2*(X - 1/3*X*ones(3)*ones(3)') - 2/3*(X - 1/3*X*ones(3)*ones(3)')*ones(3)*ones(3)'"),
]


@pytest.mark.parametrize("expr, wrt, shapes, golden", ANSWERS, ids=[f"{a[0]} / {a[1]}" for a in ANSWERS])
def test_compact_answers_of_ml_objectives(expr, wrt, shapes, golden):
    check_answer(rw.gradient(expr, wrt, shapes), golden)


def test_centring_gradient_is_twice_the_centred_matrix():
    g = rw.gradient("fro2(X - mean(X, 2))", "X", {"X": ("m", "n")})
    assert g.report.fired().get("ml-center-row", 0) > 0
    X = np.random.default_rng(2).normal(size=(3, 5))
    assert np.allclose(g.numpy()(X=X), 2 * (X - X.mean(axis=1, keepdims=True)))


def test_gaussian_process_likelihood_in_a_spd_kernel_matrix():
    sh = {"K": ("n", "n"), "y": ("n",)}
    g = rw.gradient("0.5*y'*inv(K)*y + 0.5*logdet(K)", "K", sh, structure={"K": "spd"})
    # sym(G) is written with K' = K, as K is declared symmetric
    assert str(g) == "0.5*(inv(K) - inv(K)*y*y'*inv(K))"
    # K is drawn SPD, where the unsymmetrised gradient is symmetric too
    check_answer(g, spd=("K",))
    printed = rw.parse(str(g), sh).term
    for seed in (0, 1):  # against finite differences along symmetric directions
        assert gradient_error(g, np.random.default_rng(seed))[2] < 1e-7
        probe = SimpleNamespace(f=g.f, term=printed, registry=g.registry, wrt="K", structure=g.structure)
        assert gradient_error(probe, np.random.default_rng(seed))[2] < 1e-7
    rng = np.random.default_rng(5)
    M, y = rng.normal(size=(4, 4)), rng.normal(size=4)
    K = M @ M.T + np.eye(4)
    Ki = np.linalg.inv(K)
    assert np.allclose(g.numpy()(K=K, y=y), 0.5 * (Ki - Ki @ np.outer(y, y) @ Ki))


# -- ties of the non-smooth constructs ---------------------------------------------------------
def test_relu_derivative_is_zero_at_zero():
    g = rw.gradient("sum(relu(X))", "X", {"X": (2, 3)})
    X = np.array([[0.0, 1.0, -1.0], [2.0, 0.0, -3.0]])
    assert g.numpy()(X=X).tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]


@pytest.mark.parametrize("fn", ["max", "min"])
def test_a_tie_gives_the_derivative_to_the_first_argument(fn):
    sh = {"X": (2, 3), "B": (2, 3)}
    X = np.array([[0.5, 1.0, -1.0], [2.0, 0.0, -3.0]])
    B = np.array([[0.5, 0.0, 0.0], [2.0, 1.0, -4.0]])  # ties at (0, 0) and (1, 0)
    first = rw.gradient(f"sum({fn}(X, B))", "X", sh).numpy()(X=X, B=B)
    second = rw.gradient(f"sum({fn}(X, B))", "B", sh).numpy()(X=X, B=B)
    assert first[0, 0] == first[1, 0] == 1.0 and second[0, 0] == second[1, 0] == 0.0
    assert np.all(first + second == 1.0)  # elsewhere the larger (smaller) one gets it
    pick = (X > B) if fn == "max" else (X < B)
    assert np.all(first[pick] == 1.0) and np.all(second[pick] == 0.0)
    # with a 1×1 first argument
    g = rw.gradient(f"sum({fn}(c, X))", "c", {"c": (), "X": (2, 3)})
    assert g.numpy()(c=0.5, X=X) == 6.0 - np.sum((X > 0.5) if fn == "max" else (X < 0.5))


def test_generated_code_keeps_the_tie_convention():
    g = rw.gradient("sum(relu(X)) + sum(max(X, B))", "X", {"X": (2, 2), "B": (2, 2)})
    ns: dict = {}
    exec(g.code("numpy"), ns)
    X, B = np.array([[0.0, 1.0], [-1.0, 2.0]]), np.array([[0.0, 1.0], [0.0, 3.0]])
    _, grad = ns["f_and_grad"](X=X, B=B)
    assert grad.tolist() == g.numpy()(X=X, B=B).tolist() == [[1.0, 2.0], [0.0, 1.0]]


# -- second order ---------------------------------------------------------------------------
HESSIANS = [
    ("logsumexp(x)", "x", {"x": (4,)}),
    ("logsumexp(W*x)", "x", {"W": (3, 4), "x": (4,)}),
    ("-y'*log(softmax(W*x))", "x", {"W": (3, 4), "x": (4,), "y": (3,)}),
    ("-sum(Y .* log(softmax(W*X)))", "W", {"W": (3, 2), "X": (2, 4), "Y": (3, 4)}),
    ("mean((X*w - y).^2)", "w", {"X": (5, 3), "w": (3,), "y": (5,)}),
]


@pytest.mark.parametrize("expr, wrt, shapes", HESSIANS, ids=[h[0] for h in HESSIANS])
def test_hessian_matches_finite_differences(expr, wrt, shapes):
    check_derivative(rw.hessian(expr, wrt, shapes), tol=1e-5)


def test_hvp_of_logsumexp():
    check_derivative(rw.hvp("logsumexp(W*x)", "x", {"W": (3, 4), "x": (4,)}), tol=1e-5)


# -- symmetric declarations ----------------------------------------------------------------
def test_symmetric_variable_gets_the_symmetrised_gradient():
    sh = {"S": (3, 3), "A": (3, 3)}
    g = rw.gradient("tr(S*A)", "S", sh, structure={"S": "symmetric"})
    assert str(g) == "0.5*(A' + A)"
    A = np.arange(9.0).reshape(3, 3)
    assert np.allclose(g.numpy()(S=np.eye(3), A=A), (A + A.T) / 2)
    assert gradient_error(g, np.random.default_rng(0))[2] < 1e-7
    plain = rw.gradient("tr(S*A)", "S", sh)
    assert str(plain) == "A'"


@pytest.mark.parametrize("expr", ["logdet(S) - x'*S*x", "x'*S*x", "tr(S*S*A)"])
def test_spd_and_symmetric_gradients_match_symmetric_finite_differences(expr):
    sh = {"S": (3, 3), "x": (3,), "A": (3, 3)}
    for kind in ("spd", "symmetric"):
        if kind == "symmetric" and "logdet" in expr:
            continue
        g = rw.gradient(expr, "S", sh, structure={"S": kind})
        assert gradient_error(g, np.random.default_rng(1))[2] < 1e-7, (expr, kind, str(g))
        G = evaluate(g.term, {"S": np.eye(3) * 2, "x": np.ones(3), "A": np.diag([1.0, 2, 3]) + 1})
        assert np.allclose(G, G.T)


def test_structure_errors():
    with pytest.raises(rw.ShapeError, match=r"^S is declared symmetric but is 2×3; a symmetric "
                                            r"matrix is square$"):
        rw.gradient("sum(S)", "S", {"S": (2, 3)}, structure={"S": "symmetric"})
    with pytest.raises(rw.UnsupportedError, match="unknown structure 'diagonal' for 'S'"):
        rw.gradient("tr(S)", "S", {"S": (2, 2)}, structure={"S": "diagonal"})
    with pytest.raises(rw.WrtError, match="'T' is declared spd but does not occur"):
        rw.gradient("tr(S)", "S", {"S": (2, 2)}, structure={"T": "spd"})


def test_cli_symmetric_and_spd():
    def run(*args):
        return subprocess.run([sys.executable, "-m", "rewrite.cli.main", *args], capture_output=True,
                              text=True)

    out = run("grad", "tr(S*A)", "--wrt", "S", "--shape", "S=n,n", "--shape", "A=n,n",
              "--symmetric", "S", "--check")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "0.5*(A' + A)"
    out = run("grad", "logdet(S)", "--wrt", "S", "--shape", "S=n,n", "--spd", "S", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["gradient"] == "inv(S)"  # S' = S for a declared S


# -- errors ---------------------------------------------------------------------------------
ERRORS = [
    ("sum(X, 3)", rw.ShapeError,
     "1:8: sum(X, k): k must be 1 (down the columns) or 2 (along the rows), got 3"),
    ("mean(X, n)", rw.ShapeError,
     "1:9: mean(X, k): k must be 1 (down the columns) or 2 (along the rows), got n"),
    ("sum(X, 1, 2)", rw.ParseError, "1:1: sum() takes 1 argument (or 2: sum(X, k), k = 1 or 2), got 3"),
    ("max(X)", rw.ParseError, "1:1: max() takes 2 arguments, got 1"),
    ("X \\ X", rw.ShapeError,
     "1:1: '\\' needs a square or 1×1 left operand (A \\ B = inv(A)*B), got 3×4"),
    ("A \\ X'", rw.ShapeError,
     "1:1: '\\' needs as many rows on the right as the square left operand has: left is 3×3, "
     "right is 4×3"),
    ("X / X", rw.ShapeError,
     "1:1: '/' needs a 1×1 or square right operand (B / A = B*inv(A)), got 3×4; use './' for "
     "elementwise division"),
    ("X / A", rw.ShapeError,
     "1:1: '/' needs a 1×1 right operand, or a square one as wide as the left operand "
     "(B / A = B*inv(A)): left is 3×4, right is 3×3"),
    ("X + Y", rw.ShapeError,
     "1:1: '+' needs operands of the same shape, or a row, column or 1×1 that expands to the "
     "other's: left is 3×4, right is 2×4"),
    ("2*X .* r2", rw.ShapeError,
     "1:1: '.*' needs operands of the same shape, or a row, column or 1×1 that expands to the "
     "other's: left is 3×4, right is 1×2"),
    ("sum(max(X, Y))", rw.ShapeError,
     "1:5: max() needs operands of the same shape, or a row, column or 1×1 that expands to the "
     "other's: left is 3×4, right is 2×4"),
]


@pytest.mark.parametrize("text, kind, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_misuse_is_a_typed_error_with_its_position(text, kind, message):
    sh = {"X": (3, 4), "Y": (2, 4), "A": (3, 3), "r2": (1, 2)}
    with pytest.raises(kind) as e:
        rw.parse(text, sh)
    assert str(e.value) == message


def test_max_needs_relu_declared():
    from rewrite.parse import parse

    with pytest.raises(rw.UnsupportedError, match="max\\(\\) is written with the elementwise "
                                                  "function relu, which is not declared here"):
        parse("max(X, Y)", {"X": (2, 2), "Y": (2, 2)})


# -- code generation, sympy, LaTeX ------------------------------------------------------------
@pytest.mark.parametrize("expr, wrt, shapes", [
    ("-sum(Y .* log(softmax(W*X)))", "W", {"W": (3, 5), "X": (5, 4), "Y": (3, 4)}),
    ("logsumexp(W*x) + norm1(x)", "x", {"W": (3, 5), "x": (5,)}),
    ("sum(relu(W*x + b)) + sum(min(W, 0.5))", "W", {"W": (3, 4), "x": (4,), "b": (3,)}),
    ("norm2sq(A\\b - x) + mean(b)", "b", {"A": (3, 3), "b": (3,), "x": (3,)}),
])
def test_generated_numpy_code(expr, wrt, shapes):
    g = rw.gradient(expr, wrt, shapes)
    ns: dict = {}
    exec(g.code("numpy"), ns)
    rng = np.random.default_rng(0)
    env = {k: rng.normal(size=s if len(s) == 2 else (s[0],)) for k, s in shapes.items()}
    if "A" in env:
        env["A"] = env["A"] + 3 * np.eye(3)
    f, grad = ns["f_and_grad"](**env)
    assert np.isclose(f, evaluate(g.f, env)[0, 0])
    assert np.allclose(grad, np.asarray(g.numpy()(**env)).reshape(np.shape(grad)))
    assert ns["check_gradient"](**env) < 1e-6


def test_sympy_and_latex_of_softmax_and_logsumexp():
    sh = {"X": (3, 2), "x": (3,)}
    from rewrite.sympy_interop import evaluate_sympy

    env = {"X": RNG.normal(size=(3, 2)), "x": RNG.normal(size=3)}
    for text in ("softmax(X)", "logsumexp(X)", "logsumexp(x)", "relu(X) + step(X)"):
        e = rw.parse(text, sh)
        assert np.allclose(evaluate_sympy(e.to_sympy(), env), evaluate(e.term, env))
    assert rw.parse("logsumexp(X)", sh).latex() == r"\operatorname{logsumexp}\left(X\right)"
    assert rw.parse("softmax(x)", sh).latex() == r"\operatorname{softmax}\left(x\right)"
