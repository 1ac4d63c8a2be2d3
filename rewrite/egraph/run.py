"""Running one phase of a program in a session under :class:`~rewrite.report.Limits`: one
iteration at a time (a phase's directed block to its bounded fixpoint, then one step of its
equations), limits checked after every call into the e-graph, until the phase saturates, its
goal holds or a limit is reached. Returns a typed :class:`~rewrite.report.StopReason` and
records the phase and each iteration on the session.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..report import IterationRecord, Limits, StopReason, rss_mb
from .program import DIRECTED_CHUNK, DIRECTED_REPEAT
from .provenance import serialize
from .session import Session


def over(lim: Limits, s: Session, n_nodes: int) -> StopReason | None:
    """The limit reached with ``n_nodes`` e-nodes in the session's e-graph, or None: e-nodes,
    the session's wall-clock time (counted from its start, so that one derivation has one
    budget) and the growth of the process's memory."""
    if n_nodes > lim.enodes:
        return StopReason.NODE_LIMIT
    if time.perf_counter() - s.t0 > lim.seconds:
        return StopReason.TIME_LIMIT
    if lim.memory_mb and rss_mb() - s.rss0 > lim.memory_mb:
        return StopReason.MEMORY_LIMIT
    return None


def run_phase(s: Session, phase: str, limits: Limits | None = None,
              goal: Callable[[], bool] | None = None, cautious: bool = False,
              free_goal: bool = False) -> StopReason:
    """Run ``phase`` until it saturates (SATURATED), ``goal()`` holds after an iteration (GOAL)
    or a limit of ``limits`` (default: the session's) is reached. With ``free_goal``, the goal
    is that the session's goal class holds a term free of differentials, tested within each
    step's own call (:meth:`~rewrite.egraph.session.Session.step` with ``probe``).

    Limits are checked between calls into the e-graph, and one step of equations can multiply
    the e-graph (8,000 e-nodes to 40,000 in 12 s, once); a ``cautious`` run (an optional
    improvement, such as simplification) stops on NODE_LIMIT before a step that, growing as
    the last one did, would pass the node limit."""
    lim = limits or s.limits
    cmds = s.p.run_commands(phase)
    iters, n_nodes = 0, s.size()
    reason: StopReason | None = None
    traced = s.p.provenance
    growth = 1.0
    if s.growth is not None:
        # what changed since the last iteration recorded (an inserted term) is input
        snap = lambda: serialize(s.eg, s.codec, False)  # noqa: E731
        s.growth.begin(snap, n_nodes)
    while iters < lim.iterations:
        if cautious and n_nodes * growth > lim.enodes:
            reason = StopReason.NODE_LIMIT
            break
        # several steps per call in a directed phase, far from the limits (one per call when a
        # derivation is traced step by step)
        far = not traced and n_nodes * 64 < lim.enodes
        many = cmds.chunk is not None and far and iters + DIRECTED_CHUNK <= lim.iterations
        before = dict(s.matches) if traced else {}
        if cmds.block is not None:
            rounds = 0
            while rounds < DIRECTED_REPEAT:
                # whole chunks while far from the node limit, single rounds near it
                whole = n_nodes * 64 < lim.enodes
                changed, n_nodes, settled = s.step(cmds.block if whole else cmds.block_round,
                                                   settle=cmds.block_runs)
                rounds += DIRECTED_CHUNK if whole else 1
                reason = over(lim, s, n_nodes)
                if reason or not changed or settled:
                    break
            if reason:
                break
        before_nodes = n_nodes
        # a chunk whose last step changed nothing ended at the phase's fixpoint ("settled")
        changed, n_nodes, settled = (
            s.step(cmds.chunk, cmds.step_runs, probe=free_goal) if many
            else s.step(cmds.step, probe=free_goal))
        growth = n_nodes / max(before_nodes, 1)
        iters += DIRECTED_CHUNK if many else 1
        entry: IterationRecord = {"phase": phase, "iteration": iters, "enodes": n_nodes,
                                  "seconds": time.perf_counter() - s.t0}
        if traced:  # also e-classes and the matches of each rule in this iteration
            fired = {k: v - before.get(k, 0) for k, v in s.matches.items() if v > before.get(k, 0)}
            entry.update(eclasses=s.eclasses(), matches=fired)
            if s.growth is not None:
                entry.update(s.growth.record(len(s.history), snap, n_nodes))
            if s.watched:
                s.snapshot(phase, iters, fired, n_nodes)
        s.history.append(entry)
        if not changed:
            reason = StopReason.SATURATED
            break
        reason = over(lim, s, n_nodes)
        if reason:
            break
        if (free_goal and s.reached) or (goal is not None and goal()):
            reason = StopReason.GOAL
            break
        if settled:
            reason = StopReason.SATURATED
            break
    if reason is None:
        reason = StopReason.ITERATION_LIMIT
    s.iterations += iters
    s.phases.append({"phase": phase, "stop_reason": reason, "iterations": iters})
    return reason
