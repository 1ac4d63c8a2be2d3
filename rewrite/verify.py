"""Checking a result numerically: one finite-difference comparison with one tolerance, for a
gradient (:func:`rewrite.numeric.gradient_error`) and for a Jacobian, Hessian or HVP
(:func:`derivative_error`); :func:`check` raises when the result is wrong or cannot be checked.

>>> from rewrite.engine import Engine
>>> check(Engine().gradient("tr(X'*A*X)", "X", {"X": (3, 2), "A": (3, 3)})) < TOLERANCE
True
"""

from __future__ import annotations

import numpy as np

from .errors import TracegradError
from .expr import Gradient
from .numeric import evaluate, gradient_error, instantiate_dims, random_point, relative_error
from .second_order import Derivative
from .terms import make, var_shapes

#: the relative error (against central differences) above which a result is wrong
TOLERANCE = 1e-5


def _vec(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, 1, order="F")


def derivative_error(d: Derivative, rng: np.random.Generator | None = None, spd: set[str] = frozenset(),
                     positive: set[str] = frozenset(), dims: dict | None = None,
                     h: float = 1e-6) -> tuple[np.ndarray, np.ndarray, float]:
    """Compare a second-order result with central differences at a random point.

    A Jacobian is compared with differences of F, a Hessian with differences of the gradient G
    (itself derived and checked by the first-order engine), an HVP with the difference of G along
    a random direction.  Returns ``(value, finite differences, relative error)``.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    reg = d.registry
    both = make("add", make("tr", make("mul", make("vec", d.of), make("t", make("vec", d.of)))),
                make("sum", d.term))  # one term holding every variable and dimension
    dims = dims or instantiate_dims(both, rng)
    env = random_point(both, rng, dims, spd=set(spd), positive=set(positive))
    value = evaluate(d.term, env, reg, dims)
    target = d.of if d.kind == "jacobian" else d.gradient
    x0 = np.asarray(env[d.wrt], dtype=float)

    def at(x: np.ndarray) -> np.ndarray:
        return _vec(evaluate(target, {**env, d.wrt: x}, reg, dims))

    if d.kind == "hvp":
        v = env[d.direction]
        fd = (at(x0 + h * v) - at(x0 - h * v)) / (2 * h)
        value = _vec(value)
    else:
        cols = []
        for j in range(x0.size):
            e = np.zeros(x0.size)
            e[j] = h
            e = e.reshape(x0.shape, order="F")
            cols.append((at(x0 + e) - at(x0 - e)) / (2 * h))
        fd = np.hstack(cols)
    return value, fd, relative_error(value.reshape(fd.shape), fd)


def check(result: Gradient | Derivative, spd: set[str] = frozenset(),
          positive: set[str] = frozenset()) -> float:
    """Relative error of ``result`` against central differences at a random point; raises a
    TracegradError when it exceeds :data:`TOLERANCE` or the point is outside the domain."""
    value, fd, err = _compare(result, spd, positive)
    what = f"the {result.kind}" if isinstance(result, Derivative) else "the gradient"
    if not _finite(value, fd):
        raise TracegradError("--check: the expression is not finite at the random point drawn "
                             f"(domain restrictions?); {what} was not verified; "
                             + domain_hint(result, spd, positive))
    if err > TOLERANCE:
        raise TracegradError(f"--check FAILED: relative error {err:.2e} against finite differences")
    return err


def _compare(result: Gradient | Derivative, spd: set[str], positive: set[str]):
    if isinstance(result, Derivative):
        return derivative_error(result, spd=spd, positive=positive)
    return gradient_error(result, spd=spd, positive=positive)


def _finite(value: np.ndarray, fd: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(value)) and np.all(np.isfinite(fd)))


def domain_hint(result: Gradient | Derivative, spd: set[str] = frozenset(),
                positive: set[str] = frozenset()) -> str:
    """Which ``--spd NAME`` / ``--positive NAME`` options make the check's random point land in
    the expression's domain (one option if one suffices, else every variable positive), or that
    none does.

    >>> from rewrite.engine import Engine
    >>> domain_hint(Engine().gradient("sum(log(x))", "x", {"x": (3,)}))
    'try --positive x'
    >>> domain_hint(Engine().gradient("logdet(S)", "S", {"S": (3, 3)}))
    'try --spd S'
    """
    f = result.of if isinstance(result, Derivative) else result.f
    shapes = var_shapes(f)
    square = sorted(n for n, sh in shapes.items() if sh[0] == sh[1] and n not in spd)
    tries = [(f"--spd {n}", set(spd) | {n}, set(positive)) for n in square]
    tries += [(f"--positive {n}", set(spd), set(positive) | {n})
              for n in sorted(shapes) if n not in positive]
    if len(shapes) > 1:
        rest = sorted(set(shapes) - set(positive))
        tries.append((" ".join(f"--positive {n}" for n in rest), set(spd), set(positive) | set(rest)))
    for option, s, p in tries:
        try:
            value, fd, _ = _compare(result, s, p)
        except (ArithmeticError, ValueError, np.linalg.LinAlgError):
            continue
        if _finite(value, fd):
            return f"try {option}"
    return "no --spd NAME or --positive NAME option found a point in its domain"


__all__ = ["TOLERANCE", "check", "derivative_error", "domain_hint"]
