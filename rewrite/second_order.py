"""Second order: Jacobians in matrix form, Hessians and Hessian-vector products.

* ``jacobian(F, X)``: J with vec(dF) = J*vec(dX) (column-major vec), derived in the
  e-graph as ``jac(d(F), d(X))`` with the rules of ``rules/jacobian.rules``.  A vector F (m×1)
  and a vector x (n×1) give the usual m×n Jacobian; a matrix F or X uses vec layout, written
  with ``kron(A, B)`` (A ⊗ B) and ``kront(A, B)`` ((A ⊗ B)·K, K the commutation matrix).
* ``hessian(f, X)``: the Jacobian of the gradient, H[i, j] = ∂²f / ∂vec(X)ᵢ ∂vec(X)ⱼ.
* ``hvp(f, X)``: the Hessian applied to a direction V of X's shape, as an expression in V: the
  gradient of tr(G'*V), G = ∂f/∂X.  It never forms the Hessian.  The direction is named ``V``
  unless the expression uses that name (then ``V2``, ``V3``, ...); pass ``direction=`` to choose.

>>> from rewrite.engine import Engine
>>> eng = Engine()
>>> str(hessian(eng, "x'*A*x", "x", {"x": ("n",), "A": ("n", "n")}))
"A + A'"
>>> h = hvp(eng, "x'*A*x", "x", {"x": ("n",), "A": ("n", "n")})
>>> h.direction, str(h)
('V', "A'*V + A*V")
>>> str(jacobian(eng, "A*X*B", "X", {"A": (2, 3), "X": (3, 4), "B": (4, 5)}))
"kron(B', A)"
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import EngineError, Session
from .engine import DERIVATION_PHASES, directed_limits
from .errors import CanonicalFormError, LimitError, ShapeError, TracegradError, WrtError
from .expr import Expr
from .numeric import evaluate, instantiate_dims, random_point, relative_error
from .report import Limits, Report
from .shapes import fmt_shape
from .terms import Term, contains, free_vars, make, num, var_shapes

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

    @property
    def objective(self) -> Expr:
        return Expr(self.of, registry=self.registry)

    def code(self, backend: str = "numpy") -> str:
        """Source of a standalone ``numpy``, ``jax`` or ``torch`` module computing the result
        (with f and ∇f for a Hessian or an HVP); see
        :func:`rewrite.codegen.generate_second_order`."""
        from .codegen import codegen

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


def _normalized(engine, t: Term) -> Term:
    """``t`` printed and parsed again, the retry when a derivation from an extracted gradient
    fails with an :class:`EngineError`: an extracted term can hold nodes the parser never builds
    (``exp(c)*1``, a scaling of a number), which a new e-graph may fail to extract; the round
    trip keeps the meaning and gives the parser's form."""
    from .printing import to_text

    return engine.term(to_text(t), var_shapes(t))


def jacobian_term(engine, F: Term, x: Term, limits: Limits | None = None) -> tuple[Term, Report]:
    """J with vec(dF) = J*vec(dx), collected in the e-graph and simplified."""
    lim = limits or engine.limits
    if x.attr not in free_vars(F):
        return _zeros(F, x), Report("saturated", 0, 0, 0, 0.0, {}, [], [])
    with Session(engine.program_for(DERIVATION_PHASES), lim) as s:
        root = s.add(make("jac", make("d", F), make("d", x)), varying={x.attr})
        directed = directed_limits(lim, F)
        reason = s.saturate("expand", limits=directed)
        if reason != "saturated":
            rep = s.report(reason)
            raise LimitError(f"differentiation stopped on {reason} before finishing ({rep})", report=rep)
        reason = s.saturate("collect", limits=directed, stop_when=lambda: s.is_free(root))
        rep = s.report(reason)
        j = s.extract(root)
    if contains(j, "jac", "grad", "d"):
        why = "saturation ended" if reason == "saturated" else f"the run stopped on {reason}"
        raise CanonicalFormError(
            f"{why} without reaching a Jacobian vec(dF) = J*vec(d{x.attr}): the rules of "
            f"jacobian.rules do not cover every construct of dF; no Jacobian is returned ({rep})",
            report=rep)
    j, srep = engine._simplify_term(j)
    return j, rep.absorb(srep)


def jacobian(engine, expr, wrt: str, shapes: dict | None = None,
             limits: Limits | None = None) -> Derivative:
    """∂vec(F)/∂vec(wrt): rows(F)·cols(F) × rows(wrt)·cols(wrt) (an m×n matrix for vectors)."""
    F = engine.term(expr, shapes)
    x = _variable(F, wrt)
    j, rep = jacobian_term(engine, F, x, limits)
    return Derivative(j, rep, engine.functions, of=F, wrt=wrt, kind="jacobian")


def hessian(engine, expr, wrt: str, shapes: dict | None = None,
            limits: Limits | None = None) -> Derivative:
    """H = ∂vec(G)/∂vec(wrt), G = ∂f/∂wrt, for a 1×1 ``f`` (n×n for a vector, vec layout for a
    matrix)."""
    f = engine.term(expr, shapes)
    x = _variable(f, wrt)
    _scalar_objective(f)
    g = engine.gradient(f, wrt, limits=limits)
    try:
        h, rep = jacobian_term(engine, g.term, x, limits)
    except EngineError:
        h, rep = jacobian_term(engine, _normalized(engine, g.term), x, limits)
    return Derivative(h, g.report.absorb(rep), engine.functions, of=f, wrt=wrt, kind="hessian",
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


def hvp(engine, expr, wrt: str, shapes: dict | None = None, limits: Limits | None = None,
        direction: str | None = None) -> Derivative:
    """H·V as an expression in a direction V of wrt's shape: the gradient of tr(G'*V)."""
    f = engine.term(expr, shapes)
    x = _variable(f, wrt)
    _scalar_objective(f)
    name = direction_name(f, wrt, direction)
    v = Term("var", (), name, x.shape)
    g = engine.gradient(f, wrt, limits=limits)
    if wrt not in free_vars(g.term):
        return Derivative(make("scale", num(0), v), g.report, engine.functions, of=f, wrt=wrt,
                          kind="hvp", direction=name, gradient=g.term)

    def inner(gt: Term) -> Term:
        return make("scale", gt, v) if gt.shape == (1, 1) else make("tr", make("mul", make("t", gt), v))

    try:
        r = engine.gradient(inner(g.term), wrt, limits=limits)
    except EngineError:
        r = engine.gradient(inner(_normalized(engine, g.term)), wrt, limits=limits)
    return Derivative(apply_first(r.term, name), g.report.absorb(r.report), engine.functions, of=f, wrt=wrt,
                      kind="hvp", direction=name, gradient=g.term)


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


def check(d: Derivative, spd: set[str] = frozenset(), positive: set[str] = frozenset()) -> float:
    """Relative error against central differences at a random point; raises if it is wrong."""
    value, fd, err = derivative_error(d, spd=spd, positive=positive)
    if not (np.all(np.isfinite(value)) and np.all(np.isfinite(fd))):
        raise TracegradError("--check: the expression is not finite at the random point drawn "
                             f"(domain restrictions?); the {d.kind} was not verified")
    if err > 1e-5:
        raise TracegradError(f"--check FAILED: relative error {err:.2e} against finite differences")
    return err


def result_json(expr: str, d: Derivative, checked: float | None = None) -> dict:
    """The object printed by ``tracegrad hessian|jacobian|hvp --format json``."""
    out = {"expr": expr, "wrt": d.wrt, "kind": d.kind, "result": str(d), "latex": d.latex(),
           "shape": [x if isinstance(x, int) else str(x) for x in d.shape]}
    if d.direction is not None:
        out["direction"] = d.direction
    if d.report is not None:
        out["report"] = d.report.as_json()
    if checked is not None:
        out["check"] = {"relative_error": checked}
    return out


def cmd_second_order(args) -> int:
    """``tracegrad hessian|jacobian|hvp EXPR --wrt X [--shape ...] [--format FORMAT]``."""
    import json
    import sys

    from .cli import _engine, _shapes

    eng = _engine(args)
    shapes = _shapes(args.shape)
    if args.cmd == "hvp":
        d = eng.hvp(args.expr, args.wrt, shapes, direction=args.direction)
    else:
        d = getattr(eng, args.cmd)(args.expr, args.wrt, shapes)
    checked = check(d, spd=set(args.spd or ())) if args.check else None
    if args.format in ("numpy", "jax", "torch"):
        print(d.code(args.format), end="")
        if checked is not None:
            print(f"check: matches finite differences (relative error {checked:.1e})",
                  file=sys.stderr)
        return 0
    if args.format == "json":
        print(json.dumps(result_json(args.expr, d, checked)))
        return 0
    print(d.latex() if args.format == "latex" else d)
    if checked is not None:
        print(f"check: matches finite differences (relative error {checked:.1e})", file=sys.stderr)
    return 0


def add_parsers(sub) -> None:
    """Sub-parsers of ``hessian``, ``jacobian`` and ``hvp`` (called by ``cli.build_parser``)."""
    helps = {"hessian": "Hessian of a scalar expression (vec layout for a matrix variable)",
             "jacobian": "Jacobian d vec(F) / d vec(X) of a vector or matrix expression",
             "hvp": "Hessian-vector product as an expression in a direction V"}
    for name, text in helps.items():
        sp = sub.add_parser(name, help=text)
        sp.add_argument("expr")
        sp.add_argument("--wrt", required=True)
        sp.add_argument("--shape", action="append", metavar="NAME=DIMS",
                        help="e.g. X=n,k (matrix), w=n (vector), c= (scalar)")
        sp.add_argument("--rules", action="append", metavar="FILE", help="extra rule file")
        sp.add_argument("--format", choices=["text", "latex", "json", "numpy", "jax", "torch"],
                        default="text", help="numpy|jax|torch: print a standalone module")
        sp.add_argument("--check", action="store_true",
                        help="verify numerically against finite differences at a random point")
        sp.add_argument("--spd", action="append", metavar="NAME",
                        help="with --check: draw NAME as a symmetric positive definite matrix")
        if name == "hvp":
            sp.add_argument("--direction", metavar="NAME", default=None,
                            help=f"name of the direction variable (default {DIRECTION}, or "
                            f"{DIRECTION}2, ... when taken)")


__all__ = ["Derivative", "jacobian", "hessian", "hvp", "jacobian_term", "direction_name", "DIRECTION",
           "derivative_error", "apply_first", "check", "cmd_second_order", "add_parsers"]
