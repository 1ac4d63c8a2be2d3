"""Sympy interop: sympy matrix expressions in, sympy matrix expressions out.

Input: a sympy expression built from ``MatrixSymbol`` objects (``MatAdd``, ``MatMul``,
``Transpose``, ``Inverse``, ``MatPow``, ``Trace``, ``Determinant``, ``log(Determinant(·))``,
``HadamardProduct``, ``HadamardPower``, ``Identity``, ``OneMatrix``, ``ZeroMatrix``,
``DiagMatrix``, ``DiagonalOf``, ``DiagonalMatrix``, ``ElementwiseApplyFunction`` / ``applyfunc``,
scalar ``Symbol`` objects, numbers and scalar arithmetic) is translated to the expression
language together with the shapes of its symbols (symbolic dimensions from sympy ``Symbol``
objects), then elaborated like text. Anything else raises :class:`UnsupportedError` naming it.

Output: :func:`to_sympy` turns a term into a sympy ``MatrixExpr`` (a plain sympy scalar for a
1×1 value); :func:`evaluate_sympy` evaluates such an expression with concrete arrays.

>>> import sympy
>>> n, k = sympy.symbols("n k", integer=True, positive=True)
>>> X, A = sympy.MatrixSymbol("X", n, k), sympy.MatrixSymbol("A", n, n)
>>> sympy_to_text(sympy.Trace(X.T * A * X))
("tr(X'*A*X)", {'X': ('n', 'k'), 'A': ('n', 'n')})
>>> from rewrite.stock import parse
>>> to_sympy(parse("tr(X'*A*X) + logdet(A)", {"X": ("n", "k"), "A": ("n", "n")}))
log(Determinant(A)) + Trace(X.T*A*X)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fractions import Fraction

import numpy as np
import sympy
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalMatrix, DiagonalOf
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct, hadamard_product
from sympy.matrices.expressions.matexpr import MatrixElement

from .errors import RuleFileError, ShapeError, TracegradError, UnsupportedError
from .functions import argument_symbol, language_argument, language_name, primitive_functions, to_language
from .parse import BUILTIN_CALLS, Elaborator, name_free_dims, normalize_shape
from .printing import fill_text
from .stock import default_registry
from .terms import Term

_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\Z")


def _registry(engine=None):
    if engine is not None:
        return engine.functions
    return default_registry()


# ------------------------------------------------------------------------ sympy → text ----
class _ToText:
    """Translate a sympy expression to expression-language text, collecting shapes."""

    def __init__(self, registry) -> None:
        self.registry = registry
        self.reserved = set(BUILTIN_CALLS) | set(registry.names())
        self.shapes: dict[str, tuple] = {}

    # -- names and dimensions -----------------------------------------------------------
    def name(self, raw: str, shape: tuple, what: str) -> str:
        if not _NAME.match(raw):
            raise UnsupportedError(f"sympy {what} name {raw!r} is not a valid variable name "
                                   "(letters, digits and '_', not starting with a digit)")
        if raw in self.reserved:
            raise UnsupportedError(f"sympy {what} {raw!r} has the name of a function; rename it")
        old = self.shapes.get(raw)
        if old is not None and old != shape:
            raise ShapeError(f"sympy symbol {raw!r} occurs with two shapes: {_fmt(old)} and "
                             f"{_fmt(shape)}")
        self.shapes[raw] = shape
        return raw

    @staticmethod
    def dim(d) -> int | str:
        d = sympy.sympify(d)
        if d.is_Integer and int(d) >= 1:
            return int(d)
        if d.is_Symbol and _NAME.match(d.name):
            return d.name
        raise UnsupportedError(f"dimension {d} is not supported: use a positive integer or a "
                               "plain sympy Symbol")

    # -- translation --------------------------------------------------------------------
    def paren(self, e) -> str:
        s = self.go(e)
        return s if _atomic(s) else f"({s})"

    def go(self, e) -> str:  # noqa: C901 - one branch per sympy node type
        if isinstance(e, sympy.MatrixSymbol):
            r, c = self.dim(e.shape[0]), self.dim(e.shape[1])
            shape = () if (r, c) == (1, 1) else (r, c)
            return self.name(e.name, shape, "MatrixSymbol")
        if isinstance(e, sympy.Symbol):
            return self.name(e.name, (), "Symbol")
        if e is sympy.E:
            return "exp(1)"
        if isinstance(e, sympy.Number):
            return _number(e)
        if isinstance(e, sympy.Identity):
            return f"eye({self.dim(e.shape[0])})"
        if isinstance(e, sympy.ZeroMatrix):
            ones = self.ones(*e.shape)
            return "0" if ones == "1" else f"0*({ones})"
        if isinstance(e, sympy.OneMatrix):
            return self.ones(*e.shape)
        if isinstance(e, sympy.Transpose):
            return self.paren(e.arg) + "'"
        if isinstance(e, sympy.Inverse):
            return f"inv({self.go(e.arg)})"
        if isinstance(e, sympy.MatPow):
            k = sympy.sympify(e.exp)
            if not k.is_Integer:
                raise UnsupportedError(f"MatPow with exponent {k}: a matrix power needs an integer "
                                       "exponent")
            return f"{self.paren(e.base)}^{int(k) if k >= 0 else f'({int(k)})'}"
        if isinstance(e, (sympy.MatAdd, sympy.Add)):
            return self.sum(sympy.Add.make_args(e) if isinstance(e, sympy.Add) else e.args)
        if isinstance(e, (sympy.MatMul, sympy.Mul)):
            return self.product(e.args)
        if isinstance(e, sympy.Trace):
            return f"tr({self.go(e.arg)})"
        if isinstance(e, sympy.Determinant):
            return f"det({self.go(e.arg)})"
        if isinstance(e, sympy.log) and isinstance(e.args[0], sympy.Determinant):
            return f"logdet({self.go(e.args[0].arg)})"
        if isinstance(e, HadamardProduct):
            inverse = [a for a in e.args if isinstance(a, HadamardPower) and a.exp == -1]
            plain = [a for a in e.args if a not in inverse]
            out = " .* ".join(self.paren(a) for a in plain) if plain else "1"
            return out + "".join(" ./ " + self.paren(a.base) for a in inverse)
        if isinstance(e, HadamardPower):
            return f"{self.paren(e.base)}.^{self.paren(e.exp)}"
        if isinstance(e, sympy.Pow):
            if e.exp == -1:
                return f"1/{self.paren(e.base)}"
            return f"{self.paren(e.base)}^{self.paren(e.exp)}"
        if isinstance(e, ElementwiseApplyFunction):
            return self.elementwise(e.function, e.expr)
        if isinstance(e, DiagMatrix):
            return f"diag({self.go(e.args[0])})"
        if isinstance(e, DiagonalOf):
            return f"diag({self.go(e.arg)})"
        if isinstance(e, DiagonalMatrix):
            return f"diag(diag({self.go(e.arg)}))"
        if isinstance(e, MatrixElement):
            parent = e.parent
            if tuple(parent.shape) == (1, 1) and e.i == 0 and e.j == 0:
                return self.go(parent)
            raise UnsupportedError(f"MatrixElement {e} is not supported (only the single entry "
                                   "[0, 0] of a 1×1 expression)")
        if isinstance(e, (sympy.Function, sympy.Max)) and not isinstance(e, sympy.MatrixExpr):
            name = language_name(e) or type(e).__name__
            if name in self.registry and (len(e.args) == 1 or name in ("step", "relu")):
                return f"{name}({self.go(language_argument(e))})"
            raise UnsupportedError(f"sympy function {name} is not supported (declared elementwise "
                                   f"functions: {', '.join(self.registry.names())})")
        raise UnsupportedError(f"sympy {type(e).__name__} is not supported: {e}")

    def ones(self, r, c) -> str:
        return fill_text(self.dim(r), self.dim(c))

    def sum(self, terms) -> str:
        out = ""
        for i, t in enumerate(terms):
            if t.could_extract_minus_sign():
                s = self.go(-t)
                out += ("-" if i == 0 else " - ") + (f"({s})" if _is_sum(s) else s)
            else:
                out += ("" if i == 0 else " + ") + self.go(t)
        return out

    def product(self, factors) -> str:
        coeff = [f for f in factors if f.is_Number]
        rest = [f for f in factors if not f.is_Number]
        parts = []
        c = sympy.Mul(*coeff) if coeff else sympy.Integer(1)
        if c == -1 and rest:
            return "-" + self.product(rest) if len(rest) > 1 else "-" + self.paren(rest[0])
        if c != 1 or not rest:
            parts.append(_number(c) if c >= 0 else f"({_number(c)})")
        for f in rest:
            if isinstance(f, sympy.Pow) and f.exp == -1 and parts:
                parts[-1] = parts[-1] + "/" + self.paren(f.base)
                continue
            parts.append(self.paren(f))
        return "*".join(parts)

    def elementwise(self, function, arg) -> str:
        X = argument_symbol()
        if isinstance(function, sympy.Lambda):
            if len(function.variables) != 1:
                raise UnsupportedError(f"elementwise function {function} must take one argument")
            body = function.expr.xreplace({function.variables[0]: X})
        else:
            try:
                body = function(X)
            except TypeError:
                raise UnsupportedError(f"elementwise function {function} is not supported") from None
        inner = self.go(arg)
        if body == X:
            return inner
        name = self.match_function(body)
        if name is not None:
            return f"{name}({inner})"
        if not body.has(X):
            raise UnsupportedError(f"elementwise function {function} is constant")
        try:
            return to_language(body, inner, set(self.registry.names()), str(function))
        except RuleFileError as exc:
            raise UnsupportedError(f"elementwise function {function}: {exc.message}") from None

    def match_function(self, body) -> str | None:
        """The declared function whose scalar definition is ``body``, if any."""
        X = argument_symbol()
        for name in self.registry.names():
            decl = self.registry[name]
            if body.func.__name__ == name and body.args == (X,):
                return name
            for cand in (decl.definition, decl.expanded):
                if body == cand:
                    return name
        for name in self.registry.names():
            diff = body - self.registry[name].expanded
            if diff.free_symbols <= {X} and sympy.simplify(diff) == 0:
                return name
        return None


def _fmt(shape: tuple) -> str:
    return "scalar" if shape == () else "×".join(map(str, shape))


def _atomic(s: str) -> bool:
    """Text that needs no parentheses as an operand: a name, a number, or a call."""
    while s.endswith("'"):
        s = s[:-1]
    if _NAME.match(s) or re.fullmatch(r"\d+(\.\d*)?([eE][-+]?\d+)?", s):
        return True
    m = re.match(r"[A-Za-z_][A-Za-z_0-9]*\(", s)
    return bool(m) and _closing(s, m.end() - 1) == len(s) - 1


def _is_sum(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and ch in "+-":
            return True
    return False


def _closing(s: str, i: int) -> int:
    depth = 0
    for j in range(i, len(s)):
        depth += s[j] == "("
        depth -= s[j] == ")"
        if depth == 0:
            return j
    return -1


def _number(v) -> str:
    v = sympy.sympify(v)
    if v.is_Integer:
        return str(int(v))
    if v.is_Rational:
        return f"{int(v.p)}/{int(v.q)}"
    if v.is_Float:
        f = float(v)
        if not np.isfinite(f):
            raise UnsupportedError(f"number {v} is not finite")
        return repr(f)
    raise UnsupportedError(f"sympy number {v} is not supported")


def sympy_to_text(expr, engine=None) -> tuple[str, dict[str, tuple]]:
    """Expression-language text and the shapes of its symbols (``()`` for a scalar).

    >>> import sympy
    >>> x, c = sympy.MatrixSymbol("x", 3, 1), sympy.Symbol("c")
    >>> sympy_to_text(c * x.T * x)
    ("c*x'*x", {'c': (), 'x': (3, 1)})
    >>> sympy_to_text(sympy.KroneckerProduct(sympy.MatrixSymbol("A", 2, 2), sympy.Identity(2)))
    Traceback (most recent call last):
    ...
    rewrite.errors.UnsupportedError: sympy KroneckerProduct is not supported: KroneckerProduct(A, I)
    """
    try:
        e = sympy.sympify(expr, strict=True)
    except (sympy.SympifyError, TypeError):
        raise UnsupportedError(f"cannot read {type(expr).__name__} {expr!r} as an expression: pass "
                               "text or a sympy expression") from None
    tr = _ToText(_registry(engine))
    text = tr.go(e)
    return text, tr.shapes


def from_sympy(expr, shapes: dict | None = None, engine=None) -> Term:
    """A typed term from a sympy expression; ``shapes`` may add or confirm shapes.

    >>> import sympy
    >>> X = sympy.MatrixSymbol("X", 3, 2)
    >>> from_sympy(sympy.Trace(X.T * X)).shape
    (1, 1)
    >>> from_sympy(sympy.Trace(X.T * X), {"X": (2, 2)})
    Traceback (most recent call last):
    ...
    rewrite.errors.ShapeError: shape of 'X' is 3×2 in the sympy expression but 2×2 in shapes
    """
    text, found = sympy_to_text(expr, engine)
    merged = dict(shapes or {})
    for name, shp in found.items():
        if name in merged:
            given, ours = normalize_shape(merged[name], name), normalize_shape(shp, name)
            if given != ours:
                raise ShapeError(f"shape of {name!r} is {_fmt(ours)} in the sympy expression but "
                                 f"{_fmt(given)} in shapes")
        merged[name] = shp
    reg = _registry(engine)
    el = Elaborator(merged, reg.names())
    try:
        term = el.elaborate(text)
    except TracegradError as exc:
        raise type(exc)(f"{exc.message} (in {text!r}, the translation of the sympy input)",
                        position=exc.position) from None
    return name_free_dims(term, el.u)


# ------------------------------------------------------------------------ term → sympy ----
def dim_symbol(d) -> sympy.Expr:
    """The sympy value of a dimension: an Integer, or a positive integer Symbol.

    >>> dim_symbol(3), dim_symbol("n"), dim_symbol("m*n")
    (3, n, m*n)
    """
    if isinstance(d, int):
        return sympy.Integer(d)
    if "*" in str(d):
        return sympy.Mul(*[dim_symbol(int(p) if p.isdigit() else p) for p in str(d).split("*")])
    return sympy.Symbol(str(d), integer=True, positive=True)


def _value(v: Fraction) -> sympy.Rational:
    return sympy.Rational(v.numerator, v.denominator)


def _matmul(*xs):
    """A flattened ``MatMul`` built without ``doit`` (which would expand matrix elements)."""
    flat: list = []
    for x in xs:
        flat.extend(x.args if isinstance(x, sympy.MatMul) else (x,))
    scalars = [f for f in flat if not isinstance(f, sympy.MatrixExpr)]
    mats = [f for f in flat if isinstance(f, sympy.MatrixExpr)]
    if not mats:
        return sympy.Mul(*scalars)
    coeff = sympy.Mul(*scalars)
    return sympy.MatMul(*([coeff] if coeff != 1 else []), *mats)


def _matadd(a, b):
    if not isinstance(a, sympy.MatrixExpr):
        return a + b
    flat: list = []
    for x in (a, b):
        flat.extend(x.args if isinstance(x, sympy.MatAdd) else (x,))
    return sympy.MatAdd(*flat)


def to_sympy(term: Term, registry=None):
    """A sympy ``MatrixExpr`` for ``term``; a 1×1 value is a sympy scalar.

    Matrix variables become ``MatrixSymbol`` objects (symbolic dimensions are positive integer
    Symbols), 1×1 variables plain ``Symbol`` objects; ``vec`` has no sympy counterpart.

    >>> from rewrite.stock import parse
    >>> to_sympy(parse("a'*X*b", {"a": (3,), "X": (3, 4), "b": (4,)}))
    (a.T*X*b)[0, 0]
    >>> to_sympy(parse("A .* B ./ C", {"A": (2, 2)}))
    HadamardProduct(HadamardPower(C, -1), A, B)
    >>> sympy_to_text(_)
    ('A .* B ./ C', {'A': (2, 2), 'B': (2, 2), 'C': (2, 2)})
    """
    reg = registry if registry is not None else _registry()
    memo: dict[Term, object] = {}

    def scalar(t: Term) -> bool:
        return t.shape == (1, 1)

    def ones(r, c):
        if (r, c) == (1, 1):
            return sympy.Integer(1)
        return sympy.OneMatrix(dim_symbol(r), dim_symbol(c))

    def fn(name: str):
        if name not in reg:
            raise UnsupportedError(f"function {name!r} is not declared")
        X, PRIMITIVES = argument_symbol(), primitive_functions()
        decl = reg[name]
        if name in PRIMITIVES and decl.expanded == PRIMITIVES[name](X):
            return PRIMITIVES[name]
        d = sympy.Dummy("x")
        return sympy.Lambda(d, decl.expanded.xreplace({X: d}))

    def go(t: Term):  # noqa: C901 - one branch per operator
        if t in memo:
            return memo[t]
        op, s = t.op, scalar(t)
        a = [go(x) for x in t.args]
        if op == "var":
            out = sympy.Symbol(t.attr) if s else sympy.MatrixSymbol(
                t.attr, dim_symbol(t.shape[0]), dim_symbol(t.shape[1]))
        elif op == "num":
            out = _value(t.attr)
        elif op == "add":
            out = _matadd(a[0], a[1])
        elif op == "mul":
            x, y = t.args
            if s and not scalar(x):
                out = MatrixElement(_matmul(a[0], a[1]), 0, 0)
            else:
                out = _matmul(a[0], a[1])
        elif op == "scale":
            out = _matmul(a[0], a[1])
        elif op == "had":
            out = a[0] * a[1] if s else hadamard_product(a[0], a[1])
        elif op == "hdiv":
            out = a[0] / a[1] if s else hadamard_product(a[0], HadamardPower(a[1], -1))
        elif op == "t":
            out = a[0] if s else sympy.Transpose(a[0])
        elif op == "inv":
            out = 1 / a[0] if s else sympy.Inverse(a[0])
        elif op == "mpow":
            out = a[0] ** a[1] if s else sympy.MatPow(a[0], a[1])
        elif op == "epow":
            if not s:
                raise UnsupportedError("an elementwise power with a matrix exponent has no sympy "
                                       "MatrixExpr counterpart")
            out = a[0] ** a[1]
        elif op == "epows":
            out = a[0] ** a[1] if s else HadamardPower(a[0], a[1])
        elif op == "fn":
            f = fn(t.attr)
            out = f(a[0]) if s else ElementwiseApplyFunction(f, a[0])
        elif op in ("softmax", "logsumexp"):  # through exp, log and sums of columns
            x = t.args[0]
            if scalar(x):
                out = sympy.Integer(1) if op == "softmax" else a[0]
            else:
                e = ElementwiseApplyFunction(sympy.exp, a[0])
                col = _matmul(ones(1, x.shape[0]), e)
                if op == "logsumexp":
                    out = sympy.log(MatrixElement(col, 0, 0)) if s else \
                        ElementwiseApplyFunction(sympy.log, col)
                else:
                    out = hadamard_product(e, HadamardPower(_matmul(ones(x.shape[0], 1), col), -1))
        elif op in ("tr", "det", "sum") and scalar(t.args[0]):
            out = a[0]
        elif op == "tr":
            out = sympy.Trace(a[0])
        elif op == "det":
            out = sympy.Determinant(a[0])
        elif op == "logdet":
            out = sympy.log(a[0] if scalar(t.args[0]) else sympy.Determinant(a[0]))
        elif op == "sum":
            r, c = t.args[0].shape
            prod = _matmul(ones(1, r), a[0], ones(c, 1)) if c != 1 else _matmul(ones(1, r), a[0])
            out = MatrixElement(prod, 0, 0)
        elif op in ("norm2", "fro2"):
            x = t.args[0]
            if scalar(x):
                sq = a[0] ** 2
            elif x.shape[1] == 1:
                sq = MatrixElement(_matmul(sympy.Transpose(a[0]), a[0]), 0, 0)
            else:
                sq = sympy.Trace(_matmul(sympy.Transpose(a[0]), a[0]))
            out = sympy.sqrt(sq) if op == "norm2" else sq
        elif op == "eye":
            out = sympy.Integer(1) if s else sympy.Identity(dim_symbol(t.attr[0]))
        elif op in ("ones", "fill"):
            out = ones(*t.shape)
        elif op == "diag":
            out = a[0] if s else DiagMatrix(a[0])
        elif op == "diagv":
            out = a[0] if s else DiagonalOf(a[0])
        elif op == "vec" and s:
            out = a[0]
        else:
            raise UnsupportedError(f"{op}() has no sympy MatrixExpr counterpart")
        memo[t] = out
        return out

    return go(term)


# ---------------------------------------------------------------------- evaluate sympy ----
def evaluate_sympy(expr, env: Mapping[str, np.ndarray], dims: Mapping[str, int] | None = None):
    """Evaluate a sympy expression by substituting explicit matrices, with sympy itself.

    Returns a 2-D float array (a 1×1 array for a scalar).

    >>> import sympy
    >>> X = sympy.MatrixSymbol("X", sympy.Symbol("n"), 2)
    >>> evaluate_sympy(sympy.Trace(X.T * X), {"X": np.ones((3, 2))}).tolist()
    [[6.0]]
    """
    e = sympy.sympify(expr)
    rep: dict = {}
    sizes = dict(dims or {})
    for ms in e.atoms(sympy.MatrixSymbol):
        arr = np.asarray(env[ms.name], dtype=float)
        arr = arr.reshape(arr.shape[0], -1) if arr.ndim else arr.reshape(1, 1)
        for d, size in zip(ms.shape, arr.shape, strict=True):
            if isinstance(d, sympy.Symbol):
                sizes.setdefault(d.name, size)
        rep[ms] = sympy.ImmutableMatrix(arr)
    for sym in e.free_symbols:
        if isinstance(sym, sympy.Symbol):
            if sym.name in env:
                rep[sym] = sympy.Float(float(np.asarray(env[sym.name], dtype=float).reshape(-1)[0]))
            elif sym.name in sizes:
                rep[sym] = sympy.Integer(sizes[sym.name])
    for d in e.atoms(sympy.Symbol):
        if d not in rep and d.name in sizes:
            rep[d] = sympy.Integer(sizes[d.name])
    out = _explicit(e.xreplace(rep))
    if isinstance(out, sympy.MatrixBase):
        return np.array(out.evalf(), dtype=float)
    return np.array([[float(sympy.N(out))]])


def _explicit(e):
    """Bottom-up evaluation of a sympy expression whose leaves are explicit matrices."""
    if not e.args or isinstance(e, (sympy.Lambda, sympy.MatrixBase)):
        return e
    args = [_explicit(a) for a in e.args]
    if isinstance(e, DiagonalOf):  # sympy's diagonal classes do not evaluate explicit matrices
        m = args[0]
        return sympy.ImmutableMatrix([m[i, i] for i in range(min(m.shape))])
    if isinstance(e, DiagonalMatrix):
        m = args[0]
        return sympy.ImmutableMatrix(sympy.diag(*[m[i, i] for i in range(min(m.shape))]))
    if isinstance(e, DiagMatrix):
        v = args[0]
        return sympy.ImmutableMatrix(sympy.diag(*list(v)))
    out = e.func(*args)
    if hasattr(out, "doit"):
        out = out.doit()
    if isinstance(out, sympy.MatrixExpr) and not isinstance(out, sympy.MatrixBase):
        out = sympy.ImmutableMatrix(out.as_explicit())
    return out


__all__ = ["from_sympy", "to_sympy", "sympy_to_text", "dim_symbol", "evaluate_sympy"]
