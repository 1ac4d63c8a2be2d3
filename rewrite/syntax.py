"""The concrete syntax of the expression language (README, *The language*), parsed with lark.

Precedence, high to low: postfix ``'``, ``^`` and ``.^`` (left to right); unary minus;
``*`` ``.*`` ``./`` ``/`` ``\\``; ``+`` ``-``.

>>> parse_tree("X^2'").pretty().split()[0]
'transpose'
>>> parse_tree("-2^2").data
'neg'
>>> parse_tree("a +")
Traceback (most recent call last):
...
rewrite.errors.ParseError: 1:4: unexpected end of input; expected an operand
"""

from __future__ import annotations

import io
import re
from functools import lru_cache

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .cache import digest, load_or_build
from .errors import ParseError

GRAMMAR = r"""
?start: sum

?sum: prod
    | sum "+" prod   -> add
    | sum "-" prod   -> sub

?prod: unary
     | prod "*" unary   -> mul
     | prod ".*" unary  -> had
     | prod "./" unary  -> hdiv
     | prod "/" unary   -> div
     | prod "\\" unary  -> ldiv

?unary: power
      | "-" unary       -> neg
      | "+" unary

?power: primary
      | power "'"           -> transpose
      | power "^" exponent  -> pow
      | power ".^" exponent -> epow

?exponent: primary
         | "-" primary  -> neg
         | "+" primary

?primary: NUMBER            -> number
        | NAME              -> name
        | NAME "(" args ")" -> call
        | "(" sum ")"

args: sum ("," sum)*

NAME: /[A-Za-z_][A-Za-z_0-9]*/
NUMBER: /(\d+(\.(?![*\/^'])\d*)?|\.\d+)([eE][-+]?\d+)?/

%import common.WS
%ignore WS
"""

MAX_LENGTH = 100_000  # characters; longer text is refused before parsing
MAX_DEPTH = 400

#: lark's token types, grouped for saying in words what the parser expected
_OPERANDS = {"NAME", "NUMBER", "LPAR"}
_OPERATORS = {"STAR", "SLASH", "BACKSLASH", "CIRCUMFLEX", "QUOTE", "__ANON_0", "__ANON_1",
              "__ANON_2"}


def _show(s: str) -> str:
    """A token as the user typed it, quoted readably: ``'*'``, ``"'"``, ``'\\'``."""
    return f'"{s}"' if "'" in s else f"'{s}'"


def parser_tables() -> bytes:
    """The expression parser, built from :data:`GRAMMAR` (~20 ms) and saved as lark saves a
    parser (its LALR tables)."""
    out = io.BytesIO()
    Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False).save(out)
    return out.getvalue()


@lru_cache(maxsize=1)
def _parser() -> Lark:
    """The expression parser, its tables from the start-up cache (``rewrite.cache``; keyed by
    the package's source, so by the grammar, and lark's version): loading them takes ~1 ms."""
    return Lark.load(io.BytesIO(load_or_build("grammar", digest([], ("lark",)), parser_tables)))


def _position(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def _check_depth(text: str) -> None:
    depth = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise ParseError(
                    f"expression nested too deeply (more than {MAX_DEPTH} parentheses)",
                    position=_position(text, i),
                )
        elif ch == ")":
            depth -= 1


def parse_tree(text: str) -> Tree:
    """Parse text into a lark tree; malformed text raises :class:`ParseError` with a position."""
    if not isinstance(text, str):
        raise ParseError(f"expected expression text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ParseError(f"expression longer than {MAX_LENGTH} characters", position=(1, 1))
    if not text.strip():
        raise ParseError("empty expression; write a 1×1 function of matrices, such as tr(X'*A*X)",
                         position=(1, 1))
    for i, ch in enumerate(text):
        if ord(ch) > 127:
            raise ParseError(
                f"unexpected character {ch!r} (U+{ord(ch):04X}); the language is plain ASCII",
                position=_position(text, i),
            )
    _check_depth(text)
    try:
        return _parser().parse(text)
    except UnexpectedCharacters as e:
        raise ParseError(f"unexpected character {_show(text[e.pos_in_stream])}"
                         + _foreign_hint(text), position=(e.line, e.column)) from None
    except (UnexpectedEOF, UnexpectedToken) as e:
        tok = getattr(e, "token", None)
        expected = set(getattr(e, "expected", ()) or ())
        if tok is None or tok.type == "$END":
            pos = len(text.rstrip())
            opened = _open_parens(text, pos)
            if opened and not expected & _OPERANDS:
                where = _position(text, opened[-1])
                raise ParseError(f"missing ')' to close '(' at {where[0]}:{where[1]}"
                                 + _foreign_hint(text), position=_position(text, pos)) from None
            raise ParseError("unexpected end of input; expected an operand"
                             + _foreign_hint(text), position=_position(text, pos)) from None
        pos = tok.start_pos if tok.start_pos is not None else 0
        words = _expected_words(expected, text, pos)
        hint = f"; expected {words}" if words else ""
        beside = pos if tok.type in _OPERANDS and "STAR" in expected else None
        raise ParseError(f"unexpected {_show(tok.value)}{hint}" + _foreign_hint(text, beside),
                         position=(tok.line, tok.column)) from None
    except UnexpectedInput as e:  # pragma: no cover - other lark errors
        raise ParseError(str(e).splitlines()[0], position=(e.line, e.column)) from None
    except RecursionError:
        raise ParseError("expression nested too deeply", position=(1, 1)) from None


def _open_parens(text: str, pos: int) -> list[int]:
    """Offsets of the '(' left open before offset ``pos``."""
    stack: list[int] = []
    for i, ch in enumerate(text[:pos]):
        if ch == "(":
            stack.append(i)
        elif ch == ")" and stack:
            stack.pop()
    return stack


def _expected_words(expected: set[str], text: str, pos: int) -> str:
    """What the parser could take at offset ``pos``, in words.

    >>> _expected_words({"NAME", "NUMBER", "LPAR", "MINUS"}, "a + ", 4)
    "an operand (a name, a number or '(')"
    >>> _expected_words({"STAR", "LPAR", "RPAR", "COMMA", "$END"}, "tr(a b", 5)
    "an operator, ')' to close '(' at 1:3 or ','"
    """
    parts = []
    if expected & {"NAME", "NUMBER"}:  # ('(' alone follows a name: a call)
        parts.append("an operand (a name, a number or '(')")
    elif expected & (_OPERATORS | {"PLUS", "MINUS"}):
        parts.append("an operator")
    opened = _open_parens(text, pos)
    if opened and "RPAR" in expected:
        where = _position(text, opened[-1])
        parts.append(f"')' to close '(' at {where[0]}:{where[1]}")
        if "COMMA" in expected and text[:opened[-1]].rstrip()[-1:].isalnum():  # in a call
            parts.append("','")
    elif not opened and "$END" in expected:
        parts.append("the end of the expression")
    return ", ".join(parts[:-1]) + (" or " if len(parts) > 1 else "") + parts[-1] if parts else ""


#: syntax of other languages people type, and how it is written here (the error path only)
_FOREIGN = [
    (re.compile(r"\b(?:np|numpy|jnp|torch)\.(?=\w)"), "", "no 'np.' prefix: functions are called by name"),
    (re.compile(r"(?<=[\w')])\.T\b"), "'", "NumPy's X.T is X'"),
    (re.compile(r"(?<=[\w')])\s*\^\s*T\b"), "'", "x^T is x'"),
    (re.compile(r"\s*\*\*\s*"), ".^", "'**' is '^' (matrix power) or '.^' (elementwise)"),
    (re.compile(r"\s*@\s*"), "*", "'@' is '*'"),
]
_SIDE_BY_SIDE = re.compile(r"(?<=[\w')])\s+(?=[\w(])")


def _foreign_hint(text: str, beside: int | None = None) -> str:
    """A note for syntax from NumPy, LaTeX or Python that the language writes differently, and
    the expression rewritten when that parses; empty when none applies. ``beside``: the offset
    of an operand written right after another one (a product without '*').

    >>> _foreign_hint("X.T @ A")
    "; NumPy's X.T is X', '@' is '*'; try X'*A"
    >>> _foreign_hint("x^T A x", beside=4)
    "; a product needs '*' (juxtaposition is not multiplication), x^T is x'; try x'*A*x"
    """
    notes, fixed = [], text
    if beside is not None:
        notes.append("a product needs '*' (juxtaposition is not multiplication)")
        fixed = fixed[:beside].rstrip() + "*" + fixed[beside:]
    for pattern, replacement, note in _FOREIGN:
        if pattern.search(fixed):
            notes.append(note)
            fixed = pattern.sub(replacement, fixed)
    if notes and _SIDE_BY_SIDE.search(fixed):
        fixed = _SIDE_BY_SIDE.sub("*", fixed)
        if beside is None:
            notes.append("a product needs '*' (juxtaposition is not multiplication)")
    if not notes:
        return ""
    try:
        _parser().parse(fixed)
    except (UnexpectedInput, RecursionError):
        return "; " + ", ".join(notes)
    return "; " + ", ".join(notes) + f"; try {' '.join(fixed.split())}"


def node_position(node) -> tuple[int, int] | None:
    """(line, column) of a tree or token, if known."""
    if isinstance(node, Token):
        return (node.line, node.column) if node.line is not None else None
    meta = getattr(node, "meta", None)
    if meta is not None and not meta.empty:
        return (meta.line, meta.column)
    return None
