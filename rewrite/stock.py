"""The shipped rule set: the stock rule files under ``rules/``, read once per process (through
the start-up cache), and the functions they declare. Every default — the rules an
:class:`~rewrite.engine.Engine` runs, the function registry of parsing, evaluation, sympy
interop and code generation — comes from here; the modules below take theirs as arguments.

>>> rs = stock_ruleset()
>>> rs.phases["collect"], rs.phases["trace"]
('collect', 'close')
>>> "sigmoid" in default_registry().names()
True
>>> parse("sum(sigmoid(X))", {"X": (2, 3)}).shape
(1, 1)
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from .cache import digest, load_or_build
from .errors import RuleFileError
from .functions import FunctionRegistry
from .parse import parse as parse_term
from .rulefile import RuleSet, load_file, load_text
from .terms import Term

#: the order the stock files are read in (a later file may use what an earlier one declares);
#: other ``.rules`` files in the folder follow, sorted by name
STOCK_ORDER = ("functions.rules", "differential.rules", "linear.rules", "trace.rules",
               "collect.rules", "simplify.rules")

#: libraries whose versions can change how the stock rules read (see :mod:`rewrite.cache`)
READERS = ("lark", "sympy", "numpy")


def stock_dir() -> Path:
    """Where the stock rule files live (installed package data, or the source checkout)."""
    here = Path(__file__).resolve().parent
    for cand in (here / "_rules", here.parent / "rules"):
        if cand.is_dir():
            return cand
    raise RuleFileError("stock rule files not found")  # pragma: no cover


def stock_files() -> list[Path]:
    """The stock rule files, in the order they are read."""
    d = stock_dir()
    names = [n for n in STOCK_ORDER if (d / n).exists()]
    names += sorted(p.name for p in d.glob("*.rules") if p.name not in STOCK_ORDER)
    return [d / n for n in names]


def read_stock_ruleset() -> RuleSet:
    """The stock rules read from their files (no cache; see :func:`stock_ruleset`)."""
    rs = RuleSet()
    for p in stock_files():
        rs = load_text(p.read_text(encoding="utf-8"), p.name, rs)
    return rs


@lru_cache(maxsize=1)
def stock_ruleset() -> RuleSet:
    """The stock rules shipped with the package, loaded once per process (and read from the
    files only when they, the package or its readers changed: :mod:`rewrite.cache`)."""
    return load_or_build("stock-rules", digest(stock_files(), READERS), read_stock_ruleset)


def with_user_files(paths: Iterable[str | Path], base: RuleSet | None = None) -> RuleSet:
    """``base`` (default: the stock rules) plus user rule files (their rules join the named
    rulesets)."""
    rs = base or stock_ruleset()
    for p in paths:
        rs = load_file(p, rs)
    return rs


def default_registry() -> FunctionRegistry:
    """The functions declared in the stock rule files."""
    return stock_ruleset().functions


def parse(text: str, shapes: dict | None = None) -> Term:
    """:func:`rewrite.parse.parse` with the stock functions declared (``exp``, ``sigmoid``, …)."""
    return parse_term(text, shapes, default_registry().names())


__all__ = ["READERS", "STOCK_ORDER", "default_registry", "parse", "read_stock_ruleset", "stock_dir",
           "stock_files", "stock_ruleset", "with_user_files"]
