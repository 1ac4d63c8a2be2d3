"""``tracegrad batch FILE|-``: many gradients, one job per input line, one JSON line per job.

A job is a JSON object ``{"expr": ..., "wrt": ..., "shapes": {...}}`` (optional ``"check": true``
verifies the gradient against finite differences) or the text form
``EXPR ; WRT ; X=n,k A=n,n`` (shapes optional). Blank lines and lines starting with ``#`` are
skipped. Each job prints one JSON line with its input ``line`` number and the fields of
``tracegrad grad --format json``, or ``{"line": N, "error": {"kind", "message", "position"}}``
when it fails. An error position locates the error in the input line, except for an error inside
the ``"expr"`` string of a JSON job, which is located in that string (line 1), as ``grad`` does.
A failing job does not stop the batch; the exit code is 0 when every job succeeded and 2 when any
line was malformed or failed. A progress bar is drawn on standard error when it is a terminal.

>>> import io
>>> out = io.StringIO()
>>> run_batch(["tr(A*X) ; X ; A=2,3 X=3,2", "tr(X ; X"], out)
2
>>> [sorted(json.loads(s)) for s in out.getvalue().splitlines()]
[['differential', 'expr', 'gradient', 'latex', 'line', 'report', 'wrt'], ['error', 'line']]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from ..engine import default_engine
from ..errors import ParseError, TracegradError
from ..verify import check as check_result
from .options import engine_from, grad_json, parse_shapes

JOB_KEYS = ("expr", "wrt", "shapes", "check")


@dataclass
class Job:
    """One line of a batch: what to differentiate, with respect to what, with which shapes."""

    line: int
    expr: str
    wrt: str
    shapes: dict
    check: bool = False
    column: int | None = None  # where the expression starts in the line (text form only)


def parse_job(text: str, line: int) -> Job | None:
    """A job from one input line (``None`` for a blank or comment line).

    >>> parse_job("tr(X'*A*X) ; X ; X=n,k A=n,n", 1).shapes
    {'X': ('n', 'k'), 'A': ('n', 'n')}
    >>> parse_job('{"expr": "sum(x)", "wrt": "x", "shapes": {"x": [3]}}', 2).shapes
    {'x': (3,)}
    >>> parse_job("tr(X)", 3)
    Traceback (most recent call last):
    ...
    rewrite.errors.ParseError: 3:1: expected 'EXPR ; WRT ; NAME=DIMS ...' or a JSON object
    """
    s = text.strip()
    if not s or s.startswith("#"):
        return None
    if s.startswith(("{", "[", "\"")):
        return _json_job(s, line, len(text) - len(text.lstrip()))
    parts = text.split(";")
    if len(parts) not in (2, 3):
        raise ParseError("expected 'EXPR ; WRT ; NAME=DIMS ...' or a JSON object", position=(line, 1))
    expr, wrt = parts[0].strip(), parts[1].strip()
    if not expr:
        raise ParseError("empty expression", position=(line, 1))
    shapes: dict = {}
    if len(parts) == 3:
        col = len(parts[0]) + len(parts[1]) + 3
        for item in parts[2].split():
            shapes.update(_shape_item(item, line, col + parts[2].index(item)))
    return Job(line, expr, wrt, shapes, column=len(parts[0]) - len(parts[0].lstrip()))


def _shape_item(item: str, line: int, col: int) -> dict:
    try:
        return parse_shapes([item])
    except TracegradError as e:
        raise ParseError(e.message, position=(line, col)) from None


def _json_job(s: str, line: int, indent: int) -> Job:
    try:
        obj = json.loads(s)
    except json.JSONDecodeError as e:
        raise ParseError(f"malformed JSON: {e.msg}", position=(line, indent + e.colno)) from None
    if not isinstance(obj, dict):
        raise ParseError("a JSON job must be an object", position=(line, indent + 1))
    unknown = sorted(set(obj) - set(JOB_KEYS))
    if unknown:
        raise ParseError(f"unknown key(s) {', '.join(map(repr, unknown))}; a job has "
                         f"{', '.join(JOB_KEYS)}", position=(line, indent + 1))
    for key in ("expr", "wrt"):
        if not isinstance(obj.get(key), str):
            raise ParseError(f"{key!r} must be a string", position=(line, indent + 1))
    shapes = obj.get("shapes", {})
    if not isinstance(shapes, dict):
        raise ParseError("'shapes' must be an object NAME -> dimensions", position=(line, indent + 1))
    out: dict = {}
    for name, dims in shapes.items():
        if isinstance(dims, str):
            out.update(_shape_item(f"{name}={dims}", line, indent + 1))
            continue
        ok = isinstance(dims, list) and len(dims) <= 2 and all(
            (isinstance(d, int) and not isinstance(d, bool) and d > 0)
            or (isinstance(d, str) and d.isidentifier()) for d in dims)
        if not ok or not name.isidentifier():
            raise ParseError(f"shape of {name!r} must be a list of at most two positive integers or "
                             f"dimension names, got {json.dumps(dims)}", position=(line, indent + 1))
        out[name] = tuple(dims)
    check = obj.get("check", False)
    if not isinstance(check, bool):
        raise ParseError("'check' must be true or false", position=(line, indent + 1))
    return Job(line, obj["expr"], obj["wrt"], out, check)


def run_job(job: Job, engine, check: bool = False) -> dict:
    """The ``grad --format json`` object of one job (errors propagate)."""
    g = engine.gradient(job.expr, job.wrt, job.shapes)
    checked = check_result(g) if (check or job.check) else None
    return grad_json(job.expr, job.wrt, g, checked)


def _error(line: int, err: BaseException) -> dict:
    if isinstance(err, TracegradError):
        return {"line": line, "error": err.to_json()}
    if isinstance(err, RecursionError):
        msg = "expression too deeply nested"
    else:
        msg = f"{type(err).__name__}: {err}"
    return {"line": line, "error": {"kind": "internal", "message": msg, "position": None}}


class Progress:
    """A one-line progress bar on a terminal stream (nothing on a pipe or file)."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30) -> None:
        self.total, self.width, self.done, self.failed = total, width, 0, 0
        self.stream = stream if stream is not None else sys.stderr
        self.active = bool(getattr(self.stream, "isatty", lambda: False)()) and total > 0

    def step(self, ok: bool) -> None:
        self.done += 1
        self.failed += not ok
        if self.active:
            fill = self.width * self.done // self.total
            self.stream.write(f"\rbatch [{'#' * fill}{'.' * (self.width - fill)}] "
                              f"{self.done}/{self.total} ({self.failed} failed)")
            self.stream.flush()

    def close(self) -> None:
        if self.active:
            self.stream.write("\n")
            self.stream.flush()


def run_batch(lines: Iterable[str], out: TextIO, engine=None, check: bool = False,
              progress_stream: TextIO | None = None) -> int:
    """Run every job of ``lines``, writing one JSON line per job to ``out``; 0 if all succeeded,
    else 2."""
    if engine is None:
        engine = default_engine()
    numbered = [(i, s) for i, s in enumerate(lines, 1) if s.strip() and not s.lstrip().startswith("#")]
    bar = Progress(len(numbered), progress_stream)
    status = 0
    try:
        for lineno, text in numbered:
            try:
                job = parse_job(text.rstrip("\n"), lineno)
                assert job is not None
                try:
                    result = {"line": lineno, **run_job(job, engine, check)}
                except TracegradError as e:
                    if job.column is not None and e.position is not None and e.position[0] == 1:
                        e.position = (lineno, e.position[1] + job.column)
                    raise
            except Exception as e:  # a failing job must not stop the batch
                result = _error(lineno, e)
            ok = "error" not in result
            status = status if ok else 2
            out.write(json.dumps(result) + "\n")
            out.flush()
            bar.step(ok)
    finally:
        bar.close()
    return status


def cmd_batch(args) -> int:
    """The ``batch`` subcommand: ``args.file`` (``-`` for standard input), ``args.rules``,
    ``args.check``."""
    engine = engine_from(args)
    if args.file == "-":
        lines = sys.stdin.read().splitlines()
    else:
        try:
            with open(args.file, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise TracegradError(f"cannot read {args.file}: {e}") from None
    return run_batch(lines, sys.stdout, engine, check=args.check)


__all__ = ["Job", "Progress", "cmd_batch", "parse_job", "run_batch", "run_job"]
