"""Runtime helpers of PyTorch modules: reading inputs as float64 tensors and shaping gradients,
``log det`` through ``slogdet``, ``kront``, scaling the smallest operand of a product, and the
gradient check (central differences in torch, so that it runs without NumPy).
:mod:`rewrite.codegen.module` copies the functions a module uses verbatim into it.
"""

try:
    import torch
except ImportError:  # pragma: no cover - the file still imports (pytest --doctest-modules)
    torch = None

# a generated module has these too (copied from runtime/common.py, or its own)
from .common import as2d as _as2d
from .common import check_dims as _check_dims
from .stand_ins import FD_STEP, WRT, f_and_grad, objective


def _input(name, value, shape, dims):
    """``value`` as a float64 tensor of the declared shape (0-d when 1×1); binds dimension names."""
    a = torch.as_tensor(value, dtype=torch.float64)
    got = _as2d(name, tuple(a.shape), shape)
    _check_dims(name, got, shape, dims)
    return a.reshape(()) if shape == (1, 1) else a.reshape(got)


def _like(g, value):
    """The gradient in the shape its variable was passed in."""
    return torch.as_tensor(g, dtype=torch.float64).reshape(torch.as_tensor(value).shape)


def _to_numpy(a):
    return torch.as_tensor(a, dtype=torch.float64).detach().cpu().numpy()


def _step(x):
    """1 where x > 0, else 0 (so 0 at 0: the derivative of relu there)."""
    return (torch.as_tensor(x) > 0).to(torch.float64)


def _logdet(a):
    """log det(a) from slogdet; NaN where det(a) <= 0 (outside the domain)."""
    sign, ld = torch.linalg.slogdet(a)
    return torch.where(sign > 0, ld, torch.full_like(ld, float("nan")))


def _kront(a, b):
    """(A ⊗ B)·K with K the commutation matrix: ``_kront(A, B) @ vec(Z) = vec(B @ Z.T @ A.T)``."""
    n, q = a.shape[1], b.shape[1]
    c = torch.arange(n * q)
    return torch.kron(a.contiguous(), b.contiguous())[:, (c // n) + q * (c % n)]


def _scaled_matmul(c, a, b):
    """c * (a @ b), with the scalar c applied to the smallest of a, b and the product."""
    rows, cols = a.shape[0], b.shape[1]
    if torch.numel(a) <= min(torch.numel(b), rows * cols):
        return (c * a) @ b
    if torch.numel(b) < rows * cols:
        return a @ (c * b)
    return c * (a @ b)


def check_gradient(**arrays):
    """Relative error of the gradient against central finite differences (step FD_STEP) in every
    entry of {wrt}: ``|g - fd| / max(1, |fd|)``."""
    _, g = f_and_grad(**arrays)
    x0 = torch.as_tensor(arrays[WRT], dtype=torch.float64)
    g = torch.as_tensor(g, dtype=torch.float64).reshape(x0.shape)
    flat = x0.reshape(-1)
    fd = torch.zeros_like(flat)
    for k in range(flat.numel()):
        xp, xm = flat.clone(), flat.clone()
        xp[k] += FD_STEP
        xm[k] -= FD_STEP
        fp = float(objective(**{**arrays, WRT: xp.reshape(x0.shape)}))
        fm = float(objective(**{**arrays, WRT: xm.reshape(x0.shape)}))
        fd[k] = (fp - fm) / (2 * FD_STEP)
    fd = fd.reshape(x0.shape)
    return float(torch.linalg.norm(g - fd) / max(1.0, float(torch.linalg.norm(fd))))
