"""What the subcommands share: reading their arguments (shapes, limits, rule files) into an
engine, the JSON object of a gradient, the check line, and printing an error (one line on
stderr, exit code 2).

>>> parse_shapes(["X=n,k", "w=3", "lam="])
{'X': ('n', 'k'), 'w': (3,), 'lam': ()}
"""

from __future__ import annotations

import argparse
import json
import sys

from ..engine import Engine, default_engine
from ..errors import TracegradError
from ..report import Limits

#: --format values that print a generated module (rewrite.codegen)
CODE_FORMATS = ("numpy", "jax", "torch")


class Parser(argparse.ArgumentParser):
    """An argument parser whose own errors print the usage and exit with code 2."""


    def error(self, message: str):  # argparse's own errors: exit code 2, no traceback
        self.print_usage(sys.stderr)
        print(f"tracegrad: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parse_shapes(items: list[str] | None) -> dict:
    """``--shape NAME=DIMS`` arguments → the shapes of the API (TracegradError when malformed)."""
    out: dict = {}
    for item in items or []:
        if "=" not in item:
            raise TracegradError(f"--shape expects NAME=DIMS, got {item!r}")
        name, dims = item.split("=", 1)
        name = name.strip()
        if not name.isidentifier():
            raise TracegradError(f"--shape: bad variable name {name!r}")
        parts = [p.strip() for p in dims.split(",")] if dims.strip() else []
        if len(parts) > 2 or any(not p for p in parts):
            raise TracegradError(f"--shape {item!r}: give at most two comma-separated dimensions")
        out[name] = tuple(int(p) if p.isdigit() else p for p in parts)
    return out


LIMIT_OPTIONS = {"max_iterations": "iterations", "max_enodes": "enodes", "timeout": "seconds",
                 "max_memory": "memory_mb"}


def add_limit_options(sp) -> None:
    """The ``--max-iterations``, ``--max-enodes``, ``--timeout`` and ``--max-memory`` options."""
    g = sp.add_argument_group("limits (defaults from the TRACEGRAD_* environment variables)")
    g.add_argument("--max-iterations", type=int, metavar="N",
                   help="iterations per phase (default 60; TRACEGRAD_MAX_ITERATIONS)")
    g.add_argument("--max-enodes", type=int, metavar="N",
                   help="e-nodes (default 50,000; TRACEGRAD_MAX_ENODES)")
    g.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="seconds per derivation (default 10; TRACEGRAD_TIMEOUT)")
    g.add_argument("--max-memory", type=float, metavar="MB",
                   help="memory growth in MB (default 2,048; TRACEGRAD_MAX_MEMORY_MB)")


def engine_from(args) -> Engine:
    """The engine the arguments ask for: the default one, or one with their rule files and limits."""
    given = {}
    for opt, field in LIMIT_OPTIONS.items():
        value = getattr(args, opt, None)
        if value is not None:
            if value <= 0:
                raise TracegradError(f"--{opt.replace('_', '-')} must be positive, got {value:g}")
            given[field] = value
    if given or getattr(args, "rules", None):
        return Engine(getattr(args, "rules", None), limits=Limits(**given))
    return default_engine()


def grad_json(expr: str, wrt: str, g, checked: float | None = None) -> dict:
    """The object printed by ``grad --format json`` (one line of ``batch`` output too)."""
    out = {"expr": expr, "wrt": wrt, "gradient": str(g), "differential": str(g.differential),
           "latex": g.latex(), "report": g.report.as_json()}
    if checked is not None:
        out["check"] = {"relative_error": checked}
    return out


def print_check(checked: float | None) -> None:
    """The line ``--check`` prints on stderr when the result matched finite differences."""
    if checked is not None:
        print(f"check: matches finite differences (relative error {checked:.1e})", file=sys.stderr)


def caret(text: str, position: tuple[int, int], width: int = 76) -> str:
    """The line of ``text`` at ``position`` with a caret under the column (two lines, indented;
    a long line is cut around the column); empty when the position is not in the text.

    >>> print(caret("tr(X'*A*X", (1, 10)))
      tr(X'*A*X
               ^
    >>> [len(s) for s in caret("a + " * 40 + "(", (1, 161)).split("\\n")]
    [78, 78]
    """
    line, col = position
    lines = text.split("\n")
    if not (1 <= line <= len(lines) and 1 <= col <= len(lines[line - 1]) + 1):
        return ""
    src, at = lines[line - 1], col - 1
    if len(src) > width:
        start = max(0, min(at - width // 2, len(src) - width))
        if start:
            src, at = "..." + src[start + 3:], at - start
        if len(src) > width:
            src = src[:width - 3] + "..."
    return f"  {src}\n  {' ' * at}^"


def fail(err: TracegradError, fmt: str) -> int:
    """Print ``err`` on stderr (as JSON with ``--format json``); returns the exit code 2. In
    text, an error in an expression is followed by its line with a caret under the position."""
    if fmt == "json":
        print(json.dumps({"error": err.to_json()}), file=sys.stderr)
    else:
        label = "error" if err.kind == "error" else f"{err.kind} error"
        print(f"tracegrad: {label}: {err}", file=sys.stderr)
        shown = caret(err.text, err.position) if err.text and err.position else ""
        if shown:
            print(shown, file=sys.stderr)
    return 2
