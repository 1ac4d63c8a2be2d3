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

from collections.abc import Callable, Iterable
from fractions import Fraction

from lark import Token, Tree

from .errors import ParseError, ShapeError, UnsupportedError
from .shapes import DimVar, Unifier, fmt_shape
from .syntax import node_position, parse_tree
from .terms import OPS, Term, dims_of, mul_dims, result_shape

BUILTIN_CALLS = {
    "tr": 1, "det": 1, "logdet": 1, "inv": 1, "sum": 1, "norm2": 1, "norm2sq": 1, "fro2": 1,
    "eye": 1, "ones": 1, "diag": 1, "vec": 1, "kron": 2, "kront": 2,
}
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
        tree = parse_tree(text)
        return self.resolve(self.visit(tree))

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
        if kind in ("add", "sub", "mul", "had", "hdiv", "div"):
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
        family = ("add", "sub") if kind in ("add", "sub") else ("mul", "had", "hdiv", "div")
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
        """Check that the non-1×1 operands agree; spread 1×1 operands over their shape."""
        target = None
        for t, n in zip(terms, [None, *nodes], strict=True):
            if self.known_scalar(t):
                continue
            if target is None:
                target = t.shape
            else:
                self.unify_shapes(target, t.shape, n, "'+' needs operands of the same shape")
        if target is None or self.known_scalar(Term("num", (), 0, target)):
            return self.balanced("add", terms)
        full = [self.broadcast(t, target) if self.known_scalar(t) else t for t in terms]
        return self.balanced("add", full)

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
        self.unify_shapes(a.shape, b.shape, node, "'.*' needs operands of the same shape")
        return self.mk("had", a, b)

    def b_hdiv(self, a: Term, b: Term, node) -> Term:
        sa, sb = self.known_scalar(a), self.known_scalar(b)
        if sb and not sa:
            return self.div_scalar(a, b)
        if sa and not sb:
            return self.mk("hdiv", self.broadcast(a, b.shape), b)
        if not sa:
            self.unify_shapes(a.shape, b.shape, node, "'./' needs operands of the same shape")
        return self.mk("hdiv", a, b)

    def div_scalar(self, a: Term, s: Term) -> Term:
        if s.op == "num":
            if s.attr == 0:
                raise UnsupportedError("division by zero")
            return self.scale(Term("num", (), 1 / s.attr, (1, 1)), a)
        return self.scale(self.mk("hdiv", Term("num", (), Fraction(1), (1, 1)), s), a)

    def b_div(self, a: Term, b: Term, node) -> Term:
        if not self.known_scalar(b):
            raise ShapeError(
                f"'/' needs a 1×1 right operand, got {self.shape_str(b.shape)}; "
                "use './' for elementwise division or inv() for matrices",
                position=node_position(node))
        if self.known_scalar(a):
            return self.mk("hdiv", a, b)
        return self.div_scalar(a, b)

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
            raise ShapeError(f"exponent of '^' must be 1×1, got {self.shape_str(expo.shape)}",
                             position=node_position(node.children[1]))
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
            raise UnsupportedError(f"unknown function {name!r}", position=node_position(name_tok))
        if len(raw_args) != arity:
            raise ParseError(f"{name}() takes {arity} argument{'s' * (arity > 1)}, "
                             f"got {len(raw_args)}", position=node_position(name_tok))
        if name in ("eye", "ones"):
            return self.dim_call(name, raw_args[0], name_tok)
        args = [self.visit(a) for a in raw_args]
        a = args[0]
        if name in ("tr", "det", "logdet", "inv"):
            self.require_square(a, node, f"{name}()")
            return self.mk(name, a)
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
