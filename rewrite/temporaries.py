"""Named temporaries: an expression as a body plus ``where`` definitions of its repeated parts.

A deep expression repeats subexpressions (the gradient of an L-layer network spells the
activations of every layer again in every later layer, so its text grows quadratically in L).
:func:`name_temporaries` names each non-trivial subterm that would be printed more than once
(and, optionally, a very long one), in dependency order: ``t0, t1, ...`` for 1×1 values,
``T0, T1, ...`` otherwise (one counter, names of the expression's own variables skipped). Each
definition and the body are valid input in the expression language, and substituting the
definitions back gives the original term.

>>> from rewrite.parse import parse
>>> sh = {"A": (3, 2), "x": (2,)}
>>> w = name_temporaries(parse("tr(exp(A*x)*exp(A*x)') + sum(exp(A*x))", sh, ["exp"]))
>>> print(w.text)
tr(T0*T0') + sum(T0)
where T0 = exp(A*x)
>>> w.substituted() == parse("tr(exp(A*x)*exp(A*x)') + sum(exp(A*x))", sh, ["exp"])
True
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import ParseError, TracegradError
from .parse import parse
from .printing import latex_name, to_latex, to_text
from .terms import Term, free_vars, post_order

#: operators of leaves and constants, never worth a name
LEAVES = frozenset({"var", "pvar", "num", "eye", "ones", "fill"})
#: a repeated subterm printing shorter than this stays inline (``W1*x``, ``X'``)
MIN_CHARS = 8
#: a subterm printing longer than this is named even if it occurs once (None: never)
LONG_CHARS: int | None = None


@dataclass(frozen=True)
class Where:
    """``body where name = definition, ...``: definitions in dependency order (each uses only
    the variables of the expression and earlier names)."""

    body: Term
    definitions: tuple[tuple[str, Term], ...] = ()

    @property
    def text(self) -> str:
        """The body, then one ``where``/indented line per definition (commas between them)."""
        lines = [to_text(self.body)]
        for k, (name, t) in enumerate(self.definitions):
            head = "where " if k == 0 else "      "
            tail = "," if k < len(self.definitions) - 1 else ""
            lines.append(f"{head}{name} = {to_text(t)}{tail}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text

    def latex(self) -> str:
        """The body, then ``\\text{where } T_{0} = ...`` rows in an ``aligned`` block (the body
        alone when nothing is named)."""
        if not self.definitions:
            return to_latex(self.body)
        rows = [rf"&{to_latex(self.body)}"]
        for k, (name, t) in enumerate(self.definitions):
            head = r"\text{where } " if k == 0 else ""
            rows.append(rf"{head}{latex_name(name)} &= {to_latex(t)}")
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

    def substituted(self) -> Term:
        """The body with every name replaced by its definition (the original term)."""
        return substitute(self.body, self.definitions)

    def as_json(self) -> dict:
        return {"body": to_text(self.body),
                "definitions": [{"name": n, "expr": to_text(t), "shape": list(t.shape)}
                                for n, t in self.definitions],
                "text": self.text}


def substitute(body: Term, definitions: Iterable[tuple[str, Term]]) -> Term:
    """``body`` with the variables named in ``definitions`` replaced, later names first (a
    definition may use earlier names).

    >>> from rewrite.terms import make, var
    >>> t0 = var("t0", (1, 1))
    >>> to_text(substitute(make("add", t0, t0), [("t0", make("tr", var("A", (2, 2))))]))
    'tr(A) + tr(A)'
    """
    out = body
    for name, t in reversed(list(definitions)):
        out = _replace(out, name, t)
    return out


def _replace(t: Term, name: str, by: Term) -> Term:
    memo: dict[Term, Term] = {}
    for n in post_order(t):
        if n.op == "var" and n.attr == name:
            memo[n] = by
        elif n.args:
            args = tuple(memo[a] for a in n.args)
            memo[n] = n if args == n.args else Term(n.op, args, n.attr, n.shape)
        else:
            memo[n] = n
    return memo[t]


def uses(t: Term) -> dict[Term, int]:
    """How many times each distinct subterm is an argument of a distinct subterm (the root
    counts once): the number of places it is printed when no subterm is named.

    >>> from rewrite.terms import make, var
    >>> a = var("A", (2, 2))
    >>> uses(make("mul", a, a))[a]
    2
    """
    count: dict[Term, int] = {t: 1}
    for n in post_order(t):
        for a in n.args:
            count[a] = count.get(a, 0) + 1
    return count


def fresh_names(taken: Iterable[str]):
    """``(scalar, name)`` → a new name: ``t<k>`` for a 1×1 value, ``T<k>`` otherwise, one
    counter, never a name in ``taken``.

    >>> new = fresh_names({"T1"})
    >>> new(False), new(True), new(False)
    ('T0', 't2', 'T3')
    """
    taken = set(taken)
    counter = [0]

    def new(scalar: bool) -> str:
        while True:
            k = counter[0]
            counter[0] += 1
            name = f"{'t' if scalar else 'T'}{k}"
            if name not in taken and name.swapcase() not in taken:
                taken.add(name)
                return name

    return new


#: a flat answer printing longer than this is shown with its temporaries by default (CLI)
AUTO_CHARS = 160


def named_if_shorter(t: Term, auto_chars: int = AUTO_CHARS) -> Where | None:
    """``t`` with its temporaries named when it prints longer than ``auto_chars`` and naming its
    repeated parts saves at least a fifth of the text, else None: the CLI's default for
    ``--where``.

    >>> from rewrite.parse import parse
    >>> named_if_shorter(parse("tr(A)*B + tr(A)*B'", {"A": (2, 2), "B": (2, 2)})) is None
    True
    """
    flat = len(to_text(t))
    if flat <= auto_chars:
        return None
    w = name_temporaries(t)
    return w if w.definitions and len(w.text) <= 0.8 * flat else None


def name_temporaries(t: Term, min_chars: int = MIN_CHARS, long_chars: int | None = LONG_CHARS) -> Where:
    """Name the subterms of ``t`` that would be printed more than once (leaves, constants and
    subterms printing shorter than ``min_chars`` characters stay inline), and those printing
    longer than ``long_chars`` characters (when given); the root is the body.

    Arguments are decided before the terms that use them, so a definition prints with the
    names of its own repeated parts and every named subterm is printed exactly once.

    >>> from rewrite.parse import parse
    >>> name_temporaries(parse("tr(A) + tr(A)", {"A": (2, 2)})).definitions
    ()
    >>> print(name_temporaries(parse("tr(A)*B + tr(A)*B'", {"A": (2, 2), "B": (2, 2)}), 4).text)
    t0*B + t0*B'
    where t0 = tr(A)
    """
    count = uses(t)
    new = fresh_names(free_vars(t))
    rewritten: dict[Term, Term] = {}
    definitions: list[tuple[str, Term]] = []
    for n in post_order(t):
        args = tuple(rewritten[a] for a in n.args)
        m = n if args == n.args else Term(n.op, args, n.attr, n.shape)
        if n is not t and n.op not in LEAVES:
            chars = len(to_text(m))
            if (count[n] > 1 and chars >= min_chars) or (long_chars is not None and chars > long_chars):
                name = new(n.shape == (1, 1))
                definitions.append((name, m))
                m = Term("var", (), name, n.shape)
        rewritten[n] = m
    return Where(rewritten[t], tuple(definitions))


def parse_where(text: str, shapes: dict | None = None, functions: Iterable[str] = ()) -> Term:
    """The term of a ``body where name = expr, ...`` text (as :attr:`Where.text` prints it): the
    definitions are parsed in order, each name taking its definition's shape, and substituted
    into the body. Text without ``where`` is parsed as it is. Errors are typed, with their
    position in the whole text.

    >>> print(to_text(parse_where("T0 + T0'\\nwhere T0 = A*B", {"A": (2, 3), "B": (3, 2)})))
    A*B + (A*B)'
    >>> parse_where("T0 where T0 A", {"A": (2, 2)})
    Traceback (most recent call last):
    rewrite.errors.ParseError: 1:10: expected 'name = expression' after 'where', got 'T0 A'
    """
    found = re.search(r"\bwhere\b", text)
    if not found:
        return parse(text, shapes, functions)
    shapes = dict(shapes or {})
    definitions = []
    for start, part in split_top_level(text, found.end()):
        name, eq, expr = part.partition("=")
        lead = len(part) - len(part.lstrip())
        if not eq or not name.strip().isidentifier() or not expr.strip():
            raise with_text(ParseError(f"expected 'name = expression' after 'where', got {part.strip()!r}",
                                       position=line_col(text, start + lead)), text)
        name = name.strip()
        if name in shapes:
            raise with_text(ParseError(f"'{name}' is already a variable; a temporary needs a new name",
                                       position=line_col(text, start + lead)), text)
        t = parse_part(text, start + part.index("=") + 1, expr, shapes, functions)
        shapes[name] = t.shape
        definitions.append((name, t))
    return substitute(parse_part(text, 0, text[:found.start()], shapes, functions), definitions)


def parse_part(text: str, offset: int, part: str, shapes: dict, functions: Iterable[str]) -> Term:
    """``part`` (which starts at ``offset`` of ``text``) parsed; an error's position is moved
    into ``text``."""
    try:
        return parse(part, shapes, functions)
    except TracegradError as e:
        if e.position is not None:
            line, col = e.position
            lines = part.split("\n")
            e.position = line_col(text, offset + sum(len(x) + 1 for x in lines[:line - 1]) + col - 1)
        raise with_text(e, text) from None


def with_text(e: TracegradError, text: str) -> TracegradError:
    """``e`` with the text its position refers to."""
    e.text = text
    e.args = (str(e),)
    return e


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of character ``offset`` of ``text``.

    >>> line_col("ab\\ncd", 3)
    (2, 1)
    """
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def split_top_level(text: str, start: int = 0) -> list[tuple[int, str]]:
    """``text[start:]`` split at commas and line breaks outside parentheses (``kron(A, B)`` stays
    whole), each part with its offset in ``text``.

    >>> split_top_level("a, kron(A, B)\\nc")
    [(0, 'a'), (2, ' kron(A, B)'), (14, 'c')]
    """
    parts, depth, begin = [], 0, start
    for i in range(start, len(text)):
        ch = text[i]
        depth += (ch in "([") - (ch in ")]")
        if depth == 0 and ch in ",\n":
            parts.append((begin, text[begin:i]))
            begin = i + 1
    parts.append((begin, text[begin:]))
    return [(b, p) for b, p in parts if p.strip()]


__all__ = ["Where", "name_temporaries", "named_if_shorter", "AUTO_CHARS", "parse_where", "split_top_level",
           "line_col", "substitute", "uses", "fresh_names"]
