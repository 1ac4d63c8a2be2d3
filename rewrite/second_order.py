"""Second order: Jacobians in matrix form, Hessians and Hessian-vector products.

* ``jacobian(F, X)``: J with vec(dF) = J*vec(dX) (column-major vec), derived in the
  e-graph as ``jac(d(F), d(X))`` with the rules of ``rules/jacobian.rules``.  A vector F (m×1)
  and a vector x (n×1) give the usual m×n Jacobian; a matrix F or X uses vec layout, written
  with ``kron(A, B)`` (A ⊗ B) and ``kront(A, B)`` ((A ⊗ B)·K, K the commutation matrix).
* ``hessian(f, X)``: the Jacobian of the gradient, H[i, j] = ∂²f / ∂vec(X)ᵢ ∂vec(X)ⱼ.
* ``hvp(f, X)``: the Hessian applied to a direction V of X's shape, as an expression in V: the
  gradient of tr(G'*V), G = ∂f/∂X.  It never forms the Hessian.  The direction is named ``V``
  unless the expression uses that name (then ``V2``, ``V3``, ...); pass ``direction=`` to choose.

Each takes a :class:`~rewrite.pipeline.Pipeline` and a typed term (the engine parses text).

>>> from rewrite.pipeline import Pipeline
>>> from rewrite.stock import parse, stock_ruleset
>>> p = Pipeline(stock_ruleset())
>>> sh = {"x": ("n",), "A": ("n", "n")}
>>> str(hessian(p, parse("x'*A*x", sh), "x"))
"A + A'"
>>> h = hvp(p, parse("x'*A*x", sh), "x")
>>> h.direction, str(h)
('V', "A'*V + A*V")
>>> str(jacobian(p, parse("A*X*B", {"A": (2, 3), "X": (3, 4), "B": (4, 5)}), "X"))
"kron(B', A)"
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import EngineError, ShapeError, WrtError
from .expr import Expr
from .parse import parse
from .pipeline import Pipeline
from .printing import to_text
from .report import Limits, Report, StopReason
from .shapes import fmt_shape
from .terms import Term, free_vars, make, num, var_shapes

DIRECTION = "V"


@dataclass(eq=False)
class Derivative(Expr):
    """A second-order result: ``kind`` is ``"jacobian"``, ``"hessian"`` or ``"hvp"``, taken of
    the expression ``of`` with respect to ``wrt``; an HVP is an expression in ``direction``."""

    of: Term | None = None
    wrt: str = ""
    kind: str = ""
    direction: str | None = None
    gradient: Term | None = None  # G = ∂f/∂wrt, for a Hessian or an HVP

    def __repr__(self) -> str:
        """``Hessian('A + A'', wrt=x, stop=goal, 3.1 ms)``; the report stays in ``.report``."""
        extra = [f"wrt={self.wrt}"] + ([f"direction={self.direction}"] if self.direction else [])
        return self._short_repr(self.kind.capitalize() if self.kind != "hvp" else "HVP", *extra)

    @property
    def objective(self) -> Expr:
        return Expr(self.of, registry=self.registry)

    def code(self, backend: str = "numpy") -> str:
        """Source of a standalone ``numpy``, ``jax`` or ``torch`` module computing the result
        (with f and ∇f for a Hessian or an HVP); see
        :func:`rewrite.codegen.generate_second_order`."""
        from .codegen import codegen  # the code generators load on first use

        return codegen(self, backend)


def _variable(t: Term, wrt: object) -> Term:
    """The variable node ``wrt`` of ``t``, or a :class:`WrtError`."""
    if not isinstance(wrt, str) or not wrt.isidentifier():
        raise WrtError(f"wrt must be a single variable name, got {wrt!r}")
    shapes = var_shapes(t)
    if wrt not in shapes:
        names = ", ".join(sorted(shapes)) or "none"
        raise WrtError(f"variable {wrt!r} does not occur in the expression (its variables: {names})")
    return Term("var", (), wrt, shapes[wrt])


def _scalar_objective(f: Term) -> None:
    if f.shape != (1, 1):
        raise ShapeError(f"the objective must be 1×1 (a scalar), got {fmt_shape(f.shape)}; "
                         "wrap it in tr(), sum() or a norm")


def _zeros(F: Term, x: Term) -> Term:
    """The zero Jacobian ``0*vec(F)*vec(x)'``, written with the variables so that it evaluates
    without separately given dimensions."""
    def v(t: Term) -> Term:
        return t if t.shape[1] == 1 else make("vec", t)

    a, b = v(F), make("t", v(x))
    return make("scale", num(0), make("scale", a, b) if a.shape == (1, 1) else make("mul", a, b))


def _normalized(p: Pipeline, t: Term) -> Term:
    """``t`` printed and parsed again, the retry when a derivation from an extracted gradient
    fails with an :class:`EngineError`: an extracted term can hold nodes the parser never builds
    (``exp(c)*1``, a scaling of a number), which a new e-graph may fail to extract; the round
    trip keeps the meaning and gives the parser's form."""
    return parse(to_text(t), var_shapes(t), p.functions.names())


def jacobian_term(p: Pipeline, F: Term, x: Term, limits: Limits | None = None) -> tuple[Term, Report]:
    """J with vec(dF) = J*vec(dx), collected in the e-graph and simplified (zero when ``x`` does
    not occur in ``F``)."""
    if x.attr not in free_vars(F):
        return _zeros(F, x), Report(StopReason.SATURATED, 0, 0, 0, 0.0, {}, [], [])
    return p.jacobian(F, x, limits)


def jacobian(p: Pipeline, F: Term, wrt: str, limits: Limits | None = None) -> Derivative:
    """∂vec(F)/∂vec(wrt): rows(F)·cols(F) × rows(wrt)·cols(wrt) (an m×n matrix for vectors)."""
    x = _variable(F, wrt)
    j, rep = jacobian_term(p, F, x, limits)
    return Derivative(j, rep, p.functions, of=F, wrt=wrt, kind="jacobian")


def hessian(p: Pipeline, f: Term, wrt: str, limits: Limits | None = None) -> Derivative:
    """H = ∂vec(G)/∂vec(wrt), G = ∂f/∂wrt, for a 1×1 ``f`` (n×n for a vector, vec layout for a
    matrix)."""
    x = _variable(f, wrt)
    _scalar_objective(f)
    g = p.gradient(f, wrt, limits)
    try:
        h, rep = jacobian_term(p, g.term, x, limits)
    except EngineError:
        h, rep = jacobian_term(p, _normalized(p, g.term), x, limits)
    return Derivative(h, g.report.absorb(rep), p.functions, of=f, wrt=wrt, kind="hessian",
                      gradient=g.term)


def direction_name(t: Term, wrt: str, preferred: str | None = None) -> str:
    """The name of an HVP direction: ``preferred`` (default ``V``), or ``V2``, ``V3``, ... when
    the expression already uses it.

    >>> from rewrite.parse import parse
    >>> direction_name(parse("tr(V*X)", {"V": (2, 2), "X": (2, 2)}), "X")
    'V2'
    """
    used = free_vars(t) | {wrt}
    if preferred is not None:
        if not isinstance(preferred, str) or not preferred.isidentifier() or preferred in used:
            raise WrtError(f"direction must be a variable name not used in the expression, "
                           f"got {preferred!r}")
        return preferred
    k = 1
    while (name := DIRECTION if k == 1 else f"{DIRECTION}{k}") in used:
        k += 1
    return name


def _chain(t: Term) -> list[Term]:
    if t.op == "mul":
        return _chain(t.args[0]) + _chain(t.args[1])
    return [t]


def apply_first(t: Term, name: str) -> Term:
    """The same expression arranged so that the direction ``name`` is applied first: in every
    product chain the factor holding it is multiplied by its neighbours one at a time (so with a
    vector V only matrix-vector products occur), and for a vector V a sum of matrices times V is
    distributed ((A + B)*V → A*V + B*V), so no matrix is formed from the others.

    >>> from rewrite.parse import parse
    >>> from rewrite.printing import to_text
    >>> sh = {"A": ("n", "n"), "B": ("n", "n"), "V": ("n",)}
    >>> t = apply_first(parse("(A*B)*((A + B')*V)", sh), "V")
    >>> to_text(t), to_text(t.args[1])  # the printer does not show the bracketing A*(B*(...))
    ("A*B*(A*V + B'*V)", "B*(A*V + B'*V)")
    """
    def has(u: Term) -> bool:
        return name in free_vars(u)

    def go(u: Term) -> Term:
        if not has(u):
            return u
        if u.op != "mul":
            return Term(u.op, tuple(go(a) for a in u.args), u.attr, u.shape)
        fs = _chain(u)
        k = next(i for i, f in enumerate(fs) if has(f))
        if sum(has(f) for f in fs) > 1:  # V in several factors: keep the shape, recurse
            return make("mul", go(u.args[0]), go(u.args[1]))
        inner = go(fs[k])
        for f in fs[k + 1:]:
            inner = make("mul", inner, f)
        for f in reversed(fs[:k]):
            if inner.shape[1] == 1 and f.op == "add" and f.shape[0] != 1:
                inner = make("add", *(go(make("mul", a, inner)) for a in f.args))
            else:
                inner = make("mul", f, inner)
        return inner

    return go(t)


def hvp(p: Pipeline, f: Term, wrt: str, limits: Limits | None = None,
        direction: str | None = None) -> Derivative:
    """H·V as an expression in a direction V of wrt's shape: the gradient of tr(G'*V)."""
    x = _variable(f, wrt)
    _scalar_objective(f)
    name = direction_name(f, wrt, direction)
    v = Term("var", (), name, x.shape)
    g = p.gradient(f, wrt, limits)
    if wrt not in free_vars(g.term):
        return Derivative(make("scale", num(0), v), g.report, p.functions, of=f, wrt=wrt,
                          kind="hvp", direction=name, gradient=g.term)

    def inner(gt: Term) -> Term:
        return make("scale", gt, v) if gt.shape == (1, 1) else make("tr", make("mul", make("t", gt), v))

    try:
        r = p.gradient(inner(g.term), wrt, limits)
    except EngineError:
        r = p.gradient(inner(_normalized(p, g.term)), wrt, limits)
    return Derivative(apply_first(r.term, name), g.report.absorb(r.report), p.functions, of=f,
                      wrt=wrt, kind="hvp", direction=name, gradient=g.term)


__all__ = ["DIRECTION", "Derivative", "apply_first", "direction_name", "hessian", "hvp", "jacobian",
           "jacobian_term"]
