"""The derivations, on typed terms: which phases run in which e-graph session under which limits
(the schedules, as data below), the gradient (tidy the input, expand ``d``, collect adjoints
until the canonical form ``df = tr(G'*dX)`` is reached), the Jacobian (the same run with a
Jacobian root), the bounded simplification of a result and the proof of an equivalence.

A :class:`Pipeline` holds a rule set and its compiled programs (one per set of phases);
:class:`~rewrite.engine.Engine` wraps it with text input and result objects.

>>> from rewrite.stock import parse, stock_ruleset
>>> p = Pipeline(stock_ruleset())
>>> f = parse("tr(X'*A*X)", {"X": (3, 2), "A": (3, 3)})
>>> to_text(p.gradient(f, "X").term)
"(A + A')*X"
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from .algebra import (
    apart_like_terms,
    canonical_sum,
    depth,
    factor_common,
    gather_scalars,
    hadamard_monomials,
    is_zero,
    propagate_zeros,
    strip_identities,
    symmetric_transposes,
)
from .egraph import Program, Session, reads_back_as_itself, run_phase
from .errors import CanonicalFormError, EngineError, LimitError, TracegradError, UnsupportedError
from .numeric import agree_numerically
from .printing import NAMES, to_text
from .report import Limits, Report, StopReason
from .rulefile import PHASES, SUBSUMING_PHASES, Reach, Rule, RuleSet, may_match, operators, reach
from .shapes import fmt_shape
from .steps import Step, Steps, canonical_step, from_trail
from .terms import Term, contains, free_vars, ill_typed, make, num, post_order, size

log = logging.getLogger("rewrite.engine")

# ------------------------------------------------------------------------- schedules ----
#: a derivation's session: the input's tidy, then expand and collect; its simplification runs
#: in a session of its own. An input no tidy rule can match (most) gets a program of just
#: DIFFERENTIATION_PHASES: each rule compiled is copied with every session's checkpoint.
DERIVATION_PHASES = ("tidy", "expand", "collect")
DIFFERENTIATION_PHASES = ("expand", "collect")
#: one simplification round (the phases after any extra ones, such as close for simplify())
SIMPLIFY_PHASES = ("tidy", "simplify")
#: the phases an equivalence proof runs, in order: those of simplify(), in one e-graph where
#: tidy's directed rules add rather than replace (so that close's equations still see what they
#: match); the program is that of simplify(), compiled with tidy adding
EQUIVALENCE_PHASES = ("close", "tidy", "simplify")
EQUIVALENCE_PROGRAM = ("close", "tidy", "simplify")
#: the limits of a simplification round or an equivalence proof
SIMPLIFY_LIMITS = dict(iterations=8, enodes=10_000, seconds=2.0)
#: tidy's rules are directed and terminate; a product of k factors needs ~k rounds to push
#: a transpose to its leaves
TIDY_ITERATIONS = 32
#: the operators a derivation inserts besides the objective's: the request grad(d(f), d(X)) and
#: the adjoints that collect it; a Jacobian's request jac(d(F), d(X)) instead
GRADIENT_OPS = ("grad", "d", "adj")
JACOBIAN_OPS = ("jac", "d")
#: programs kept per pipeline (each holds its loaded e-graphs)
PROGRAMS = 256
#: iterations a directed phase (expand, collect) may take per level of the input's nesting,
#: on top of the iteration limit: each level costs a few rounds, and directed rules terminate
ITERATIONS_PER_LEVEL = 4


def directed_limits(lim: Limits, f: Term) -> Limits:
    """``lim`` for the directed phases: when its iteration limit is the default
    (``lim.grows``), raised by :data:`ITERATIONS_PER_LEVEL` per level of ``f``'s depth, since
    their rounds grow with the depth of the input; e-nodes, time and memory stay as given, and
    an iteration limit the user set is kept as it is.

    >>> from rewrite.stock import parse
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


def simplify_limits(phase: str) -> Limits:
    """The limits of ``phase`` in a simplification round."""
    return Limits(**{**SIMPLIFY_LIMITS, "iterations": TIDY_ITERATIONS}) if phase == "tidy" \
        else Limits(**SIMPLIFY_LIMITS)


#: the phase name a derivation's steps give the normal forms applied outside the rules
NORMAL_FORMS_PHASE = "normal forms"
#: the name the steps give the identities removed before a simplification round
#: (:func:`rewrite.algebra.strip_identities`)
IDENTITIES_REMOVED = "identities removed"
#: the normal forms applied after a round, in the order applied, by the names the steps give them
NORMAL_FORMS = ("symmetric transposes", "scalars gathered", "elementwise monomials", "zeros",
                "common factors")


def normal_forms(t: Term, symmetric: frozenset[str] = frozenset()) -> tuple[Term, tuple[str, ...]]:
    """``t`` through the normal forms kept outside the rules (:mod:`rewrite.algebra`), with the
    names (:data:`NORMAL_FORMS`) of those that changed it: transposes of symmetric terms
    dropped (``symmetric`` names variables declared symmetric), nested scalings made one, like
    factors of elementwise products merged or cancelled, zeros propagated, common factors of
    summands gathered.

    >>> from rewrite.stock import parse
    >>> out, used = normal_forms(parse("A*x + B*x", {"A": (2, 3), "B": (2, 3), "x": (3,)}))
    >>> to_text(out), used
    ('(A + B)*x', ('common factors',))
    """
    used = []
    for name, form in zip(NORMAL_FORMS, (lambda u: symmetric_transposes(u, symmetric),
                                         gather_scalars, hadamard_monomials, propagate_zeros,
                                         factor_common), strict=True):
        new = form(t)
        if new != t:
            used.append(name)
            t = new
    return t, tuple(used)


# ----------------------------------------------------------------------- diagnostics ----
def stuck_construct(t: Term) -> str | None:
    """Why the derivation ``t`` (what the gradient's class extracts to when it holds no
    gradient) is stuck: a differential no rule expands, or an adjoint no rule collects.

    >>> from rewrite.terms import var
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


def check_shape(g: Term, x: Term, what: str) -> None:
    """A gradient has the shape of its variable and every node the shape its operator gives;
    anything else is an internal error (an ill-typed merge in the e-graph), never a result."""
    bad = ill_typed(g)
    if g.shape != x.shape or bad is not None:
        where = f" at {to_text(bad)}" if bad is not None else ""
        raise EngineError(f"internal: the {what} gradient {to_text(g)} is ill-typed{where} "
                          f"(shape {fmt_shape(g.shape)}, variable {fmt_shape(x.shape)}); "
                          "please report this input")


@dataclass
class Derivation:
    """What a gradient derivation produced: ``term`` (G), the tidied objective ``f``, the run's
    report, the kept session (``keep_egraph``) and the recorded steps (``steps``)."""

    term: Term
    f: Term
    report: Report
    session: Session | None = None
    steps: list[Step] | None = None


def tidy_input(s: Session, f: Term, wrt: str, watch: bool = False) -> Term | None:
    """f with the tidy rules applied (A'' → A, c' → c for 1×1 c, 1*A → A, …), in a clean e-graph.

    Differentiation replaces what it expands (d(A') by d(A)'); if a subterm such as X'' were
    proven equal to X only later, the replaced d(X'') would become d(X) itself and the
    gradient could not be read off. So the objective is tidied first (unless the session's
    program has no tidy rules: none can match it, :func:`~rewrite.rulefile.may_match`, decided
    by :meth:`Pipeline.gradient`); when that changes it, the e-graph is reset
    and the tidied term is differentiated instead. None when the replacing
    tidy rules left f's class with nothing to extract (overlapping rules, as in
    ``(X*eye(3))'*X`` under ``inv(inv(·))``; the caller then tidies with rules that only add).
    """
    # the program has tidy's rules only when one may match f (Pipeline.gradient); without
    # them, running tidy would change nothing
    skip = "tidy" not in s.p.phases
    if not skip or watch:  # else f goes in with the request grad(d(f), d(X)), one call fewer
        h = s.add(f, varying={wrt}, reuse=True)  # the request refers to it
        if watch:
            s.watch("f", h)
    if skip:
        s.phases.append({"phase": "tidy", "stop_reason": StopReason.SATURATED, "iterations": 0})
        return f
    before = sum(s.matches.values())
    reason = run_phase(s, "tidy")
    if sum(s.matches.values()) == before:
        return f  # nothing was replaced: the e-graph is clean as it is
    try:
        tidied = s.extract(h) if reason == StopReason.SATURATED else f
    except EngineError:
        tidied = None
    s.reset()
    if tidied is None:
        return None
    return tidied if wrt in free_vars(tidied) else f


def differentiate(s: Session, root: str, f: Term, lim: Limits) -> tuple[StopReason, Report]:
    """Expand the differentials below ``root`` (to saturation: a limit is a LimitError), then
    collect until ``root`` (inserted as the session's goal class) holds a term free of
    differentials (the goal) or the run stops."""
    if s.goal != root:
        raise EngineError("internal: the request must be inserted as the goal class")
    directed = directed_limits(lim, f)
    reason = run_phase(s, "expand", directed)
    if reason != StopReason.SATURATED:
        rep = s.report(reason)
        raise LimitError(f"differentiation stopped on {reason} before finishing ({rep})", report=rep)
    reason = run_phase(s, "collect", directed, free_goal=True)
    return reason, s.report(reason)


# -------------------------------------------------------------------------- pipeline ----
class Pipeline:
    """A rule set with its compiled programs, and the derivations run on them."""

    def __init__(self, ruleset: RuleSet, limits: Limits | None = None) -> None:
        self.ruleset = ruleset
        self.limits = limits or Limits()
        self.programs: OrderedDict[tuple, Program] = OrderedDict()
        self.reaches: dict[tuple, Reach] = {}  # (phases, start operators) -> reach
        self.lock = threading.Lock()
        self._phase_rules: dict[str, list[Rule]] = {}

    def phase_rules(self, phase: str) -> list[Rule]:
        """The rules of ``phase``."""
        if phase not in self._phase_rules:
            self._phase_rules[phase] = [r for r in self.ruleset.rules
                                        if self.ruleset.phases[r.ruleset] == phase]
        return self._phase_rules[phase]

    @property
    def functions(self):
        """The declared functions (a :class:`~rewrite.functions.FunctionRegistry`)."""
        return self.ruleset.functions

    def program_for(self, phases: Iterable[str] = PHASES, traced: bool = False,
                    replacing: Iterable[str] = SUBSUMING_PHASES,
                    terms: Iterable[Term] | None = None, extra: Iterable[str] = ()) -> Program:
        """The rules of ``phases`` compiled for egglog, once per pipeline and set of rules.

        A session restores its e-graph from a checkpoint of the program, and every step tries
        every rule, at costs that grow with the rules compiled; so each kind of session uses a
        program of just the phases it runs and, given the ``terms`` it will insert (with the
        operators ``extra`` the engine adds, such as ``grad``), of just the rules that can
        match from them (:func:`rewrite.rulefile.reach`). ``traced`` compiles them with rule
        provenance per e-node (slower; for steps and kept e-graphs); the directed rules of the
        ``replacing`` phases replace what they match. The :data:`PROGRAMS` most recently used
        programs are kept.
        """
        phases = tuple(sorted(set(phases)))
        only = None
        if terms is not None:
            start = {"var", "num", *extra}
            for t in terms:
                start |= operators(t)
            rkey = (phases, frozenset(start))
            only = self.reaches.get(rkey)
            if only is None:
                if len(self.reaches) > 4096:  # bounded: distinct operator sets are few in practice
                    self.reaches.clear()
                only = self.reaches[rkey] = reach(self.ruleset, phases, start)
        key = (phases, traced, tuple(sorted(set(replacing))), only)
        with self.lock:
            program = self.programs.get(key)
            if program is None:
                program = self.programs[key] = Program(self.ruleset, traced, key[0], key[2], only)
                while len(self.programs) > PROGRAMS:
                    self.programs.popitem(last=False)
            else:
                self.programs.move_to_end(key)
            return program

    # -- gradient -----------------------------------------------------------------------
    def gradient(self, f: Term, wrt: str, limits: Limits | None = None, keep_egraph: bool = False,
                 steps: bool = False) -> Derivation:
        """G with df = tr(G'*d(wrt)) for a 1×1 ``f`` in which ``wrt`` occurs, simplified; shapes
        checked after collection and after simplification. With ``keep_egraph``, an error
        raised after the e-graph was made carries it (``error.session``)."""
        lim = limits or self.limits
        traced = keep_egraph or steps
        phases = DERIVATION_PHASES if may_match(self.phase_rules("tidy"), f) \
            else DIFFERENTIATION_PHASES
        s = Session(self.program_for(phases, traced, terms=(f,), extra=GRADIENT_OPS),
                    lim, pooled=not keep_egraph, growth=keep_egraph)
        try:
            return self._gradient(s, f, wrt, lim, keep_egraph, steps)
        except TracegradError as e:
            if keep_egraph and s.eg is not None:
                e.session = s
            raise

    def _gradient(self, s: Session, f: Term, wrt: str, lim: Limits, keep_egraph: bool,
                  steps: bool) -> Derivation:
        """See :meth:`gradient`."""
        trail: list[Step] = [Step("f", f, "input")]
        with s:
            x = next(t for t in post_order(f) if t.op == "var" and t.attr == wrt)
            tidied = tidy_input(s, f, wrt, watch=steps)
            if tidied is None:  # tidy with rules that only add: every class stays extractable
                added = self.run_round(f, ("tidy",), ("expand",), None, classes=False)
                tidied = added[0] if added is not None and wrt in free_vars(added[0]) else f
            f = tidied
            if steps:
                trail += from_trail(s.trail, "f", "f")[1:]
                trail.append(Step("df", make("d", f), "differentiate"))
                s.trail.clear()
            root = s.add(make("grad", make("d", f), make("d", x)), varying={wrt}, goal=True)
            s.root = root
            if steps:
                s.watch("df", s.add(make("d", f)))
                s.watch("grad", root)
            reason, rep = differentiate(s, root, f, lim)
            g = s.extract(root) if reason == StopReason.GOAL or s.is_free(root) else None
            stuck = stuck_construct(s.extract(root)) \
                if g is None and reason == StopReason.SATURATED else None
        if stuck is not None:
            raise UnsupportedError(f"{stuck}; no gradient is returned ({rep})", report=rep)
        if g is None or contains(g, "grad", "adj", "d"):
            why = ("saturation ended" if reason == StopReason.SATURATED
                   else f"the run stopped on {reason}")
            error = CanonicalFormError if reason == StopReason.SATURATED else LimitError
            raise error(f"{why} without reaching the canonical form df = tr(G'*d{wrt}); no "
                        f"gradient is returned ({rep})", report=rep)
        if steps:
            trail += from_trail(s.trail, "df", "df")[1:]
            at = len(trail)
        check_shape(g, x, "collected")
        g, srep = self.simplify_term(g, trail=trail if steps else None, classes=False)
        rep.absorb(srep)
        if is_zero(g) and g.shape == x.shape:  # a zero gradient is printed 0*X
            g = make("scale", num(0), x)
        check_shape(g, x, "simplified")
        if steps:  # df in canonical form with the final G, before the steps that polished G
            trail.insert(at, canonical_step(s.trail, g, wrt))
        return Derivation(g, f, rep, s if keep_egraph else None, Steps(trail) if steps else None)

    # -- Jacobian -----------------------------------------------------------------------
    def jacobian(self, F: Term, x: Term, limits: Limits | None = None) -> tuple[Term, Report]:
        """J with vec(dF) = J*vec(dx) (``x`` occurs in ``F``), collected and simplified."""
        lim = limits or self.limits
        with Session(self.program_for(DIFFERENTIATION_PHASES, terms=(F,), extra=JACOBIAN_OPS),
                     lim) as s:
            root = s.add(make("jac", make("d", F), make("d", x)), varying={x.attr}, goal=True)
            reason, rep = differentiate(s, root, F, lim)
            j = s.extract(root)
        if contains(j, "jac", "grad", "d"):
            why = ("saturation ended" if reason == StopReason.SATURATED
                   else f"the run stopped on {reason}")
            raise CanonicalFormError(
                f"{why} without reaching a Jacobian vec(dF) = J*vec(d{x.attr}): the rules of "
                f"jacobian.rules do not cover every construct of dF; no Jacobian is returned "
                f"({rep})", report=rep)
        j, srep = self.simplify_term(j, classes=False)
        return j, rep.absorb(srep)

    # -- simplification -----------------------------------------------------------------
    def simplify_term(self, t: Term, extra_phases: tuple[str, ...] = (),
                      trail: list[Step] | None = None,
                      symmetric: frozenset[str] = frozenset(),
                      classes: bool = True) -> tuple[Term, Report]:
        """Bounded tidy + simplify of ``t``; with ``trail``, its steps (as ``G``) are appended;
        ``symmetric`` names variables declared symmetric (their transposes are dropped). The
        report's e-classes are those of the first round, counted only with ``classes`` (not
        when the caller absorbs the report into another: :meth:`Session.report`).

        Sums are handed over with their summands in a canonical order, but a sum the rules
        build (by factoring, say) keeps the order they built it in, so like terms may end up
        apart: then the result is ordered and simplified once more (kept if smaller). A result
        that differs numerically from ``t`` is not used (REJECTED in the report).
        """
        out, rep = self.simplify_round(t, extra_phases, trail, classes=classes)
        # normal forms kept outside the rules, then one more round
        merged, used = normal_forms(out, symmetric)
        if used:
            if trail is not None:
                trail.append(Step("G", merged, NORMAL_FORMS_PHASE, used))
            again, more = self.simplify_round(merged, (), trail, classes=False)
            rep.absorb(more)
            out = again if size(again) <= size(merged) else merged
        if apart_like_terms(out):
            again, more = self.simplify_round(out, (), trail, classes=False)
            rep.absorb(more)
            if size(again) < size(out) or (size(again) == size(out) and not apart_like_terms(again)):
                out = again
        if out != t and not agree_numerically(t, out, self.functions, spd=symmetric):
            # every rule was checked numerically, yet a simplification changed the value: keep
            # the input, tidied if tidying alone keeps the value (a rule that is wrong only in
            # some context is a bug to report)
            tidied, _ = self.simplify_round(t, (), None, main=("tidy",), classes=False)
            kept = tidied if agree_numerically(t, tidied, self.functions, spd=symmetric) else t
            log.warning("a simplification changed the value (%s differs numerically from %s) "
                        "and was not used; is a rule unsound? (tracegrad check-rules)",
                        to_text(out), to_text(kept))
            out = kept
            rep.phases.append({"phase": "check", "stop_reason": StopReason.REJECTED,
                               "iterations": 0})
        return out, rep

    def simplify_round(self, t: Term, extra_phases: tuple[str, ...], trail: list[Step] | None,
                       main: tuple[str, ...] = SIMPLIFY_PHASES,
                       classes: bool = True) -> tuple[Term, Report]:
        """One bounded tidy + simplify (the ``main`` phases) of ``canonical_sum(t)`` in a fresh
        e-graph.

        The round starts from ``t`` without the identities a derivation leaves behind
        (:func:`~rewrite.algebra.strip_identities`: ``X''``, ``1*eye(n)*A``, ``A .* 1``): tidy
        would remove them too, but replacing rules that overlap on them (``1*A``, ``(A*B)'``,
        ``(c*A)'``) can leave a class with nothing to extract, and each costs the e-graph rule
        runs. If the result's class still has nothing to extract, the term is tidied with tidy
        only adding (always extractable; simplification is not run on such an e-graph, where
        every replaced form stays and feeds the equations), and the round is run again on the
        tidied term.
        """
        phases = (*extra_phases, *main)
        stripped = strip_identities(t)
        if trail is not None and stripped != t:
            before = Step("G", canonical_sum(t), "read off")
            if not trail or trail[-1].text != before.text:
                trail.append(before)
            trail.append(Step("G", canonical_sum(stripped), NORMAL_FORMS_PHASE,
                              (IDENTITIES_REMOVED,)))
        t = stripped
        out = self.run_round(t, phases, SUBSUMING_PHASES, trail, classes)
        if out is not None:
            return out
        tidied = self.run_round(t, ("tidy",), ("expand",), trail, classes)
        if tidied is None:  # not expected: an adding tidy leaves every class extractable
            return t, Report(StopReason.UNEXTRACTABLE, 0, 0, 0, 0.0, {}, [], [])
        again = self.run_round(tidied[0], phases, SUBSUMING_PHASES, trail, classes)
        if again is None:
            return tidied
        again[1].absorb(tidied[1])
        return again

    def run_round(self, t: Term, phases: tuple[str, ...], replacing: tuple[str, ...],
                  trail: list[Step] | None, classes: bool = True) -> tuple[Term, Report] | None:
        """``phases`` run on ``canonical_sum(t)`` in a fresh e-graph; None when the result's
        class has nothing left to extract.

        When no rule of the phases can match the term (:func:`~rewrite.rulefile.may_match`),
        the run could change nothing and the term is returned without one (unless the steps are
        recorded): its report has the phases saturated after 0 iterations, and as e-nodes and
        e-classes the term's distinct subterms, which the e-graph would have held. Likewise a
        leading phase none of whose rules can match the term is not run; its report says it
        saturated after 0 iterations.
        """
        t = canonical_sum(t)
        # leading phases none of whose rules can match t would change nothing: not run (still
        # compiled: a program per set of phases run would be compiled for many more inputs)
        lead = 0
        while trail is None and lead < len(phases) \
                and not may_match(self.phase_rules(phases[lead]), t):
            lead += 1
        skipped = [{"phase": ph, "stop_reason": StopReason.SATURATED, "iterations": 0}
                   for ph in phases[:lead]]
        if lead == len(phases):
            if reads_back_as_itself(t):
                n = len(post_order(t))
                return t, Report(StopReason.SATURATED, 0, n, n, 0.0, {}, skipped, [])
            lead, skipped = 0, []  # the extraction would respell t: run them all (rare)
        program = self.program_for(phases, traced=trail is not None, replacing=replacing, terms=(t,))
        with Session(program, Limits(**SIMPLIFY_LIMITS)) as s:
            s.phases += skipped
            h = s.add(t)
            if trail is not None:
                s.watch("G", h)
            reason = StopReason.SATURATED
            for ph in phases[lead:]:
                reason = run_phase(s, ph, simplify_limits(ph), cautious=True)
            try:
                out = s.extract(h)
            except EngineError:
                return None
            if trail is not None:  # a later round's input is the line before it, not read off
                steps = from_trail(s.trail, "G", "G")
                if trail and steps and steps[0].text == trail[-1].text:
                    steps = steps[1:]
                trail += steps
            return out, s.report(reason, classes)

    # -- equivalence ----------------------------------------------------------------------
    def prove_equal(self, a: Term, b: Term) -> tuple[bool, Report]:
        """Whether the rules prove ``a`` = ``b`` (same shape) within the limits, with the run's
        report: both in one e-class after the phases of simplify() (:data:`EQUIVALENCE_PHASES`),
        or else both simplified (:meth:`simplify_term` with close, as simplify() does) to one term
        or to terms proven equal. So anything simplify() reduces one side to, equivalent proves.
        """
        proved, rep = self.same_class(a, b)
        if proved:
            return True, rep
        sa, ra = self.simplify_term(a, ("close",))
        sb, rb = self.simplify_term(b, ("close",))
        rep.absorb(ra)
        rep.absorb(rb)
        if canonical_sum(sa) == canonical_sum(sb) or canonical_sum(sa) == canonical_sum(b) \
                or canonical_sum(a) == canonical_sum(sb):
            return True, rep
        if (sa, sb) != (a, b):
            proved, more = self.same_class(sa, sb)
            rep.absorb(more)
            if proved:
                return True, rep
        return False, rep

    def same_class(self, a: Term, b: Term) -> tuple[bool, Report]:
        """Whether the phases of :data:`EQUIVALENCE_PHASES`, run on ``a`` and ``b`` in one e-graph
        (tidy adding), put them in one e-class within the limits."""
        program = self.program_for(EQUIVALENCE_PROGRAM, replacing=(), terms=(a, b))
        with Session(program, Limits(**SIMPLIFY_LIMITS)) as s:
            ha, hb = s.add(a), s.add(b)
            reason = StopReason.SATURATED
            for ph in EQUIVALENCE_PHASES:
                if s.same_class(ha, hb):
                    return True, s.report(StopReason.GOAL)
                reason = run_phase(s, ph, goal=lambda: s.same_class(ha, hb), cautious=True)
            if s.same_class(ha, hb):
                return True, s.report(StopReason.GOAL)
            return False, s.report(reason)
