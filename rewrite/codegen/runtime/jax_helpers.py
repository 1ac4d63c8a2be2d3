"""Runtime helpers of JAX modules: reading inputs as float64 arrays and shaping gradients,
``log det`` through ``slogdet`` and ``kront``. :mod:`rewrite.codegen.module` copies the
functions a module uses verbatim into it (a generated JAX module enables float64 itself).
"""

try:
    import jax.numpy as jnp
except ImportError:  # pragma: no cover - the file still imports (pytest --doctest-modules)
    jnp = None
import numpy as np

# a generated module has these too (copied from runtime/common.py)
from .common import as2d as _as2d
from .common import check_dims as _check_dims


def _input(name, value, shape, dims):
    """``value`` as a float64 array of the declared shape (0-d when 1×1); binds dimension names."""
    a = jnp.asarray(value, dtype=jnp.float64)
    got = _as2d(name, tuple(a.shape), shape)
    _check_dims(name, got, shape, dims)
    return a.reshape(()) if shape == (1, 1) else a.reshape(got)


def _like(g, value):
    """The gradient in the shape its variable was passed in."""
    return jnp.asarray(g, dtype=jnp.float64).reshape(jnp.shape(value))


def _to_numpy(a):
    return np.asarray(a, dtype=float)


def _step(x):
    """1 where x > 0, else 0 (so 0 at 0: the derivative of relu there)."""
    return jnp.where(x > 0, 1.0, 0.0)


def _logdet(a):
    """log det(a) from slogdet; NaN where det(a) <= 0 (outside the domain)."""
    sign, ld = jnp.linalg.slogdet(a)
    return jnp.where(sign > 0, ld, jnp.nan)


def _kront(a, b):
    """(A ⊗ B)·K with K the commutation matrix: ``_kront(A, B) @ vec(Z) = vec(B @ Z.T @ A.T)``."""
    n, q = a.shape[1], b.shape[1]
    c = jnp.arange(n * q)
    return jnp.kron(a, b)[:, (c // n) + q * (c % n)]
