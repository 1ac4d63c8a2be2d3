"""Evaluate terms with numpy, draw random instances, and check gradients by finite differences.

>>> import numpy as np
>>> from rewrite.stock import parse
>>> t = parse("tr(A*X)", {"A": (2, 3), "X": (3, 2)})
>>> float(evaluate(t, {"A": np.eye(2, 3), "X": np.ones((3, 2))})[0, 0])
2.0
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .algebra import make_pair
from .errors import ShapeError, TracegradError
from .stock import default_registry
from .terms import Term, dims_of, var_shapes


class _FnTable(dict):
    """Function name → its numpy callable, built on first lookup (building one needs sympy)."""

    def __init__(self, registry) -> None:
        super().__init__()
        self.registry = registry

    def __missing__(self, name: str):
        fn = self[name] = self.registry[name].numpy()
        return fn


def _fn_table(registry=None) -> _FnTable:
    return _FnTable(registry if registry is not None else default_registry())


def evaluate(t: Term, env: Mapping[str, np.ndarray], registry=None,
             dims: Mapping[str, int] | None = None,
             memo: dict[Term, np.ndarray] | None = None) -> np.ndarray:
    """Value of ``t`` (a 2-D array) with variables from ``env`` (2-D arrays). ``memo`` holds
    the values of subterms at the same point (shared by terms evaluated there; filled in)."""
    fns = _fn_table(registry)
    dims = dict(dims or {})
    for name, shape in var_shapes(t).items():
        if name in env:
            arr = np.asarray(env[name], dtype=float)
            arr = arr.reshape(_as2d(arr.shape, shape))
            for d, n in zip(shape, arr.shape, strict=True):
                if isinstance(d, str):
                    dims.setdefault(d, n)
    memo = {} if memo is None else memo

    def dim(d) -> int:
        if isinstance(d, int):
            return d
        if "*" in str(d):
            out = 1
            for p in str(d).split("*"):
                out *= dim(int(p) if p.isdigit() else p)
            return out
        if d not in dims:
            raise ShapeError(f"no value for dimension {d!r}")
        return dims[d]

    def go(n: Term) -> np.ndarray:
        if n in memo:
            return memo[n]
        op = n.op
        if op == "mul" and "diag" in (n.args[0].op, n.args[1].op):
            # diag(u)*B scales the rows of B, B*diag(u) its columns: diag(u) is never formed
            left, right = n.args
            if left.op == "diag":
                v = go(left.args[0]) * go(right)
            else:
                v = go(left) * go(right.args[0]).T
            memo[n] = v
            return v
        a = [go(x) for x in n.args]
        if op == "var":
            if n.attr not in env:
                raise TracegradError(f"no value for variable {n.attr!r}")
            v = np.asarray(env[n.attr], dtype=float)
            v = v.reshape(_as2d(v.shape, n.shape))
        elif op == "num":
            v = np.array([[float(n.attr)]])
        elif op == "add":
            v = a[0] + a[1]
        elif op == "mul":
            v = a[0] @ a[1]
        elif op == "scale":
            v = a[0][0, 0] * a[1]
        elif op == "had":
            v = a[0] * a[1]
        elif op == "hdiv":
            v = a[0] / a[1]
        elif op == "t":
            v = a[0].T
        elif op == "tr":
            v = np.array([[np.trace(a[0])]])
        elif op == "det":
            v = np.array([[np.linalg.det(a[0])]])
        elif op == "logdet":
            sign, ld = np.linalg.slogdet(a[0])
            v = np.array([[ld if sign > 0 else np.nan]])
        elif op == "inv":
            v = np.linalg.inv(a[0])
        elif op == "mpow":
            v = np.linalg.matrix_power(a[0], int(n.args[1].attr))
        elif op == "epow":
            v = np.power(a[0], a[1])
        elif op == "epows":
            v = np.power(a[0], a[1][0, 0])
        elif op == "fn":
            v = np.asarray(fns[n.attr](a[0]), dtype=float) * np.ones_like(a[0])
        elif op == "softmax":
            v = softmax(a[0])
        elif op == "logsumexp":
            v = logsumexp(a[0])
        elif op == "sum":
            v = np.array([[a[0].sum()]])
        elif op == "norm2":
            v = np.array([[np.linalg.norm(a[0])]])
        elif op == "fro2":
            v = np.array([[np.sum(a[0] * a[0])]])
        elif op == "eye":
            v = np.eye(dim(n.attr[0]))
        elif op == "ones":
            v = np.ones((dim(n.attr[0]), 1))
        elif op == "fill":
            v = np.ones((dim(n.attr[0]), dim(n.attr[1])))
        elif op == "diag":
            v = np.diag(a[0][:, 0])
        elif op == "diagv":
            v = np.diag(a[0]).reshape(-1, 1)
        elif op == "vec":
            v = a[0].reshape(-1, 1, order="F")
        elif op == "kron":
            v = np.kron(a[0], a[1])
        elif op == "kront":
            v = kron_commuted(a[0], a[1])
        else:
            raise TracegradError(f"cannot evaluate {op}")
        memo[n] = v
        return v

    with np.errstate(all="ignore"):
        return go(t)


def softmax(a: np.ndarray) -> np.ndarray:
    """Column-wise softmax, shifted by each column's maximum (no overflow).

    >>> softmax(np.array([[0.0, 1000.0], [0.0, 1000.0]])).tolist()
    [[0.5, 0.5], [0.5, 0.5]]
    """
    e = np.exp(a - np.max(a, axis=0, keepdims=True))
    return e / np.sum(e, axis=0, keepdims=True)


def logsumexp(a: np.ndarray) -> np.ndarray:
    """Column-wise log(sum(exp(·))), 1×n, shifted by each column's maximum (no overflow).

    >>> logsumexp(np.array([[1000.0], [1000.0]])).round(6).tolist()
    [[1000.693147]]
    """
    m = np.max(a, axis=0, keepdims=True)
    return m + np.log(np.sum(np.exp(a - m), axis=0, keepdims=True))


def kron_commuted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``kront(A, B)`` = (A ⊗ B)·K, with K the commutation matrix: ``kront(A, B) @ vec(Z)`` is
    ``vec(B @ Z.T @ A.T)`` for Z of shape (cols A) × (cols B).

    >>> A, B, Z = np.arange(6.).reshape(2, 3), np.arange(8.).reshape(4, 2), np.arange(6.).reshape(3, 2)
    >>> vec = lambda M: M.reshape(-1, 1, order="F")
    >>> bool(np.allclose(kron_commuted(A, B) @ vec(Z), vec(B @ Z.T @ A.T)))
    True
    """
    n, q = a.shape[1], b.shape[1]
    c = np.arange(n * q)
    return np.kron(a, b)[:, (c // n) + q * (c % n)]


def _as2d(shape: tuple, declared: tuple) -> tuple:
    if len(shape) == 2:
        return shape
    if len(shape) == 1:
        return (shape[0], 1) if declared[1] == 1 or declared[0] != 1 else (1, shape[0])
    if len(shape) == 0:
        return (1, 1)
    raise ShapeError(f"arrays must be at most 2-D, got shape {shape}")


def instantiate_dims(t: Term, rng: np.random.Generator, low: int = 2, high: int = 5,
                     fixed: Mapping[str, int] | None = None) -> dict[str, int]:
    """Random distinct sizes for the symbolic dimensions of ``t`` (non-square where possible)."""
    names = sorted({d for d in dims_of(t) if isinstance(d, str) and "*" not in d})
    out = dict(fixed or {})
    choices = list(range(low, high + 1))
    rng.shuffle(choices)
    for i, n in enumerate(n for n in names if n not in out):
        out[n] = choices[i % len(choices)]
    return out


def concrete(shape: tuple, dims: Mapping[str, int]) -> tuple[int, int]:
    def one(d):
        if isinstance(d, int):
            return d
        v = 1
        for p in str(d).split("*"):
            v *= int(p) if p.isdigit() else dims[p]
        return v

    return one(shape[0]), one(shape[1])


def constraints_from_assumptions(assume: list[str]) -> tuple[set[str], set[str], set[str]]:
    """The ``spd``, ``positive`` and ``signs`` name sets for :func:`random_point`, read from
    assumption phrases such as the public cases' ``"X invertible"``, ``"A positive definite"``,
    ``"s positive"``, ``"y entries in {-1,+1}"``.

    >>> spd, pos, signs = constraints_from_assumptions(["S positive definite", "a > 0",
    ...                                                 "y entries in {-1,+1}"])
    >>> sorted(spd), sorted(pos), sorted(signs)
    (['S'], ['S', 'a'], ['y'])
    """
    spd, pos, signs = set(), set(), set()
    for a in assume:
        name = a.split()[0]
        if any(w in a for w in ("definite", "invertible", "det(", "rank", "symmetric")):
            spd.add(name)
        if "positive" in a or "> 0" in a:
            pos.add(name)
        if "{-1,+1}" in a:
            signs.add(name)
    return spd, pos, signs


def random_point(t: Term, rng: np.random.Generator, dims: Mapping[str, int],
                 spd: set[str] = frozenset(), positive: set[str] = frozenset(),
                 signs: set[str] = frozenset(), symmetric: set[str] = frozenset()
                 ) -> dict[str, np.ndarray]:
    """Random values: ``spd`` names get symmetric positive definite matrices, ``symmetric``
    ones symmetric matrices, ``positive`` entrywise positive ones, ``signs`` entries ±1."""
    env = {}
    for name, shape in sorted(var_shapes(t).items()):
        r, c = concrete(shape, dims)
        if name in spd and r == c:
            m = rng.normal(size=(r, r))
            env[name] = m @ m.T / r + np.eye(r)
        elif name in symmetric and r == c:
            m = rng.normal(size=(r, r))
            env[name] = (m + m.T) / 2
        elif name in positive:
            env[name] = rng.uniform(0.5, 2.0, size=(r, c))
        elif name in signs:
            env[name] = rng.choice([-1.0, 1.0], size=(r, c))
        else:
            env[name] = rng.normal(size=(r, c))
    return env


def finite_difference(f: Term, wrt: str, env: Mapping[str, np.ndarray], registry=None,
                      dims: Mapping[str, int] | None = None, h: float = 1e-6) -> np.ndarray:
    """Central differences of scalar ``f`` in every entry of ``env[wrt]``."""
    x0 = np.asarray(env[wrt], dtype=float)
    grad = np.zeros_like(x0)
    e = dict(env)
    for idx in np.ndindex(x0.shape):
        xp, xm = x0.copy(), x0.copy()
        xp[idx] += h
        xm[idx] -= h
        e[wrt] = xp
        fp = evaluate(f, e, registry, dims)[0, 0]
        e[wrt] = xm
        fm = evaluate(f, e, registry, dims)[0, 0]
        grad[idx] = (fp - fm) / (2 * h)
    return grad


#: central-difference steps tried by :func:`gradient_error`, in order
FD_STEPS = (1e-6, 1e-4, 1e-5, 1e-3)


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a - b) / max(1.0, np.linalg.norm(b)))


def gradient_error(g, rng: np.random.Generator | None = None, spd: set[str] = frozenset(),
                   positive: set[str] = frozenset(), signs: set[str] = frozenset(),
                   dims: Mapping[str, int] | None = None,
                   steps: tuple[float, ...] = FD_STEPS) -> tuple[np.ndarray, np.ndarray, float]:
    """Compare a :class:`~rewrite.expr.Gradient` with central differences at a random point.

    Returns ``(gradient, finite differences, relative error)``; symbolic dimensions get random
    sizes unless ``dims`` fixes them. Central differences lose digits to truncation when the
    step is large and to cancellation when it is small, and which wins depends on the function;
    each step of ``steps`` is tried until one agrees to 1e-7, and the smallest error is
    returned (a wrong gradient disagrees at every step).

    Variables of ``g.structure`` are drawn symmetric ("symmetric") or SPD ("spd"); for a
    symmetric ``wrt`` the differences are symmetrised, (D + D')/2, the gradient among symmetric
    matrices.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    dims = dims or instantiate_dims(g.f, rng)
    structure = getattr(g, "structure", None) or {}
    spd = set(spd) | {n for n, k in structure.items() if k == "spd"}
    env = random_point(g.f, rng, dims, spd=spd, positive=set(positive), signs=set(signs),
                       symmetric={n for n, k in structure.items() if k == "symmetric"})
    grad = evaluate(g.term, env, g.registry, dims)
    best = None
    for h in steps:
        fd = finite_difference(g.f, g.wrt, env, g.registry, dims, h=h)
        if g.wrt in structure:
            fd = (fd + fd.T) / 2
        err = relative_error(grad.reshape(fd.shape), fd)
        if best is None or err < best[2] or not np.isfinite(best[2]):
            best = (grad, fd, err)
        if err < 1e-7:
            break
    return best


def agree_numerically(a: Term, b: Term, registry=None, tries: int = 3,
                      spd: frozenset[str] = frozenset()) -> bool:
    """Whether ``a`` and ``b`` (same shape) have the same value at a random point (symbolic
    dimensions given small random sizes; the variables ``spd`` drawn symmetric positive
    definite); True when no point in both domains is found.

    >>> from rewrite.stock import parse
    >>> sh = {"X": (3, 2), "A": (3, 3)}
    >>> agree_numerically(parse("(A + A')*X", sh), parse("A*X + A'*X", sh))
    True
    >>> agree_numerically(parse("(A + A')*X", sh), parse("2*A*X", sh))
    False
    """
    if a.shape != b.shape:  # shapes first: NumPy would broadcast a 1×1 against anything
        return False
    for va, vb in values_at_random_points(a, b, registry, tries, spd):
        if va.shape != vb.shape:
            return False
        scale = max(1.0, float(np.max(np.abs(va))), float(np.max(np.abs(vb))))
        return bool(np.allclose(va, vb, rtol=1e-6, atol=1e-9 * scale))
    return True


def values_at_random_points(a: Term, b: Term, registry=None, tries: int = 3,
                            spd: frozenset[str] = frozenset()):
    """The values of ``a`` and ``b`` (same shape) at up to ``tries`` random points (symbolic
    dimensions given small random sizes, seed 0; the variables ``spd`` symmetric positive
    definite), skipping points outside either's domain."""
    both = make_pair(a, b)
    rng = np.random.default_rng(0)
    for _ in range(tries):
        dims = instantiate_dims(both, rng)
        env = random_point(both, rng, dims, spd=set(spd))
        try:
            memo: dict[Term, np.ndarray] = {}  # subterms common to a and b: evaluated once
            with np.errstate(all="ignore"):
                va = evaluate(a, env, registry, dims, memo)
                vb = evaluate(b, env, registry, dims, memo)
        except np.linalg.LinAlgError:  # a singular matrix at this point: outside the domain
            continue
        if np.all(np.isfinite(va)) and np.all(np.isfinite(vb)):
            yield va, vb
