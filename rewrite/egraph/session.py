"""One e-graph session: borrow a loaded e-graph from a program, insert terms, run commands while
counting e-nodes and rule matches, extract, and give the e-graph back (its state discarded).
With a provenance program, it also records the derivation trail of watched terms.
"""

from __future__ import annotations

import itertools
import threading
import time
from contextlib import contextmanager

from ..errors import EngineError, UnsupportedError
from ..report import TIMING_KINDS, Limits, Report, rss_mb
from ..terms import CTOR_TO_OP, Term, var_shapes
from .bindings import eg
from .encode import str_literal, term_sexpr, to_term
from .program import Program
from .provenance import Growth, made_by, node_index, serialize
from .schema import GOAL, PROV, REACHED

#: larger e-graphs are not serialized per step to name the rules of the trail
TRAIL_MAX_ENODES = 20_000
# Handles of inserted terms ($t<n>) are numbered once per process, not per session: a pooled
# e-graph is reused through push/pop, and egglog can resolve a global whose name was bound in
# an earlier (popped) session to a stale binding, so that the inserted term silently differs
# from the one given. A name is never bound twice.
HANDLE_NUMBERS = itertools.count(1)


class Session:
    """One e-graph: insert terms, run phases under limits, extract."""

    def __init__(self, program: Program, limits: Limits, pooled: bool = True,
                 growth: bool = False) -> None:
        self.p = program
        self.codec = program.codec
        self.limits = limits
        # egglog e-graphs must be dropped on the thread that made them; a pool living in a
        # worker thread's locals would be dropped elsewhere when the thread ends, so only the
        # main thread pools (other threads replay the program per session).
        self._discard = pooled  # the caller does not keep this e-graph after close()
        pooled = pooled and threading.current_thread() is threading.main_thread()
        self.t0 = time.perf_counter()
        # seconds inside egglog by kind (report.TIMING_KINDS), and the reports that carry them
        self.timings = dict.fromkeys(TIMING_KINDS, 0.0)
        self._reports: list[Report] = []
        if pooled:
            self.eg = program.acquire()
        else:
            self.eg = eg.EGraph()
            self.eg.run_program(*program.commands)
            self.eg.run_program(*program.push)
        self.timings["checkpoint"] = time.perf_counter() - self.t0
        self._pooled = pooled
        self._healthy = True
        self.matches: dict[str, int] = {}
        self.iterations = 0
        self.history: list[dict] = []
        self.phases: list[dict] = []
        self.rss0 = rss_mb()
        self.var_shapes: dict[str, tuple] = {}
        # inserted terms bound in the share table (shared subterms, and the terms inserted with
        # ``reuse``) and their expressions: a later insertion refers to them
        self.known: dict[Term, str] = {}
        self._enodes: int | None = None  # the e-node count, while no call may have changed it
        #: whether the goal class held a term free of differentials after the last probing step
        self.reached = False
        self.goal: str | None = None  # the goal class's handle (add with ``goal``)
        # the derivation trail (provenance programs only): watched handles, extracted after
        # every iteration; a change of the extracted term is one step
        self.watched: dict[str, str] = {}
        self.trail: list[dict] = []
        self._last: dict[str, Term] = {}
        # with ``growth`` (a provenance program's e-graph kept for drawing): the e-nodes that
        # appeared and classes that merged per iteration (a snapshot per iteration)
        self.growth = Growth(TRAIL_MAX_ENODES) if program.provenance and growth else None

    def reset(self) -> None:
        """Forget every inserted term and run (back to the loaded rules); counters are kept."""
        self._enodes = None
        with self._timed("checkpoint"):
            self.eg.run_program(*self.p.pop)
            self.eg.run_program(*self.p.push)
        self.var_shapes, self.known = {}, {}
        self.watched, self._last = {}, {}
        self.goal, self.reached = None, False
        if self.growth is not None:  # the records were of the e-graph forgotten
            self.growth = Growth(TRAIL_MAX_ENODES)

    def close(self) -> None:
        """Give a pooled e-graph back, or drop a throwaway one now, on this thread (state
        discarded); an e-graph kept for inspection stays. The time it takes is added to the
        reports made so far (their ``checkpoint`` timing)."""
        t = time.perf_counter()
        if self._pooled:
            self._pooled = False
            if self._healthy:
                self.p.release(self.eg)
        elif self._discard:
            self._discard = False
            self.eg = None
        else:
            return
        spent = time.perf_counter() - t
        self.timings["checkpoint"] += spent
        for r in self._reports:
            r.timings["checkpoint"] = r.timings.get("checkpoint", 0.0) + spent

    @contextmanager
    def _timed(self, kind: str):
        """Adds the time the block takes to ``timings[kind]``."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.timings[kind] += time.perf_counter() - t

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, text: str, kind: str = "read", size: bool = False):
        """Parse and run egglog commands (their outputs; with ``size``, a ``print-size`` runs
        last in the same call)."""
        self._enodes = None
        with self._timed(kind):
            try:
                return self.eg.run_program(*self.eg.parse_program(text),
                                           *(self.p.print_size if size else ()))
            except BaseException as e:
                raise self._failure(e) from None

    def _failure(self, e: BaseException) -> BaseException:
        """The typed error for an exception raised by egglog (others are returned as they are).

        Symbolic dimensions are encoded as primes above 10⁶ (:class:`DimCodec`), so a shape
        that multiplies four of them (the vec of a Kronecker product of two n×m matrices)
        overflows egglog's 64-bit integers.
        """
        panic = type(e).__name__ == "PanicException"
        if not panic and not isinstance(e, eg.EggSmolError):
            return e
        first = str(e).splitlines()[0][:300]
        if "call of primitive * failed" in str(e):
            return UnsupportedError(
                "a dimension here is a product of more than three symbolic dimensions, beyond "
                "the engine's dimension encoding (64-bit); give some sizes as integers")
        if panic:
            self._healthy = False
            return EngineError(f"e-graph panic (an ill-typed union: is a rule unsound?): {first}")
        return EngineError(f"e-graph error: {first}")

    def add(self, t: Term, varying: set[str] = frozenset(), reuse: bool = False,
            goal: bool = False) -> str:
        """Insert a term; returns the name of its e-class handle.

        Every variable is marked free of differentials, and constant unless it is in
        ``varying`` (the variable of differentiation), and gets its shape: from one
        ``constvar``/``varyvar`` fact, unpacked by the helper rules before the next step.
        Subterms inserted before (shared ones, and terms inserted with ``reuse``) are referred
        to, not written again: each node written costs egglog a few microseconds. With
        ``goal``, its class is the one a step run with ``probe`` tests for a term free of
        differentials (:attr:`reached`).
        """
        cmds = []
        for name, shape in var_shapes(t).items():
            if name in self.var_shapes:
                continue
            self.var_shapes[name] = shape
            # one fact per variable (a command costs more than the rule that unpacks it)
            cmds.append(f"({'varyvar' if name in varying else 'constvar'} (Var {str_literal(name)}) "
                        f"{self.codec.encode(shape[0])} {self.codec.encode(shape[1])})")
        n = next(HANDLE_NUMBERS)
        handle = f"$t{n}"
        known = dict(self.known)  # kept only once the insertion succeeded
        binds, expr = term_sexpr(t, self.codec, known, bind_root=reuse)
        cmds += binds
        cmds.append(f"(let {handle} {expr})")
        if goal:
            if "free" not in self.p.analyses:
                raise EngineError("internal: a goal class needs a program with the collect or "
                                  "close phase")
            cmds.append(f"({GOAL} {handle})")
            self.goal = handle
        # the e-node count in the same call (every phase run starts by reading it)
        out = self.run("\n".join(cmds), "insert", size=True)
        self._enodes = self._count(out[-1].sizes)
        self.known = known
        if self.p.provenance:  # every e-node without a provenance yet is one of the input's
            self.step(self.p.origin)
        return handle

    def watch(self, label: str, handle: str) -> None:
        """Record the extracted term of ``handle`` (as ``label``) whenever an iteration changes
        it (provenance programs only); the entries go to :attr:`trail`."""
        if not self.p.provenance:
            raise EngineError("internal: a derivation trail needs a provenance program")
        self.watched[label] = handle
        self.snapshot("input", 0, {}, self.size())

    def snapshot(self, phase: str, iteration: int, fired: dict[str, int], n_nodes: int) -> None:
        """Append to :attr:`trail` every watched term whose extraction changed."""
        data = index = None  # the serialized e-graph, read once per iteration when needed
        for label, handle in self.watched.items():
            try:
                t = self.extract(handle)
            except EngineError:
                continue
            prev = self._last.get(label)
            if t == prev:
                continue
            self._last[label] = t
            if data is None and n_nodes <= TRAIL_MAX_ENODES:
                data = self.serialize()
                index = node_index(data)
            self.trail.append({"label": label, "phase": phase, "iteration": iteration,
                               "term": t, "fired": dict(fired),
                               "made_by": made_by(data, t, prev, index) if data else []})

    def size(self) -> int:
        """The number of term e-nodes (rows of the constructor tables)."""
        if self._enodes is None:
            with self._timed("read"):
                try:
                    out = self.eg.run_program(*self.p.print_size)
                except BaseException as e:
                    raise self._failure(e) from None
            self._enodes = self._count(out[0].sizes)
        return self._enodes

    def _count(self, sizes) -> int:
        counted = self.p.counted
        n = 0
        for name, k in sizes:
            c = counted.get(name)
            if c is None:
                c = counted[name] = name[0].isupper() and not name.startswith(PROV)
            if c:
                n += k
        return n

    def eclasses(self) -> int:
        with self._timed("read"):
            frozen = self.eg.freeze()
        outs = set()
        for name, fn in frozen.functions.items():
            if name in CTOR_TO_OP:
                outs.update(row.output for row in fn.rows)
        return len(outs)

    def step(self, cmds, settle: int = 0, probe: bool = False) -> tuple[bool, int, bool]:
        """Run parsed commands and count matches per rule; returns ``(changed, enodes,
        settled)``: whether the e-graph changed, its e-node count (read in the same egglog call)
        and, with ``settle`` (the number of ruleset runs in a round of a repeated schedule),
        whether the last round changed nothing: its runs and the run before them report no change
        (a saturation's last, unchanged iteration is not reported, so the run before is the
        previous round's), i.e. the repetition reached its fixpoint and running it again would
        be a no-op.

        With ``probe``, the same call brings the ``free`` analysis up to date and sets
        :attr:`reached`: whether the goal class (:meth:`add` with ``goal``) now holds a term
        free of differentials (one call instead of a step and a :meth:`is_free`).
        """
        self._enodes = None
        with self._timed("rules"):
            try:
                out = self.eg.run_program(*cmds, *(self.p.probe_goal if probe else ()),
                                          *self.p.print_size)
            except BaseException as e:
                raise self._failure(e) from None
        report = out[len(cmds) - 1].report
        if probe:
            self.reached = any(name == REACHED and k for name, k in out[-1].sizes)
        bases, matches = self.p.rule_base, self.matches
        for rname, n in report.num_matches_per_rule.items():
            base = bases.get(rname, 0)
            if base == 0:
                base = bases[rname] = None if rname.startswith("~") else \
                    rname[:-2] if rname.endswith("<-") else rname
            if base is not None:
                matches[base] = matches.get(base, 0) + n
        self._enodes = self._count(out[-1].sizes)
        # each access to ``iterations`` converts every iteration's report: read it only when
        # ``updated`` does not settle the answer
        changed, settled = report.updated, False
        if not changed:
            final = report.iterations[-1:]
            changed = bool(final) and final[0].rule_set_report.changed
        elif settle:
            tail = report.iterations[-settle - 1:]
            settled = len(tail) == settle + 1 and not any(
                it.rule_set_report.changed for it in tail)
        return changed, self._enodes, settled

    def extract(self, handle: str) -> Term:
        n = self._enodes
        out = self.run(f"(extract {handle})")
        self._enodes = n  # extraction reads the e-graph only
        best = out[0]
        return self.to_term(best.termdag, best.term)

    def to_term(self, dag, tid) -> Term:
        """The term ``tid`` of an extracted term DAG (:func:`rewrite.egraph.encode.to_term`)."""
        return to_term(dag, tid, self.var_shapes, self.codec)

    def is_free(self, handle: str) -> bool:
        """Whether the class of ``handle`` holds a term free of differentials (``isfree``)."""
        if "free" not in self.p.analyses:
            raise EngineError("internal: is_free needs a program with the collect or close phase")
        with self._timed("read"):
            try:
                self.eg.run_program(*self.p.catch_up_free,
                                    *self.eg.parse_program(f"(check (isfree {handle}))"))
                return True
            except eg.EggSmolError:
                return False

    def same_class(self, a: str, b: str) -> bool:
        with self._timed("read"):
            try:
                self.eg.run_program(*self.eg.parse_program(f"(check (= {a} {b}))"))
                return True
            except eg.EggSmolError:
                return False

    def serialize(self) -> dict:
        """The e-graph as plain data (:func:`rewrite.egraph.provenance.serialize`)."""
        return serialize(self.eg, self.codec, self.p.provenance)

    def report(self, reason: str, classes: bool = True) -> Report:
        """The run so far; closing the session adds the time it takes to the reports made.
        Without ``classes``, the e-classes are not counted (reported as 0): for a run whose
        report is absorbed into another's (:meth:`~rewrite.report.Report.absorb` keeps the
        e-classes of the report absorbing it), counting would read the whole e-graph for
        nothing."""
        eclasses, enodes = self.eclasses() if classes else 0, self.size()
        r = Report(reason, self.iterations, eclasses, enodes, time.perf_counter() - self.t0,
                   dict(self.matches), list(self.phases), list(self.history), dict(self.timings))
        self._reports.append(r)
        return r
