"""Elaborate parsed text into a typed :class:`~rewrite.terms.Term` (shapes inferred and checked).

Decisions that depend on shapes are made here: ``*`` with a 1×1 side is scalar multiplication
(``scale``), broadcasting a 1×1 operand of ``+ - .* ./`` becomes an explicit ``fill``, ``^`` on a
1×1 base is a scalar power, ``diag`` of a vector builds a matrix and of a square matrix takes
its diagonal.

>>> t = parse("tr(X'*A*X)", {"X": ("n", "k"), "A": ("n", "n")})
>>> t.op, t.shape
('tr', (1, 1))
>>> parse("A*B", {"A": (2, 3), "B": (4, 5)})
Traceback (most recent call last):
...
rewrite.errors.ShapeError: 1:1: '*' needs inner dimensions to agree: left is 2×3, right is 4×5
>>> parse("(a'*x)^2", {"a": (3,), "x": (3,)}).op
'epows'
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from fractions import Fraction

from lark import Token, Tree

from .errors import ParseError, ShapeError, TracegradError, UnsupportedError
from .shapes import DimVar, Unifier, fmt_shape
from .syntax import node_position, parse_tree
from .terms import OPS, Term, dims_of, mul_dims, result_shape

BUILTIN_CALLS = {
    "tr": 1, "det": 1, "logdet": 1, "inv": 1, "sum": 1, "norm2": 1, "norm2sq": 1, "fro2": 1,
    "eye": 1, "ones": 1, "diag": 1, "vec": 1, "kron": 2, "kront": 2,
    "trace": 1, "transpose": 1, "mean": 1, "norm1": 1, "max": 2, "min": 2, "softmax": 1,
    "logsumexp": 1,
}
#: the built-in functions, as called, with what each means (``tracegrad functions``)
BUILTIN_HELP = {
    "tr": ("tr(A)", "trace of a square matrix"),
    "trace": ("trace(A)", "tr(A)"),
    "det": ("det(A)", "determinant of a square matrix"),
    "logdet": ("logdet(A)", "log(det(A)), A with a positive determinant"),
    "inv": ("inv(A)", "inverse of a square matrix"),
    "transpose": ("transpose(A)", "A'"),
    "sum": ("sum(X) | sum(X, k)", "sum of the entries; k = 1 down the columns, 2 along the rows"),
    "mean": ("mean(X) | mean(X, k)", "mean of the entries; k as for sum"),
    "norm1": ("norm1(X)", "sum of absolute values, sum(abs(X))"),
    "norm2": ("norm2(x)", "Euclidean norm of a column or row vector"),
    "norm2sq": ("norm2sq(x)", "squared Euclidean norm, x'*x (any shape: fro2)"),
    "fro2": ("fro2(X)", "squared Frobenius norm, sum(X .* X)"),
    "eye": ("eye(n)", "n×n identity"),
    "ones": ("ones(n)", "n×1 vector of ones"),
    "diag": ("diag(v) | diag(A)", "diagonal matrix of a vector; diagonal of a square matrix"),
    "vec": ("vec(X)", "the columns stacked (column-major)"),
    "kron": ("kron(A, B)", "Kronecker product A ⊗ B"),
    "kront": ("kront(A, B)", "A ⊗ B times the commutation matrix"),
    "max": ("max(A, B)", "elementwise maximum, A + relu(B - A)"),
    "min": ("min(A, B)", "elementwise minimum, A - relu(A - B)"),
    "softmax": ("softmax(X)", "column-wise exp(x)/sum(exp(x))"),
    "logsumexp": ("logsumexp(X)", "column-wise log(sum(exp(x))): m×n → 1×n"),
}
#: what people coming from other tools call our functions (NumPy, MATLAB, PyTorch, LaTeX)
ALIASES = {"norm": "norm2 (vectors), sqrt(fro2(X)) (matrices)", "frobenius": "fro2",
           "sumsq": "norm2sq", "norm2sqr": "norm2sq", "sqnorm": "norm2sq", "inverse": "inv",
           "pinv": "inv (square) or inv(A'*A)*A'", "determinant": "det", "logabsdet": "logdet",
           "slogdet": "logdet", "kronecker": "kron", "sigm": "sigmoid", "expit": "sigmoid",
           "logistic": "sigmoid", "log1p": "log(1 + x)", "expm1": "exp(x) - 1",
           "square": "x.^2", "pow": "x.^k", "dot": "a'*b", "matmul": "A*B", "outer": "a*b'",
           "vecnorm": "norm2", "diagm": "diag", "diagonal": "diag", "reshape": "vec",
           "flatten": "vec", "identity": "eye", "logsoftmax": "log(softmax(x))",
           "amax": "max", "amin": "min", "maximum": "max", "minimum": "min", "tr_": "tr"}


def function_hint(name: str, known: set[str]) -> str:
    """What to write instead of the unknown function ``name``: an alias from another tool, the
    nearest known names, and how to declare a new function.

    >>> function_hint("norm", {"norm2", "norm1"})[:64]
    'norm in other tools is norm2 (vectors), sqrt(fro2(X)) (matrices)'
    >>> function_hint("sigmod", {"sigmoid", "tanh"})[:48]
    'did you mean sigmoid? or declare it in a rule fi'
    """
    declare = f"declare it in a rule file: function {name}(x) = ... (docs/rules.md)"
    alias = ALIASES.get(name.lower())
    if alias is not None:
        return f"{name} in other tools is {alias} here; or {declare}"
    close = difflib.get_close_matches(name.lower(), sorted(known), n=3, cutoff=0.6)
    if close:
        return f"did you mean {' or '.join(close)}? or {declare}"
    return f"known functions: {', '.join(sorted(known))}; or {declare}"


#: calls that also take a second argument, the dimension (``sum(X, 1)``: down the columns)
DIM_CALLS = ("sum", "mean")
#: the stock elementwise functions that calls of the language are written with
#: (``max(A, B)`` = ``A + relu(B - A)``, ``norm1(X)`` = ``sum(abs(X))``)
NEEDS_FUNCTION = {"max": "relu", "min": "relu", "norm1": "abs"}
RULE_CALLS = {"d": 1, "grad": 2, "jac": 2, "adj": 3}


def normalize_shape(shape: object, name: str = "?") -> tuple:
    """Accept ``(m, n)``, ``(n,)`` (vector), ``()`` (scalar) or a list; dims are ints or names.

    >>> normalize_shape(["n"]), normalize_shape(()), normalize_shape((2, "k"))
    (('n', 1), (1, 1), (2, 'k'))
    """
    if isinstance(shape, (int, str)):
        shape = (shape,)
    try:
        dims = tuple(shape)  # type: ignore[arg-type]
    except TypeError:
        raise ShapeError(f"shape of {name!r} must be a tuple of dimensions, got {shape!r}") from None
    if len(dims) > 2:
        raise ShapeError(f"shape of {name!r} has {len(dims)} dimensions; at most 2 are allowed")
    out = []
    for d in dims:
        if isinstance(d, bool):
            raise ShapeError(f"bad dimension {d!r} in the shape of {name!r}")
        if isinstance(d, int):
            if d < 1:
                raise ShapeError(f"dimension {d} in the shape of {name!r} must be positive")
            out.append(d)
        elif isinstance(d, str) and d.strip().isdigit():
            out.append(int(d))
        elif isinstance(d, str) and d.isidentifier():
            out.append(d)
        else:
            raise ShapeError(f"bad dimension {d!r} in the shape of {name!r}")
    while len(out) < 2:
        out.append(1)
    return tuple(out)


class Elaborator:
    """Turns a lark tree into a typed term.

    ``rule_mode``: single letters are pattern variables (``pvar``), dimension names are
    variables, and ``d(·)``/``grad(·, ·)`` are allowed.
    """

    def __init__(self, shapes: dict | None = None, functions: Iterable[str] = (),
                 rule_mode: bool = False, scalars: Iterable[str] = (),
                 vectors: Iterable[str] = (), squares: Iterable[str] = ()) -> None:
        self.u = Unifier(flexible_names=rule_mode)
        self.rule_mode = rule_mode
        self.functions = set(functions)
        self.env: dict[str, tuple] = {}
        for name, shp in (shapes or {}).items():
            r, c = normalize_shape(shp, name)
            self.env[name] = (self.u.dim(r), self.u.dim(c))
        for name in scalars:
            self.env[name] = (1, 1)
        for name in vectors:
            self.env.setdefault(name, (self.u.fresh(), 1))
        for name in squares:
            n = self.u.fresh()
            self.env.setdefault(name, (n, n))
        self.text = ""

    # -- helpers ---------------------------------------------------------------------------
    def shape_str(self, shape: tuple) -> str:
        return fmt_shape(tuple(self.u.find(d) for d in shape))

    def known_scalar(self, t: Term) -> bool:
        return self.u.is_one(t.shape[0]) and self.u.is_one(t.shape[1])

    def unify_shapes(self, a: tuple, b: tuple, node, what: str) -> None:
        if not (self.u.unify(a[0], b[0]) and self.u.unify(a[1], b[1])):
            raise ShapeError(f"{what}: left is {self.shape_str(a)}, right is {self.shape_str(b)}",
                             position=node_position(node))

    def mk(self, op: str, *args: Term, attr: object = None) -> Term:
        return Term(op, args, attr, result_shape(op, args, attr))

    def fill(self, shape: tuple) -> Term:
        return Term("fill", (), (shape[0], shape[1]), shape)

    def broadcast(self, s: Term, shape: tuple) -> Term:
        """A 1×1 term spread over ``shape``."""
        if s.op == "num" and s.attr == 1:
            return self.fill(shape)
        return self.mk("scale", s, self.fill(shape))

    def scale(self, c: Term, a: Term) -> Term:
        return self.mk("scale", c, a)

    def neg(self, a: Term) -> Term:
        if a.op == "num":
            return Term("num", (), -a.attr, (1, 1))
        return self.scale(Term("num", (), Fraction(-1), (1, 1)), a)

    # -- entry -----------------------------------------------------------------------------
    def elaborate(self, text: str) -> Term:
        self.text = text
        try:
            return self.resolve(self.visit(parse_tree(text)))
        except TracegradError as e:  # an expression's error keeps its text (the CLI's caret)
            if e.position is not None and e.text is None and isinstance(text, str) \
                    and not self.rule_mode:
                e.text = text
            raise

    def resolve(self, t: Term) -> Term:
        """Replace unified dimension variables by their representatives."""
        memo: dict[int, Term] = {}
        f = self.u.find

        def go(n: Term) -> Term:
            key = id(n)
            if key in memo:
                return memo[key]
            args = tuple(go(a) for a in n.args)
            attr = n.attr
            if OPS[n.op].attr == "dims":
                attr = tuple(f(d) for d in attr)
            out = Term(n.op, args, attr, (f(n.shape[0]), f(n.shape[1])))
            memo[key] = out
            return out

        return go(t)

    def visit(self, node) -> Term:
        if isinstance(node, Token):  # pragma: no cover - grammar never yields bare tokens
            raise ParseError(f"unexpected {node!r}", position=node_position(node))
        kind = node.data
        if kind in ("add", "sub", "mul", "had", "hdiv", "div", "ldiv"):
            return self.visit_chain(node)
        method: Callable = getattr(self, "v_" + kind)
        return method(node)

    # -- leaves ----------------------------------------------------------------------------
    def v_number(self, node: Tree) -> Term:
        tok = node.children[0]
        try:
            value = Fraction(str(tok))
        except (ValueError, ZeroDivisionError):
            raise ParseError(f"bad number {str(tok)!r}", position=node_position(tok)) from None
        if len(str(tok)) > 400 or abs(value) > 10**300:
            raise UnsupportedError(f"number {str(tok)[:20]}... is too large",
                                   position=node_position(tok))
        return Term("num", (), value, (1, 1))

    def v_name(self, node: Tree) -> Term:
        tok = node.children[0]
        name = str(tok)
        if name in BUILTIN_CALLS or name in self.functions:
            raise ParseError(f"function {name!r} needs an argument: {name}(...)",
                             position=node_position(tok))
        if self.rule_mode:
            if len(name) != 1 and not (name.startswith("_c") and name[2:].isdigit()):
                raise ParseError(f"{name!r}: rules use single-letter pattern variables",
                                 position=node_position(tok))
            if name not in self.env:
                self.env[name] = (self.u.fresh(), self.u.fresh())
            return Term("pvar", (), name, self.env[name])
        if name not in self.env:
            self.env[name] = (self.u.fresh(), self.u.fresh())
        return Term("var", (), name, self.env[name])

    # -- operators -------------------------------------------------------------------------
    def visit_chain(self, node: Tree) -> Term:
        """Left-associative chains (``a+b+c...``) are walked without recursion on the spine."""
        kind = node.data
        family = ("add", "sub") if kind in ("add", "sub") else ("mul", "had", "hdiv", "div", "ldiv")
        ops: list[tuple[str, Tree]] = []
        cur = node
        while isinstance(cur, Tree) and cur.data in family:
            ops.append((cur.data, cur))
            cur = cur.children[0]
        acc = self.visit(cur)
        if family[0] == "add":
            terms = [acc]
            for op, n in reversed(ops):
                rhs = self.visit(n.children[1])
                terms.append(self.neg(rhs) if op == "sub" else rhs)
            return self.sum_terms(terms, [n for _, n in reversed(ops)])
        for op, n in reversed(ops):
            rhs = self.visit(n.children[1])
            acc = getattr(self, "b_" + op)(acc, rhs, n)
        return acc

    def sum_terms(self, terms: list[Term], nodes: list[Tree]) -> Term:
        """Check that the non-1×1 operands agree (or expand: :meth:`expanded_shape`); spread
        1×1 operands, rows and columns over the result's shape."""
        target = None
        for t, n in zip(terms, [None, *nodes], strict=True):
            if self.known_scalar(t):
                continue
            target = t.shape if target is None else self.expanded_shape(target, t.shape, n, "'+'")
        if target is None or self.known_scalar(Term("num", (), 0, target)):
            return self.balanced("add", terms)
        return self.balanced("add", [self.expand(t, target) for t in terms])

    # -- implicit expansion ----------------------------------------------------------------
    def expanded_shape(self, a: tuple, b: tuple, node, what: str) -> tuple:
        """The shape of an elementwise operation on operands of shapes ``a`` and ``b``: equal
        dimensions, or a dimension 1 against a known other one, which expands (an m×n operand
        with a 1×n row, an m×1 column or a 1×1, and an m×1 column with a 1×n row, as MATLAB and
        NumPy broadcast). Unknown dimensions are unified; in rule files nothing expands."""
        out = []
        for da, db in zip(a, b, strict=True):
            ra, rb = self.u.find(da), self.u.find(db)
            if not self.rule_mode and ra != rb and ra == 1 and not isinstance(rb, DimVar):
                out.append(rb)
            elif not self.rule_mode and ra != rb and rb == 1 and not isinstance(ra, DimVar):
                out.append(ra)
            elif self.u.unify(ra, rb):
                out.append(self.u.find(ra))
            else:
                raise ShapeError(f"{what} needs operands of the same shape, or a row, column or "
                                 f"1×1 that expands to the other's: left is {self.shape_str(a)}, "
                                 f"right is {self.shape_str(b)}", position=node_position(node))
        return tuple(out)

    def expand(self, t: Term, shape: tuple) -> Term:
        """``t`` spread over ``shape`` (see :meth:`expanded_shape`): a 1×1 as a fill, a 1×n row
        as ``ones(m)*r``, an m×1 column as ``c*ones(n)'``."""
        if self.known_scalar(t):
            return t if self.known_scalar(Term("num", (), 0, shape)) else self.broadcast(t, shape)
        (r, c), (rr, cc) = (tuple(self.u.find(d) for d in s) for s in (t.shape, shape))
        if r == 1 and rr != 1:
            t = self.mk("mul", self.ones(rr), t)
        if c == 1 and cc != 1:
            t = self.mk("mul", t, self.mk("t", self.ones(cc)))
        return t

    def expand_pair(self, a: Term, b: Term, node, what: str) -> tuple[Term, Term]:
        """Both operands of an elementwise operation spread over its shape."""
        if self.known_scalar(a) and self.known_scalar(b):
            return a, b
        if self.known_scalar(a):
            return self.broadcast(a, b.shape), b
        if self.known_scalar(b):
            return a, self.broadcast(b, a.shape)
        shape = self.expanded_shape(a.shape, b.shape, node, what)
        return self.expand(a, shape), self.expand(b, shape)

    def ones(self, n) -> Term:
        return self.mk("ones", attr=(n,))

    def balanced(self, op: str, items: list[Term]) -> Term:
        while len(items) > 1:
            nxt = [self.mk(op, items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
            if len(items) % 2:
                nxt.append(items[-1])
            items = nxt
        return items[0]

    def b_mul(self, a: Term, b: Term, node) -> Term:
        if a.op == "ones" and b.op == "t" and b.args[0].op == "ones":
            return self.fill((a.attr[0], b.args[0].attr[0]))
        if self.known_scalar(a):
            return self.scale(a, b)
        if self.known_scalar(b):
            return self.scale(b, a)
        if not self.u.unify(a.shape[1], b.shape[0]):
            raise ShapeError(
                f"'*' needs inner dimensions to agree: left is {self.shape_str(a.shape)}, "
                f"right is {self.shape_str(b.shape)}", position=node_position(node))
        return self.mk("mul", a, b)

    def b_had(self, a: Term, b: Term, node) -> Term:
        if self.known_scalar(a):
            return self.scale(a, b)
        if self.known_scalar(b):
            return self.scale(b, a)
        return self.mk("had", *self.expand_pair(a, b, node, "'.*'"))

    def b_hdiv(self, a: Term, b: Term, node) -> Term:
        sa, sb = self.known_scalar(a), self.known_scalar(b)
        if sb and not sa:
            return self.div_scalar(a, b)
        if sa and not sb:
            return self.mk("hdiv", self.broadcast(a, b.shape), b)
        if not sa:
            return self.mk("hdiv", *self.expand_pair(a, b, node, "'./'"))
        return self.mk("hdiv", a, b)

    def div_scalar(self, a: Term, s: Term) -> Term:
        if s.op == "num":
            if s.attr == 0:
                raise UnsupportedError("division by zero")
            return self.scale(Term("num", (), 1 / s.attr, (1, 1)), a)
        return self.scale(self.mk("hdiv", Term("num", (), Fraction(1), (1, 1)), s), a)

    def b_div(self, a: Term, b: Term, node) -> Term:
        if self.known_scalar(b):
            if self.known_scalar(a):
                return self.mk("hdiv", a, b)
            return self.div_scalar(a, b)
        if self.rule_mode:
            raise ShapeError(f"'/' needs a 1×1 right operand in rules, got {self.shape_str(b.shape)}",
                             position=node_position(node))
        # B / A = B*inv(A), A square (MATLAB's mrdivide)
        if not self.u.unify(b.shape[0], b.shape[1]):
            raise ShapeError(
                f"'/' needs a 1×1 or square right operand (B / A = B*inv(A)), got "
                f"{self.shape_str(b.shape)}; use './' for elementwise division",
                position=node_position(node))
        if not self.u.unify(a.shape[1], b.shape[0]):
            raise ShapeError(
                f"'/' needs a 1×1 right operand, or a square one as wide as the left operand "
                f"(B / A = B*inv(A)): left is {self.shape_str(a.shape)}, right is "
                f"{self.shape_str(b.shape)}",
                position=node_position(node))
        return self.mk("mul", a, self.mk("inv", b))

    def b_ldiv(self, a: Term, b: Term, node) -> Term:
        """``A \\ B`` = inv(A)*B, A square (MATLAB's mldivide); a 1×1 A divides B."""
        if self.known_scalar(a):
            return self.mk("hdiv", b, a) if self.known_scalar(b) else self.div_scalar(b, a)
        if self.rule_mode:
            raise ShapeError("'\\' is not available in rules; write inv(A)*B",
                             position=node_position(node))
        if not self.u.unify(a.shape[0], a.shape[1]):
            raise ShapeError(
                f"'\\' needs a square or 1×1 left operand (A \\ B = inv(A)*B), got "
                f"{self.shape_str(a.shape)}", position=node_position(node))
        if not self.u.unify(a.shape[1], b.shape[0]):
            raise ShapeError(
                f"'\\' needs as many rows on the right as the square left operand has: left is "
                f"{self.shape_str(a.shape)}, right is {self.shape_str(b.shape)}",
                position=node_position(node))
        return self.mk("mul", self.mk("inv", a), b)

    def count(self, shape: tuple) -> Term:
        """The number of entries of ``shape`` as a 1×1 term: a number, or with named dimensions
        ``sum(ones(m))*sum(ones(n))`` (the language has no name for a dimension's value)."""
        k, named = 1, []
        for d in (self.u.find(d) for d in shape):
            if isinstance(d, int):
                k *= d
            else:
                named.append(self.mk("sum", self.ones(d)))
        out = Term("num", (), Fraction(k), (1, 1))
        for t in named:
            out = t if out.op == "num" and out.attr == 1 else self.mk("scale", out, t)
        return out

    def along(self, name: str, a: Term, karg, node) -> Term:
        """``sum(X, 1)`` = ``ones(m)'*X`` (down the columns, 1×n), ``sum(X, 2)`` = ``X*ones(n)``
        (along the rows, m×1); ``mean`` divides by m or n."""
        k = None
        if isinstance(karg, Tree) and karg.data == "number":
            text = str(karg.children[0])
            k = int(text) if text in ("1", "2") else None
        if k is None:
            raise ShapeError(f"{name}(X, k): k must be 1 (down the columns) or 2 (along the "
                             f"rows), got {self.text_of(karg)}", position=node_position(karg))
        r, c = (self.u.find(d) for d in a.shape)
        if (r if k == 1 else c) == 1:
            return a
        out = self.mk("mul", self.mk("t", self.ones(r)), a) if k == 1 else self.mk("mul", a, self.ones(c))
        if name == "mean":
            out = self.div_scalar(out, self.count(((r if k == 1 else c), 1)))
        return out

    def text_of(self, node) -> str:
        meta = getattr(node, "meta", None)
        if meta is not None and not meta.empty and self.text:
            return self.text[meta.start_pos:meta.end_pos]
        return str(node)

    def maxmin(self, name: str, a: Term, b: Term, node) -> Term:
        """``max(A, B)`` = ``A + relu(B - A)`` and ``min(A, B)`` = ``A - relu(A - B)``,
        elementwise (after implicit expansion): exact, and since relu'(0) = 0 the derivative at
        a tie goes to the first argument."""
        zero = [x.op == "num" and x.attr == 0 for x in (a, b)]
        if zero[0] != zero[1]:  # max(A, 0) = A + relu(-A), max(0, B) = relu(B), min likewise
            x = b if zero[0] else a
            if zero[0]:
                return self.mk("fn", x, attr="relu") if name == "max" else \
                    self.neg(self.mk("fn", self.neg(x), attr="relu"))
            if name == "max":
                return self.sum_terms([x, self.mk("fn", self.neg(x), attr="relu")], [node])
            return self.sum_terms([x, self.neg(self.mk("fn", x, attr="relu"))], [node])
        a, b = self.expand_pair(a, b, node, f"{name}()")

        def minus(x: Term, y: Term) -> Term:  # x - y, a number 0 dropped
            if y.op == "num" and y.attr == 0:
                return x
            return self.neg(y) if x.op == "num" and x.attr == 0 else self.mk("add", x, self.neg(y))

        relu = self.mk("fn", minus(b, a) if name == "max" else minus(a, b), attr="relu")
        if a.op == "num" and a.attr == 0:
            return relu if name == "max" else self.neg(relu)
        return self.mk("add", a, relu if name == "max" else self.neg(relu))

    def v_neg(self, node: Tree) -> Term:
        return self.neg(self.visit(node.children[0]))

    def v_transpose(self, node: Tree) -> Term:
        return self.mk("t", self.visit(node.children[0]))

    def require_square(self, a: Term, node, what: str) -> None:
        if not self.u.unify(a.shape[0], a.shape[1]):
            raise ShapeError(f"{what} needs a square matrix, got {self.shape_str(a.shape)}",
                             position=node_position(node))

    def v_pow(self, node: Tree) -> Term:
        base = self.visit(node.children[0])
        expo = self.visit(node.children[1])
        if not self.known_scalar(expo):
            hint = ""
            if expo.op == "var" and expo.attr == "T":  # x^T, the transpose elsewhere
                base_text = self.text_of(node.children[0])
                hint = f"; the transpose is written {base_text}' ({base_text}^T is a power)"
            raise ShapeError(f"exponent of '^' must be 1×1, got {self.shape_str(expo.shape)}"
                             + hint, position=node_position(node.children[1]))
        if self.known_scalar(base):
            return self.mk("epows", base, expo)
        if expo.op == "num" and expo.attr.denominator == 1:
            if abs(expo.attr) > 10_000:
                raise UnsupportedError(f"matrix power {expo.attr} is too large (limit 10000)",
                                       position=node_position(node.children[1]))
            self.require_square(base, node, "'^'")
            return self.mk("mpow", base, expo)
        if expo.op == "pvar" and self.rule_mode:
            self.require_square(base, node, "'^'")
            return self.mk("mpow", base, expo)
        raise UnsupportedError(
            "matrix power needs an integer exponent (a non-integer power is defined only for 1×1)",
            position=node_position(node.children[1]))

    def v_epow(self, node: Tree) -> Term:
        base = self.visit(node.children[0])
        expo = self.visit(node.children[1])
        if self.known_scalar(expo):
            return self.mk("epows", base, expo)
        if self.known_scalar(base):
            return self.mk("epow", self.broadcast(base, expo.shape), expo)
        self.unify_shapes(base.shape, expo.shape, node, "'.^' needs an exponent of the same shape")
        return self.mk("epow", base, expo)

    # -- calls -----------------------------------------------------------------------------
    def v_call(self, node: Tree) -> Term:
        name_tok, args_node = node.children
        name = str(name_tok)
        raw_args = args_node.children
        arity = BUILTIN_CALLS.get(name)
        if arity is None and self.rule_mode:
            arity = RULE_CALLS.get(name)
        if arity is None and name in self.functions:
            arity = 1
        if arity is None:
            if name in self.env:
                raise ParseError(f"{name!r} is a variable, not a function",
                                 position=node_position(name_tok))
            raise UnsupportedError(f"unknown function {name!r}; "
                                   + function_hint(name, set(BUILTIN_CALLS) | self.functions),
                                   position=node_position(name_tok))
        if name in DIM_CALLS and len(raw_args) == 2 and not self.rule_mode:
            return self.along(name, self.visit(raw_args[0]), raw_args[1], node)
        if len(raw_args) != arity:
            also = " (or 2: sum(X, k), k = 1 or 2)" if name in DIM_CALLS and not self.rule_mode else ""
            raise ParseError(f"{name}() takes {arity} argument{'s' * (arity > 1)}{also}, "
                             f"got {len(raw_args)}", position=node_position(name_tok))
        if name in ("eye", "ones"):
            return self.dim_call(name, raw_args[0], name_tok)
        needed = NEEDS_FUNCTION.get(name)
        if needed is not None and needed not in self.functions:
            raise UnsupportedError(f"{name}() is written with the elementwise function {needed}, "
                                   "which is not declared here (the stock rules declare it)",
                                   position=node_position(name_tok))
        args = [self.visit(a) for a in raw_args]
        a = args[0]
        name = {"trace": "tr", "transpose": "t"}.get(name, name)
        if name == "t":
            return self.mk("t", a)
        if name in ("tr", "det", "logdet", "inv"):
            self.require_square(a, node, f"{name}()")
            return self.mk(name, a)
        if name in ("softmax", "logsumexp"):
            return self.mk(name, a)
        if name == "mean":
            return self.div_scalar(self.mk("sum", a), self.count(a.shape))
        if name == "norm1":
            return self.mk("sum", self.mk("fn", a, attr="abs"))
        if name in ("max", "min"):
            return self.maxmin(name, args[0], args[1], node)
        if name == "vec":
            return self.vec(a, node)
        if name in ("kron", "kront", "jac"):
            return self.product_dims(name, args, node)
        if name in ("sum", "fro2", "norm2sq"):
            return self.mk("fro2" if name == "norm2sq" else name, a)
        if name == "norm2":
            r, c = (self.u.find(d) for d in a.shape)
            if r == 1 and c != 1:  # a row vector, as in MATLAB: the norm of its transpose
                return self.mk("norm2", self.mk("t", a))
            if not self.u.unify(a.shape[1], 1):
                raise ShapeError(f"norm2() needs a vector, got {self.shape_str(a.shape)}; "
                                 "use fro2() for the squared Frobenius norm",
                                 position=node_position(node))
            return self.mk("norm2", a)
        if name == "diag":
            return self.diag(a, node)
        if name == "d":
            return self.mk("d", a)
        if name == "grad":
            s, x = args
            if not (self.u.unify(s.shape[0], 1) and self.u.unify(s.shape[1], 1)):
                raise ShapeError(f"grad() needs a 1×1 first argument, got {self.shape_str(s.shape)}",
                                 position=node_position(node))
            return self.mk("grad", s, x)
        if name == "adj":
            e, w, x = args
            if not (self.u.unify(e.shape[0], w.shape[0]) and self.u.unify(e.shape[1], w.shape[1])):
                raise ShapeError(f"adj() needs a seed of its first argument's shape "
                                 f"{self.shape_str(e.shape)}, got {self.shape_str(w.shape)}",
                                 position=node_position(node))
            return self.mk("adj", e, w, x)
        return self.mk("fn", a, attr=name)

    def vec(self, a: Term, node) -> Term:
        """``vec`` of m×n has m*n rows; in rules that product is left as an unknown dimension."""
        if self.rule_mode:
            return Term("vec", (a,), None, (self.u.fresh(), 1))
        r, c = (self.u.find(d) for d in a.shape)
        if isinstance(r, DimVar) or isinstance(c, DimVar):
            raise ShapeError("vec() needs the shape of its argument to be known; declare it",
                             position=node_position(node))
        return Term("vec", (a,), None, (mul_dims(r, c), 1))

    def product_dims(self, name: str, args: list[Term], node) -> Term:
        """``kron``/``kront`` (and ``jac`` in rules) have products of dimensions as their shape;
        as for ``vec``, the argument shapes must be known, and in rules the product is left as
        an unknown dimension."""
        if self.rule_mode:
            return Term(name, tuple(args), None, (self.u.fresh(), self.u.fresh()))
        for a in args:
            if any(isinstance(self.u.find(d), DimVar) for d in a.shape):
                raise ShapeError(f"{name}() needs the shapes of its arguments to be known; declare them",
                                 position=node_position(node))
        return self.mk(name, *(self.resolve(a) for a in args))

    def diag(self, a: Term, node) -> Term:
        r, c = (self.u.find(d) for d in a.shape)
        if c == 1:
            return self.mk("diag", a)
        if r == 1 and not self.rule_mode:  # a row vector, as in MATLAB: the diagonal matrix
            return self.mk("diag", self.mk("t", a))
        if r == c or (isinstance(r, DimVar) is False and r == c):
            return self.mk("diagv", a)
        if not isinstance(c, DimVar) and not isinstance(r, DimVar):
            raise ShapeError(f"diag() needs a vector or a square matrix, got {self.shape_str(a.shape)}",
                             position=node_position(node))
        if self.rule_mode:
            raise ParseError("diag() is ambiguous here: add a condition vector(v) or square(A)",
                             position=node_position(node))
        self.u.unify(c, 1)
        return self.mk("diag", a)

    def dim_call(self, name: str, arg, tok) -> Term:
        if isinstance(arg, Tree) and arg.data == "number":
            text = str(arg.children[0])
            if not text.isdigit() or int(text) < 1:
                raise ShapeError(f"{name}() needs a positive integer or a dimension name, "
                                 f"got {text}", position=node_position(arg))
            if int(text) > 10**9:
                raise UnsupportedError(f"dimension {text} is too large", position=node_position(arg))
            dim: object = int(text)
        elif isinstance(arg, Tree) and arg.data == "name":
            dim = self.u.dim(str(arg.children[0]))
        else:
            raise ShapeError(f"{name}() needs a positive integer or a dimension name",
                             position=node_position(tok))
        return self.mk(name, attr=(dim,))


def parse(text: str, shapes: dict | None = None, functions: Iterable[str] = ()) -> Term:
    """Parse and type-check ``text``, with the declared ``functions`` (names) callable; free
    dimensions get fresh names (``d1``, ``d2``, ...). :func:`rewrite.stock.parse` declares the
    stock functions."""
    el = Elaborator(shapes, functions)
    term = el.elaborate(text)
    return name_free_dims(term, el.u)


def name_free_dims(t: Term, u: Unifier) -> Term:
    """Give every remaining :class:`DimVar` a fresh symbolic name."""
    used = {d for d in dims_of(t) if isinstance(d, str)}
    names: dict[DimVar, str] = {}
    counter = [0]

    def name_of(d):
        if not isinstance(d, DimVar):
            return d
        if d not in names:
            while True:
                counter[0] += 1
                cand = f"d{counter[0]}"
                if cand not in used:
                    break
            names[d] = cand
        return names[d]

    memo: dict[Term, Term] = {}

    def go(n: Term) -> Term:
        if n in memo:
            return memo[n]
        attr = n.attr
        if OPS[n.op].attr == "dims":
            attr = tuple(name_of(d) for d in attr)
        out = Term(n.op, tuple(go(a) for a in n.args), attr,
                   (name_of(n.shape[0]), name_of(n.shape[1])))
        memo[n] = out
        return out

    return go(t)
