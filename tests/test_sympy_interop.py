"""Sympy interop: sympy matrix expressions as input, ``to_sympy`` on output, round trips."""

from functools import cache

import numpy as np
import pytest
import sympy
from conftest import check_numerically, public_cases
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalMatrix, DiagonalOf
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

import rewrite as rw
from rewrite.numeric import constraints_from_assumptions, evaluate, instantiate_dims, random_point
from rewrite.sympy_interop import evaluate_sympy, from_sympy, sympy_to_text, to_sympy

CASES = public_cases()
IDS = [c["id"] for c in CASES]

m, n, k = sympy.symbols("m n k")
X = sympy.MatrixSymbol("X", m, n)
A = sympy.MatrixSymbol("A", m, m)
B = sympy.MatrixSymbol("B", m, n)
S = sympy.MatrixSymbol("S", n, n)
x = sympy.MatrixSymbol("x", n, 1)
w = sympy.MatrixSymbol("w", n, 1)
y = sympy.MatrixSymbol("y", m, 1)
c = sympy.Symbol("c")


def assumptions(case):
    spd, pos, _ = constraints_from_assumptions(case.get("assume", []))
    return spd, pos


def point(term, seed, case=None):
    spd, pos = assumptions(case) if case else (set(), set())
    rng = np.random.default_rng(seed)
    dims = instantiate_dims(term, rng)
    return random_point(term, rng, dims, spd=spd, positive=pos), dims


@cache
def gradient_of(i: int):
    case = CASES[i]
    return rw.gradient(case["expr"], case["wrt"], case["shapes"])


# ------------------------------------------------------------------ round trips -------
@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_input_round_trip_keeps_meaning(i):
    """text → term → to_sympy → from_sympy is the same function, and sympy evaluates it alike."""
    case = CASES[i]
    t = rw.parse(case["expr"], case["shapes"]).term
    s = to_sympy(t)
    back = from_sympy(s)
    assert back.shape == t.shape
    for seed in (1, 2):
        env, dims = point(t, seed, case)
        want = evaluate(t, env, dims=dims)
        assert np.all(np.isfinite(want))
        np.testing.assert_allclose(evaluate(back, env, dims=dims), want, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(evaluate_sympy(s, env, dims), want, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_gradient_to_sympy_evaluates_to_the_same_numbers(i):
    case = CASES[i]
    g = gradient_of(i)
    gs = g.to_sympy()
    assert isinstance(gs, sympy.MatrixExpr) or g.shape == (1, 1)
    env, dims = point(g.f, 5, case)
    want = evaluate(g.term, env, g.registry, dims)
    got = evaluate_sympy(gs, env, dims)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(evaluate(from_sympy(gs), env, dims=dims), want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_gradient_of_sympy_input_matches_text_input(i):
    case = CASES[i]
    f = to_sympy(rw.parse(case["expr"], case["shapes"]).term)
    g = rw.gradient(f, wrt=case["wrt"])
    ref = gradient_of(i)
    env, dims = point(ref.f, 9, case)
    np.testing.assert_allclose(evaluate(g.term, env, dims=dims), evaluate(ref.term, env, dims=dims),
                               rtol=1e-8, atol=1e-10)


# ------------------------------------------------------------- sympy input ------------
TRANSLATIONS = [
    (sympy.Trace(X.T * A * X), "tr(X'*A*X)"),
    (X + B, "B + X"),
    (X - 2 * B, "-2*B + X"),
    (c * X.T * A, "c*X'*A"),
    (sympy.Inverse(A), "inv(A)"),
    (A**3, "A^3"),
    (A**-2, "A^(-2)"),
    (sympy.Determinant(A), "det(A)"),
    (sympy.log(sympy.Determinant(A)), "logdet(A)"),
    (HadamardProduct(X, B), "X .* B"),
    (HadamardProduct(X, HadamardPower(B, -1)), "X ./ B"),
    (HadamardPower(X, 2), "X.^2"),
    (sympy.Identity(m) + A, "eye(m) + A"),
    (sympy.OneMatrix(m, n) + X, "X + ones(m)*ones(n)'"),
    (sympy.OneMatrix(n, 1) + x, "x + ones(n)"),
    (sympy.MatAdd(sympy.ZeroMatrix(m, n), X), "0*(ones(m)*ones(n)') + X"),
    (X.applyfunc(sympy.exp), "exp(X)"),
    (X.applyfunc(lambda t: 1 / (1 + sympy.exp(-t))), "sigmoid(X)"),
    (X.applyfunc(lambda t: sympy.log(1 + sympy.exp(t))), "softplus(X)"),
    (X.applyfunc(lambda t: t**2), "(X) .^ 2"),
    (DiagMatrix(x), "diag(x)"),
    (DiagonalOf(A), "diag(A)"),
    (DiagonalMatrix(A), "diag(diag(A))"),
    (sympy.Trace(A) ** 2 - 3 / sympy.Trace(A), "tr(A)^2 - 3/tr(A)"),
    (sympy.exp(sympy.Trace(A)) / 2, "1/2*exp(tr(A))"),
    (sympy.Rational(1, 3) * sympy.Trace(A) + 0.25, "0.25 + 1/3*tr(A)"),
]


@pytest.mark.parametrize("expr, text", TRANSLATIONS, ids=[t for _, t in TRANSLATIONS])
def test_sympy_nodes_translate(expr, text):
    got, shapes = sympy_to_text(expr)
    assert got == text
    term = from_sympy(expr)
    # the translation has the meaning of the sympy expression itself
    env, dims = point(term, 4)
    if "A" in env:
        env["A"] = env["A"] @ env["A"].T + np.eye(env["A"].shape[0])
    np.testing.assert_allclose(evaluate(term, env, dims=dims), evaluate_sympy(expr, env, dims),
                               rtol=1e-9, atol=1e-12)


def test_shapes_and_symbolic_dimensions_come_from_the_matrix_symbols():
    text, shapes = sympy_to_text(sympy.Trace(X.T * A * X) + c * MatrixElement(y.T * X * x, 0, 0))
    assert shapes == {"X": ("m", "n"), "A": ("m", "m"), "c": (), "y": ("m", 1), "x": ("n", 1)}
    assert text == "c*(y'*X*x) + tr(X'*A*X)"
    t = from_sympy(w.T * S * w)
    assert t.shape == (1, 1)
    assert rw.parse("w'*S*w", {"w": ("n",), "S": ("n", "n")}).term == t


def sum_of_entries(M):
    return MatrixElement(sympy.OneMatrix(1, M.shape[0]) * M * sympy.OneMatrix(M.shape[1], 1), 0, 0)


@pytest.mark.parametrize("expr, wrt, spd", [
    (sympy.Trace(X.T * A * X), "X", ()),
    (sum_of_entries(HadamardProduct(X - B, X - B).applyfunc(sympy.exp)), "X", ()),
    (MatrixElement((X * w - y).T * (X * w - y), 0, 0), "w", ()),
    (sympy.log(sympy.Determinant(S)) + sympy.Trace(sympy.Inverse(S) * X.T * X) / 2, "S", ("S",)),
    (sympy.Trace(X.T * A * X) + c * sympy.Trace(X * S * X.T), "X", ()),
    (sum_of_entries(DiagMatrix(w.applyfunc(lambda t: 1 / (1 + sympy.exp(-t)))) * S), "w", ()),
])
def test_gradient_of_sympy_expression_matches_finite_differences(expr, wrt, spd):
    g = rw.gradient(expr, wrt=wrt)
    assert g.shape == rw.parse(wrt, dict(sympy_to_text(expr)[1])).shape
    for seed in (1, 2):
        check_numerically(g, np.random.default_rng(seed), spd=spd)


def test_gradient_to_sympy_is_a_matrix_expression_with_symbolic_dims():
    g = rw.gradient(sympy.Trace(X.T * A * X), wrt="X")
    gs = g.to_sympy()
    assert isinstance(gs, sympy.MatrixExpr)
    assert {str(d) for d in gs.shape} == {"m", "n"}
    assert gs.free_symbols >= {sympy.MatrixSymbol("A", *[sympy.Symbol("m", integer=True,
                                                                        positive=True)] * 2)}


def test_simplify_and_equivalent_accept_sympy():
    assert rw.equivalent(sympy.Trace(A * A.T), sympy.Trace(A.T * A))
    assert not rw.equivalent(sympy.Trace(A * A), sympy.Trace(A.T * A))
    r = rw.simplify(sympy.Trace(A.T) + sympy.Trace(A))
    assert str(r) == "2*tr(A)"


def test_shape_given_in_shapes_must_agree():
    Y = sympy.MatrixSymbol("Y", 3, 2)
    assert from_sympy(sympy.Trace(Y.T * Y), {"Y": (3, 2), "Z": (4, 4)}).shape == (1, 1)
    with pytest.raises(rw.ShapeError, match="3×2 in the sympy expression but 2×2"):
        from_sympy(sympy.Trace(Y.T * Y), {"Y": (2, 2)})


# ------------------------------------------------------------------- errors -----------
UNSUPPORTED = [
    (sympy.KroneckerProduct(A, A), "KroneckerProduct"),
    (sympy.Adjoint(X), "Adjoint"),
    (X[0:1, 0:1], "MatrixSlice"),
    (X[1, 2] + 0 * sympy.Trace(A), "MatrixElement"),
    (sympy.floor(sympy.Trace(A)), "floor"),
    (sympy.MatPow(A, sympy.Rational(1, 2)), "MatPow with exponent 1/2"),
    (sympy.Trace(sympy.MatrixSymbol("Z", 2 * n, 2 * n)), "dimension 2\\*n"),
    (sympy.Trace(sympy.MatrixSymbol("tr", 2, 2)), "'tr' has the name of a function"),
    (sympy.Trace(sympy.MatrixSymbol("Z'", 2, 2)), "not a valid variable name"),
    (sympy.Trace(sympy.ImmutableMatrix([[1, 2], [3, 4]])), "ImmutableDenseMatrix"),
    (sympy.Trace(A) * sympy.pi, "Pi"),
    (X.applyfunc(lambda t: sympy.floor(t)), "floor"),
    (X.applyfunc(lambda t: sympy.Integer(3)), "constant"),
]


@pytest.mark.parametrize("expr, what", UNSUPPORTED, ids=[w for _, w in UNSUPPORTED])
def test_unsupported_sympy_node_is_named(expr, what):
    with pytest.raises(rw.UnsupportedError, match=what):
        rw.gradient(expr, wrt="A")


def test_symbol_with_two_shapes_is_a_shape_error():
    expr = sympy.Trace(sympy.MatrixSymbol("Z", 2, 2)) + sympy.Trace(sympy.MatrixSymbol("Z", 3, 3))
    with pytest.raises(rw.ShapeError, match="two shapes"):
        from_sympy(expr)


def test_ill_typed_translation_reports_the_text():
    P, Q = sympy.MatrixSymbol("P", 2, 3), sympy.MatrixSymbol("Q", 2, 3)
    with pytest.raises(rw.ShapeError, match="in 'P\\*Q', the translation of the sympy input"):
        from_sympy(sympy.Basic.__new__(sympy.MatMul, P, Q))  # sympy itself would refuse it


def test_non_expression_input_is_typed_error():
    with pytest.raises(rw.UnsupportedError, match="cannot read list"):
        rw.gradient([1, 2], wrt="X")


def test_wrt_checked_for_sympy_input():
    with pytest.raises(rw.WrtError):
        rw.gradient(sympy.Trace(A), wrt="X")


def test_vec_has_no_sympy_counterpart():
    t = rw.parse("vec(X)'*vec(X)", {"X": (2, 3)})
    with pytest.raises(rw.UnsupportedError, match="vec"):
        t.to_sympy()
