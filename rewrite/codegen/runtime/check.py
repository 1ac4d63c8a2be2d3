"""Runtime checks of generated modules against central finite differences, computed with NumPy
(NumPy and JAX gradient modules, and every Hessian, HVP and Jacobian module): ``check_gradient``,
``check_hessian``, ``check_hvp``, ``check_jacobian`` and the column differences they share.
:mod:`rewrite.codegen.module` copies them verbatim into generated code, with ``{wrt}`` in a
docstring replaced by the variable's name.
"""

import numpy as np

# a generated module has these too (copied from runtime/common.py and its backend's helpers)
from .common import as2d as _as2d
from .numpy_helpers import to_numpy as _to_numpy
from .stand_ins import (
    DIRECTION,
    FD_STEP,
    INPUTS,
    WRT,
    f_and_grad,
    gradient,
    hessian,
    hvp,
    jacobian,
    objective,
    value,
)


def check_gradient(**arrays):
    """Relative error of the gradient against central finite differences (step FD_STEP) in every
    entry of {wrt}: ``|g - fd| / max(1, |fd|)``."""
    _, g = f_and_grad(**arrays)
    x0 = _to_numpy(arrays[WRT])
    g = _to_numpy(g).reshape(x0.shape)
    fd = np.zeros_like(x0)
    for idx in np.ndindex(x0.shape):
        xp, xm = x0.copy(), x0.copy()
        xp[idx] += FD_STEP
        xm[idx] -= FD_STEP
        fp = float(objective(**{**arrays, WRT: xp}))
        fm = float(objective(**{**arrays, WRT: xm}))
        fd[idx] = (fp - fm) / (2 * FD_STEP)
    return float(np.linalg.norm(g - fd) / max(1.0, np.linalg.norm(fd)))


def _column_differences(fn, arrays, rows):
    """Central differences (step FD_STEP) of vec(fn(**arrays)) in each entry of vec(arrays[WRT]),
    as the columns of a (rows, entries) array."""
    x = _to_numpy(arrays[WRT])
    x = x.reshape(_as2d(WRT, tuple(x.shape), INPUTS[WRT]))
    fd = np.zeros((rows, x.size))
    for k in range(x.size):
        idx = np.unravel_index(k, x.shape, order="F")
        xp, xm = x.copy(), x.copy()
        xp[idx] += FD_STEP
        xm[idx] -= FD_STEP
        fp = _to_numpy(fn(**{**arrays, WRT: xp})).reshape(-1, order="F")
        fm = _to_numpy(fn(**{**arrays, WRT: xm})).reshape(-1, order="F")
        fd[:, k] = (fp - fm) / (2 * FD_STEP)
    return fd


def check_hessian(**arrays):
    """Relative error of the Hessian against central differences of the gradient (step FD_STEP),
    one column per entry of vec({wrt}): ``|H - fd| / max(1, |fd|)``."""
    h = _to_numpy(hessian(**arrays))
    fd = _column_differences(gradient, arrays, h.shape[0])
    return float(np.linalg.norm(h - fd) / max(1.0, np.linalg.norm(fd)))


def check_hvp(**arrays):
    """Relative error of H·V against the central difference of the gradient along V (step
    FD_STEP): ``|hv - fd| / max(1, |fd|)``."""
    hv = _to_numpy(hvp(**arrays))
    x = _to_numpy(arrays[WRT])
    v = _to_numpy(arrays[DIRECTION]).reshape(x.shape)
    gp = _to_numpy(gradient(**{**arrays, WRT: x + FD_STEP * v}))
    gm = _to_numpy(gradient(**{**arrays, WRT: x - FD_STEP * v}))
    fd = (gp - gm) / (2 * FD_STEP)
    return float(np.linalg.norm(hv.reshape(fd.shape) - fd) / max(1.0, np.linalg.norm(fd)))


def check_jacobian(**arrays):
    """Relative error of the Jacobian against central differences of F (step FD_STEP), one
    column per entry of vec({wrt}): ``|J - fd| / max(1, |fd|)``."""
    j = _to_numpy(jacobian(**arrays))
    fd = _column_differences(value, arrays, j.shape[0])
    return float(np.linalg.norm(j - fd) / max(1.0, np.linalg.norm(fd)))
