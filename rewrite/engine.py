"""The engine: a rule set compiled once, and the four operations of the public API.

>>> eng = Engine()
>>> str(eng.gradient("tr(X'*A*X)", "X", {"X": ("n", "k"), "A": ("n", "n")}))
"(A' + A)*X"
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path

from .backend import EngineError, Program, Session
from .errors import CanonicalFormError, LimitError, ShapeError, UnsupportedError, WrtError
from .expr import Expr, Gradient
from .parse import Elaborator, name_free_dims
from .printing import NAMES, _summands, to_text
from .report import Limits, Report
from .rules import PHASES, SUBSUMING_PHASES, RuleSet, stock_ruleset, with_user_files
from .shapes import fmt_shape
from .steps import Step, canonical_step, from_trail
from .terms import OPS, Term, contains, free_vars, ill_typed, make, post_order, size, var

log = logging.getLogger(__name__)

SIMPLIFY_LIMITS = dict(iterations=8, enodes=10_000, seconds=2.0)
#: tidy's rules are directed and terminate; a product of k factors needs ~k rounds to push
#: a transpose to its leaves
TIDY_ITERATIONS = 32
#: the phases of a derivation (the input's tidy, then expand and collect); its simplification
#: runs in a session of its own
DERIVATION_PHASES = ("tidy", "expand", "collect")


class Engine:
    """Holds a rule set (stock rules plus user files) and runs derivations with limits."""

    def __init__(self, rules: Iterable[str | Path] | RuleSet | None = None,
                 limits: Limits | None = None) -> None:
        if isinstance(rules, RuleSet):
            self.ruleset = rules
        else:
            self.ruleset = with_user_files(list(rules or []), stock_ruleset())
        self.limits = limits or Limits()
        self._programs: dict[tuple[tuple[str, ...], bool], Program] = {}
        self._lock = threading.Lock()

    @property
    def functions(self):
        return self.ruleset.functions

    def program_for(self, phases: Iterable[str] = PHASES, traced: bool = False,
                    replacing: Iterable[str] = SUBSUMING_PHASES) -> Program:
        """The rules of ``phases`` compiled for egglog, once per engine and set of phases.

        A session restores its e-graph from a checkpoint of the program, at a cost that grows
        with the rules compiled, so each kind of session uses a program of just the phases it
        runs. ``traced`` compiles them with rule provenance per e-node (slower; for ``steps``
        and ``keep_egraph``); the directed rules of the ``replacing`` phases replace what they
        match.
        """
        key = (tuple(sorted(set(phases))), traced, tuple(sorted(set(replacing))))
        with self._lock:
            program = self._programs.get(key)
            if program is None:
                program = self._programs[key] = Program(self.ruleset, traced, key[0], key[2])
            return program

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
            from .sympy_interop import from_sympy

            return from_sympy(expr, shapes, self)
        el = Elaborator(shapes, self.functions.names())
        return _within_size(name_free_dims(el.elaborate(expr), el.u))

    # -- gradient -----------------------------------------------------------------------
    def gradient(self, expr, wrt: str, shapes: dict | None = None,
                 limits: Limits | None = None, keep_egraph: bool = False,
                 steps: bool = False) -> Gradient:
        """∂f/∂wrt for a 1×1 expression ``f``; G has the shape of ``wrt`` and entry (i, j) is
        ∂f/∂wrt_ij.

        ``keep_egraph=True`` keeps the derivation's e-graph on the result (``.session``) for
        inspection (``viz``), with the rule that created each e-node; otherwise it is discarded
        and its memory reused. ``steps=True`` records the derivation step by step
        (``.steps``, a list of :class:`rewrite.steps.Step`). Both run the rules compiled with
        provenance, which is slower.
        """
        try:
            return self._gradient(expr, wrt, shapes, limits, keep_egraph, steps)
        except RecursionError:
            raise LimitError("the expression or its gradient is nested too deeply to process "
                             "(Python recursion limit)") from None

    def _gradient(self, expr, wrt: str, shapes: dict | None, limits: Limits | None,
                  keep_egraph: bool, steps: bool = False) -> Gradient:
        """See :meth:`gradient`."""
        f = self.term(expr, shapes)
        if not isinstance(wrt, str) or not wrt.isidentifier():
            raise WrtError(f"wrt must be a single variable name, got {wrt!r}")
        if wrt not in free_vars(f):
            names = ", ".join(sorted(free_vars(f))) or "none"
            raise WrtError(f"variable {wrt!r} does not occur in the expression (its variables: "
                           f"{names})")
        if f.shape != (1, 1):
            raise ShapeError(f"the objective must be 1×1 (a scalar), got {fmt_shape(f.shape)}; "
                             + undeclared_hint(f, shapes))
        lim = limits or self.limits
        traced = keep_egraph or steps
        s = Session(self.program_for(DERIVATION_PHASES, traced), lim, pooled=not keep_egraph)
        trail: list[Step] = [Step("f", f, "input")]
        with s:
            x = next(t for t in post_order(f) if t.op == "var" and t.attr == wrt)
            f = _tidy_input(s, f, wrt, watch=steps)
            if steps:
                trail += from_trail(s.trail, "f", "f")[1:]
                trail.append(Step("df", make("d", f), "differentiate"))
                s.trail.clear()
            root = s.add(make("grad", make("d", f), make("d", x)), varying={wrt})
            s.root = root
            if steps:
                s.watch("df", s.add(make("d", f)))
                s.watch("grad", root)
            directed = directed_limits(lim, f)
            reason = s.saturate("expand", limits=directed)
            if reason != "saturated":
                rep = s.report(reason)
                raise LimitError(f"differentiation stopped on {reason} before finishing ({rep})",
                                 report=rep)
            # Stop as soon as the root holds a D-free term (the gradient); simplify polishes it.
            reason = s.saturate("collect", limits=directed, stop_when=lambda: s.is_free(root))
            rep = s.report(reason)
            g = s.extract(root) if s.is_free(root) else None
            stuck = stuck_construct(s.extract(root)) if g is None and reason == "saturated" \
                else None
        if stuck is not None:
            raise UnsupportedError(f"{stuck}; no gradient is returned ({rep})", report=rep)
        if g is None or contains(g, "grad", "adj", "d"):
            why = ("saturation ended" if reason == "saturated" else f"the run stopped on {reason}")
            error = CanonicalFormError if reason == "saturated" else LimitError
            raise error(f"{why} without reaching the canonical form df = tr(G'*d{wrt}); no "
                        f"gradient is returned ({rep})", report=rep)
        if steps:
            trail += from_trail(s.trail, "df", "df")[1:]
            at = len(trail)
        _check_shape(g, x, "collected")
        g, srep = self._simplify_term(g, trail=trail if steps else None)
        rep.absorb(srep)
        _check_shape(g, x, "simplified")
        if steps:  # df in canonical form with the final G, before the steps that polished G
            trail.insert(at, canonical_step(s.trail, g, wrt))
        return Gradient(g, rep, self.functions, s if keep_egraph else None, f=f, wrt=wrt,
                        steps=trail if steps else None)

    def differential(self, expr, wrt: str, shapes: dict | None = None,
                     limits: Limits | None = None) -> Expr:
        """df in canonical form ``tr(G'*dX)`` (``dX`` printed as a name)."""
        return self.gradient(expr, wrt, shapes, limits).differential

    # -- second order (rewrite.second_order) --------------------------------------------
    def jacobian(self, expr, wrt: str, shapes: dict | None = None, limits: Limits | None = None):
        """∂vec(F)/∂vec(wrt) (m×n for vectors); see :func:`rewrite.second_order.jacobian`."""
        from .second_order import jacobian

        return jacobian(self, expr, wrt, shapes, limits)

    def hessian(self, expr, wrt: str, shapes: dict | None = None, limits: Limits | None = None):
        """∂²f/∂vec(wrt)∂vec(wrt); see :func:`rewrite.second_order.hessian`."""
        from .second_order import hessian

        return hessian(self, expr, wrt, shapes, limits)

    def hvp(self, expr, wrt: str, shapes: dict | None = None, limits: Limits | None = None,
            direction: str | None = None):
        """H·V as an expression in a direction ``V``; see :func:`rewrite.second_order.hvp`."""
        from .second_order import hvp

        return hvp(self, expr, wrt, shapes, limits, direction)

    # -- simplify / equivalent ----------------------------------------------------------
    def _simplify_term(self, t: Term, extra_phases: tuple[str, ...] = (),
                       trail: list[Step] | None = None) -> tuple[Term, Report]:
        """Bounded tidy + simplify of ``t``; with ``trail``, its steps (as ``G``) are appended.

        Sums are handed over with their summands in a canonical order, but a sum the rules
        build (by factoring, say) keeps the order they built it in, so like terms may end up
        apart: then the result is ordered and simplified once more (kept if smaller).
        """
        out, rep = self._simplify_round(t, extra_phases, trail)
        if _apart_like_terms(out):
            again, more = self._simplify_round(out, (), trail)
            rep.absorb(more)
            if size(again) < size(out):
                out = again
        if out != t and not agree_numerically(t, out, self.functions):
            # every rule was checked numerically, yet a simplification changed the value: keep
            # the input, tidied if tidying alone keeps the value (a rule that is wrong only in
            # some context is a bug to report)
            tidied, _ = self._simplify_round(t, (), None, main=("tidy",))
            kept = tidied if agree_numerically(t, tidied, self.functions) else t
            log.warning("a simplification changed the value (%s differs numerically from %s) "
                        "and was not used; is a rule unsound? (tracegrad check-rules)",
                        to_text(out), to_text(kept))
            out = kept
            rep.phases.append({"phase": "check", "stop_reason": "rejected", "iterations": 0})
        return out, rep

    def _simplify_round(self, t: Term, extra_phases: tuple[str, ...],
                        trail: list[Step] | None,
                        main: tuple[str, ...] = ("tidy", "simplify")) -> tuple[Term, Report]:
        """One bounded tidy + simplify (the ``main`` phases) of ``canonical_sum(t)`` in a fresh
        e-graph.

        Tidy replaces what it matches, which keeps the e-graph small; but replacing rules that
        overlap (``1*A``, ``(A*B)'``, ``(c*A)'``) can leave a class with nothing to extract.
        Then ``t`` is tidied with tidy only adding (always extractable; simplification is not
        run on such an e-graph, where every replaced form stays and feeds the equations), and
        the round is run again on the tidied term.
        """
        phases = (*extra_phases, *main)
        out = self._run_round(t, phases, SUBSUMING_PHASES, trail)
        if out is not None:
            return out
        tidied = self._run_round(t, ("tidy",), ("expand",), trail)
        if tidied is None:  # not expected: an adding tidy leaves every class extractable
            return t, Report("unextractable", 0, 0, 0, 0.0, {}, [], [])
        again = self._run_round(tidied[0], phases, SUBSUMING_PHASES, trail)
        if again is None:
            return tidied
        again[1].absorb(tidied[1])
        return again

    def _run_round(self, t: Term, phases: tuple[str, ...], replacing: tuple[str, ...],
                   trail: list[Step] | None) -> tuple[Term, Report] | None:
        """``phases`` run on ``canonical_sum(t)`` in a fresh e-graph; None when the result's
        class has nothing left to extract."""
        program = self.program_for(phases, traced=trail is not None, replacing=replacing)
        with Session(program, Limits(**SIMPLIFY_LIMITS)) as s:
            h = s.add(canonical_sum(t))
            if trail is not None:
                s.watch("G", h)
            reason = "saturated"
            for ph in phases:
                lim = Limits(**{**SIMPLIFY_LIMITS, "iterations": TIDY_ITERATIONS}) \
                    if ph == "tidy" else None
                reason = s.saturate(ph, limits=lim)
            try:
                out = s.extract(h)
            except EngineError:
                return None
            if trail is not None:
                trail += from_trail(s.trail, "G", "G")
            return out, s.report(reason)

    def simplify(self, expr, shapes: dict | None = None) -> Expr:
        """An equal expression, as small as the bounded simplification finds."""
        t = self.term(expr, shapes)
        out, rep = self._simplify_term(t, ("close",))
        return Expr(out, rep, self.functions)

    def equivalent(self, a, b, shapes: dict | None = None) -> bool:
        """True when the rules prove a = b; False when a random point shows they differ.

        Raises :class:`CanonicalFormError` when neither happens within the limits.
        """
        import numpy as np

        ta, tb = self._pair(a, b, shapes)
        if ta.shape != tb.shape:
            return False
        # the program of simplify() (a superset of the phases run here), compiled once for both
        with Session(self.program_for(("close", "tidy", "simplify")), Limits(**SIMPLIFY_LIMITS)) as s:
            ha, hb = s.add(ta), s.add(tb)
            for ph in ("close", "simplify"):
                if s.same_class(ha, hb):
                    return True
                s.saturate(ph, stop_when=lambda: s.same_class(ha, hb))
            if s.same_class(ha, hb):
                return True
            unproved = s.report("saturated")
        for va, vb in values_at_random_points(ta, tb, self.functions):
            if not np.allclose(va, vb, rtol=1e-8, atol=1e-10):
                return False
        raise CanonicalFormError("could not prove the two expressions equal within the limits, "
                                 "and they agree numerically at random points", report=unproved)

    def _pair(self, a, b, shapes) -> tuple[Term, Term]:
        if isinstance(a, str) and isinstance(b, str):
            el = Elaborator(shapes, self.functions.names())
            ta = el.elaborate(a)
            tb = el.elaborate(b)
            ta, tb = el.resolve(ta), el.resolve(tb)
            pair = name_free_dims(make_pair(ta, tb), el.u)
            return pair.args[0], pair.args[1]
        return self.term(a, shapes), self.term(b, shapes)


#: iterations a directed phase (expand, collect) may take per level of the input's nesting,
#: on top of the iteration limit: each level costs a few rounds, and directed rules terminate
ITERATIONS_PER_LEVEL = 4


def directed_limits(lim: Limits, f: Term) -> Limits:
    """``lim`` for the directed phases: when its iteration limit is the default
    (``lim.grows``), raised by :data:`ITERATIONS_PER_LEVEL` per level of ``f``'s depth, since
    their rounds grow with the depth of the input; e-nodes, time and memory stay as given, and
    an iteration limit the user set is kept as it is.

    >>> from rewrite.parse import parse
    >>> f = parse("tanh(W*tanh(V*x))", {"x": (3,)})
    >>> directed_limits(Limits(grows=True, iterations=60), f).iterations
    80
    >>> directed_limits(Limits(iterations=60), f).iterations
    60
    """
    if not lim.grows:
        return lim
    return Limits(iterations=lim.iterations + ITERATIONS_PER_LEVEL * depth(f), enodes=lim.enodes,
                  seconds=lim.seconds, memory_mb=lim.memory_mb, grows=False)


def depth(t: Term) -> int:
    """Levels of nesting of ``t`` (a leaf has depth 1), without recursion."""
    d: dict[Term, int] = {}
    for n in post_order(t):
        d[n] = 1 + max((d[a] for a in n.args), default=0)
    return d[t]


def stuck_construct(t: Term) -> str | None:
    """Why the derivation ``t`` (what the gradient's class extracts to when it holds no
    gradient) is stuck: a differential no rule expands, or an adjoint no rule collects.

    >>> from rewrite.terms import make, var
    >>> A, X = var("A", (2, 2)), var("X", (2, 3))
    >>> stuck_construct(make("grad", make("sum", make("d", make("kront", A, X))), make("d", X)))
    'no rule differentiates kront(·, ·) (in kront(A, X)); a rule file can add one (docs/rules.md)'
    """
    for n in post_order(t):
        if n.op == "d" and n.args[0].op != "var":
            e = n.args[0]
            what = "no rule differentiates"
        elif n.op == "adj" and n.args[0].op not in ("d", "var") and not contains(n.args[0], "adj"):
            e = n.args[0]
            what = "no adjoint rule collects the gradient through"
        else:
            continue
        name = e.attr if e.op == "fn" else NAMES.get(e.op, e.op)
        shown = {"add": "+", "mul": "*", "scale": "*", "had": ".*", "hdiv": "./", "t": "'",
                 "mpow": "^", "epow": ".^", "epows": ".^"}.get(e.op)
        form = f"'{shown}'" if shown else f"{name}({', '.join('·' for _ in e.args)})"
        return f"{what} {form} (in {to_text(e)}); a rule file can add one (docs/rules.md)"
    return None


def undeclared_hint(f: Term, shapes: dict | None) -> str:
    """What to do about an objective that is not 1×1: declare the names left undeclared (each
    was taken for a matrix of unknown size), else reduce it to a scalar.

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
    return (f"{listed} {verb} not declared, so {which} taken for a matrix of unknown size: declare "
            f"{'their shapes' if len(names) > 1 else 'its shape'} (API: shapes={{'x': ('n',)}} for a "
            "vector, () for a scalar; CLI: --shape x=n, --shape lam= for a scalar)")


def _check_shape(g: Term, x: Term, what: str) -> None:
    """A gradient has the shape of its variable and every node the shape its operator gives;
    anything else is an internal error (an ill-typed merge in the e-graph), never a result."""
    bad = ill_typed(g)
    if g.shape != x.shape or bad is not None:
        where = f" at {to_text(bad)}" if bad is not None else ""
        raise EngineError(f"internal: the {what} gradient {to_text(g)} is ill-typed{where} "
                          f"(shape {fmt_shape(g.shape)}, variable {fmt_shape(x.shape)}); "
                          "please report this input")


def _tidy_input(s: Session, f: Term, wrt: str, watch: bool = False) -> Term:
    """f with the tidy rules applied (A'' → A, c' → c for 1×1 c, 1*A → A, …), in a clean e-graph.

    Differentiation replaces what it expands (d(A') by d(A)'); if a subterm such as X'' were
    proven equal to X only later, the replaced d(X'') would become d(X) itself and the
    gradient could not be read off. So the objective is tidied first; when that changes it,
    the e-graph is reset and the tidied term is differentiated instead.
    """
    h = s.add(f, varying={wrt})
    if watch:
        s.watch("f", h)
    before = sum(s.matches.values())
    reason = s.saturate("tidy")
    if sum(s.matches.values()) == before:
        return f  # nothing was replaced: the e-graph is clean as it is
    try:
        tidied = s.extract(h) if reason == "saturated" else f
    except EngineError:
        tidied = f
    s.reset()
    return tidied if wrt in free_vars(tidied) else f


def max_term_nodes() -> int:
    """Largest input accepted, in operations (default 4,000; env ``TRACEGRAD_MAX_TERM_NODES``)."""
    import os

    try:
        return max(1, int(os.environ.get("TRACEGRAD_MAX_TERM_NODES", "4000")))
    except ValueError:
        return 4000


def _within_size(t: Term) -> Term:
    n, stack, limit = 0, [t], max_term_nodes()
    while stack:
        x = stack.pop()
        n += 1
        if n > limit:
            raise UnsupportedError(f"expression too large: more than {limit} operations "
                                   "(TRACEGRAD_MAX_TERM_NODES raises the limit)")
        stack.extend(x.args)
    return t


def canonical_sum(t: Term) -> Term:
    """Order the summands of the sum ``t`` canonically (like terms side by side), balanced;
    in sums nested inside ``t`` (in a product, say), move like terms next to the first of them.

    This is the n-ary sum kept outside the rules: commutativity of ``+`` is never a rule, so
    like terms (equal up to a number) meet only if they are neighbours. Summands ``0*A`` are
    dropped (one is kept when nothing else is left): the zero terms a derivation collects
    would otherwise stay in the e-graph as replaced nodes of every class they were added to.

    >>> from rewrite.parse import parse
    >>> from rewrite.printing import to_text
    >>> sh = {"X": (3, 3), "A": (3, 3)}
    >>> to_text(canonical_sum(parse("X*X' - A' + 2*(X*X') - A", sh)))
    "2*X*X' - A - A' + X*X'"
    >>> to_text(canonical_sum(parse("(X*X' - A' + 2*(X*X') - A)*(1 + X)", sh)))
    "(X*X' + 2*X*X' - A' - A)*(1 + X)"
    """
    def key(x: Term) -> tuple[str, str]:
        return (to_text(_like(x)), to_text(x))

    memo: dict[Term, Term] = {}

    def go(n: Term, top: bool) -> Term:
        out = memo.get(n)
        if out is not None and not top:
            return out
        if n.op == "add":
            terms = [go(x, False) for x in _summands(n)]
            terms = [x for x in terms if not _is_zero(x)] or terms[:1]
            if top:
                terms.sort(key=key)
            else:  # grouped by first appearance, otherwise in the order given
                first: dict[Term, int] = {}
                for x in terms:
                    first.setdefault(_like(x), len(first))
                terms.sort(key=lambda x: first[_like(x)])
            while len(terms) > 1:  # balanced, so that long sums stay shallow
                terms = [Term("add", (terms[i], terms[i + 1]), None, n.shape)
                         if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
            out = terms[0]
        elif n.args:
            args = tuple(go(a, False) for a in n.args)
            out = n if args == n.args else Term(n.op, args, n.attr, n.shape)
        else:
            out = n
        if not top:
            memo[n] = out
        return out

    return go(t, True)


def _is_zero(x: Term) -> bool:
    """``0*A`` (or the number 0)."""
    if x.op == "num":
        return x.attr == 0
    return x.op == "scale" and x.args[0].op == "num" and x.args[0].attr == 0


def _like(x: Term) -> Term:
    """A summand without its numeric coefficient: like terms have the same."""
    return x.args[1] if x.op == "scale" and x.args[0].op == "num" else x


def agree_numerically(a: Term, b: Term, registry=None, tries: int = 3) -> bool:
    """Whether ``a`` and ``b`` (same shape) have the same value at a random point (symbolic
    dimensions given small random sizes); True when no point in both domains is found.

    >>> from rewrite.parse import parse
    >>> sh = {"X": (3, 2), "A": (3, 3)}
    >>> agree_numerically(parse("(A + A')*X", sh), parse("A*X + A'*X", sh))
    True
    >>> agree_numerically(parse("(A + A')*X", sh), parse("2*A*X", sh))
    False
    """
    import numpy as np

    if a.shape != b.shape:  # shapes first: NumPy would broadcast a 1×1 against anything
        return False
    for va, vb in values_at_random_points(a, b, registry, tries):
        if va.shape != vb.shape:
            return False
        scale = max(1.0, float(np.max(np.abs(va))), float(np.max(np.abs(vb))))
        return bool(np.allclose(va, vb, rtol=1e-6, atol=1e-9 * scale))
    return True


def values_at_random_points(a: Term, b: Term, registry=None, tries: int = 3):
    """The values of ``a`` and ``b`` (same shape) at up to ``tries`` random points (symbolic
    dimensions given small random sizes, seed 0), skipping points outside either's domain."""
    import numpy as np

    from .numeric import evaluate, instantiate_dims, random_point

    both = make_pair(a, b)
    rng = np.random.default_rng(0)
    for _ in range(tries):
        dims = instantiate_dims(both, rng)
        env = random_point(both, rng, dims)
        try:
            with np.errstate(all="ignore"):
                va = evaluate(a, env, registry, dims)
                vb = evaluate(b, env, registry, dims)
        except np.linalg.LinAlgError:  # a singular matrix at this point: outside the domain
            continue
        if np.all(np.isfinite(va)) and np.all(np.isfinite(vb)):
            yield va, vb


def _apart_like_terms(t: Term) -> bool:
    """Whether some sum in ``t`` has like terms (equal up to a number) that are not neighbours.

    >>> from rewrite.parse import parse
    >>> sh = {"X": (3, 3), "A": (3, 3)}
    >>> _apart_like_terms(parse("(X - A + 2*X)*X", sh)), _apart_like_terms(parse("X + 2*X - A", sh))
    (True, False)
    """
    nodes = post_order(t)
    inner = {a for n in nodes if n.op == "add" for a in n.args if a.op == "add"}
    for n in nodes:
        if n.op == "add" and n not in inner:  # a whole sum, not a part of a bigger one
            cores = [_like(p) for p in _summands(n)]
            if any(c in cores[i + 2:] and cores[i + 1] != c for i, c in enumerate(cores)):
                return True
    return False


def make_pair(a: Term, b: Term) -> Term:
    """A throwaway node holding two terms so they are renamed consistently."""
    return Term("add", (a, b), None, a.shape)


_default: Engine | None = None
_default_lock = threading.Lock()


def default_engine() -> Engine:
    global _default
    with _default_lock:
        if _default is None:
            _default = Engine()
        return _default


__all__ = ["Engine", "default_engine", "var", "OPS"]
