"""Every ML construct of the language in the three code-generation backends (NumPy, JAX,
PyTorch): the generated module's objective against an independent NumPy evaluation of the
expression, its gradient against central differences of that evaluation, on non-square shapes
(square only where a construct needs it) in float64, and, where the function is twice
differentiable, the generated Hessian against central differences of the gradient.

Each case derives its gradient (and Hessian) once and loads each backend's module once."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pytest
from conftest import derivative_differences

import rewrite as rw
from rewrite.codegen import BACKENDS, codegen, load
from rewrite.numeric import evaluate, instantiate_dims, random_point, relative_error

#: sizes of the symbolic dimensions: pairwise different, so that no matrix is square by accident
DIMS = {"m": 3, "n": 5, "k": 4}


def backend_or_skip(backend: str) -> None:
    """Skip (with the reason printed) when the backend's library is not installed."""
    module = {"jax": "jax", "torch": "torch"}.get(backend)
    if module is None:
        return
    try:
        __import__(module)
    except ImportError:
        reason = f"{module} is not installed: the {backend} backend is not tested"
        print(reason)
        pytest.skip(reason)


def _softmax(a):
    e = np.exp(a - a.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def _logsumexp(a):
    mx = a.max(axis=0, keepdims=True)
    return mx + np.log(np.exp(a - mx).sum(axis=0, keepdims=True))


@dataclass(frozen=True)
class Case:
    construct: str
    expr: str
    wrt: str
    shapes: dict = field(hash=False)
    ref: object = field(hash=False)  # the objective in NumPy, from the 2-D arrays
    hessian: bool = False  # twice differentiable: the Hessian is checked too
    spd: tuple = ()  # drawn symmetric positive definite (for solves), not declared
    structure: dict | None = field(default=None, hash=False)

    @property
    def id(self) -> str:
        return f"{self.construct}: {self.expr} / {self.wrt}"


MN = {"X": ("m", "n"), "C": ("m", "n")}
CASES = [
    Case("relu", "sum(C .* relu(X))", "X", MN, lambda C, X: np.sum(C * np.maximum(X, 0))),
    Case("relu", "sum(relu(W*x + b))", "W", {"W": ("m", "n"), "x": ("n",), "b": ("m",)},
         lambda W, x, b: np.sum(np.maximum(W @ x + b, 0))),
    Case("step", "sum(C .* step(X) .* exp(X))", "X", MN,
         lambda C, X: np.sum(C * (X > 0) * np.exp(X))),
    Case("max(A, B)", "sum(C .* max(X, B))", "X", {**MN, "B": ("m", "n")},
         lambda C, X, B: np.sum(C * np.maximum(X, B))),
    Case("max(A, B)", "sum(C .* max(X, B))", "B", {**MN, "B": ("m", "n")},
         lambda C, X, B: np.sum(C * np.maximum(X, B))),
    Case("min(A, B)", "sum(C .* min(X, B))", "X", {**MN, "B": ("m", "n")},
         lambda C, X, B: np.sum(C * np.minimum(X, B))),
    Case("min(A, B)", "sum(C .* min(X, B))", "B", {**MN, "B": ("m", "n")},
         lambda C, X, B: np.sum(C * np.minimum(X, B))),
    Case("max(X, scalar)", "sum(C .* max(X, s))", "X", {**MN, "s": ()},
         lambda C, X, s: np.sum(C * np.maximum(X, s))),
    Case("max(X, scalar)", "sum(C .* max(X, s))", "s", {**MN, "s": ()},
         lambda C, X, s: np.sum(C * np.maximum(X, s))),
    Case("max(X, row)", "sum(C .* max(X, r))", "r", {**MN, "r": (1, "n")},
         lambda C, X, r: np.sum(C * np.maximum(X, r))),
    Case("norm1", "norm1(A*w - y)", "w", {"A": ("m", "n"), "w": ("n",), "y": ("m",)},
         lambda A, w, y: np.abs(A @ w - y).sum()),
    Case("norm1", "norm1(C .* X)", "X", MN, lambda C, X: np.abs(C * X).sum()),
    Case("mean(X)", "mean(exp(X) .* C)", "X", MN, lambda C, X: np.mean(np.exp(X) * C), True),
    Case("sum(X, 1)", "sum(r .* exp(sum(X, 1)))", "X", {"X": ("m", "n"), "r": (1, "n")},
         lambda X, r: np.sum(r * np.exp(X.sum(axis=0, keepdims=True))), True),
    Case("sum(X, 2)", "sum(c .* exp(sum(X, 2)))", "X", {"X": ("m", "n"), "c": ("m",)},
         lambda X, c: np.sum(c * np.exp(X.sum(axis=1, keepdims=True))), True),
    Case("mean(X, 1)", "sum(r .* exp(mean(X, 1)))", "X", {"X": ("m", "n"), "r": (1, "n")},
         lambda X, r: np.sum(r * np.exp(X.mean(axis=0, keepdims=True))), True),
    Case("mean(X, 2)", "sum(c .* exp(mean(X, 2)))", "X", {"X": ("m", "n"), "c": ("m",)},
         lambda X, c: np.sum(c * np.exp(X.mean(axis=1, keepdims=True))), True),
    Case("mean(X, 2)", "fro2(X - mean(X, 2))", "X", {"X": ("m", "n")},
         lambda X: np.sum((X - X.mean(axis=1, keepdims=True)) ** 2), True),
    Case("softmax", "sum(C .* softmax(X))", "X", MN, lambda C, X: np.sum(C * _softmax(X)), True),
    Case("softmax", "-sum(Y .* log(softmax(W*X + b)))", "W",
         {"W": ("k", "m"), "X": ("m", "n"), "Y": ("k", "n"), "b": ("k",)},
         lambda W, X, Y, b: -np.sum(Y * np.log(_softmax(W @ X + b))), True),
    Case("logsumexp", "logsumexp(W*X)*v", "W", {"W": ("m", "k"), "X": ("k", "n"), "v": ("n",)},
         lambda W, X, v: (_logsumexp(W @ X) @ v)[0, 0], True),
    Case("logsumexp", "logsumexp(W*x)", "x", {"W": ("m", "n"), "x": ("n",)},
         lambda W, x: _logsumexp(W @ x)[0, 0], True),
    Case("A \\ B", "fro2(A \\ B - C)", "A", {"A": ("m", "m"), "B": ("m", "n"), "C": ("m", "n")},
         lambda A, B, C: np.sum((np.linalg.solve(A, B) - C) ** 2), True, ("A",)),
    Case("A \\ B", "fro2(A \\ B - C)", "B", {"A": ("m", "m"), "B": ("m", "n"), "C": ("m", "n")},
         lambda A, B, C: np.sum((np.linalg.solve(A, B) - C) ** 2), True, ("A",)),
    Case("B / A", "fro2(B / A - C)", "A", {"A": ("n", "n"), "B": ("m", "n"), "C": ("m", "n")},
         lambda A, B, C: np.sum((np.linalg.solve(A.T, B.T).T - C) ** 2), True, ("A",)),
    Case("B / A", "fro2(B / A - C)", "B", {"A": ("n", "n"), "B": ("m", "n"), "C": ("m", "n")},
         lambda A, B, C: np.sum((np.linalg.solve(A.T, B.T).T - C) ** 2), True, ("A",)),
    Case("expansion: row", "sum(exp(X + r))", "r", {"X": ("m", "n"), "r": (1, "n")},
         lambda X, r: np.sum(np.exp(X + r)), True),
    Case("expansion: row", "sum(exp(X + r))", "X", {"X": ("m", "n"), "r": (1, "n")},
         lambda X, r: np.sum(np.exp(X + r)), True),
    Case("expansion: column", "sum(C .* exp(X .* c))", "c", {**MN, "c": ("m",)},
         lambda C, X, c: np.sum(C * np.exp(X * c)), True),
    Case("expansion: scalar", "sum(exp(X - s))", "s", {"X": ("m", "n"), "s": ()},
         lambda X, s: np.sum(np.exp(X - s)), True),
    Case("expansion: column with row", "sum(C .* sin(c - r))", "r",
         {"C": ("m", "n"), "c": ("m",), "r": (1, "n")},
         lambda C, c, r: np.sum(C * np.sin(c - r)), True),
    Case("expansion: column with row", "sum(C .* sin(c - r))", "c",
         {"C": ("m", "n"), "c": ("m",), "r": (1, "n")},
         lambda C, c, r: np.sum(C * np.sin(c - r)), True),
    Case("trace/transpose", "trace(transpose(X)*A*X)", "X", {"X": ("k", "n"), "A": ("k", "k")},
         lambda X, A: np.trace(X.T @ A @ X), True),
    Case("trace/transpose", "sum(transpose(X) .* B)", "X", {"X": ("m", "n"), "B": ("n", "m")},
         lambda X, B: np.sum(X.T * B)),
    Case("relu network", "norm2sq(W2*relu(W1*x + b1) + b2 - y)", "W1",
         {"W1": ("m", "n"), "x": ("n",), "b1": ("m",), "W2": ("k", "m"), "b2": ("k",), "y": ("k",)},
         lambda W1, x, b1, W2, b2, y: np.sum((W2 @ np.maximum(W1 @ x + b1, 0) + b2 - y) ** 2)),
    Case("norm1", "norm2sq(X*w - y) + lam*norm1(w)", "w",
         {"X": ("m", "n"), "w": ("n",), "y": ("m",), "lam": ()},
         lambda X, w, y, lam: np.sum((X @ w - y) ** 2) + lam[0, 0] * np.abs(w).sum()),
    Case("spd", "logdet(S) - x'*S*x", "S", {"S": ("k", "k"), "x": ("k",)},
         lambda S, x: np.linalg.slogdet(S)[1] - (x.T @ S @ x)[0, 0], structure={"S": "spd"}),
    Case("spd", "0.5*y'*inv(K)*y + 0.5*logdet(K)", "K", {"K": ("k", "k"), "y": ("k",)},
         lambda K, y: 0.5 * (y.T @ np.linalg.solve(K, y))[0, 0] + 0.5 * np.linalg.slogdet(K)[1],
         structure={"K": "spd"}),
    Case("symmetric", "tr(S*A*S)", "S", {"S": ("k", "k"), "A": ("k", "k")},
         lambda S, A: np.trace(S @ A @ S), structure={"S": "symmetric"}),
]
IDS = [c.id for c in CASES]
HESSIAN_CASES = [c for c in CASES if c.hessian]


@cache
def gradient_of(case: Case):
    return rw.gradient(case.expr, case.wrt, case.shapes, structure=case.structure)


@cache
def gradient_module(case: Case, backend: str):
    return load(codegen(gradient_of(case), backend), f"ml_{backend}_{zlib.crc32(case.id.encode())}")


@cache
def hessian_of(case: Case):
    return rw.hessian(case.expr, case.wrt, case.shapes)


@cache
def hessian_module(case: Case, backend: str):
    return load(hessian_of(case).code(backend), f"mlh_{backend}_{zlib.crc32(case.id.encode())}")


def point(case: Case, t):
    """Sizes and a random point (2-D arrays) for the variables of term ``t``; the seed is the
    case's own, so every backend sees the same point."""
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    dims = instantiate_dims(t, rng, fixed=DIMS)
    structure = case.structure or {}
    env = random_point(t, rng, dims, spd=set(case.spd) | {n for n, k in structure.items() if k == "spd"},
                       symmetric={n for n, k in structure.items() if k == "symmetric"})
    return dims, env


def to_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=float)


def reference_differences(case: Case, env: dict, h: float = 1e-6) -> np.ndarray:
    """Central differences of the NumPy reference in every entry of the variable (symmetrised
    for a variable declared symmetric: the gradient among symmetric matrices)."""
    x0 = env[case.wrt]
    out = np.zeros_like(x0)
    for idx in np.ndindex(x0.shape):
        step = np.zeros_like(x0)
        step[idx] = h
        out[idx] = (case.ref(**{**env, case.wrt: x0 + step})
                    - case.ref(**{**env, case.wrt: x0 - step})) / (2 * h)
    return (out + out.T) / 2 if case.structure and case.wrt in case.structure else out


def test_every_construct_is_covered():
    constructs = {c.construct for c in CASES}
    for name in ("relu", "step", "max(A, B)", "min(A, B)", "max(X, scalar)", "norm1", "mean(X)",
                 "sum(X, 1)", "sum(X, 2)", "mean(X, 1)", "mean(X, 2)", "softmax", "logsumexp",
                 "A \\ B", "B / A", "expansion: row", "expansion: column", "expansion: scalar",
                 "expansion: column with row", "trace/transpose", "spd", "symmetric"):
        assert name in constructs, name
    for case in CASES:  # the shapes really are non-square where the construct allows it
        square = {n for n, s in case.shapes.items() if len(s) == 2 and s[0] == s[1]}
        assert square <= {"A", "S", "K"}, case.id


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_value_and_gradient(case, backend):
    backend_or_skip(backend)
    g = gradient_of(case)
    mod = gradient_module(case, backend)
    dims, env = point(case, g.f)
    want = case.ref(**env)
    f, grad = mod.f_and_grad(**env)
    grad = to_numpy(grad)
    assert grad.dtype == np.float64 and grad.shape == env[case.wrt].shape
    np.testing.assert_allclose(float(f), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(float(mod.objective(**env)), want, rtol=1e-10, atol=1e-12)
    fd = reference_differences(case, env)
    assert relative_error(grad, fd) < 1e-6, (str(g), relative_error(grad, fd))
    np.testing.assert_allclose(grad, evaluate(g.term, env, g.registry, dims), rtol=1e-8, atol=1e-10)
    if case.structure and case.wrt in case.structure:
        np.testing.assert_allclose(grad, grad.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", HESSIAN_CASES, ids=[c.id for c in HESSIAN_CASES])
def test_hessian(case, backend):
    backend_or_skip(backend)
    d = hessian_of(case)
    mod = hessian_module(case, backend)
    dims, env = point(case, d.of)
    n = env[case.wrt].size
    got = to_numpy(mod.hessian(**env))
    assert got.shape == (n, n)
    fd = derivative_differences(d, env, dims)
    assert relative_error(got, fd) < 1e-5, (str(d), relative_error(got, fd))
    np.testing.assert_allclose(got, evaluate(d.term, env, d.registry, dims), rtol=1e-8, atol=1e-10)
    f, grad, hess = mod.f_grad_hess(**env)
    np.testing.assert_allclose(float(f), case.ref(**env), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_numpy(hess), got, rtol=1e-12, atol=1e-12)
    assert relative_error(to_numpy(grad), reference_differences(case, env)) < 1e-6
