"""Stand-ins for the names every generated module defines itself — its constants (``INPUTS``,
``WRT``, ``DIRECTION``, ``FD_STEP``) and its functions (``objective``, ``gradient``,
``f_and_grad``, ``hessian``, ``hvp``, ``jacobian``, ``value``) — which the runtime helpers
use: they let each runtime file import and lint on its own. Nothing here is copied into
generated code.

>>> objective(X=1.0)
Traceback (most recent call last):
    ...
NotImplementedError: defined by the generated module
"""

from __future__ import annotations

#: the declared shape of every input array, by name
INPUTS: dict[str, tuple] = {}
#: the variable differentiated with respect to, and the direction array of an HVP
WRT = ""
DIRECTION: str | None = None
#: the step of the finite-difference checks
FD_STEP = 1e-6


def objective(**arrays):
    """A generated function (so are all the functions below)."""
    raise NotImplementedError("defined by the generated module")


gradient = f_and_grad = hessian = hvp = jacobian = value = objective
