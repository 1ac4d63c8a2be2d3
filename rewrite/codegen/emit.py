"""The emitter: typed terms in, lines of generated code out. Every term becomes a temporary
``tK = <expression>`` (shared by everything that needs it: common subexpressions are computed
once), spelled for one backend (:mod:`.backends`). Matrix products are planned as chains
(:func:`.plan.plan_chain`), ``inv(A)*B`` becomes a solve unless ``inv(A)`` is needed anyway,
numeric factors are hoisted out of products, and the runtime helpers a line calls are collected
(:mod:`.runtime`). A function's body may then overwrite temporaries nothing reads any more.

>>> from rewrite.parse import parse
>>> from rewrite.codegen.backends import NUMPY
>>> em = Emitter(NUMPY, registry=None)
>>> t = parse("tr(A*X)", {"A": (2, 3), "X": (3, 2)})
>>> em.scan(t)
>>> em.emit(t)
Val(src='t1', scalar=True, literal=False)
>>> [(name, src) for name, src, _ in em.lines]
[('t0', 'x_A @ x_X'), ('t1', 'np.trace(t0)')]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING

from .. import functions
from ..errors import UnsupportedError
from ..terms import Term, make, post_order
from .backends import Backend
from .plan import NOMINAL_DIM, Plan, inverse_cost, plan_chain, plan_cost
from .runtime import function_source

if TYPE_CHECKING:  # sympy is imported where it is used (it takes ~0.35 s)
    import sympy


@dataclass(frozen=True)
class Val:
    """A value in the generated code: source text (an atom), 0-d (``scalar``) or 2-D."""

    src: str
    scalar: bool
    literal: bool = False


def _is_chain(t: Term) -> bool:
    return t.op == "mul" and not t.args[0].is_scalar and not t.args[1].is_scalar


def hoist_numbers(t: Term) -> Term:
    """``t`` with numeric factors moved out of matrix products (``A*(c*B)`` → ``c*(A*B)``), so
    that a product chain is not cut by a number and its parts can be shared with ``f``.

    >>> from rewrite.parse import parse
    >>> from rewrite.printing import to_text
    >>> sh = {"A": (2, 3), "B": (3, 3), "C": (3, 2)}
    >>> t = hoist_numbers(parse("A*((-0.5*B)*C)", sh))
    >>> (t.op, t.args[0].attr, to_text(t.args[1]))
    ('scale', Fraction(-1, 2), 'A*B*C')
    """
    memo: dict[Term, Term] = {}

    def number(x: Term) -> Fraction | None:
        return x.args[0].attr if x.op == "scale" and x.args[0].op == "num" else None

    for n in post_order(t):
        args = tuple(memo[a] for a in n.args)
        out = n if args == n.args else Term(n.op, args, n.attr, n.shape)
        if n.op == "mul":
            a, b = args
            c = Fraction(1)
            if number(a) is not None and not a.is_scalar:
                c, a = c * number(a), a.args[1]
            if number(b) is not None and not b.is_scalar:
                c, b = c * number(b), b.args[1]
            if c != 1:
                inner = make("mul", a, b)
                out = make("scale", Term("num", (), c, (1, 1)), inner)
        memo[n] = out
    return memo[t]


def _factors(t: Term) -> list[Term]:
    if _is_chain(t):
        return _factors(t.args[0]) + _factors(t.args[1])
    return [t]


def _inv_inner(t: Term) -> Term | None:
    """``A`` for ``inv(A)``, ``A'`` for ``inv(A)'`` (both are inverses of that matrix)."""
    if t.op == "inv" and not t.is_scalar:
        return t.args[0]
    if t.op == "t" and t.args[0].op == "inv" and not t.is_scalar:
        return make("t", t.args[0].args[0])
    return None


def _transpose(t: Term) -> Term:
    return t.args[0] if t.op == "t" else make("t", t)


def _concrete(shape: tuple) -> bool:
    return all(isinstance(d, int) for d in shape)


def _tr(v: Val) -> Val:
    if v.scalar:
        return v
    return Val(v.src[:-2] if v.src.endswith(".T") else v.src + ".T", False)


def _literal(x) -> str:
    s = repr(float(x))
    return f"({s})" if s.startswith("-") else s


class Emitter:
    """Emits the terms of one module for ``backend``: :meth:`scan` every term first (to find
    the inverses needed as matrices), then :meth:`emit` each; ``lines`` holds the temporaries
    ``(name, source, temporaries it reads)`` and ``helpers`` the source of every helper function
    they call, by name, in order of first use."""

    def __init__(self, backend: Backend, registry: functions.FunctionRegistry | None) -> None:
        self.b = backend
        self.registry = registry
        self.lines: list[tuple[str, str, frozenset[str]]] = []
        self.memo: dict[Term, Val] = {}
        self.chains: dict[tuple[Term, ...], Val] = {}
        self.helpers: dict[str, str] = {}
        self.standalone_inv: set[Term] = set()
        self._seen: set[tuple[Term, bool]] = set()
        #: temporaries holding an array the generated function allocated itself, with its shape
        self.fresh: dict[str, tuple] = {}
        #: in-place forms of a line: (temporary it overwrites, source)
        self.alts: dict[str, list[tuple[str, str]]] = {}
        #: temporaries computed as ``left @ right``, with their operands
        self.products: dict[str, tuple[Val, Val]] = {}
        #: arrays that may be views of the temporaries they are computed from (``np.diagonal``,
        #: reshapes): those temporaries must outlive them
        self.views: dict[str, frozenset[str]] = {}

    # bookkeeping
    def use(self, helper: str, file: str | None = None) -> None:
        """Copy function ``helper`` of a runtime file (the backend's by default) into the module."""
        if helper not in self.helpers:
            self.helpers[helper] = function_source(file or self.b.helpers, helper)

    def bind(self, src: str, scalar: bool, fresh: tuple | None = None,
             alts: Sequence[tuple[str, str]] = ()) -> Val:
        """A new temporary ``tK = src``; ``fresh`` is the shape of a newly allocated array,
        ``alts`` the line's in-place forms (see :meth:`reuse_buffers`)."""
        name = f"t{len(self.lines)}"
        deps = frozenset(w for w in names_in(src) if w.startswith("t") and w[1:].isdigit())
        self.lines.append((name, src, deps))
        if fresh is not None and fresh != (1, 1):
            self.fresh[name] = fresh
            if alts:
                self.alts[name] = list(alts)
        elif not scalar and deps:
            self.views[name] = deps
        return Val(name, scalar)

    def inplace(self, op: str, args: Sequence[Val], shape: tuple) -> list[tuple[str, str]]:
        """In-place forms of ``op(*args)`` (an operator of the backend's ``ufuncs`` or an
        elementwise function), one per argument whose array could take the result."""
        if not self.b.ufuncs:
            return []
        fn = self.b.ufuncs.get(op, op)
        srcs = ", ".join(a.src for a in args)
        return [(a.src, f"{fn}({srcs}, out={a.src})") for a in args
                if self.fresh.get(a.src) == shape]

    def reuse_buffers(self, lines: list[tuple[str, str]], roots: set[str]) -> list[tuple[str, str]]:
        """``lines`` (one function's body), where a line may overwrite a temporary array that
        nothing reads afterwards (nor elsewhere in that line) instead of allocating a new one:
        fewer allocations, less memory traffic for large arrays."""
        last: dict[str, int] = {}
        for i, (_, src) in enumerate(lines):
            for w in names_in(src):
                last[w] = i
        for w in roots:
            last[w] = len(lines)
        for name, _ in reversed(lines):  # a temporary lives as long as any view of it
            for d in self.views.get(name, ()):
                last[d] = max(last.get(d, -1), last.get(name, -1))
        out = []
        for i, (name, src) in enumerate(lines):
            for x, alt in self.alts.get(name, ()):
                if last.get(x) == i and names_in(src).count(x) == 1:
                    src = alt
                    break
            out.append((name, src))
        return out

    def scan(self, t: Term, as_factor: bool = False) -> None:
        """Find the inverses needed as matrices (not only applied inside products)."""
        if (t, as_factor) in self._seen:
            return
        self._seen.add((t, as_factor))
        if _is_chain(t):
            for f in _factors(t):
                self.scan(f, True)
            return
        inner = _inv_inner(t)
        if as_factor and inner is not None:
            self.scan(t.args[0] if t.op == "inv" else t.args[0].args[0])
            return
        if t.op == "inv" and not t.is_scalar:
            self.standalone_inv.add(t)
        for a in t.args:
            self.scan(a)

    # terms
    def emit(self, t: Term) -> Val:
        """The value of ``t``, emitted on first use."""
        v = self.memo.get(t)
        if v is None:
            v = self.memo[t] = self._emit(t)
        return v

    def operand(self, t: Term) -> Val:
        """Like :meth:`emit`, but a broadcast 1×1 value (``fill``, ``c*fill``) stays 0-d."""
        if t.op == "fill":
            return Val("1.0", True, True)
        if t.op == "scale" and t.args[1].op == "fill":
            return self.emit(t.args[0])
        return self.emit(t)

    def _emit(self, t: Term) -> Val:
        op, b, sc = t.op, self.b, t.is_scalar
        if op == "var":
            return Val(input_name(t.attr), sc)
        if op == "num":
            return Val(_literal(t.attr), True, True)
        if op == "t":
            return _tr(self.emit(t.args[0]))
        if op == "mul" and _is_chain(t):
            v = self.chain(_factors(t), t)
            return self.bind(f"{v.src}[0, 0]", True) if sc else v
        if op in ("mul", "scale"):
            a, c = self.emit(t.args[0]), self.emit(t.args[1])
            if op == "scale" and t.args[0].op == "num" and t.args[0].attr == -1:
                return self.bind(f"-{c.src}", c.scalar, t.shape, self.inplace("neg", [c], t.shape))
            if a.literal and c.literal:
                return Val(_literal(float(a.src.strip("()")) * float(c.src.strip("()"))), True, True)
            s, m = (a, c) if a.scalar else (c, a)
            if s.scalar and m.src in self.products and self.b.scaled_matmul:
                # c*(A*B): the scalar goes to the smallest of A, B and the product (at run time)
                self.use("_scaled_matmul")
                left, right = self.products[m.src]
                return self.bind(f"_scaled_matmul({s.src}, {left.src}, {right.src})", False,
                                 t.shape)
            return self.bind(f"{a.src} * {c.src}", a.scalar and c.scalar, t.shape,
                             self.inplace("*", [a, c], t.shape))
        if op == "add":
            return self.add(t)
        if op in ("had", "hdiv", "epow", "epows"):
            x, y = t.args
            if op == "had" and x.op == "fill":
                return self.emit(y)
            if op == "had" and y.op == "fill":
                return self.emit(x)
            full_x = x.shape == t.shape and not _broadcast(x)
            full_y = y.shape == t.shape and not _broadcast(y)
            a = self.operand(x) if full_y else self.emit(x)
            c = self.operand(y) if full_x else self.emit(y)
            sym = {"had": "*", "hdiv": "/", "epow": "**", "epows": "**"}[op]
            if a.literal and c.literal:
                a = self.as_array(a)
            return self.bind(f"{a.src} {sym} {c.src}", sc, t.shape, self.inplace(sym, [a, c], t.shape))
        if op == "fill":
            if sc:
                return Val("1.0", True, True)
            return self.bind(b.ones.format(*(self.dim(d) for d in t.attr)), False)
        if op == "ones":
            if sc:
                return Val("1.0", True, True)
            return self.bind(b.ones.format(self.dim(t.attr[0]), 1), False)
        if op == "eye":
            if sc:
                return Val("1.0", True, True)
            return self.bind(b.eye.format(self.dim(t.attr[0])), False)
        if op == "fn":
            return self.fn(t.attr, self.emit(t.args[0]), sc, t.shape)
        if op in ("kron", "kront"):
            x, y = (self.as_array(self.emit(a)).src for a in t.args)
            if op == "kront":
                self.use("_kront")
                return self.bind(f"_kront({x}, {y})", sc)
            return self.bind(b.kron.format(x, y), sc)
        x = t.args[0]
        if (op == "sum" and b.dot and x.op == "had" and not x.is_scalar
                and all(y.shape == x.shape and not _broadcast(y) for y in x.args)):
            return self.bind(b.dot.format(*(self.emit(y).src for y in x.args)), True)
        a = self.emit(x)
        if op in ("tr", "det", "diag", "diagv", "vec", "sum") and a.scalar:
            return a
        if op == "inv" and a.scalar:
            return self.bind(f"1.0 / {a.src}", True)
        if op in ("softmax", "logsumexp"):  # column-wise; of a 1×1: 1 and itself
            if a.scalar:
                return Val("1.0", True, True) if op == "softmax" else a
            spelling = b.softmax if op == "softmax" else b.logsumexp
            if spelling.startswith("_"):
                self.use(spelling.split("(")[0])
            v = self.bind(spelling.format(a.src), False)
            return self.bind(f"{v.src}[0, 0]", True) if sc else v
        if op == "norm2" and a.scalar:
            return self.bind(f"abs({a.src})", True)
        if op == "fro2" and a.scalar:
            return self.bind(f"{a.src} * {a.src}", True)
        if op == "logdet" and a.scalar:
            return self.bind(b.fns["log"] + f"({self.as_array(a).src})", True)
        if op == "mpow":
            k = t.args[1]
            if a.scalar:
                return self.bind(f"{a.src} ** {self.emit(k).src}", True)
            if k.op != "num" or k.attr.denominator != 1:
                raise UnsupportedError("matrix power with a non-integer exponent")
            n = int(k.attr)
            if n == 1:
                return a
            if n == -1:
                return self.emit(make("inv", t.args[0]))
            return self.bind(b.mpow.format(a.src, n), False)
        simple = {"tr": b.trace, "det": b.det, "inv": b.inv, "sum": b.sum, "norm2": b.norm,
                  "diag": b.diag, "diagv": b.diagv, "vec": "{}.T.reshape(-1, 1)"}
        if op in simple:
            return self.bind(simple[op].format(a.src), sc, t.shape if op == "inv" else None)
        if op == "fro2":
            return self.bind(b.dot.format(a.src, a.src) if b.dot else
                             b.sum.format(f"{a.src} * {a.src}"), True)
        if op == "logdet":
            self.use("_logdet")
            return self.bind(f"_logdet({a.src})", True)
        raise UnsupportedError(f"cannot generate code for {op!r} (only for derived gradients)")

    def as_array(self, v: Val) -> Val:
        return Val(self.b.literal.format(v.src), v.scalar) if v.literal else v

    def dim(self, d) -> str:
        if isinstance(d, int):
            return str(d)
        return f"dims[{d!r}][0]"

    def add(self, t: Term) -> Val:
        items: list[tuple[bool, Term]] = []

        def flat(x: Term, neg: bool) -> None:
            if x.op == "add":
                flat(x.args[0], neg)
                flat(x.args[1], neg)
            elif x.op == "scale" and x.args[0].op == "num" and x.args[0].attr < 0 and not _broadcast(x):
                c = -x.args[0].attr
                flat(x.args[1] if c == 1 else make("scale", Term("num", (), c, (1, 1)), x.args[1]),
                     not neg)
            else:
                items.append((neg, x))

        flat(t, False)
        has_full = any(x.shape == t.shape and not _broadcast(x) for _, x in items) or t.is_scalar
        vals = [(neg, self.operand(x) if has_full else self.emit(x)) for neg, x in items]
        vals.sort(key=lambda nv: nv[0])  # a positive term first when there is one
        neg0, v0 = vals[0]
        src = f"-{v0.src}" if neg0 else v0.src
        for neg, v in vals[1:]:
            src += f" {'-' if neg else '+'} {v.src}"
        alts = []
        for k, (neg, v) in enumerate(vals):
            if neg or not self.b.ufuncs or self.fresh.get(v.src) != t.shape:
                continue
            acc = v.src  # accumulate the other terms into v's array
            for neg2, w in vals[:k] + vals[k + 1:]:
                acc = f"{self.b.ufuncs['-' if neg2 else '+']}({acc}, {w.src}, out={v.src})"
            alts.append((v.src, acc))
        return self.bind(src, t.is_scalar, t.shape, alts)

    def fn(self, name: str, a: Val, scalar: bool, shape: tuple = (1, 1)) -> Val:
        b = self.b
        stock = _stock_kind(name, self.registry)
        arg = self.as_array(a).src
        if stock == "sigmoid":
            if b.sigmoid.startswith("_"):  # a runtime helper (NumPy's, which cannot overflow)
                self.use(b.sigmoid.split("(")[0])
            return self.bind(b.sigmoid.format(arg), scalar)
        if stock == "softplus":
            return self.bind(b.softplus.format(arg), scalar)
        if name in b.fns and stock == "primitive":
            if b.fns[name].startswith("_"):  # a runtime helper (step, relu)
                self.use(b.fns[name])
                return self.bind(f"{b.fns[name]}({arg})", scalar)
            return self.bind(f"{b.fns[name]}({arg})", scalar, shape,
                             self.inplace(b.fns[name], [a], shape))
        helper = f"_fn_{name}"
        if helper not in self.helpers:
            self.helpers[helper] = _function_helper(name, self.registry, b)
            for used in set(re.findall(r"\b(_step|_relu)\(", self.helpers[helper])):
                self.use(used)
        return self.bind(f"{helper}({arg})", scalar)

    # products
    def matmul(self, left: Val, right: Val) -> str:
        """``left @ right``; for JAX a transposed operand is contracted in place with
        ``lax.dot_general`` (XLA on CPU copies a transposed matrix before a plain ``@``: ten
        times slower for ``X.T @ r`` with X 2000×2000)."""
        lt, rt = left.src.endswith(".T"), right.src.endswith(".T")
        if not self.b.dot_general or not (lt or rt):
            return f"{left.src} @ {right.src}"
        a = left.src[:-2] if lt else left.src
        c = right.src[:-2] if rt else right.src
        return (f"jax.lax.dot_general({a}, {c}, ((({0 if lt else 1},), ({1 if rt else 0},)), "
                "((), ())))")

    def known(self, factors: Sequence[Term]) -> Val | None:
        """The product of ``factors`` if computed already, directly or as its transpose."""
        v = self.chains.get(tuple(factors))
        if v is None:
            v = self.chains.get(tuple(_transpose(f) for f in reversed(factors)))
            v = _tr(v) if v is not None else None
        return v

    def chain(self, factors: list[Term], t: Term) -> Val:
        v = self.known(factors)
        if v is not None:
            return v
        w = _diag_vector(factors[1]) if len(factors) == 3 else None
        if w is not None and factors[0] == _transpose(factors[2]) and self.b.gram:
            # A'*diag(w)*A: a symmetric product (BLAS syrk, half the multiply-adds) when w ≥ 0
            self.use("_gram")
            a = self.emit(factors[2])
            v = self.bind(f"_gram({a.src}, {self.emit(w).src})", False)
            self.chains[tuple(factors)] = v
            return v
        shapes = [f.shape for f in factors]
        inners = [_inv_inner(f) for f in factors]
        materialised = []
        for f, inner in zip(factors, inners, strict=True):
            inv = f if f.op == "inv" else (f.args[0] if inner is not None else None)
            materialised.append(inv is None or inv in self.standalone_inv or inv in self.memo)
        # symbolic dimensions are planned as if all were the same large size (NOMINAL_DIM)
        nominal = [tuple(d if isinstance(d, int) else NOMINAL_DIM for d in s) for s in shapes]
        leaf_costs = [0.0 if m else inverse_cost(n[0])
                      for n, m in zip(nominal, materialised, strict=True)]
        solvable = [x is not None for x in inners]

        def known(i: int, j: int) -> bool:
            return self.known(factors[i:j + 1]) is not None

        plan = plan_chain(nominal, leaf_costs, solvable, known=known)
        if not all(_concrete(s) for s in shapes):
            # the term's own bracketing unless the nominal sizes say another one is cheaper; an
            # inverse computed anyway is multiplied (a product costs less than a solve)
            written, _ = _plan_from_term(t, 0, [x if not m else None
                                                for x, m in zip(inners, materialised, strict=True)])
            if plan_cost(written, nominal, leaf_costs, known) <= plan.cost:
                plan = written
        return self.run_plan(plan, factors, inners)

    def run_plan(self, p: Plan, factors: list[Term], inners: list[Term | None]) -> Val:
        key = tuple(factors[p.i:p.j + 1])
        v = self.known(key)
        if v is not None:
            return v
        if p.how == "leaf":
            return self.emit(factors[p.i])
        b = self.b
        shape = (factors[p.i].shape[0], factors[p.j].shape[1])
        if p.how == "mul":
            dl, dr = (_diag_vector(factors[q.i]) if q.how == "leaf" else None
                      for q in (p.left, p.right))
            if dl is not None:  # diag(v)*B scales the rows of B: no n×n matrix, no matmul
                right = self.run_plan(p.right, factors, inners)
                d = self.emit(dl)
                v = self.bind(f"{d.src} * {right.src}", False, shape,
                              self.inplace("*", [d, right], shape))
            elif dr is not None:  # A*diag(v) scales the columns of A
                left = self.run_plan(p.left, factors, inners)
                d = _tr(self.emit(dr))
                v = self.bind(f"{left.src} * {d.src}", False, shape,
                              self.inplace("*", [left, d], shape))
            else:
                left = self.run_plan(p.left, factors, inners)
                right = self.run_plan(p.right, factors, inners)
                v = self.bind(self.matmul(left, right), False, shape)
                self.products[v.src] = (left, right)
        elif p.how == "solve":
            a = self.emit(inners[p.i])
            right = self.run_plan(p.right, factors, inners)
            v = self.bind(b.solve.format(a.src, right.src), False, shape)
        elif p.how == "rsolve":
            a = self.emit(inners[p.j])
            left = self.run_plan(p.left, factors, inners)
            v = _tr(self.bind(b.solve.format(_tr(a).src, _tr(left).src), False, shape[::-1]))
        else:  # pragma: no cover - "known" ranges are found in self.chains above
            raise AssertionError(p.how)
        self.chains[key] = v
        return v


def _diag_vector(t: Term) -> Term | None:
    """v when ``t`` is the diagonal matrix ``diag(v)`` of a column v (or its transpose)."""
    if t.op == "t":
        t = t.args[0]
    if t.op == "diag" and t.args[0].shape[1] == 1 and not t.is_scalar:
        return t.args[0]
    return None


def _plan_from_term(t: Term, offset: int, inners: list[Term | None]) -> tuple[Plan, int]:
    """The bracketing written in the term (used when shapes are symbolic); inverses are applied
    as solves."""
    if not _is_chain(t):
        return Plan(offset, offset, "leaf", 0.0), 1
    left, nl = _plan_from_term(t.args[0], offset, inners)
    right, nr = _plan_from_term(t.args[1], offset + nl, inners)
    i, j = offset, offset + nl + nr - 1
    how = "mul"
    if left.how == "leaf" and inners[i] is not None:
        how = "solve"
    elif right.how == "leaf" and inners[j] is not None:
        how = "rsolve"
    return Plan(i, j, how, 0.0, left, right), nl + nr


def _broadcast(t: Term) -> bool:
    return t.op == "fill" or (t.op == "scale" and t.args[1].op == "fill")


def names_in(src: str) -> list[str]:
    """The identifiers in a line of generated code.

    >>> names_in("np.trace(t0) + x_A[0, 0]")
    ['np', 'trace', 't0', 'x_A']
    """
    return re.findall(r"\b[A-Za-z_]\w*\b", src)


def input_name(name: str) -> str:
    """The name of input array ``name`` inside generated functions."""
    return f"x_{name}"


# -- elementwise functions -----------------------------------------------------------------------
_STOCK = {"sigmoid": "1/(1 + exp(-x))", "softplus": "log(1 + exp(x))"}


def _stock_kind(name: str, registry: functions.FunctionRegistry | None) -> str:
    """``"sigmoid"``/``"softplus"`` when ``name`` has the stock definition, ``"primitive"`` for
    a function sympy knows natively, else ``"declared"``."""
    import sympy

    x, primitives = functions.X, functions.PRIMITIVES
    decl = registry[name] if registry is not None and name in registry else None
    if decl is None:
        raise UnsupportedError(f"unknown elementwise function {name!r}")
    if name in _STOCK:
        ref = sympy.sympify(_STOCK[name], locals={"x": x, "exp": sympy.exp, "log": sympy.log})
        if _same(decl.expanded, ref):
            return name
    if name in primitives and decl.expanded == primitives[name](x):
        return "primitive"
    return "declared"


@lru_cache(maxsize=256)
def _same(a: sympy.Expr, b: sympy.Expr) -> bool:
    import sympy

    return sympy.simplify(a - b) == 0


def _function_helper(name: str, registry: functions.FunctionRegistry, b: Backend) -> str:
    """``def _fn_NAME(x): return ...`` from the function's scalar definition."""
    x = functions.X
    decl = registry[name]

    def go(e: sympy.Expr) -> str:
        if not e.free_symbols:
            try:
                return _literal(float(e))
            except TypeError:
                raise UnsupportedError(f"function {name}: constant {e} is not real") from None
        if e == x:
            return "x"
        if e.is_Add:
            return "(" + " + ".join(go(a) for a in e.args) + ")"
        if e.is_Mul:
            return "(" + " * ".join(go(a) for a in e.args) + ")"
        if e.is_Pow:
            base, ex = e.args
            if ex == -1:
                return f"(1.0 / {go(base)})"
            return f"({go(base)} ** {go(ex)})"
        fname = functions.language_name(e) or e.func.__name__
        if fname in b.fns and (len(e.args) == 1 or fname in ("step", "relu")):
            return f"{b.fns[fname]}({go(functions.language_argument(e))})"
        raise UnsupportedError(f"function {name}: {fname}() has no {b.name} equivalent here")

    body = go(decl.expanded)
    return (f"\n\ndef _fn_{name}(x):\n    \"\"\"{name}(x) = {decl.definition}, elementwise.\"\"\"\n"
            f"    return {body}\n")


__all__ = ["Emitter", "Val", "hoist_numbers", "input_name", "names_in"]
