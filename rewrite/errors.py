"""Typed errors: every failure the engine reports is a subclass of :class:`TracegradError`.

>>> issubclass(ShapeError, TracegradError)
True
>>> str(ParseError("unexpected ')'", position=(1, 5)))
"1:5: unexpected ')'"
"""

from __future__ import annotations


class TracegradError(Exception):
    """Base class of every error the engine raises on purpose; ``report`` is the run's report
    when a derivation got that far (a limit reached, a construct no rule covers), and
    ``session`` the derivation's e-graph when it was asked to be kept (``keep_egraph``), so
    that a failed derivation can be drawn."""

    kind = "error"
    session: object = None
    #: the expression text a positioned error is in (set by :func:`rewrite.parse.parse`), for
    #: showing the line with a caret under the position
    text: str | None = None

    def __init__(self, message: str, position: tuple[int, int] | None = None,
                 source: str | None = None, report: object = None) -> None:
        self.message = message
        self.position = position
        self.source = source
        self.report = report
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.source:
            where = f"{self.source}:"
        if self.position is not None:
            where += f"{self.position[0]}:{self.position[1]}: "
        elif where:
            where += " "
        return f"{where}{self.message}"

    def to_json(self) -> dict:
        pos = None
        if self.position is not None:
            pos = {"line": self.position[0], "column": self.position[1]}
        return {"kind": self.kind, "message": self.message, "position": pos}


class ParseError(TracegradError):
    """Malformed text: the position points at the offending character."""

    kind = "parse"


class ShapeError(TracegradError):
    """Operands whose shapes cannot agree (the message names both shapes)."""

    kind = "shape"


class UnsupportedError(TracegradError):
    """A construct the language or the engine does not support."""

    kind = "unsupported"


class WrtError(TracegradError):
    """The differentiation variable is not a single name occurring in the expression."""

    kind = "wrt"


class RuleFileError(TracegradError):
    """A rule file that cannot be loaded: syntax, unbound variable, shape, duplicate, ..."""

    kind = "rule-file"


class LimitError(TracegradError):
    """A run stopped on a limit before the canonical form was reached."""

    kind = "limit"


class CanonicalFormError(LimitError):
    """Saturation ended but no term of the form tr(G'*dX) was found: no guess is returned."""

    kind = "canonical-form"


class EngineError(TracegradError):
    """The e-graph stopped with an internal error (e.g. an ill-typed union from an unsound rule)."""

    kind = "engine"
