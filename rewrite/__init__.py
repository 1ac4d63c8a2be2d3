"""tracegrad: gradients of matrix expressions by equality saturation (import as ``rewrite``).

>>> import rewrite as rw
>>> str(rw.gradient("a'*X*b", wrt="X", shapes={"a": (3,), "X": (3, 5), "b": (5,)}))
"a*b'"
"""

from __future__ import annotations

from pathlib import Path

from .check_rules import CheckReport, check_rules
from .engine import Engine, Equivalence, default_engine
from .errors import (
    CanonicalFormError,
    LimitError,
    ParseError,
    RuleFileError,
    ShapeError,
    TracegradError,
    UnsupportedError,
    WrtError,
)
from .expr import Expr, Gradient
from .report import Limits, Report
from .version import VERSION

__version__ = VERSION


def _engine(rules) -> Engine:
    return Engine(rules) if rules else default_engine()


def gradient(expr, wrt: str, shapes: dict | None = None, rules: list[str | Path] | None = None,
             limits: Limits | None = None, keep_egraph: bool = False,
             steps: bool = False, structure: dict | None = None) -> Gradient:
    """∂f/∂wrt as an expression (same shape as ``wrt``); ``keep_egraph=True`` keeps the
    derivation's e-graph on the result for ``viz``; ``steps=True`` records the derivation
    step by step with the rules behind each step (``.steps``); ``structure={"S": "symmetric"}``
    (or ``"spd"``) declares S symmetric: its gradient is sym(G) = (G + G')/2."""
    return _engine(rules).gradient(expr, wrt, shapes, limits, keep_egraph=keep_egraph,
                                   steps=steps, structure=structure)


def differential(expr, wrt: str, shapes: dict | None = None,
                 rules: list[str | Path] | None = None, limits: Limits | None = None) -> Expr:
    """df in the canonical form ``tr(G'*dX)``."""
    return _engine(rules).differential(expr, wrt, shapes, limits)


def simplify(expr, shapes: dict | None = None, rules: list[str | Path] | None = None) -> Expr:
    """A simpler equal expression."""
    return _engine(rules).simplify(expr, shapes)


def equivalent(a, b, shapes: dict | None = None,
               rules: list[str | Path] | None = None) -> Equivalence:
    """Whether two expressions are equal: an :class:`Equivalence` — proved by the rules,
    refuted numerically, or unknown; truthy only when proved."""
    return _engine(rules).equivalent(a, b, shapes)


def jacobian(expr, wrt: str, shapes: dict | None = None, rules: list[str | Path] | None = None,
             limits: Limits | None = None) -> Expr:
    """∂vec(F)/∂vec(wrt): m×n for a vector F and vector ``wrt``, vec layout (``kron``) otherwise."""
    return _engine(rules).jacobian(expr, wrt, shapes, limits)


def hessian(expr, wrt: str, shapes: dict | None = None, rules: list[str | Path] | None = None,
            limits: Limits | None = None) -> Expr:
    """∂²f/∂vec(wrt)∂vec(wrt) of a 1×1 expression (n×n for a vector ``wrt``)."""
    return _engine(rules).hessian(expr, wrt, shapes, limits)


def hvp(expr, wrt: str, shapes: dict | None = None, rules: list[str | Path] | None = None,
        limits: Limits | None = None, direction: str | None = None) -> Expr:
    """The Hessian applied to a direction (``V`` unless taken): an expression in ``.direction``."""
    return _engine(rules).hvp(expr, wrt, shapes, limits, direction)


def __getattr__(name: str):
    """``rewrite.codegen``, a callable module (``rewrite.codegen(gradient, backend)`` → source),
    imported on first use: a process that only differentiates does not pay for it."""
    if name == "codegen":
        import importlib

        return importlib.import_module(f"{__name__}.codegen")  # which sets the attribute
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse(text: str, shapes: dict | None = None) -> Expr:
    """Parse and type-check text into an :class:`Expr`."""
    return Expr(default_engine().term(text, shapes))


__all__ = [
    "CheckReport", "check_rules",
    "Engine", "Equivalence", "Expr", "Gradient", "Limits", "Report", "gradient", "differential", "simplify",
    "jacobian", "hessian", "hvp",
    "equivalent", "parse", "codegen", "TracegradError", "ParseError", "ShapeError", "UnsupportedError",
    "WrtError", "RuleFileError", "LimitError", "CanonicalFormError", "__version__",
]
