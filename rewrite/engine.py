"""The engine: the public face of the package. An :class:`Engine` holds a rule set (the stock
rules plus user files) and its :class:`~rewrite.pipeline.Pipeline`; it takes text (or sympy, or
terms), checks the request (the variable, a 1×1 objective, the input's size) and returns result
objects: a :class:`~rewrite.expr.Gradient`, a :class:`~rewrite.second_order.Derivative`, an
:class:`~rewrite.expr.Expr`, or the answer of an equivalence (an :class:`Equivalence`).

>>> eng = Engine()
>>> str(eng.gradient("tr(X'*A*X)", "X", {"X": ("n", "k"), "A": ("n", "n")}))
"(A + A')*X"
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from . import second_order
from .algebra import make_pair
from .egraph import Program
from .errors import LimitError, ShapeError, TracegradError, UnsupportedError, WrtError
from .expr import Expr, Gradient
from .numeric import values_at_random_points
from .parse import Elaborator, name_free_dims
from .pipeline import Pipeline
from .report import Limits, Report
from .rulefile import PHASES, SUBSUMING_PHASES, RuleSet
from .shapes import fmt_shape
from .stock import stock_ruleset, with_user_files
from .temporaries import parse_where
from .terms import Term, free_vars, make, var_shapes

#: text with named temporaries (``body where T0 = ...``)
WHERE = re.compile(r"\bwhere\b")


class Engine:
    """Holds a rule set (stock rules plus user files) and runs derivations with limits."""

    def __init__(self, rules: Iterable[str | Path] | RuleSet | None = None,
                 limits: Limits | None = None) -> None:
        ruleset = rules if isinstance(rules, RuleSet) else \
            with_user_files(list(rules or []), stock_ruleset())
        self.pipeline = Pipeline(ruleset, limits)

    @property
    def ruleset(self) -> RuleSet:
        return self.pipeline.ruleset

    @property
    def limits(self) -> Limits:
        return self.pipeline.limits

    @property
    def functions(self):
        return self.ruleset.functions

    def program_for(self, phases: Iterable[str] = PHASES, traced: bool = False,
                    replacing: Iterable[str] = SUBSUMING_PHASES) -> Program:
        """The rules of ``phases`` compiled for egglog (:meth:`rewrite.pipeline.Pipeline.program_for`)."""
        return self.pipeline.program_for(phases, traced, replacing)

    @property
    def program(self) -> Program:
        """Every phase's rules (:meth:`program_for`)."""
        return self.program_for()

    # -- input --------------------------------------------------------------------------
    def term(self, expr, shapes: dict | None = None) -> Term:
        """Text (or a sympy MatrixExpr, or an Expr) → typed term."""
        if isinstance(expr, Expr):
            return expr.term
        if isinstance(expr, Term):
            return expr
        if not isinstance(expr, str):
            from .sympy_interop import from_sympy  # sympy takes ~0.35 s to import

            return from_sympy(expr, shapes, self)
        if WHERE.search(expr):  # named temporaries, as Expr.where() prints them
            return within_size(parse_where(expr, shapes, self.functions.names()))
        el = Elaborator(shapes, self.functions.names())
        return within_size(name_free_dims(el.elaborate(expr), el.u))

    # -- gradient -----------------------------------------------------------------------
    def gradient(self, expr, wrt: str, shapes: dict | None = None,
                 limits: Limits | None = None, keep_egraph: bool = False,
                 steps: bool = False, structure: dict | None = None) -> Gradient:
        """∂f/∂wrt for a 1×1 expression ``f``; G has the shape of ``wrt`` and entry (i, j) is
        ∂f/∂wrt_ij.

        ``keep_egraph=True`` keeps the derivation's e-graph on the result (``.session``) for
        inspection (``viz``), with the rule that created each e-node; otherwise it is discarded
        and its memory reused. ``steps=True`` records the derivation step by step
        (``.steps``, a list of :class:`rewrite.steps.Step`). Both run the rules compiled with
        provenance, which is slower.

        ``structure`` declares square variables ``"symmetric"`` (or ``"spd"``, symmetric positive
        definite): the gradient in a symmetric ``wrt`` is sym(G) = (G + G')/2, the gradient
        among symmetric matrices; numeric checks draw such variables symmetric (SPD).
        """
        try:
            f = self.term(expr, shapes)
            structure = check_structure(structure, f)
            if not isinstance(wrt, str) or not wrt.isidentifier():
                raise WrtError(f"wrt must be a single variable name, got {wrt!r}")
            if wrt not in free_vars(f):
                names = ", ".join(sorted(free_vars(f))) or "none"
                raise WrtError(f"variable {wrt!r} does not occur in the expression (its "
                               f"variables: {names})")
            if f.shape != (1, 1):
                fix = suggest_shapes(expr, shapes, self.functions.names()) if isinstance(expr, str) else None
                raise ShapeError(f"the objective must be 1×1 (a scalar), got "
                                 f"{fmt_shape(f.shape)}; " + undeclared_hint(f, shapes, fix))
            d = self.pipeline.gradient(f, wrt, limits, keep_egraph, steps)
            g = d.term
            if wrt in structure:  # sym(G): the part of G that symmetric directions see
                half = Term("num", (), Fraction(1, 2), (1, 1))
                g, rep = self.pipeline.simplify_term(make("scale", half, make("add", g, make("t", g))),
                                                     symmetric=frozenset(structure))  # S' is S
                d.report.absorb(rep)
        except RecursionError:
            raise LimitError("the expression or its gradient is nested too deeply to process "
                             "(Python recursion limit)") from None
        return Gradient(g, d.report, self.functions, d.session, f=d.f, wrt=wrt, steps=d.steps,
                        structure=structure)

    def differential(self, expr, wrt: str, shapes: dict | None = None,
                     limits: Limits | None = None) -> Expr:
        """df in canonical form ``tr(G'*dX)`` (``dX`` printed as a name)."""
        return self.gradient(expr, wrt, shapes, limits).differential

    # -- second order (rewrite.second_order) --------------------------------------------
    def jacobian(self, expr, wrt: str, shapes: dict | None = None,
                 limits: Limits | None = None) -> second_order.Derivative:
        """∂vec(F)/∂vec(wrt) (m×n for vectors); see :func:`rewrite.second_order.jacobian`."""
        return second_order.jacobian(self.pipeline, self.term(expr, shapes), wrt, limits)

    def hessian(self, expr, wrt: str, shapes: dict | None = None,
                limits: Limits | None = None) -> second_order.Derivative:
        """∂²f/∂vec(wrt)∂vec(wrt); see :func:`rewrite.second_order.hessian`."""
        return second_order.hessian(self.pipeline, self.term(expr, shapes), wrt, limits)

    def hvp(self, expr, wrt: str, shapes: dict | None = None, limits: Limits | None = None,
            direction: str | None = None) -> second_order.Derivative:
        """H·V as an expression in a direction ``V``; see :func:`rewrite.second_order.hvp`."""
        return second_order.hvp(self.pipeline, self.term(expr, shapes), wrt, limits, direction)

    # -- simplify / equivalent ----------------------------------------------------------
    def simplify(self, expr, shapes: dict | None = None) -> Expr:
        """An equal expression, as small as the bounded simplification finds."""
        t = self.term(expr, shapes)
        out, rep = self.pipeline.simplify_term(t, ("close",))
        return Expr(out, rep, self.functions)

    def equivalent(self, a, b, shapes: dict | None = None) -> Equivalence:
        """Whether ``a`` = ``b``: an :class:`Equivalence`, proved when the rules prove it (the
        phases of :meth:`simplify`, so whatever simplify reduces one side to is proved), refuted
        when the shapes differ or a random point shows different values, unknown otherwise.
        It is truthy only when proved, and compares equal to True (proved) or False (refuted).
        """
        ta, tb = self._pair(a, b, shapes)
        if ta.shape != tb.shape:
            return Equivalence(False, None, f"the shapes differ: {fmt_shape(ta.shape)} and "
                                            f"{fmt_shape(tb.shape)}")
        proved, rep = self.pipeline.prove_equal(ta, tb)
        if proved:
            return Equivalence(True, rep, "proved by the rules")
        for va, vb in values_at_random_points(ta, tb, self.functions):
            if not np.allclose(va, vb, rtol=1e-8, atol=1e-10):
                return Equivalence(False, rep, "the values differ at a random point")
        return Equivalence(None, rep, "not proved by the rules within the limits, and equal "
                                      "at random points")

    def _pair(self, a, b, shapes) -> tuple[Term, Term]:
        if isinstance(a, str) and isinstance(b, str):
            el = Elaborator(shapes, self.functions.names())
            ta = el.elaborate(a)
            tb = el.elaborate(b)
            ta, tb = el.resolve(ta), el.resolve(tb)
            pair = name_free_dims(make_pair(ta, tb), el.u)
            return pair.args[0], pair.args[1]
        return self.term(a, shapes), self.term(b, shapes)


class Equivalence:
    """The answer of :meth:`Engine.equivalent`: ``proved`` (the rules put both sides in one
    e-class), ``refuted`` (different shapes, or different values at a random point) or
    ``unknown`` (neither within the limits). Truthy only when proved; ``== True`` holds when
    proved and ``== False`` when refuted (an unknown answer equals neither). ``value`` is True,
    False or None; ``reason`` says why, ``report`` is the proof run's :class:`Report` (None when
    the shapes differ). It prints as ``True``, ``False`` or ``Unknown``; ``str`` gives the CLI's
    ``true``, ``false`` or ``unknown``.

    >>> Equivalence(None, None, "not proved").unknown, bool(Equivalence(None, None, "-"))
    (True, False)
    >>> Equivalence(True, None, "proved") == True, Equivalence(False, None, "differ") == False
    (True, True)
    >>> Equivalence(None, None, "-") == False, Equivalence(None, None, "-")
    (False, Unknown)
    """

    __slots__ = ("value", "report", "reason")

    def __init__(self, value: bool | None, report: Report | None, reason: str) -> None:
        self.value, self.report, self.reason = value, report, reason

    @property
    def proved(self) -> bool:
        return self.value is True

    @property
    def refuted(self) -> bool:
        return self.value is False

    @property
    def unknown(self) -> bool:
        return self.value is None

    def __bool__(self) -> bool:
        return self.proved

    def __eq__(self, other) -> bool:
        if isinstance(other, Equivalence):
            return self.value is other.value
        if isinstance(other, bool):
            return self.value is other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return {True: "True", False: "False", None: "Unknown"}[self.value]

    def __str__(self) -> str:
        return repr(self).lower()


def undeclared_hint(f: Term, shapes: dict | None, fix: dict | None = None) -> str:
    """What to do about an objective that is not 1×1: declare the names left undeclared (each
    was taken for a matrix of unknown size) — with ``fix`` (:func:`suggest_shapes`), the exact
    declarations that make it 1×1 — else reduce it to a scalar.

    >>> from rewrite.parse import parse
    >>> undeclared_hint(parse("x'*A*x", None), None)[:78]
    'A and x were not declared, so each was taken for a matrix of unknown size: dec'
    >>> undeclared_hint(parse("A*x", {"A": (2, 3), "x": (3,)}), {"A": (2, 3), "x": (3,)})
    'wrap it in tr(), sum() or a norm'
    """
    names = sorted(free_vars(f) - set(shapes or {}))
    if not names:
        return "wrap it in tr(), sum() or a norm"
    listed = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
    verb, which = ("were", "each was") if len(names) > 1 else ("was", "it was")
    head = f"{listed} {verb} not declared, so {which} taken for a matrix of unknown size: "
    if fix:
        cli = " ".join(f"--shape {n}={','.join(map(str, d))}" for n, d in fix.items())
        return head + f"declaring {cli} (API: shapes={fix!r}) makes it a scalar"
    return (head + f"declare {'their shapes' if len(names) > 1 else 'its shape'} (API: "
            "shapes={'x': ('n',)} for a vector, () for a scalar; CLI: --shape x=n, --shape lam= "
            "for a scalar)")


#: shapes tried for an undeclared name, in order of preference
KINDS = ("matrix", "vector", "scalar")


def suggest_shapes(text: str, shapes: dict | None, functions: Iterable[str],
                   most: int = 5) -> dict | None:
    """Shapes for the undeclared names of ``text`` (each a matrix, a column vector or a scalar;
    at most ``most`` names) under which it is 1×1, with dimensions named ``n``, ``m``, ``k``,
    ...; None if there is none. Matrices and vectors are preferred to scalars.

    >>> suggest_shapes("x'*A*x", None, [])
    {'A': ('n', 'n'), 'x': ('n',)}
    >>> suggest_shapes("fro2(X) + lam*tr(X)", {"X": (3, 3)}, [])
    {'lam': ()}
    """
    from itertools import product

    shapes = dict(shapes or {})
    try:
        names = sorted(free_vars(Elaborator(shapes, functions).elaborate(text)) - set(shapes))
    except TracegradError:
        return None
    if not names or len(names) > most:
        return None
    best = None
    # the likeliest first (fewest scalars, then fewest matrices); at most ~15,000 characters
    # parsed in all, so that a long expression's error stays fast
    choices = sorted(product(KINDS, repeat=len(names)), key=lambda k: (k.count("scalar"), k.count("matrix")))
    for kinds in choices[:max(1, 15_000 // max(len(text), 1))]:
        el = Elaborator(shapes, functions, scalars=[n for n, k in zip(names, kinds, strict=True) if k == "scalar"],
                        vectors=[n for n, k in zip(names, kinds, strict=True) if k == "vector"])
        try:
            t = el.elaborate(text)
        except TracegradError:
            continue
        if not (el.u.is_one(t.shape[0]) and el.u.is_one(t.shape[1])):
            continue
        found = {n: s for n, s in var_shapes(name_free_dims(t, el.u)).items() if n in names}
        # fewest scalars, then fewest sizes forced to 1, then fewest matrices
        degenerate = sum(d == 1 for n, k in zip(names, kinds, strict=True) if k != "scalar"
                         for d in found[n][:1 if k == "vector" else 2])
        score = (kinds.count("scalar"), degenerate, kinds.count("matrix"))
        if best is None or score < best[0]:
            best = (score, found)
    if best is None:
        return None
    taken = {d for s in shapes.values() for d in (s if isinstance(s, tuple) else ()) if isinstance(d, str)}
    pretty = iter(d for d in ("n", "m", "k", "p", "q", "r", "s") + tuple(f"n{i}" for i in range(1, 40))
                  if d not in taken)
    rename: dict = {}

    def dim(d):
        if isinstance(d, str) and d not in taken:
            rename.setdefault(d, next(pretty))
            return rename[d]
        return d

    out = {}
    for n in names:
        r, c = best[1][n]
        out[n] = () if (r, c) == (1, 1) else (dim(r),) if c == 1 else (dim(r), dim(c))
    return out


STRUCTURES = ("symmetric", "spd")


def check_structure(structure: dict | None, f: Term) -> dict[str, str]:
    """``structure`` ({name: "symmetric" | "spd"}) checked against the expression: every name a
    square variable of it.

    >>> from rewrite.parse import parse
    >>> check_structure({"S": "spd"}, parse("tr(S)", {"S": (2, 2)}))
    {'S': 'spd'}
    >>> check_structure({"S": "symmetric"}, parse("sum(S)", {"S": (2, 3)}))
    Traceback (most recent call last):
    ...
    rewrite.errors.ShapeError: S is declared symmetric but is 2×3; a symmetric matrix is square
    """
    if not structure:
        return {}
    if not isinstance(structure, dict):
        raise UnsupportedError(f"structure must be a dict of name: 'symmetric' or 'spd', got "
                               f"{structure!r}")
    shapes = var_shapes(f)
    for name, kind in structure.items():
        if kind not in STRUCTURES:
            raise UnsupportedError(f"unknown structure {kind!r} for {name!r}; use 'symmetric' or 'spd'")
        if name not in shapes:
            names = ", ".join(sorted(shapes)) or "none"
            raise WrtError(f"{name!r} is declared {kind} but does not occur in the expression (its "
                           f"variables: {names})")
        r, c = shapes[name]
        if r != c:
            raise ShapeError(f"{name} is declared {kind} but is {fmt_shape((r, c))}; a symmetric "
                             "matrix is square")
    return dict(structure)


def max_term_nodes() -> int:
    """Largest input accepted, in operations (default 4,000; env ``TRACEGRAD_MAX_TERM_NODES``)."""
    try:
        return max(1, int(os.environ.get("TRACEGRAD_MAX_TERM_NODES", "4000")))
    except ValueError:
        return 4000


def within_size(t: Term) -> Term:
    """``t``, or an UnsupportedError when it has more operations than :func:`max_term_nodes`."""
    n, stack, limit = 0, [t], max_term_nodes()
    while stack:
        x = stack.pop()
        n += 1
        if n > limit:
            raise UnsupportedError(f"expression too large: more than {limit} operations "
                                   "(TRACEGRAD_MAX_TERM_NODES raises the limit)")
        stack.extend(x.args)
    return t


_default: Engine | None = None
_default_lock = threading.Lock()


def default_engine() -> Engine:
    """The process's engine with the stock rules and default limits (made on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Engine()
        return _default


__all__ = ["Engine", "Equivalence", "default_engine"]
