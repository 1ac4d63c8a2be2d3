"""Result objects: an expression with its printers, and a gradient with f, df and G."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .numeric import evaluate
from .printing import gradient_latex, to_latex, to_text
from .report import Report
from .temporaries import MIN_CHARS, Where, name_temporaries
from .terms import Term, free_vars, make, var


@dataclass(eq=False)
class Expr:
    """A typed expression. ``str()`` is valid input in the expression language."""

    term: Term
    report: Report | None = None
    registry: object = field(default=None, repr=False)
    session: object = field(default=None, repr=False)

    def __str__(self) -> str:
        return to_text(self.term)

    def __repr__(self) -> str:
        return f"Expr({str(self)!r})"

    def _short_repr(self, kind: str, *extra: str) -> str:
        """``Kind('text', extra..., stop=goal, 12.3 ms)``: the run report stays in ``.report``."""
        parts = [repr(str(self)), *extra]
        if self.report is not None:
            parts += [f"stop={self.report.stop_reason}", f"{self.report.seconds * 1000:.1f} ms"]
        return f"{kind}({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Expr):
            return self.term == other.term
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.term)

    @property
    def shape(self) -> tuple:
        return self.term.shape

    @property
    def variables(self) -> list[str]:
        return sorted(free_vars(self.term))

    def latex(self) -> str:
        return to_latex(self.term)

    def _repr_latex_(self) -> str:
        return f"${self.latex()}$"

    def where(self, min_chars: int = MIN_CHARS, long_chars: int | None = None) -> Where:
        """The expression with its repeated subexpressions named: a :class:`Where` with the
        ``body``, the ``definitions`` (``t0`` 1×1, ``T1`` otherwise, in dependency order),
        ``.text`` (``body`` then ``where T0 = ...`` lines, valid input) and ``.latex()``; see
        :mod:`rewrite.temporaries`."""
        return name_temporaries(self.term, min_chars, long_chars)

    def to_sympy(self):
        """A sympy ``MatrixExpr`` (a sympy scalar when 1×1); see :mod:`rewrite.sympy_interop`."""
        from .sympy_interop import to_sympy  # sympy takes ~0.35 s to import

        return to_sympy(self.term, self.registry)

    def numpy(self):
        """A callable ``f(**arrays)`` evaluating the expression with numpy.

        Vectors may be passed as 1-D arrays; the result has the expression's shape, with a
        vector returned 1-D when every vector argument was 1-D, and a 1×1 result as a float.
        """
        term, reg = self.term, self.registry

        def fn(**arrays):
            missing = sorted(set(free_vars(term)) - set(arrays))
            if missing:
                raise TypeError(f"missing array(s) for {', '.join(missing)}")
            out = evaluate(term, arrays, reg)
            if out.shape == (1, 1):
                return float(out[0, 0])
            if out.shape[1] == 1 and term.shape[1] == 1 and any(
                    np.ndim(a) == 1 for a in arrays.values()):
                return out[:, 0]
            return out

        return fn


@dataclass(eq=False)
class Gradient(Expr):
    """∂f/∂X = G, with the objective ``f`` and the canonical differential df = tr(G'*dX)."""

    f: Term | None = None
    wrt: str = ""
    steps: list | None = field(default=None, repr=False)  # rewrite.steps.Step, when recorded
    #: variables declared "symmetric" or "spd" (then a symmetric wrt has the gradient sym(G))
    structure: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        """Short: the gradient, the variable, why the run stopped and how long it took.

        >>> from rewrite.engine import Engine
        >>> Engine().gradient("tr(A*X)", "X", {"A": (2, 3), "X": (3, 2)})
        Gradient("A'", wrt=X, stop=goal, ... ms)
        """
        return self._short_repr("Gradient", f"wrt={self.wrt}")

    @property
    def objective(self) -> Expr:
        return Expr(self.f, registry=self.registry)

    @property
    def differential(self) -> Expr:
        x = var("d" + self.wrt, self.term.shape)
        gt = self.term.args[0] if self.term.op == "t" else make("t", self.term)  # G'' is G
        return Expr(make("tr", make("mul", gt, x)), self.report, self.registry)

    def code(self, backend: str = "numpy") -> str:
        """Source of a standalone module with ``f_and_grad(**arrays)`` for ``numpy``, ``jax`` or
        ``torch`` (see :mod:`rewrite.codegen`)."""
        from .codegen import codegen  # the code generators load on first use

        return codegen(self, backend)

    def _repr_latex_(self) -> str:
        """Jupyter: f, df = tr(G'*dX) and G in an aligned block."""
        return f"$${gradient_latex(self.f, self.term, self.wrt)}$$"
