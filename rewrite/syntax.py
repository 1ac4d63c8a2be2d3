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

from functools import lru_cache

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

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

_TOKEN_NAMES = {
    "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "BACKSLASH": "'\\'",
    "LPAR": "'('", "RPAR": "')'",
    "COMMA": "','", "CIRCUMFLEX": "'^'", "QUOTE": "'''", "NUMBER": "a number", "NAME": "a name",
    "__ANON_0": "'.*'", "__ANON_1": "'./'", "__ANON_2": "'.^'", "$END": "end of input",
}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


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
        raise ParseError("empty expression", position=(1, 1))
    for i, ch in enumerate(text):
        if ord(ch) > 127:
            raise ParseError(
                f"unexpected character {ch!r} (U+{ord(ch):04X}); the language is plain ASCII",
                position=_position(text, i),
            )
    _check_depth(text)
    try:
        return _parser().parse(text)
    except UnexpectedEOF:
        raise ParseError("unexpected end of input; expected an operand",
                         position=_position(text, len(text.rstrip()))) from None
    except UnexpectedCharacters as e:
        raise ParseError(f"unexpected character {text[e.pos_in_stream]!r}",
                         position=(e.line, e.column)) from None
    except UnexpectedToken as e:
        tok: Token = e.token
        if tok.type == "$END":
            raise ParseError("unexpected end of input; expected an operand",
                             position=_position(text, len(text.rstrip()))) from None
        expected = sorted(_TOKEN_NAMES.get(x, x) for x in e.expected)
        hint = f"; expected {', '.join(expected[:6])}" if expected else ""
        raise ParseError(f"unexpected {tok.value!r}{hint}",
                         position=(tok.line, tok.column)) from None
    except UnexpectedInput as e:  # pragma: no cover - other lark errors
        raise ParseError(str(e).splitlines()[0], position=(e.line, e.column)) from None
    except RecursionError:
        raise ParseError("expression nested too deeply", position=(1, 1)) from None


def node_position(node) -> tuple[int, int] | None:
    """(line, column) of a tree or token, if known."""
    if isinstance(node, Token):
        return (node.line, node.column) if node.line is not None else None
    meta = getattr(node, "meta", None)
    if meta is not None and not meta.empty:
        return (meta.line, meta.column)
    return None
