"""Typed matrix terms: an immutable tree of operator nodes, each carrying its shape.

Every value is two-dimensional; ``shape`` is ``(rows, cols)`` with ints or dimension names.
The operator table :data:`OPS` is the language definition shared by the parser, the printers,
the e-graph backend (constructor names and typing) and the numeric evaluator.

>>> x = var("x", (3, 1))
>>> t = make("mul", make("t", x), x)
>>> t.shape
(1, 1)
>>> sorted(free_vars(t))
['x']
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from fractions import Fraction


@dataclass(frozen=True)
class OpInfo:
    """How an operator is typed and named.

    ``rows``/``cols`` describe the result dimensions: ``("r", i)`` rows of argument i,
    ``("c", i)`` its columns, ``("a", k)`` the k-th dimension attribute, ``("1",)`` one,
    ``("rc", i)`` rows times columns of argument i, ``("rr", i, j)`` rows of argument i times
    rows of argument j, ``("cc", i, j)`` the same for columns.
    """

    name: str
    arity: int
    ctor: str
    rows: tuple
    cols: tuple
    attr: str = ""  # "", "name", "value", "dims"


def _op(name, arity, ctor, rows, cols, attr=""):
    return OpInfo(name, arity, ctor, rows, cols, attr)


_R0, _C0, _R1, _C1, _ONE = ("r", 0), ("c", 0), ("r", 1), ("c", 1), ("1",)
OPS: dict[str, OpInfo] = {
    o.name: o
    for o in [
        _op("var", 0, "Var", None, None, "name"),
        _op("pvar", 0, "PVar", None, None, "name"),
        _op("num", 0, "Num", _ONE, _ONE, "value"),
        _op("add", 2, "Add", _R0, _C0),
        _op("mul", 2, "Mul", _R0, _C1),
        _op("scale", 2, "Scale", _R1, _C1),
        _op("had", 2, "Had", _R0, _C0),
        _op("hdiv", 2, "HDiv", _R0, _C0),
        _op("t", 1, "T", _C0, _R0),
        _op("tr", 1, "Tr", _ONE, _ONE),
        _op("det", 1, "Det", _ONE, _ONE),
        _op("logdet", 1, "Logdet", _ONE, _ONE),
        _op("inv", 1, "Inv", _R0, _C0),
        _op("mpow", 2, "MPow", _R0, _C0),
        _op("epow", 2, "EPow", _R0, _C0),
        _op("epows", 2, "EPowS", _R0, _C0),
        _op("fn", 1, "Fn", _R0, _C0, "name"),
        # column-wise: each column exp(x)/sum(exp(x)), and log(sum(exp(x))) (1×n)
        _op("softmax", 1, "Softmax", _R0, _C0),
        _op("logsumexp", 1, "Logsumexp", _ONE, _C0),
        _op("sum", 1, "Sum", _ONE, _ONE),
        _op("norm2", 1, "Norm2", _ONE, _ONE),
        _op("fro2", 1, "Fro2", _ONE, _ONE),
        _op("eye", 0, "Eye", ("a", 0), ("a", 0), "dims"),
        _op("ones", 0, "Ones", ("a", 0), _ONE, "dims"),
        _op("fill", 0, "Fill", ("a", 0), ("a", 1), "dims"),
        _op("diag", 1, "Diag", _R0, _R0),
        _op("diagv", 1, "DiagV", _R0, _ONE),
        _op("vec", 1, "Vec", ("rc", 0), _ONE),
        _op("d", 1, "D", _R0, _C0),
        _op("grad", 2, "Grad", _R1, _C1),
        # adj(E, W, d(X)): the G with tr(W'*E) = tr(G'*d(X)), E linear in d(X) (collect.rules)
        _op("adj", 3, "Adj", ("r", 2), ("c", 2)),
        _op("kron", 2, "Kron", ("rr", 0, 1), ("cc", 0, 1)),
        _op("kront", 2, "KronT", ("rr", 0, 1), ("cc", 0, 1)),
        _op("jac", 2, "Jac", ("rc", 0), ("rc", 1)),
    ]
}
CTOR_TO_OP = {o.ctor: o.name for o in OPS.values()}
SCALAR_FUNCS = ("tr", "det", "logdet", "sum", "norm2", "fro2")


@dataclass(frozen=True)
class Term:
    """One node: operator, arguments, attribute (name, value or dims) and shape."""

    op: str
    args: tuple[Term, ...] = ()
    attr: object = None
    shape: tuple = (1, 1)
    _hash: int = field(default=0, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.op, self.args, self.attr, self.shape)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self):
        # rebuilt through __init__: the hash is recomputed (a DimVar in a shape hashes by
        # identity, which pickling changes)
        return Term, (self.op, self.args, self.attr, self.shape)

    def __repr__(self) -> str:
        """Structural: ``Term('(mul (t A) X)')`` (:func:`rewrite.printing.to_text` reads better)."""
        return f"Term({sexpr(self)!r})"

    @property
    def is_scalar(self) -> bool:
        return self.shape == (1, 1)


def result_shape(op: str, args: tuple[Term, ...], attr: object) -> tuple:
    """Shape of ``op(args)`` from the operator table (arguments assumed well typed)."""
    info = OPS[op]

    def spec(s):
        kind = s[0]
        if kind == "1":
            return 1
        if kind == "r":
            return args[s[1]].shape[0]
        if kind == "c":
            return args[s[1]].shape[1]
        if kind == "a":
            return attr[s[1]]
        if kind == "rc":
            r, c = args[s[1]].shape
            return mul_dims(r, c)
        if kind in ("rr", "cc"):
            k = 0 if kind == "rr" else 1
            return mul_dims(args[s[1]].shape[k], args[s[2]].shape[k])
        raise ValueError(s)

    return (spec(info.rows), spec(info.cols))


def mul_dims(a, b):
    """Product of two dimensions (``vec`` of an m×n matrix has m*n rows), in a canonical form
    (number first, names sorted) so that equal products compare equal.

    >>> mul_dims(2, 3), mul_dims("m", 1), mul_dims("m", "n"), mul_dims("n", "m"), mul_dims("2*n", 3)
    (6, 'm', 'm*n', 'm*n', '6*n')
    """
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    if a == 1:
        return b
    if b == 1:
        return a
    k, names = 1, []
    for part in f"{a}*{b}".split("*"):
        if part.isdigit():
            k *= int(part)
        else:
            names.append(part)
    return "*".join(([str(k)] if k != 1 else []) + sorted(names))


def make(op: str, *args: Term, attr: object = None) -> Term:
    """Build a node, computing its shape from the operator table."""
    return Term(op, tuple(args), attr, result_shape(op, tuple(args), attr))


def var(name: str, shape: tuple) -> Term:
    return Term("var", (), name, tuple(shape))


def num(value) -> Term:
    """A number node (floats are read as the nearest simple fraction).

    >>> num(0.5).attr
    Fraction(1, 2)
    """
    if isinstance(value, float):
        value = Fraction(value).limit_denominator(10**12)
    return Term("num", (), Fraction(value), (1, 1))


def free_vars(t: Term) -> set[str]:
    out: set[str] = set()
    stack = [t]
    while stack:
        n = stack.pop()
        if n.op == "var":
            out.add(n.attr)
        stack.extend(n.args)
    return out


def var_shapes(t: Term) -> dict[str, tuple]:
    """Name → shape of every variable in ``t``."""
    out: dict[str, tuple] = {}
    stack = [t]
    while stack:
        n = stack.pop()
        if n.op == "var":
            out[n.attr] = n.shape
        stack.extend(n.args)
    return out


def post_order(t: Term, stop: Container[Term] = ()) -> list[Term]:
    """The distinct subterms of ``t``, each after its arguments (no recursion, so deep terms
    are fine); a subterm in ``stop`` is listed without its arguments.

    >>> a = make("t", var("A", (2, 3)))
    >>> [str(n.op) for n in post_order(make("t", a))]
    ['var', 't', 't']
    >>> [str(n.op) for n in post_order(make("t", a), stop={a})]
    ['t', 't']
    """
    order, seen, todo = [], set(), [(t, False)]
    while todo:
        n, done = todo.pop()
        if done:
            order.append(n)
        elif n not in seen:
            seen.add(n)
            todo.append((n, True))
            if n not in stop:
                todo.extend((a, False) for a in reversed(n.args))
    return order


def contains(t: Term, *ops: str) -> bool:
    """Whether ``t`` has a node with one of the operators ``ops``."""
    stack = [t]
    while stack:
        n = stack.pop()
        if n.op in ops:
            return True
        stack.extend(n.args)
    return False


def size(t: Term) -> int:
    """Number of nodes.

    >>> size(make("t", var("A", (2, 3))))
    2
    """
    return 1 + sum(size(a) for a in t.args)


def dims_of(t: Term) -> set:
    """Every dimension (int or name) appearing in the shapes below ``t``."""
    out: set = set()
    stack = [t]
    while stack:
        n = stack.pop()
        out.update(n.shape)
        if OPS[n.op].attr == "dims":
            out.update(n.attr)
        stack.extend(n.args)
    return out


#: operators whose two arguments have one shape (the parser spells a 1×1 broadcast as a fill)
_SAME_SHAPE = ("add", "had", "hdiv", "epow")
_SQUARE = ("tr", "det", "logdet", "inv", "mpow", "diagv")


def ill_typed(t: Term) -> Term | None:
    """The first node of ``t`` (arguments first) whose arguments do not fit its operator or
    whose shape is not the one its arguments give; None when every node is well typed.

    Every node carries the shape its operator computes, so a term rebuilt from an e-graph in
    which two classes of different shapes were wrongly merged shows up here.

    >>> A, B = var("A", (2, 3)), var("B", (3, 2))
    >>> ill_typed(make("add", make("t", A), B)) is None
    True
    >>> str(ill_typed(make("mpow", A, num(2)).args[0]) is None), ill_typed(make("mpow", A, num(2)))
    ('True', Term('(mpow A 2)'))
    """
    for n in post_order(t):
        a = n.args
        if n.op in _SAME_SHAPE and a[0].shape != a[1].shape:
            return n
        if n.op == "mul" and a[0].shape[1] != a[1].shape[0]:
            return n
        if n.op in ("scale", "epows") and a[0 if n.op == "scale" else 1].shape != (1, 1):
            return n
        if n.op in _SQUARE and a[0].shape[0] != a[0].shape[1]:
            return n
        if n.op == "diag" and a[0].shape[1] != 1:
            return n
        if n.op not in ("var", "pvar") and n.shape != result_shape(n.op, a, n.attr):
            return n
    return None


def sexpr(t: Term) -> str:
    """``t`` as an s-expression of operator names, leaf names, numbers and dimensions.

    >>> sexpr(make("mul", make("t", var("A", (2, 3))), var("X", (2, 2))))
    '(mul (t A) X)'
    """
    memo: dict[Term, str] = {}
    for n in post_order(t):
        if n.op in ("var", "pvar"):
            out = str(n.attr)
        elif n.op == "num":
            out = str(n.attr)
        else:
            head = [n.op]
            if n.attr is not None:
                head.append(",".join(map(str, n.attr)) if isinstance(n.attr, tuple) else str(n.attr))
            out = "(" + " ".join(head + [memo[a] for a in n.args]) + ")"
        memo[n] = out
    return memo[t]
