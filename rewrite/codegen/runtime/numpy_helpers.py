"""Runtime helpers of NumPy modules: reading inputs and shaping gradients, and the numerics
NumPy has no single call for (a sigmoid that cannot overflow, ``log det`` through ``slogdet``,
``kront``, a symmetric ``A'·diag(w)·A``, scaling the smallest operand of a product).
:mod:`rewrite.codegen.module` copies the functions a module uses verbatim into it.

>>> _sigmoid(np.array([-1000.0, 0.0, 1000.0]))
array([0. , 0.5, 1. ])
>>> float(_logdet(300.0 * np.eye(200))) > 1000
True
"""

import numpy as np

# a generated module has these too (copied from runtime/common.py)
from .common import as2d as _as2d
from .common import check_dims as _check_dims


def _input(name, value, shape, dims):
    """``value`` as a float array of the declared shape (0-d when 1×1); binds dimension names."""
    a = np.asarray(value, dtype=float)
    got = _as2d(name, tuple(a.shape), shape)
    _check_dims(name, got, shape, dims)
    return a.reshape(()) if shape == (1, 1) else a.reshape(got)


def _like(g, value):
    """The gradient in the shape its variable was passed in (a float for a Python number)."""
    if isinstance(value, (int, float)):
        return float(g)
    return np.asarray(g, dtype=float).reshape(np.shape(value))


def _to_numpy(a):
    return np.asarray(a, dtype=float)


def _sigmoid(x):
    """1/(1 + exp(-x)) without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _step(x):
    """1 where x > 0, else 0 (so 0 at 0: the derivative of relu there)."""
    return np.heaviside(x, 0.0)


def _relu(x):
    """max(x, 0), elementwise."""
    return np.maximum(x, 0.0)


def _softmax(a):
    """Column-wise softmax, shifted by each column's maximum (no overflow)."""
    e = np.exp(a - np.max(a, axis=0, keepdims=True))
    return e / np.sum(e, axis=0, keepdims=True)


def _logsumexp(a):
    """Column-wise log(sum(exp(a))) as a 1×n row, shifted by each column's maximum."""
    m = np.max(a, axis=0, keepdims=True)
    return m + np.log(np.sum(np.exp(a - m), axis=0, keepdims=True))


def _logdet(a):
    """log det(a) from slogdet; NaN where det(a) <= 0 (outside the domain)."""
    sign, ld = np.linalg.slogdet(a)
    return ld if sign > 0 else np.nan


def _kront(a, b):
    """(A ⊗ B)·K with K the commutation matrix: ``_kront(A, B) @ vec(Z) = vec(B @ Z.T @ A.T)``."""
    n, q = a.shape[1], b.shape[1]
    c = np.arange(n * q)
    return np.kron(a, b)[:, (c // n) + q * (c % n)]


def _gram(a, w):
    """a.T @ diag(w) @ a for a column w; as y.T @ y with y = sqrt(w) * a when w >= 0, which
    NumPy computes with a symmetric rank-k update (half the multiply-adds)."""
    if np.all(w >= 0):
        y = np.sqrt(w) * a
        return y.T @ y
    return a.T @ (w * a)


def _scaled_matmul(c, a, b):
    """c * (a @ b), with the scalar c applied to the smallest of a, b and the product."""
    rows, cols = a.shape[0], b.shape[1]
    if np.size(a) <= min(np.size(b), rows * cols):
        return (c * a) @ b
    if np.size(b) < rows * cols:
        return a @ (c * b)
    out = a @ b
    out *= c
    return out


#: the name check.py imports it by (generated code calls it as above)
to_numpy = _to_numpy
