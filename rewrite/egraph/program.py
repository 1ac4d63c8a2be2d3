"""A compiled program: the schema and a rule set's rules for some phases, parsed once, and the
loaded e-graphs that sessions borrow from a per-thread pool (a checkpoint restored per session).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import EngineError
from ..rulefile import PHASES, SUBSUMING_PHASES, Reach, RuleSet
from .bindings import eg
from .compile import compile_rules
from .encode import DimCodec
from .schema import ANALYSES, GOAL_RULES, declarations, helper_plan, helpers_of, rs_name, split_phase

#: rounds a phase's directed block may repeat per step, and rounds per egglog call
DIRECTED_REPEAT = 32
DIRECTED_CHUNK = 4


@dataclass(frozen=True)
class PhaseCommands:
    """The egglog commands of one iteration of a phase (:meth:`Program.run_commands`); each is a
    list of commands for one call. Helpers (shapes and the analyses the rules test) run before
    the phase's rulesets, or at the end of the directed block when there is one.

    ``step`` runs the phase's rulesets once (``step_runs`` of them). In a phase made only of
    directed rules (expand, collect, tidy), ``chunk`` is :data:`DIRECTED_CHUNK` steps in one
    call: the rounds such a phase needs grow with the depth of the input, and one call per round
    costs more than the round itself on small inputs (a chunk whose last round changed nothing
    reached the phase's fixpoint: ``settle`` of :meth:`~rewrite.egraph.session.Session.step`).

    In a phase that also has equations, its rulesets made only of directed rules (like
    ``identities-debris``) form a ``block`` (``block_runs`` rulesets) run to a bounded fixpoint
    (up to :data:`DIRECTED_REPEAT` rounds) before each step of the equations, so what they can
    conclude never waits behind the growth of the equational closure: ``block`` is
    :data:`DIRECTED_CHUNK` rounds in one call and ``block_round`` one, so that limits are
    checked in between.
    """

    step: list
    step_runs: int
    chunk: list | None = None
    block: list | None = None
    block_round: list | None = None
    block_runs: int = 0


class Program:
    """Declarations and compiled rules for the ``phases`` of one RuleSet (default: all), parsed
    once and replayed per e-graph.

    A session's e-graph is a checkpoint of the loaded program, taken and restored per session;
    both cost time in proportion to the rules compiled, so a session that runs a few phases
    uses a program of just those (:meth:`rewrite.pipeline.Pipeline.program_for`), and ``only``
    (a :class:`~rewrite.rulefile.Reach`) restricts it further to the rules that can match the
    operators that can occur, with typing and analysis rules for those operators alone.
    """

    def __init__(self, rs: RuleSet, provenance: bool = False,
                 phases: Iterable[str] = PHASES,
                 replacing: Iterable[str] = SUBSUMING_PHASES,
                 only: Reach | None = None) -> None:
        self.phases = tuple(phases)
        self.replacing = tuple(replacing)
        self.only = only
        rs = RuleSet([r for r in rs.rules if rs.phases[r.ruleset] in self.phases
                      and (only is None or r.name in only.rules)],
                     {n: ph for n, ph in rs.phases.items() if ph in self.phases},
                     rs.functions, rs.files, rs.templates)
        self.rs = rs
        self.provenance = provenance
        self.codec = DimCodec()
        names = list(rs.phases)
        self.helpers = helper_plan(rs, self.phases, self.replacing)
        combined = [kinds for block_step in self.helpers.values() for kinds in block_step]
        # every analysis a phase keeps up to date, and free after collect or close (Session.is_free)
        self.analyses = {k for kinds in combined for k in kinds}
        if {"collect", "close"} & set(self.phases):
            self.analyses.add("free")
        text = (declarations(names, self.analyses, combined, provenance,
                             only.ops if only is not None else None) + "\n"
                + compile_rules(rs, self.codec, provenance, self.replacing))
        self.text = text
        probe = eg.EGraph()
        try:
            # One command per line, parsed line by line: a parsed command keeps the text it was
            # parsed from for its source span, so parsing the whole program at once kept a copy
            # of all of it per command (~220 MB for the derivation's rules, ~170 MB more once
            # loaded into an e-graph); now each keeps its own line.
            self.commands = [c for line in text.split("\n") if line.strip()
                             for c in probe.parse_program(line)]
        except eg.EggSmolError as e:  # pragma: no cover - a compiler bug, not user input
            raise EngineError(f"internal: rules failed to compile: {e}") from None
        self.run_cache: dict[str, PhaseCommands] = {}
        self.pool = threading.local()
        self.push = probe.parse_program("(push)")
        self.pop = probe.parse_program("(pop)")
        self.print_size = probe.parse_program("(print-size)")
        self.parser = probe  # parses the phases' schedules (run_commands)
        self.counted: dict[str, bool] = {}  # table name -> whether its rows are term e-nodes
        self.rule_base: dict[str, str | None] = {}  # egglog rule name -> counted name
        self.origin = probe.parse_program("(run origin 1)") if provenance else None
        # brings isfree up to date (the phase that ran last may not have kept it so)
        self.catch_up_free = probe.parse_program(
            f"(run-schedule (saturate (run {ANALYSES['free'][1]})))")
        # ... and marks the goal class reached if it now holds a term free of differentials
        self.probe_goal = probe.parse_program(
            f"(run-schedule (saturate (run {ANALYSES['free'][1]})) (run {GOAL_RULES}))")

    def acquire(self):
        """An e-graph holding the declarations and rules, checkpointed with ``push``.

        Replaying the compiled program costs ~100 ms; restoring a checkpoint costs ~1 ms, so the
        main thread keeps a small pool of loaded e-graphs (egglog e-graphs are not shared across
        threads).
        """
        free = getattr(self.pool, "free", None)
        if free is None:
            free = self.pool.free = []
        if free:
            g = free.pop()
        else:
            g = eg.EGraph()
            g.run_program(*self.commands)
        g.run_program(*self.push)
        return g

    def release(self, g) -> None:
        """Restore the checkpoint of ``g`` and return it to this thread's pool."""
        g.run_program(*self.pop)
        self.pool.free.append(g)

    def parse(self, text: str) -> list:
        """Parsed egglog commands (as run-schedule text, the scheduler egglog's Python package
        ships: a run of it measured ~12 % less CPU time over the public cases than the same
        schedule built as egglog's own command, though it executes more instructions)."""
        return self.parser.parse_program(text)

    def run_commands(self, phase: str) -> PhaseCommands:
        """The egglog commands of one iteration of ``phase`` (:class:`PhaseCommands`), built
        once per program and phase."""
        if phase not in self.run_cache:
            if phase not in self.phases:
                raise EngineError(f"internal: phase {phase!r} is not compiled in this program "
                                  f"(phases: {', '.join(self.phases)})")
            directed, names = split_phase(self.rs, phase)
            block_kinds, step_kinds = self.helpers[phase]
            step_helpers = f"(saturate (run {helpers_of(step_kinds)}))"
            step = " ".join(f"(run {rs_name(n)})" for n in names)
            block = block_round = chunk = None
            if directed:
                helpers = f"(saturate (run {helpers_of(block_kinds)}))"
                runs = " ".join(f"(run {rs_name(n)})" for n in directed)
                block = self.parse(
                    f"(run-schedule (repeat {DIRECTED_CHUNK} (seq {runs} {helpers})))")
                block_round = self.parse(f"(run-schedule (seq {runs} {helpers}))")
                if set(step_kinds) <= set(block_kinds):
                    # a block call always ends with its helpers saturated: nothing to catch up
                    step_helpers = ""
            elif names and all(r.directed for r in self.rs.rules if r.ruleset in names):
                chunk = self.parse(
                    f"(run-schedule (repeat {DIRECTED_CHUNK} {step_helpers} (seq {step})))")
            self.run_cache[phase] = PhaseCommands(
                self.parse(f"(run-schedule {step_helpers} (seq {step}))"), len(names), chunk,
                block, block_round, len(directed))
        return self.run_cache[phase]
