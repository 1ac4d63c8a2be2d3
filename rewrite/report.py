"""Run limits (with documented defaults) and the Report every run returns.

Defaults, each overridable by argument or environment variable:

================  =========  ==========================
limit             default    environment variable
================  =========  ==========================
iterations        60         ``TRACEGRAD_MAX_ITERATIONS``
e-nodes           50,000     ``TRACEGRAD_MAX_ENODES``
seconds           10         ``TRACEGRAD_TIMEOUT``
memory (MB)       2,048      ``TRACEGRAD_MAX_MEMORY_MB``
================  =========  ==========================

Every limit is checked after each call into the e-graph (a few rule applications), so a run
overshoots a limit by at most one such step. Seconds count from the start of a derivation's
e-graph; memory is the growth of the process's resident set over the same span.

>>> Limits(iterations=5).iterations
5
>>> Report("saturated", 3, 10, 12, 0.01).as_json()["stop_reason"]
'saturated'
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NotRequired, TypedDict

from .errors import UnsupportedError


class StopReason(StrEnum):
    """Why a run (a phase, or a whole derivation) stopped. A member is its string, so reports
    print and serialize as text (``"saturated"``, ``"node-limit"``, …).

    >>> StopReason.NODE_LIMIT == "node-limit", StopReason.NODE_LIMIT.is_limit
    (True, True)
    >>> StopReason.GOAL.is_limit
    False
    """

    #: the run reached what it was for (a gradient in canonical form, two terms in one class)
    GOAL = "goal"
    #: no rule changed the e-graph any more
    SATURATED = "saturated"
    ITERATION_LIMIT = "iteration-limit"
    NODE_LIMIT = "node-limit"
    TIME_LIMIT = "time-limit"
    MEMORY_LIMIT = "memory-limit"
    #: the result's e-class had nothing left to extract (a simplification round fell back)
    UNEXTRACTABLE = "unextractable"
    #: a simplification changed the value numerically and was not used
    REJECTED = "rejected"

    @property
    def is_limit(self) -> bool:
        """Whether a limit stopped the run (rather than its goal or saturation)."""
        return self in LIMIT_REASONS

    @property
    def finished(self) -> bool:
        """Whether the run ended on its own (its goal or saturation), not on a limit."""
        return self in (StopReason.GOAL, StopReason.SATURATED)


LIMIT_REASONS = frozenset({StopReason.ITERATION_LIMIT, StopReason.NODE_LIMIT,
                           StopReason.TIME_LIMIT, StopReason.MEMORY_LIMIT})


def _env_number(name: str, default: float, kind=float):
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise UnsupportedError(f"environment variable {name}={raw!r} is not a number") from None
    if value <= 0:
        raise UnsupportedError(f"environment variable {name} must be positive, got {raw}")
    return value


@dataclass(frozen=True)
class Limits:
    """Bounds for one equality-saturation run; reaching one is a reported stop reason.

    ``iterations`` bounds each phase. When it is left to its default (neither given nor set by
    ``TRACEGRAD_MAX_ITERATIONS``), ``grows`` is true: the directed phases of a derivation
    (expand, collect) may then take a few more iterations per level of the input's nesting
    (:func:`rewrite.engine.directed_limits`), since their rounds grow with its depth.
    """

    iterations: int = 0
    enodes: int = 0
    seconds: float = 0.0
    memory_mb: float = 0.0
    grows: bool | None = None

    def __post_init__(self) -> None:
        if self.grows is None:
            object.__setattr__(self, "grows", not self.iterations
                               and "TRACEGRAD_MAX_ITERATIONS" not in os.environ)
        if not self.iterations:
            object.__setattr__(self, "iterations",
                               int(_env_number("TRACEGRAD_MAX_ITERATIONS", 60, int)))
        if not self.enodes:
            object.__setattr__(self, "enodes", int(_env_number("TRACEGRAD_MAX_ENODES", 50_000, int)))
        if not self.seconds:
            object.__setattr__(self, "seconds", float(_env_number("TRACEGRAD_TIMEOUT", 10.0)))
        if not self.memory_mb:
            object.__setattr__(self, "memory_mb",
                               float(_env_number("TRACEGRAD_MAX_MEMORY_MB", 2048.0)))


_statm: tuple[int, int] | None = None  # (pid, descriptor of that process's /proc/self/statm)
_PAGE_MB = 0.0


def rss_mb() -> float:
    """This process's resident memory in MB (Linux ``/proc``; elsewhere the peak so far).

    The ``statm`` file stays open (reopened in a forked child) and is re-read in place: the
    limit check reads it after every call into the e-graph.

    >>> rss_mb() > 0
    True
    """
    global _statm, _PAGE_MB
    try:
        pid = os.getpid()
        if _statm is None or _statm[0] != pid:
            _PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20
            _statm = (pid, os.open("/proc/self/statm", os.O_RDONLY))
        return int(os.pread(_statm[1], 256, 0).split()[1]) * _PAGE_MB
    except (OSError, ValueError, IndexError, AttributeError):
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


class PhaseRecord(TypedDict):
    """One phase of a run: its name, why it stopped and how many iterations it took."""

    phase: str
    stop_reason: StopReason
    iterations: int


class IterationRecord(TypedDict):
    """One iteration of a phase: e-nodes and seconds (since the session began) after it; with
    a provenance program also the e-classes, each rule's matches in that iteration and how many
    e-nodes appeared and classes merged in it (None when the e-graph was too large to record)."""

    phase: str
    iteration: int
    enodes: int
    seconds: float
    eclasses: NotRequired[int]
    matches: NotRequired[dict[str, int]]
    appeared: NotRequired[int | None]
    merged: NotRequired[int | None]


#: where a run's time inside the e-graph engine goes (:attr:`Report.timings`): restoring the
#: loaded rules' checkpoint for a session and discarding the session's e-graph, inserting terms,
#: running rules (with the e-node count and the goal test that ride along with every step), and
#: reading results (extraction, sizes, e-class counts)
TIMING_KINDS = ("checkpoint", "insert", "rules", "read")


@dataclass
class Report:
    """What a run did: why it stopped, how far it went, which rules fired; ``timings`` are the
    seconds spent inside the e-graph engine by kind (:data:`TIMING_KINDS`; the rest of a call's
    time is Python)."""

    stop_reason: StopReason | str
    iterations: int
    eclasses: int
    enodes: int
    seconds: float
    matches: dict[str, int] = field(default_factory=dict)
    phases: list[PhaseRecord] = field(default_factory=list)
    history: list[IterationRecord] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "stop_reason": str(self.stop_reason),
            "iterations": self.iterations,
            "eclasses": self.eclasses,
            "enodes": self.enodes,
            "seconds": round(self.seconds, 6),
        }

    def absorb(self, more: Report) -> Report:
        """Add a later run's time, phases, history, matches and timings to this report; returns
        it.

        >>> a = Report("saturated", 2, 5, 9, 0.5, {"r": 1})
        >>> a.absorb(Report("saturated", 1, 3, 4, 0.25, {"r": 2, "s": 1})).matches
        {'r': 3, 's': 1}
        >>> a.seconds
        0.75
        """
        self.seconds += more.seconds
        self.phases += more.phases
        self.history += more.history
        for k, v in more.matches.items():
            self.matches[k] = self.matches.get(k, 0) + v
        for k, v in more.timings.items():
            self.timings[k] = self.timings.get(k, 0.0) + v
        return self

    def fired(self) -> dict[str, int]:
        """Rules that matched at least once, by name."""
        return {k: v for k, v in sorted(self.matches.items()) if v}

    def __str__(self) -> str:
        return (f"stop={self.stop_reason} iterations={self.iterations} e-classes={self.eclasses} "
                f"e-nodes={self.enodes} seconds={self.seconds:.4f}")
