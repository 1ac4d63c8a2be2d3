"""Printers: the expression language (valid input, minimal parentheses) and LaTeX.

>>> from rewrite.parse import parse
>>> to_text(parse("(A + A')*X - B", {"A": (3, 3), "X": (3, 2), "B": (3, 2)}))
"(A + A')*X - B"
>>> to_text(parse("X^2' + 1", {"X": (2, 2)}))
"X^2' + 1"
>>> to_latex(parse("tr(inv(X)*A')", {"X": (2, 2), "A": (2, 2)}))
'\\\\operatorname{tr}\\\\left(X^{-1} A^{\\\\top}\\\\right)'
"""

from __future__ import annotations

from fractions import Fraction

from .terms import Term

# precedence levels: 1 sum, 2 product, 3 unary minus, 4 postfix/power, 5 atom
NAMES = {"tr": "tr", "det": "det", "logdet": "logdet", "inv": "inv", "sum": "sum",
         "norm2": "norm2", "fro2": "fro2", "diag": "diag", "diagv": "diag", "vec": "vec",
         "d": "d"}


def fmt_number(v: Fraction) -> str:
    """Exact, parseable: ``2``, ``0.5``, ``-1.25``, ``1/3``.

    >>> fmt_number(Fraction(1, 3)), fmt_number(Fraction(-5, 4)), fmt_number(Fraction(7))
    ('1/3', '-1.25', '7')
    """
    if v.denominator == 1:
        return str(v.numerator)
    d = v.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1:
        s = f"{float(v):.15g}"
        if Fraction(s) == v:
            return s
    return f"{v.numerator}/{v.denominator}"


def _is_neg(t: Term) -> bool:
    return (t.op == "num" and t.attr < 0) or (
        t.op == "scale" and t.args[0].op == "num" and t.args[0].attr < 0)


def _negate(t: Term) -> Term:
    if t.op == "num":
        return Term("num", (), -t.attr, t.shape)
    c = -t.args[0].attr
    if c == 1:
        return t.args[1]
    return Term("scale", (Term("num", (), c, (1, 1)), t.args[1]), None, t.shape)


def _is_reciprocal(t: Term) -> bool:
    """``k ./ s`` for a number k and a 1×1 s: printed as a division by s (``/`` is never printed)."""
    return t.op == "hdiv" and t.shape == (1, 1) and t.args[0].op == "num"


def _summands(t: Term) -> list[Term]:
    out, stack = [], [t]
    while stack:
        n = stack.pop()
        if n.op == "add":
            stack.append(n.args[1])
            stack.append(n.args[0])
        else:
            out.append(n)
    return out


def _factors(t: Term) -> list[Term]:
    """Flatten matrix products and scalings (both print as ``*``)."""
    out, stack = [], [t]
    while stack:
        n = stack.pop()
        if n.op == "mul":
            stack.append(n.args[1])
            stack.append(n.args[0])
        elif n.op == "scale" and not (n.args[1].op == "fill"):
            stack.append(n.args[1])
            stack.append(n.args[0])
        else:
            out.append(n)
    return out


def _fill_text(t: Term) -> str:
    m, n = t.attr
    if m == 1 and n == 1:
        return "1"
    if n == 1:
        return f"ones({m})"
    if m == 1:
        return f"ones({n})'"
    return f"ones({m})*ones({n})'"


def to_text(t: Term) -> str:
    """Print in the expression language; parsing the output gives back the same meaning."""
    return _Text().go(t, 0)


class _Text:
    def go(self, t: Term, prec: int) -> str:
        s, p = self.render(t)
        return f"({s})" if p < prec else s

    def render(self, t: Term) -> tuple[str, int]:  # noqa: C901 - one branch per operator
        op = t.op
        if op in ("var", "pvar"):
            return t.attr, 5
        if op == "num":
            s = fmt_number(t.attr)
            return (s, 3) if t.attr < 0 else (s, 5)
        if op == "add":
            terms = [self.bcast(x) for x in _summands(t)]
            out = self.go(terms[0], 1)
            for x in terms[1:]:
                if _is_neg(x):
                    out += " - " + self.go(_negate(x), 2)
                else:
                    out += " + " + self.go(x, 2)
            return out, 1
        if op in ("mul", "scale"):
            if op == "scale" and t.args[1].op == "fill":
                c = t.args[0]
                return f"{self.go(c, 2)}*{_fill_text(t.args[1])}", 2
            fs = _factors(t)
            dens = [f for f in fs if _is_reciprocal(f)]
            if dens and len(dens) < len(fs):  # k*A*B ./ s: a scalar reciprocal prints as a division
                rest = [f for f in fs if not _is_reciprocal(f)]
                for f in dens:
                    if f.args[0].attr != 1:
                        rest.insert(0, f.args[0])
                if rest[0].op == "num" and rest[0].attr == -1 and len(rest) > 1:
                    head, rest = "-", rest[1:]
                else:
                    head = ""
                s = "*".join([self.go(rest[0], 2 if not head else 3)]
                             + [self.go(f, 3) for f in rest[1:]])
                s = head + s
                return s + "".join(" ./ " + self.go(f.args[1], 3) for f in dens), (3 if head else 2)
            if fs[0].op == "num" and fs[0].attr == -1 and len(fs) > 1:
                rest = "*".join(self.go(f, 3 if i == 0 else 3) for i, f in enumerate(fs[1:]))
                return "-" + rest, 3
            parts = [self.go(fs[0], 2)] + [self.go(f, 3) for f in fs[1:]]
            return "*".join(parts), 2
        if op in ("had", "hdiv"):
            sym = " .* " if op == "had" else " ./ "
            return self.go(self.bcast(t.args[0]), 2) + sym + self.go(self.bcast(t.args[1]), 3), 2
        if op == "t":
            return self.go(t.args[0], 4) + "'", 4
        if op == "mpow":
            return f"{self.go(t.args[0], 4)}^{self.expo(t.args[1])}", 4
        if op in ("epow", "epows"):
            return f"{self.go(t.args[0], 4)}.^{self.expo(self.bcast(t.args[1]))}", 4
        if op == "fn":
            return f"{t.attr}({self.go(t.args[0], 0)})", 5
        if op in ("eye", "ones"):
            return f"{op}({t.attr[0]})", 5
        if op == "fill":
            s = _fill_text(t)
            return s, (5 if "*" not in s and "'" not in s else (4 if "*" not in s else 2))
        if op == "grad":
            return f"grad({self.go(t.args[0], 0)}, {self.go(t.args[1], 0)})", 5
        return f"{NAMES[op]}({self.go(t.args[0], 0)})", 5

    def expo(self, e: Term) -> str:
        if e.op == "num":
            return fmt_number(e.attr) if e.attr.denominator == 1 else f"({fmt_number(e.attr)})"
        return self.go(e, 5)

    @staticmethod
    def bcast(t: Term) -> Term:
        """A 1×1 value spread by ``fill`` prints as the bare scalar inside ``+ .* ./``."""
        if t.op == "fill":
            return Term("num", (), Fraction(1), (1, 1))
        if t.op == "scale" and t.args[1].op == "fill":
            return t.args[0]
        return t


# ------------------------------------------------------------------------------ LaTeX ----
def to_latex(t: Term) -> str:
    """LaTeX: ``X^{\\top}``, ``\\odot``, ``\\operatorname{tr}``, ``X^{-1}``, ``\\log\\det``."""
    return _Latex().go(t, 0)


class _Latex(_Text):
    FUN = {"tr": r"\operatorname{tr}", "det": r"\det", "logdet": r"\log\det",
           "sum": r"\operatorname{sum}", "vec": r"\operatorname{vec}",
           "diag": r"\operatorname{diag}", "diagv": r"\operatorname{diag}"}

    def go(self, t: Term, prec: int) -> str:
        s, p = self.render(t)
        return rf"\left({s}\right)" if p < prec else s

    def render(self, t: Term) -> tuple[str, int]:
        op = t.op
        if op in ("var", "pvar"):
            name = t.attr
            if len(name) > 1 and not name[1:].isdigit():
                name = rf"\mathrm{{{name}}}" if "_" not in name else name
            return name, 5
        if op == "num":
            v = t.attr
            if v.denominator != 1 and "/" in fmt_number(v):
                s = rf"\frac{{{abs(v.numerator)}}}{{{v.denominator}}}"
                return ("-" + s, 3) if v < 0 else (s, 5)
            return fmt_number(v), (3 if v < 0 else 5)
        if op == "add":
            terms = [self.bcast(x) for x in _summands(t)]
            out = self.go(terms[0], 1)
            for x in terms[1:]:
                out += (" - " + self.go(_negate(x), 2)) if _is_neg(x) else (" + " + self.go(x, 2))
            return out, 1
        if op in ("mul", "scale"):
            if op == "scale" and t.args[1].op == "fill":
                return self.go(t.args[0], 2) + r" \mathbf{1}\mathbf{1}^{\top}", 2
            fs = _factors(t)
            dens = [f for f in fs if _is_reciprocal(f)]
            if dens and len(dens) < len(fs):  # k*A*B ./ s: a scalar reciprocal prints as a division
                rest = [f for f in fs if not _is_reciprocal(f)]
                for f in dens:
                    if f.args[0].attr != 1:
                        rest.insert(0, f.args[0])
                if rest[0].op == "num" and rest[0].attr == -1 and len(rest) > 1:
                    head, rest = "-", rest[1:]
                else:
                    head = ""
                s = "*".join([self.go(rest[0], 2 if not head else 3)]
                             + [self.go(f, 3) for f in rest[1:]])
                s = head + s
                return s + "".join(" ./ " + self.go(f.args[1], 3) for f in dens), (3 if head else 2)
            if fs[0].op == "num" and fs[0].attr == -1 and len(fs) > 1:
                return "-" + " ".join(self.go(f, 3) for f in fs[1:]), 3
            return " ".join([self.go(fs[0], 2)] + [self.go(f, 3) for f in fs[1:]]), 2
        if op == "had":
            return self.go(self.bcast(t.args[0]), 2) + r" \odot " + self.go(
                self.bcast(t.args[1]), 3), 2
        if op == "hdiv":
            return self.go(self.bcast(t.args[0]), 2) + r" \oslash " + self.go(
                self.bcast(t.args[1]), 3), 2
        if op == "t":
            return self.go(t.args[0], 5) + r"^{\top}", 4
        if op == "inv":
            return self.go(t.args[0], 5) + "^{-1}", 4
        if op == "mpow":
            return f"{self.go(t.args[0], 5)}^{{{to_latex(t.args[1])}}}", 4
        if op in ("epow", "epows"):
            return f"{self.go(t.args[0], 5)}^{{\\circ {to_latex(self.bcast(t.args[1]))}}}", 4
        if op == "fn":
            name = t.attr if t.attr in ("exp", "log", "sin", "cos", "tanh") else None
            head = f"\\{name}" if name else rf"\operatorname{{{t.attr}}}"
            return rf"{head}\left({self.go(t.args[0], 0)}\right)", 5
        if op == "eye":
            return rf"I_{{{t.attr[0]}}}", 5
        if op == "ones":
            return rf"\mathbf{{1}}_{{{t.attr[0]}}}", 5
        if op == "fill":
            return rf"\mathbf{{1}}_{{{t.attr[0]}}}\mathbf{{1}}_{{{t.attr[1]}}}^{{\top}}", 2
        if op == "norm2":
            return rf"\left\lVert {self.go(t.args[0], 0)} \right\rVert_2", 5
        if op == "fro2":
            return rf"\left\lVert {self.go(t.args[0], 0)} \right\rVert_F^2", 4
        if op == "d":
            return rf"\mathrm{{d}}{self.go(t.args[0], 5)}", 5
        head = self.FUN.get(op, rf"\operatorname{{{op}}}")
        return rf"{head}\left({self.go(t.args[0], 0)}\right)", 5
