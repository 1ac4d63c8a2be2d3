"""The limits of one playground request (:class:`Settings`), in a module of their own so that
the ``serve`` sub-command can show its defaults without importing the request handlers.

>>> Settings().limits().seconds
5.0
"""

from __future__ import annotations

from dataclasses import dataclass

from ..report import Limits


@dataclass(frozen=True)
class Settings:
    """The limits of one request: the input's size, and the engine's limits (``Limits``) for
    its run. ``max_dim`` bounds a numeric dimension (results are checked numerically at random
    points, so a huge dimension would allocate huge arrays)."""

    max_chars: int = 2000
    max_variables: int = 40
    max_dim: int = 1000
    seconds: float = 5.0
    enodes: int = 50_000
    memory_mb: float = 512.0
    iterations: int = 0  # 0: the engine's default

    def limits(self) -> Limits:
        """The engine limits of a request."""
        return Limits(iterations=self.iterations, enodes=self.enodes, seconds=self.seconds,
                      memory_mb=self.memory_mb)
