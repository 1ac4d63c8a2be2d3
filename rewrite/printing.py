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
         "d": "d", "softmax": "softmax", "logsumexp": "logsumexp"}


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


def _leads_with_minus(t: Term) -> bool:
    """Whether ``t`` prints with a leading minus (``-2*A``, ``-y*x'``)."""
    if t.op in ("mul", "scale"):
        t = _numbers_first(_factors(t))[0]
    return _is_neg(t)


def _negate(t: Term) -> Term:
    if t.op == "num":
        return Term("num", (), -t.attr, t.shape)
    c = -t.args[0].attr
    if c == 1:
        return t.args[1]
    return Term("scale", (Term("num", (), c, (1, 1)), t.args[1]), None, t.shape)


def _numbers_first(fs: list[Term]) -> list[Term]:
    """Numbers of a product multiplied together in front (a number is a scalar: it commutes).

    >>> from rewrite.parse import parse
    >>> to_text(parse("c*2*(A*3)", {"c": (), "A": (2, 2)}))
    '6*c*A'
    """
    nums = [f for f in fs if f.op == "num"]
    if not nums or (len(nums) == 1 and fs[0] is nums[0] and nums[0].attr != 1):
        return fs
    c = Fraction(1)
    for f in nums:
        c *= f.attr
    rest = [f for f in fs if f.op != "num"]
    if not rest:
        return [Term("num", (), c, (1, 1))]
    return rest if c == 1 else [Term("num", (), c, (1, 1)), *rest]


def _is_reciprocal(t: Term) -> bool:
    """``k ./ s`` for a number k and a 1×1 s: printed as a division by s (``/`` is never printed)."""
    return t.op == "hdiv" and t.shape == (1, 1) and t.args[0].op == "num"


def _matrix_product(t: Term) -> bool:
    """A product of two or more factors that are not 1×1 (whose grouping with ``.*`` matters;
    a scalar factor commutes with the Hadamard product)."""
    return t.op in ("mul", "scale") and sum(f.shape != (1, 1) for f in _factors(t)) > 1


def summands(t: Term) -> list[Term]:
    """The summands of a (nested) sum, left to right."""
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
    """Flatten matrix products and scalings (both print as ``*``).

    A scalar coefficient that is itself a matrix product (``a'*X*b``) stays one factor, so it
    prints in parentheses: ``2*(a'*X*b)*a*b'``.
    """
    out: list[Term] = []

    def go(n: Term, top: bool) -> None:
        if n.op == "mul" and (top or n.shape != (1, 1)):
            go(n.args[0], False)
            go(n.args[1], False)
        elif n.op == "scale" and n.args[1].op != "fill":
            go(n.args[0], False)
            go(n.args[1], False)
        else:
            out.append(n)

    go(t, True)
    return out


def dim_call(name: str, d) -> str:
    """``ones(d)`` or ``eye(d)`` in the language; a dimension that is a product (``n*p``, the
    rows of a Jacobian) has no name of its own, so its ones or identity is the Kronecker
    product of its factors'.

    >>> dim_call("ones", 3), dim_call("ones", "n*p"), dim_call("eye", "n*p")
    ('ones(3)', 'kron(ones(n), ones(p))', 'kron(eye(n), eye(p))')
    """
    parts = d.split("*") if isinstance(d, str) else [d]
    out = f"{name}({parts[0]})"
    for p in parts[1:]:
        out = f"kron({out}, {name}({p}))"
    return out


def fill_text(m, n) -> str:
    """An m×n block of ones in the language: ``1``, ``ones(m)``, ``ones(n)'``, ``ones(m)*ones(n)'``.

    >>> fill_text("n*p", "n*n")
    "kron(ones(n), ones(p))*kron(ones(n), ones(n))'"
    """
    if m == 1 and n == 1:
        return "1"
    if n == 1:
        return dim_call("ones", m)
    if m == 1:
        return dim_call("ones", n) + "'"
    return dim_call("ones", m) + "*" + dim_call("ones", n) + "'"


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
            terms = self.summands(t)
            out = self.go(terms[0], 1)
            for x in terms[1:]:
                if _is_neg(x):
                    out += " - " + self.go(_negate(x), 2)
                    continue
                s = self.go(x, 2)
                # a product led by a minus sign (-y*x'): a - y*x' rather than a + -y*x'; unary
                # minus binds looser than ^ and ' and applies to the whole product
                out += " - " + s[1:] if s.startswith("-") else " + " + s
            return out, 1
        if op in ("mul", "scale"):
            if op == "scale" and t.args[1].op == "fill":
                c = t.args[0]
                return f"{self.go(c, 2)}*{fill_text(*t.args[1].attr)}", 2
            fs = _numbers_first(_factors(t))
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
                # a product, also with a leading minus (-a*b ./ s parses as ((-a)*b) ./ s): as the
                # right operand of * .* ./ it needs parentheses
                return s + "".join(" ./ " + self.go(f.args[1], 3) for f in dens), 2
            if fs[0].op == "num" and fs[0].attr == -1 and len(fs) > 1:
                rest = "*".join(self.go(f, 3 if i == 0 else 3) for i, f in enumerate(fs[1:]))
                return "-" + rest, (3 if len(fs) == 2 else 2)
            first = 2 if (fs[0].op != "mul" or len(fs) == 1) and not (
                fs[0].op in ("had", "hdiv") and any(f.shape != (1, 1) for f in fs[1:])) else 3
            parts = [self.go(fs[0], first)] + [self.go(f, 3) for f in fs[1:]]
            return "*".join(parts), 2
        if op in ("had", "hdiv"):
            sym = " .* " if op == "had" else " ./ "
            a, b = self.bcast_all(t.args, t.shape)
            # '*' and '.*' share a precedence level: a matrix product on the left is bracketed
            # all the same, so that nobody reads A*B .* C as A*(B .* C)
            return self.go(a, 3 if _matrix_product(a) else 2) + sym + self.go(b, 3), 2
        if op == "t":
            return self.go(t.args[0], 4) + "'", 4
        if op == "mpow":
            return f"{self.go(t.args[0], 4)}^{self.expo(t.args[1])}", 4
        if op in ("epow", "epows"):
            sym = "^" if t.shape == (1, 1) else ".^"  # on a 1×1 base both mean the same
            return f"{self.go(t.args[0], 4)}{sym}{self.expo(self.bcast(t.args[1]))}", 4
        if op == "fn":
            return f"{t.attr}({self.go(t.args[0], 0)})", 5
        if op in ("eye", "ones"):
            return dim_call(op, t.attr[0]), 5
        if op == "fill":
            s = fill_text(*t.attr)
            return s, (5 if "*" not in s and "'" not in s else (4 if "*" not in s else 2))
        if op in ("grad", "kron", "kront", "jac", "adj"):
            return f"{op}({', '.join(self.go(a, 0) for a in t.args)})", 5
        return f"{NAMES[op]}({self.go(t.args[0], 0)})", 5

    def expo(self, e: Term) -> str:
        if e.op == "num":
            return fmt_number(e.attr) if e.attr.denominator == 1 else f"({fmt_number(e.attr)})"
        return self.go(e, 5)

    def summands(self, t: Term) -> list[Term]:
        """The summands of ``t`` as printed: fills as scalars (:meth:`bcast_all`), and one that
        does not start with a minus first (``a - b`` rather than ``-b + a``; ``1 - A`` rather
        than ``-A + 1``, the text keeping an operand of the sum's shape).

        >>> from rewrite.parse import parse
        >>> sh = {"A": (2, 3), "t": ()}
        >>> [to_text(parse(e, sh)) for e in ("-A + t", "-A + ones(2)*ones(3)'", "-t + t")]
        ['t - A', '1 - A', 't - t']
        """
        terms = self.bcast_all(summands(t), t.shape)
        first = next((i for i, x in enumerate(terms) if not _leads_with_minus(x)), 0)
        if first and (terms[first].shape == terms[0].shape or terms[0].shape == t.shape):
            terms.insert(0, terms.pop(first))
        return terms

    def bcast_all(self, operands, shape: tuple) -> list[Term]:
        """Operands of ``+ .* ./`` with fills printed as bare scalars, except that an m×n
        result keeps its first operand spelled in full when every operand is a fill, so that
        the printed text still has the result's shape (``t*ones(4)*ones(5)' - 1``)."""
        out = [self.bcast(x) for x in operands]
        if shape != (1, 1) and all(o.shape == (1, 1) for o in out):
            out[0] = operands[0]
        return out

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
    """LaTeX: ``X^{\\top}``, ``\\odot``, ``\\operatorname{tr}``, ``X^{-1}``, ``\\log\\det``, fractions.

    >>> from rewrite.parse import parse
    >>> to_latex(parse("0.5*logdet(Sigma) - x'*inv(Sigma)'*x/3", {"x": (3,), "Sigma": (3, 3)}))
    '0.5 \\\\log\\\\det\\\\left(\\\\Sigma\\\\right) - \\\\frac{x^{\\\\top} \\\\Sigma^{-\\\\top} x}{3}'
    """
    return _Latex().go(t, 0)


GREEK = frozenset("""alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda
    mu nu xi pi rho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma
    Upsilon Phi Psi Omega""".split())
LATEX_FUNCTIONS = frozenset({"exp", "log", "sin", "cos", "tan", "sinh", "cosh", "tanh"})


def gradient_latex(f: Term, g: Term, wrt: str) -> str:
    """An aligned block: the objective f, df = tr(Gᵀ dX), and G = ∂f/∂X.

    >>> from rewrite.parse import parse
    >>> print(gradient_latex(parse("tr(A*X)", {"A": (2, 3)}), parse("A'", {"A": (2, 3)}), "X"))
    \\begin{aligned}
    f &= \\operatorname{tr}\\left(A X\\right) \\\\
    \\mathrm{d}f &= \\operatorname{tr}\\left(G^{\\top} \\, \\mathrm{d}X\\right) \\\\
    G = \\frac{\\partial f}{\\partial X} &= A^{\\top}
    \\end{aligned}
    """
    x = latex_name(wrt)
    return "\n".join([
        r"\begin{aligned}",
        rf"f &= {to_latex(f)} \\",
        rf"\mathrm{{d}}f &= \operatorname{{tr}}\left(G^{{\top}} \, \mathrm{{d}}{x}\right) \\",
        rf"G = \frac{{\partial f}}{{\partial {x}}} &= {to_latex(g)}",
        r"\end{aligned}",
    ])


def latex_name(name: str) -> str:
    """A variable name in LaTeX: Greek letters, subscripts after ``_`` or trailing digits.

    >>> [latex_name(n) for n in ("X", "Sigma", "x1", "X_2", "W_out", "lam", "beta_hat")]
    ['X', '\\\\Sigma', 'x_{1}', 'X_{2}', 'W_{\\\\mathrm{out}}', '\\\\mathrm{lam}', '\\\\beta_{\\\\mathrm{hat}}']
    """
    base, sub = name, ""
    if "_" in name.strip("_"):
        base, sub = name.split("_", 1) if not name.startswith("_") else (name, "")
    elif name.rstrip("0123456789").isalpha() and name.rstrip("0123456789") != name:
        base = name.rstrip("0123456789")
        sub = name[len(base):]

    def one(s: str) -> str:
        if s in GREEK:
            return "\\" + s
        if len(s) == 1 or s.isdigit():
            return s
        return r"\mathrm{" + s.replace("_", r"\_") + "}"

    return one(base) + (f"_{{{one(sub)}}}" if sub else "")


def _constant(t: Term) -> Fraction | None:
    """The value of a number or a quotient of numbers (``(1/2)`` parses as ``1 ./ 2``)."""
    if t.op == "num":
        return t.attr
    if t.op == "hdiv" and t.args[0].op == "num" and t.args[1].op == "num" and t.args[1].attr:
        return t.args[0].attr / t.args[1].attr
    return None


class _Latex(_Text):
    """Precedence levels as in the text printer: 1 sum, 2 product, 3 unary minus, 4 power, 5 atom."""

    FUN = {"tr": r"\operatorname{tr}", "det": r"\det", "logdet": r"\log\det",
           "sum": r"\operatorname{sum}", "vec": r"\operatorname{vec}",
           "diag": r"\operatorname{diag}", "diagv": r"\operatorname{diag}"}

    def go(self, t: Term, prec: int) -> str:
        s, p = self.render(t)
        return rf"\left({s}\right)" if p < prec else s

    def call(self, head: str, t: Term) -> tuple[str, int]:
        return rf"{head}\left({self.go(t, 0)}\right)", 5

    def render(self, t: Term) -> tuple[str, int]:  # noqa: C901 - one branch per operator
        op = t.op
        if op in ("var", "pvar"):
            return latex_name(t.attr), 5
        if op == "num":
            return self.number(t.attr)
        if op == "add":
            terms = self.summands(t)
            out = self.go(terms[0], 1)
            for x in terms[1:]:
                out += (" - " + self.go(_negate(x), 2)) if _is_neg(x) else (" + " + self.go(x, 2))
            return out, 1
        if op == "scale" and t.args[1].op == "fill":
            return self.join([self.go(t.args[0], 2), self.fill(t.args[1].attr)]), 2
        if op in ("mul", "scale"):
            return self.product(_numbers_first(_factors(t)))
        if op in ("had", "hdiv") and t.shape == (1, 1):  # 1×1: an ordinary product or fraction
            if op == "had":
                return self.join([self.go(t.args[0], 2), self.go(t.args[1], 3)]), 2
            return rf"\frac{{{self.go(t.args[0], 0)}}}{{{self.go(t.args[1], 0)}}}", 5
        if op in ("had", "hdiv"):
            sym = r" \odot " if op == "had" else r" \oslash "
            return self.go(self.bcast(t.args[0]), 2) + sym + self.go(self.bcast(t.args[1]), 3), 2
        if op == "t":
            a = t.args[0]
            if a.op == "inv":
                return self.go(a.args[0], 5) + r"^{-\top}", 4
            return self.go(a, 5) + r"^{\top}", 4
        if op == "inv":
            return self.go(t.args[0], 5) + "^{-1}", 4
        if op == "mpow":
            return f"{self.go(t.args[0], 5)}^{{{self.go(t.args[1], 0)}}}", 4
        if op in ("epow", "epows"):
            base, expo = t.args[0], self.bcast(t.args[1])
            if t.shape != (1, 1):
                return f"{self.go(base, 5)}^{{\\circ {self.go(expo, 0)}}}", 4
            value = _constant(expo)
            if value == Fraction(1, 2):
                return rf"\sqrt{{{self.go(base, 0)}}}", 5
            if value == -1:
                return rf"\frac{{1}}{{{self.go(base, 0)}}}", 5
            return f"{self.go(base, 5)}^{{{self.go(expo, 0)}}}", 4
        if op == "fn":
            head = f"\\{t.attr}" if t.attr in LATEX_FUNCTIONS else rf"\operatorname{{{t.attr}}}"
            return self.call(head, t.args[0])
        if op == "eye":
            return rf"I_{{{t.attr[0]}}}", 5
        if op == "ones":
            return rf"\mathbf{{1}}_{{{t.attr[0]}}}", 5
        if op == "fill":
            s = self.fill(t.attr)
            return s, (5 if s.count(r"\mathbf") < 2 else 2)
        if op == "norm2":
            return rf"\left\lVert {self.go(t.args[0], 0)} \right\rVert_{{2}}", 5
        if op == "fro2":
            sub = "2" if t.args[0].shape[1] == 1 else "F"
            return rf"\left\lVert {self.go(t.args[0], 0)} \right\rVert_{{{sub}}}^{{2}}", 4
        if op == "d":
            return rf"\mathrm{{d}}{self.go(t.args[0], 5)}", 5
        if op == "grad":
            return rf"\nabla_{{{self.go(t.args[1], 5)}}}{self.go(t.args[0], 5)}", 5
        if op in ("kron", "kront"):  # kront(A, B) = (A ⊗ B) K, K the commutation matrix
            s = self.go(t.args[0], 3) + r" \otimes " + self.go(t.args[1], 3)
            if op == "kron":
                return s, 2
            n, q = t.args[0].shape[1], t.args[1].shape[1]
            return rf"\left({s}\right) K_{{{n},{q}}}", 3
        if op == "adj":  # the adjoint of a linear E with seed W (collect.rules), wrt d(X)
            args = ", ".join(self.go(a, 0) for a in t.args)
            return rf"\operatorname{{adj}}\left({args}\right)", 5
        if op == "jac":
            return (rf"\frac{{\partial \operatorname{{vec}} {self.go(t.args[0], 5)}}}"
                    rf"{{\partial \operatorname{{vec}} {self.go(t.args[1], 5)}}}"), 5
        return self.call(self.FUN.get(op, rf"\operatorname{{{op}}}"), t.args[0])

    @staticmethod
    def number(v: Fraction) -> tuple[str, int]:
        if v.denominator != 1 and "/" in fmt_number(v):
            s = rf"\frac{{{abs(v.numerator)}}}{{{v.denominator}}}"
            return ("-" + s, 3) if v < 0 else (s, 5)
        return fmt_number(v), (3 if v < 0 else 5)

    @staticmethod
    def fill(dims: tuple) -> str:
        m, n = dims
        if (m, n) == (1, 1):
            return "1"
        if n == 1:
            return rf"\mathbf{{1}}_{{{m}}}"
        if m == 1:
            return rf"\mathbf{{1}}_{{{n}}}^{{\top}}"
        return rf"\mathbf{{1}}_{{{m}}} \mathbf{{1}}_{{{n}}}^{{\top}}"

    @staticmethod
    def join(parts: list[str]) -> str:
        """Juxtaposition; ``\\cdot`` where a factor would run into a number."""
        out = parts[0]
        for p in parts[1:]:
            out += (r" \cdot " if p[:1].isdigit() or p.startswith("-") else " ") + p
        return out

    def product(self, fs: list[Term]) -> tuple[str, int]:
        """Factors of a product: numbers and scalar reciprocals ``k ./ s`` form one fraction."""
        coeff, dens, rest = Fraction(1), [], []
        for f in fs:
            if f.op == "num":
                coeff *= f.attr
            elif _is_reciprocal(f):
                coeff *= f.args[0].attr
                dens.append(f.args[1])
            else:
                rest.append(f)
        parts = [self.go(f, 3) for f in rest]
        if parts and not dens and coeff in (1, -1):
            s = self.join([self.go(rest[0], 2)] + parts[1:])
        elif dens:
            q = [str(coeff.denominator)] if coeff.denominator != 1 else []
            den = self.join(q + [self.go(d, 2) for d in dens])
            s = self.join([rf"\frac{{{abs(coeff.numerator)}}}{{{den}}}"] + parts)
        else:
            s = self.join([self.number(abs(coeff))[0]] + parts)
        if coeff < 0:
            return "-" + s, 3
        return s, 2
