"""Terms and dimensions to egglog and back: the dimension codec (ints, names and products of
names as ``i64``), a ground term as egglog commands (its shared subterms bound once), and an
extracted term DAG read back as a :class:`~rewrite.terms.Term`.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

from ..errors import TracegradError
from ..terms import CTOR_TO_OP, OPS, Term, make, post_order
from .schema import SHARE

#: numbers of the ``share`` rows, once per process (a pooled e-graph is reused; see session)
SHARE_NUMBERS = itertools.count()


class DimCodec:
    """Maps dimensions (ints, names, products ``m*n``) to i64 and back."""

    BASE = 1_000_003

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.names: dict[int, str] = {}
        self._next = self.BASE

    def _prime(self) -> int:
        n = self._next
        while True:
            if all(n % p for p in range(2, int(n**0.5) + 1)):
                self._next = n + 2
                return n
            n += 2

    def encode(self, d) -> int:
        if isinstance(d, int):
            if not 0 < d < self.BASE:
                raise TracegradError(f"dimension {d} is too large (limit {self.BASE - 1})")
            return d
        code = 1
        for part in str(d).split("*"):
            if part.isdigit():
                code *= int(part)
                continue
            if part not in self.codes:
                c = self._prime()
                self.codes[part] = c
                self.names[c] = part
            code *= self.codes[part]
        return code

    def decode(self, code: int):
        if code < self.BASE:
            return code
        if code in self.names:
            return self.names[code]
        parts, rest = [], code
        for c, n in sorted(self.names.items()):
            while rest % c == 0:
                parts.append(n)
                rest //= c
        # the canonical spelling of terms.mul_dims: the number first, then the names sorted
        return "*".join(([str(rest)] if rest != 1 else []) + sorted(parts))


def rat_literal(v: Fraction) -> str:
    """A rational number as an egglog ``BigRat`` expression."""
    return f'(bigrat (from-string "{v.numerator}") (from-string "{v.denominator}"))'


def str_literal(s: str) -> str:
    """A Python string as an egglog string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def term_sexpr(t: Term, codec: DimCodec, known: dict[Term, str] | None = None,
                bind_root: bool = False) -> tuple[list[str], str]:
    """A ground term as egglog commands binding its shared subterms, and an expression.

    Terms are DAGs: a subterm used more than once is written once, set in the ``share`` table
    under a fresh number and referred to as ``(share k)``, so the text grows with the number of
    distinct subterms, not with the size of the tree. (Bound to egglog globals with ``let``,
    they made egglog 13.2 extract wrong terms from large inputs: a child replaced by another
    class of the input, e.g. ``B2'*B2'`` for ``A37'*B2'`` in a sum of 150+ products; a
    function table is not part of extraction.)

    ``known`` maps terms already in the e-graph to their ``share`` expressions: they are
    referred to, not written again, and the subterms bound here are added to it; with
    ``bind_root``, ``t`` itself is bound too (so that a later term can refer to it).

    >>> from rewrite.terms import make, var
    >>> x = make("t", var("x", (2, 1)))
    >>> binds, e = term_sexpr(make("add", x, x), DimCodec())
    >>> len(binds), e.count("(share ")
    (1, 2)
    >>> known = {}
    >>> binds, e = term_sexpr(x, DimCodec(), known, bind_root=True)
    >>> term_sexpr(make("tr", x), DimCodec(), known) == ([], f"(Tr {known[x]})")
    True
    """
    known = {} if known is None else known
    uses: dict[Term, int] = {}
    stack = [t]
    while stack:
        n = stack.pop()
        uses[n] = uses.get(n, 0) + 1
        if uses[n] == 1 and n not in known:
            stack.extend(n.args)
    binds: list[str] = []
    memo: dict[Term, str] = {}
    # arguments first (no recursion limit for deep terms); what is known is not written again
    for n in post_order(t, stop=known):
        if n in known:
            memo[n] = known[n]
            continue
        o = OPS[n.op]
        if n.op == "var":
            out = f"(Var {str_literal(n.attr)})"
        elif n.op == "num":
            out = f"(Num {rat_literal(n.attr)})"
        elif o.attr == "dims":
            out = f"({o.ctor} {' '.join(str(codec.encode(d)) for d in n.attr)})"
        elif o.attr == "name":
            out = f"({o.ctor} {str_literal(n.attr)} {' '.join(memo[a] for a in n.args)})"
        elif n.op == "pvar":
            raise TracegradError("pattern variable in a ground term")
        else:
            out = f"({o.ctor} {' '.join(memo[a] for a in n.args)})"
        if n.args and (uses[n] > 1 or (bind_root and n is t)):
            k = next(SHARE_NUMBERS)
            binds.append(f"(set ({SHARE} {k}) {out})")
            out = known[n] = f"({SHARE} {k})"
        memo[n] = out
    return binds, memo[t]


def to_term(dag, tid, var_shapes: dict[str, tuple], codec: DimCodec) -> Term:
    """The term ``tid`` of an extracted term DAG, with the variables' shapes and dimensions
    decoded."""
    memo: dict[int, Term] = {}

    def go(i: int) -> Term:
        if i in memo:
            return memo[i]
        node = dag.get(i)
        name = node.name
        if name == "Var":
            vname = literal_value(dag.get(node.args[0]))
            t = Term("var", (), vname, var_shapes[vname])
        elif name == "Num":
            t = Term("num", (), rat_value(dag, node.args[0]), (1, 1))
        else:
            op = CTOR_TO_OP[name]
            o = OPS[op]
            if o.attr == "dims":
                t = read_node(op, (), tuple(codec.decode(literal_value(dag.get(a)))
                                            for a in node.args))
            elif o.attr == "name":
                t = make(op, *(go(a) for a in node.args[1:]), attr=literal_value(dag.get(node.args[0])))
            else:
                t = read_node(op, tuple(go(a) for a in node.args))
        memo[i] = t
        return t

    return go(tid)


def read_node(op: str, args: tuple[Term, ...], dims: tuple | None = None) -> Term:
    """The term an extracted node (operator ``op`` over ``args``, or over the dimensions
    ``dims``) reads back as: a block of ones of size 1×1 is ``1``, ``*`` with a 1×1 side is a
    scaling (the language's reading; rules match it as such) and ``.*`` of two 1×1 terms a
    product (an adjoint seed's)."""
    if dims is not None:
        if op in ("ones", "fill") and all(d == 1 for d in dims):
            return Term("num", (), Fraction(1), (1, 1))
        return make(op, attr=dims)
    if op == "mul" and (args[0].shape == (1, 1) or args[1].shape == (1, 1)):
        op, args = "scale", (args if args[0].shape == (1, 1) else args[::-1])
    elif op == "had" and args[0].shape == args[1].shape == (1, 1):
        op = "scale"
    return make(op, *args)


def reads_back_as_itself(t: Term) -> bool:
    """Whether :func:`to_term` gives ``t`` back when the e-graph extracts it unchanged: no node
    of it is one that :func:`read_node` respells.

    >>> from rewrite.terms import make, var
    >>> a, c = var("A", (2, 3)), var("c", (1, 1))
    >>> reads_back_as_itself(make("t", a)), reads_back_as_itself(make("mul", c, a))
    (True, False)
    """
    for n in post_order(t):
        attr = OPS[n.op].attr
        if n.op in ("var", "num") or attr == "name":
            continue
        if read_node(n.op, n.args, n.attr if attr == "dims" else None) != n:
            return False
    return True


def literal_value(node):
    """The value of a primitive node of a term DAG."""
    v = node.value
    return v.value if hasattr(v, "value") else v


def rat_value(dag, tid) -> Fraction:
    """The value of a ``BigRat`` node of a term DAG."""
    node = dag.get(tid)  # (bigrat (from-string "p") (from-string "q"))
    p, q = (literal_value(dag.get(dag.get(a).args[0])) for a in node.args)
    return Fraction(int(p), int(q))
