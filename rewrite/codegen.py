"""Generate standalone source code computing f and ∂f/∂X with NumPy, JAX or PyTorch.

The generated module defines ``f_and_grad(**arrays) -> (f, gradient)``, ``objective(**arrays)``,
``gradient(**arrays)`` and ``check_gradient(**arrays)`` (relative error against central finite
differences), following the numeric conventions of the API: a vector may be passed 1-D or as a
column, a scalar as a number, and the gradient comes back in the shape its variable was passed in.

Code is generated from the typed terms of ``f`` and ``G`` together: every common subexpression is
computed once and shared between ``f`` and the gradient. Matrix products are planned as chains:
the bracketing minimises the number of multiply-adds (dynamic programming over the chain, see
:func:`plan_chain`; symbolic dimensions count as one large size, and the term's own bracketing
is kept unless another is cheaper); ``inv(A)*B`` becomes a linear solve unless ``inv(A)`` is
needed on its own anyway; ``logdet`` uses ``slogdet``; ``sigmoid`` and ``softplus`` are evaluated
without overflow; ``sum(A .* B)`` and ``fro2(A)`` are dot products; ``c*(A*B)`` scales the
smallest of A, B and the product (chosen at run time). NumPy code overwrites a
temporary array nothing reads afterwards instead of allocating a new one (never an input).

>>> from rewrite.parse import parse
>>> shapes = {"A": (2, 3), "X": (3, 2)}
>>> src = generate(parse("tr(A*X)", shapes), "X", parse("A'", shapes))
>>> mod = load(src)
>>> import numpy as np
>>> f, g = mod.f_and_grad(A=np.ones((2, 3)), X=np.ones((3, 2)))
>>> f, g.shape
(6.0, (3, 2))
"""

from __future__ import annotations

import itertools
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING

from .errors import UnsupportedError
from .terms import Term, make, post_order, var_shapes

if TYPE_CHECKING:  # sympy is imported where it is used (it takes ~0.35 s)
    import sympy

BACKENDS = ("numpy", "jax", "torch")


# -- chain planning ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """How to compute factors ``i..j`` of a chain: a leaf (``how == "leaf"``), a product
    ``left @ right`` (``"mul"``), ``solve(A, right)`` where factor ``i`` is ``inv(A)``
    (``"solve"``), ``solve(A', left')'`` where factor ``j`` is ``inv(A)`` (``"rsolve"``), or a
    range already computed elsewhere (``"known"``)."""

    i: int
    j: int
    how: str
    cost: float
    left: Plan | None = None
    right: Plan | None = None

    def brackets(self, names: Sequence[str] | None = None) -> str:
        """The bracketing as text.

        >>> plan_chain([(10, 100), (100, 5), (5, 50)]).brackets("ABC")
        '((A B) C)'
        """
        names = names or [f"F{k}" for k in range(self.j + 1)]
        if self.how in ("leaf", "known") and self.left is None:
            return " ".join(names[self.i:self.j + 1]) if self.i != self.j else names[self.i]
        return f"({self.left.brackets(names)} {self.right.brackets(names)})"


def matmul_cost(m: int, n: int, p: int) -> int:
    """Multiply-adds of an (m×n)·(n×p) product."""
    return m * n * p


def solve_cost(n: int, p: int) -> float:
    """Multiply-adds of ``solve(A, B)`` with A n×n and B n×p: an LU factorisation and 2p
    triangular solves."""
    return n**3 / 3 + n * n * p


def inverse_cost(n: int) -> float:
    """Multiply-adds of forming ``inv(A)`` for an n×n matrix."""
    return float(n**3)


def plan_chain(shapes: Sequence[tuple[int, int]], leaf_costs: Sequence[float] | None = None,
               solvable: Sequence[bool] | None = None,
               known: Callable[[int, int], bool] | None = None) -> Plan:
    """The cheapest way to compute the product of factors with the given concrete shapes.

    ``leaf_costs[k]`` is the cost of having factor k as a matrix (e.g. forming an inverse),
    ``solvable[k]`` marks factors ``inv(A)`` that may instead be applied as a solve, and
    ``known(i, j)`` says that the product of factors i..j is already available (cost 0).
    Classic O(k³) dynamic programming; the cost is in multiply-adds.

    >>> p = plan_chain([(10, 100), (100, 5), (5, 50)])
    >>> p.cost, p.brackets("ABC")
    (7500.0, '((A B) C)')
    >>> plan_chain([(4, 4), (4, 1)], leaf_costs=[64, 0], solvable=[True, False]).how
    'solve'
    """
    k = len(shapes)
    if k == 0:
        raise ValueError("empty chain")
    for a, b in itertools.pairwise(shapes):
        if a[1] != b[0]:
            raise ValueError(f"chain shapes do not agree: {a} then {b}")
    leaf_costs = list(leaf_costs) if leaf_costs is not None else [0.0] * k
    solvable = list(solvable) if solvable is not None else [False] * k
    best: dict[tuple[int, int], Plan] = {}
    for i in range(k):
        best[i, i] = Plan(i, i, "leaf", float(leaf_costs[i]))
    for length in range(2, k + 1):
        for i in range(k - length + 1):
            j = i + length - 1
            if known is not None and known(i, j):
                best[i, j] = Plan(i, j, "known", 0.0)
                continue
            cand: Plan | None = None
            rows, cols = shapes[i][0], shapes[j][1]
            for s in range(i, j):
                left, right = best[i, s], best[s + 1, j]
                c = left.cost + right.cost + matmul_cost(rows, shapes[s][1], cols)
                if cand is None or c < cand.cost:
                    cand = Plan(i, j, "mul", c, left, right)
            if solvable[i]:
                right = best[i + 1, j]
                c = right.cost + solve_cost(shapes[i][0], cols)
                if c < cand.cost:
                    cand = Plan(i, j, "solve", c, best[i, i], right)
            if solvable[j]:
                left = best[i, j - 1]
                c = left.cost + solve_cost(shapes[j][0], rows)
                if c < cand.cost:
                    cand = Plan(i, j, "rsolve", c, left, best[j, j])
            best[i, j] = cand
    return best[0, k - 1]


#: the size assumed for every symbolic dimension when planning a chain (only ratios matter)
NOMINAL_DIM = 1000


def plan_cost(p: Plan, shapes: Sequence[tuple[int, int]], leaf_costs: Sequence[float],
              known: Callable[[int, int], bool] | None = None) -> float:
    """The cost of computing the chain by plan ``p`` (same model as :func:`plan_chain`).

    >>> shapes = [(10, 100), (100, 5), (5, 50)]
    >>> p = plan_chain(shapes)
    >>> plan_cost(p, shapes, [0, 0, 0]) == p.cost
    True
    """
    if p.how == "known" or (p.i < p.j and known is not None and known(p.i, p.j)):
        return 0.0
    if p.how == "leaf":
        return float(leaf_costs[p.i])
    rows, cols = shapes[p.i][0], shapes[p.j][1]
    if p.how == "solve":
        return plan_cost(p.right, shapes, leaf_costs, known) + solve_cost(rows, cols)
    if p.how == "rsolve":
        return plan_cost(p.left, shapes, leaf_costs, known) + solve_cost(cols, rows)
    return (plan_cost(p.left, shapes, leaf_costs, known) + plan_cost(p.right, shapes, leaf_costs, known)
            + matmul_cost(rows, shapes[p.left.j][1], cols))


# -- backends ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Backend:
    name: str
    imports: str
    ns: str  # module prefix of elementwise functions
    trace: str
    det: str
    inv: str
    solve: str
    mpow: str
    sum: str
    norm: str
    eye: str
    ones: str
    diag: str
    diagv: str
    fns: Mapping[str, str]
    sigmoid: str
    softplus: str
    scalar_out: str
    literal: str = "{}"  # how a literal number is made an array argument of a function
    dot: str = ""  # sum of the elementwise product of two same-shape arrays, if not sum(a * b)
    #: functions taking ``out=`` for the operators (+, -, *, /, **, neg): a temporary array that is
    #: not used afterwards is overwritten instead of allocating a new one (none for JAX, whose
    #: arrays are immutable, and PyTorch, whose autograd rejects ``out=``)
    ufuncs: Mapping[str, str] = field(default_factory=dict)


_PRIM_FNS = {"exp": "exp", "log": "log", "sin": "sin", "cos": "cos", "tan": "tan", "tanh": "tanh",
             "sinh": "sinh", "cosh": "cosh", "sqrt": "sqrt", "abs": "abs"}

_NUMPY = _Backend(
    "numpy", "import numpy as np", "np", "np.trace({})", "np.linalg.det({})", "np.linalg.inv({})",
    "np.linalg.solve({}, {})", "np.linalg.matrix_power({}, {})", "np.sum({})", "np.linalg.norm({})",
    "np.eye({})", "np.ones(({}, {}))", "np.diag({}[:, 0])", "np.diagonal({})[:, None]",
    {**{k: f"np.{v}" for k, v in _PRIM_FNS.items()}, "atan": "np.arctan"},
    "_sigmoid({})", "np.logaddexp(0.0, {})", "float({})", dot="np.vdot({}, {})",
    ufuncs={"+": "np.add", "-": "np.subtract", "*": "np.multiply", "/": "np.divide",
            "**": "np.power", "neg": "np.negative"})
_JAX = _Backend(
    "jax", "import jax\nimport jax.numpy as jnp\nimport numpy as np\n\n"
    "jax.config.update(\"jax_enable_x64\", True)  # double precision, like the NumPy backend",
    "jnp", "jnp.trace({})", "jnp.linalg.det({})", "jnp.linalg.inv({})", "jnp.linalg.solve({}, {})",
    "jnp.linalg.matrix_power({}, {})", "jnp.sum({})", "jnp.linalg.norm({})", "jnp.eye({})",
    "jnp.ones(({}, {}))", "jnp.diag({}[:, 0])", "jnp.diagonal({})[:, None]",
    {**{k: f"jnp.{v}" for k, v in _PRIM_FNS.items()}, "atan": "jnp.arctan",
     "erf": "jax.scipy.special.erf"},
    "jax.nn.sigmoid({})", "jax.nn.softplus({})", "jnp.asarray({})")
_TORCH = _Backend(
    "torch", "import torch", "torch", "torch.trace({})", "torch.linalg.det({})",
    "torch.linalg.inv({})", "torch.linalg.solve({}, {})", "torch.linalg.matrix_power({}, {})",
    "torch.sum({})", "torch.linalg.norm({})", "torch.eye({}, dtype=torch.float64)",
    "torch.ones(({}, {}), dtype=torch.float64)", "torch.diag({}[:, 0])",
    "torch.diagonal({})[:, None]",
    {**{k: f"torch.{v}" for k, v in _PRIM_FNS.items()}, "atan": "torch.atan", "erf": "torch.erf"},
    "torch.sigmoid({})", "torch.logaddexp({0}, torch.zeros_like({0}))",
    "torch.as_tensor({}, dtype=torch.float64)", "torch.tensor({}, dtype=torch.float64)",
    dot="torch.dot({}.reshape(-1), {}.reshape(-1))")  # no out=: it would break autograd
_BACKEND = {"numpy": _NUMPY, "jax": _JAX, "torch": _TORCH}

_HELPERS = {
    "numpy": '''
def _input(name, value, shape, dims):
    """``value`` as a float array of the declared shape (0-d when 1×1); binds dimension names."""
    a = np.asarray(value, dtype=float)
    got = _as2d(name, tuple(a.shape), shape)
    _check_dims(name, got, shape, dims)
    return a.reshape(()) if shape == (1, 1) else a.reshape(got)


def _like(g, value):
    """The gradient in the shape its variable was passed in (a float for a Python number)."""
    if isinstance(value, (int, float)):
        return float(g)
    return np.asarray(g, dtype=float).reshape(np.shape(value))


def _to_numpy(a):
    return np.asarray(a, dtype=float)
''',
    "jax": '''
def _input(name, value, shape, dims):
    """``value`` as a float64 array of the declared shape (0-d when 1×1); binds dimension names."""
    a = jnp.asarray(value, dtype=jnp.float64)
    got = _as2d(name, tuple(a.shape), shape)
    _check_dims(name, got, shape, dims)
    return a.reshape(()) if shape == (1, 1) else a.reshape(got)


def _like(g, value):
    """The gradient in the shape its variable was passed in."""
    return jnp.asarray(g, dtype=jnp.float64).reshape(jnp.shape(value))


def _to_numpy(a):
    return np.asarray(a, dtype=float)
''',
    "torch": '''
def _input(name, value, shape, dims):
    """``value`` as a float64 tensor of the declared shape (0-d when 1×1); binds dimension names."""
    a = torch.as_tensor(value, dtype=torch.float64)
    got = _as2d(name, tuple(a.shape), shape)
    _check_dims(name, got, shape, dims)
    return a.reshape(()) if shape == (1, 1) else a.reshape(got)


def _like(g, value):
    """The gradient in the shape its variable was passed in."""
    return torch.as_tensor(g, dtype=torch.float64).reshape(torch.as_tensor(value).shape)


def _to_numpy(a):
    return torch.as_tensor(a, dtype=torch.float64).detach().cpu().numpy()
''',
}

_COMMON_HELPERS = '''
def _as2d(name, got, shape):
    if len(got) == 2:
        return got
    if len(got) == 1 and shape[1] == 1:
        return (got[0], 1)
    if len(got) == 1 and shape[0] == 1:
        return (1, got[0])
    if len(got) == 0 or got == (1,):
        return (1, 1)
    raise ValueError(f"{name}: expected {_describe(shape)}, got an array of shape {got}")


def _describe(shape):
    rows, cols = shape
    if shape == (1, 1):
        return "a scalar"
    if cols == 1:
        return f"a vector of length {rows} (1-D or a column)"
    return f"a matrix of shape ({rows}, {cols})"


def _check_dims(name, got, shape, dims):
    """Every dimension of ``got`` matches ``shape``; names are bound on first use."""
    for axis, (want, n) in enumerate(zip(shape, got, strict=True)):
        what = "rows" if axis == 0 else "columns"
        if isinstance(want, int):
            if n != want:
                raise ValueError(f"{name}: expected {_describe(shape)}, got {n} {what}")
        elif want in dims:
            size, source = dims[want]
            if n != size:
                raise ValueError(f"{name}: dimension {want} is {size} (from {source}) but {name} "
                                 f"has {n} {what}; expected {_describe(shape)}")
        else:
            dims[want] = (n, name)


def _check_names(arrays, needed=None):
    missing = [n for n in (INPUTS if needed is None else needed) if n not in arrays]
    unknown = sorted(set(arrays) - set(INPUTS))
    if missing or unknown:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if unknown:
            parts.append("unexpected " + ", ".join(unknown))
        raise TypeError(f"expected the arrays {', '.join(INPUTS)}: " + "; ".join(parts))
'''

_CHECK = '''

def check_gradient(**arrays):
    """Relative error of the gradient against central finite differences (step FD_STEP) in every
    entry of {wrt}: ``|g - fd| / max(1, |fd|)``."""
    _, g = f_and_grad(**arrays)
    x0 = _to_numpy(arrays[WRT])
    g = _to_numpy(g).reshape(x0.shape)
    fd = np.zeros_like(x0)
    for idx in np.ndindex(x0.shape):
        xp, xm = x0.copy(), x0.copy()
        xp[idx] += FD_STEP
        xm[idx] -= FD_STEP
        fp = float(objective(**{{**arrays, WRT: xp}}))
        fm = float(objective(**{{**arrays, WRT: xm}}))
        fd[idx] = (fp - fm) / (2 * FD_STEP)
    return float(np.linalg.norm(g - fd) / max(1.0, np.linalg.norm(fd)))
'''

_CHECK_TORCH = '''

def check_gradient(**arrays):
    """Relative error of the gradient against central finite differences (step FD_STEP) in every
    entry of {wrt}: ``|g - fd| / max(1, |fd|)``."""
    _, g = f_and_grad(**arrays)
    x0 = torch.as_tensor(arrays[WRT], dtype=torch.float64)
    g = torch.as_tensor(g, dtype=torch.float64).reshape(x0.shape)
    flat = x0.reshape(-1)
    fd = torch.zeros_like(flat)
    for k in range(flat.numel()):
        xp, xm = flat.clone(), flat.clone()
        xp[k] += FD_STEP
        xm[k] -= FD_STEP
        fp = float(objective(**{{**arrays, WRT: xp.reshape(x0.shape)}}))
        fm = float(objective(**{{**arrays, WRT: xm.reshape(x0.shape)}}))
        fd[k] = (fp - fm) / (2 * FD_STEP)
    fd = fd.reshape(x0.shape)
    return float(torch.linalg.norm(g - fd) / max(1.0, float(torch.linalg.norm(fd))))
'''

#: torch.kron views its arguments, which fails on transposed (non-contiguous) strides
_KRON = {"numpy": "np.kron({}, {})", "jax": "jnp.kron({}, {})",
         "torch": "torch.kron({}.contiguous(), {}.contiguous())"}
_KRONT = {name: f'''

def _kront(a, b):
    """(A ⊗ B)·K with K the commutation matrix: ``_kront(A, B) @ vec(Z) = vec(B @ Z.T @ A.T)``."""
    n, q = a.shape[1], b.shape[1]
    c = {ns}.arange(n * q)
    return {kron}(a, b)[:, (c // n) + q * (c % n)]
''' for name, ns, kron in (("numpy", "np", "np.kron"), ("jax", "jnp", "jnp.kron"),
                            ("torch", "torch", "torch.kron"))}
_KRONT["torch"] = _KRONT["torch"].replace("torch.kron(a, b)",
                                          "torch.kron(a.contiguous(), b.contiguous())")

_GRAM = '''

def _gram(a, w):
    """a.T @ diag(w) @ a for a column w; as y.T @ y with y = sqrt(w) * a when w >= 0, which
    NumPy computes with a symmetric rank-k update (half the multiply-adds)."""
    if np.all(w >= 0):
        y = np.sqrt(w) * a
        return y.T @ y
    return a.T @ (w * a)
'''

#: c * (a @ b) for a scalar c, scaling the smallest of a, b and the product (shapes are known
#: only at run time when dimensions are symbolic); PyTorch's never scales in place (autograd)
_SCALED_MATMUL = {name: f'''

def _scaled_matmul(c, a, b):
    """c * (a @ b), with the scalar c applied to the smallest of a, b and the product."""
    rows, cols = a.shape[0], b.shape[1]
    if {size}(a) <= min({size}(b), rows * cols):
        return (c * a) @ b
    if {size}(b) < rows * cols:
        return a @ (c * b)
    {last}
''' for name, size, last in (
    ("numpy", "np.size", "out = a @ b\n    out *= c\n    return out"),
    ("torch", "torch.numel", "return c * (a @ b)"))}

_SIGMOID_NUMPY = '''

def _sigmoid(x):
    """1/(1 + exp(-x)) without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
'''

_LOGDET = {
    "numpy": '''

def _logdet(a):
    """log det(a) from slogdet; NaN where det(a) <= 0 (outside the domain)."""
    sign, ld = np.linalg.slogdet(a)
    return ld if sign > 0 else np.nan
''',
    "jax": '''

def _logdet(a):
    """log det(a) from slogdet; NaN where det(a) <= 0 (outside the domain)."""
    sign, ld = jnp.linalg.slogdet(a)
    return jnp.where(sign > 0, ld, jnp.nan)
''',
    "torch": '''

def _logdet(a):
    """log det(a) from slogdet; NaN where det(a) <= 0 (outside the domain)."""
    sign, ld = torch.linalg.slogdet(a)
    return torch.where(sign > 0, ld, torch.full_like(ld, float("nan")))
''',
}


# -- emission ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Val:
    """A value in the generated code: source text (an atom), 0-d (``scalar``) or 2-D."""

    src: str
    scalar: bool
    literal: bool = False


def _is_scalar(t: Term) -> bool:
    return t.shape == (1, 1)


def _is_chain(t: Term) -> bool:
    return t.op == "mul" and not _is_scalar(t.args[0]) and not _is_scalar(t.args[1])


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
            if number(a) is not None and not _is_scalar(a):
                c, a = c * number(a), a.args[1]
            if number(b) is not None and not _is_scalar(b):
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
    if t.op == "inv" and not _is_scalar(t):
        return t.args[0]
    if t.op == "t" and t.args[0].op == "inv" and not _is_scalar(t):
        return make("t", t.args[0].args[0])
    return None


def _transpose(t: Term) -> Term:
    return t.args[0] if t.op == "t" else make("t", t)


def _concrete(shape: tuple) -> bool:
    return all(isinstance(d, int) for d in shape)


def _tr(v: _Val) -> _Val:
    if v.scalar:
        return v
    return _Val(v.src[:-2] if v.src.endswith(".T") else v.src + ".T", False)


def _literal(x) -> str:
    s = repr(float(x))
    return f"({s})" if s.startswith("-") else s


class _Emitter:
    def __init__(self, backend: _Backend, registry) -> None:
        self.b = backend
        self.registry = registry
        self.lines: list[tuple[str, str, frozenset[str]]] = []
        self.memo: dict[Term, _Val] = {}
        self.chains: dict[tuple[Term, ...], _Val] = {}
        self.helpers: dict[str, str] = {}
        self.standalone_inv: set[Term] = set()
        self._seen: set[tuple[Term, bool]] = set()
        #: temporaries holding an array the generated function allocated itself, with its shape
        self.fresh: dict[str, tuple] = {}
        #: in-place forms of a line: (temporary it overwrites, source)
        self.alts: dict[str, list[tuple[str, str]]] = {}
        #: temporaries computed as ``left @ right``, with their operands
        self.products: dict[str, tuple[_Val, _Val]] = {}
        #: arrays that may be views of the temporaries they are computed from (``np.diagonal``,
        #: reshapes): those temporaries must outlive them
        self.views: dict[str, frozenset[str]] = {}

    # bookkeeping
    def bind(self, src: str, scalar: bool, fresh: tuple | None = None,
             alts: Sequence[tuple[str, str]] = ()) -> _Val:
        """A new temporary ``tK = src``; ``fresh`` is the shape of a newly allocated array,
        ``alts`` the line's in-place forms (see :meth:`reuse_buffers`)."""
        name = f"t{len(self.lines)}"
        deps = frozenset(w for w in _names_in(src) if w.startswith("t") and w[1:].isdigit())
        self.lines.append((name, src, deps))
        if fresh is not None and fresh != (1, 1):
            self.fresh[name] = fresh
            if alts:
                self.alts[name] = list(alts)
        elif not scalar and deps:
            self.views[name] = deps
        return _Val(name, scalar)

    def inplace(self, op: str, args: Sequence[_Val], shape: tuple) -> list[tuple[str, str]]:
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
            for w in _names_in(src):
                last[w] = i
        for w in roots:
            last[w] = len(lines)
        for name, _ in reversed(lines):  # a temporary lives as long as any view of it
            for d in self.views.get(name, ()):
                last[d] = max(last.get(d, -1), last.get(name, -1))
        out = []
        for i, (name, src) in enumerate(lines):
            for x, alt in self.alts.get(name, ()):
                if last.get(x) == i and _names_in(src).count(x) == 1:
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
        if t.op == "inv" and not _is_scalar(t):
            self.standalone_inv.add(t)
        for a in t.args:
            self.scan(a)

    # terms
    def emit(self, t: Term) -> _Val:
        v = self.memo.get(t)
        if v is None:
            v = self.memo[t] = self._emit(t)
        return v

    def operand(self, t: Term) -> _Val:
        """Like :meth:`emit`, but a broadcast 1×1 value (``fill``, ``c*fill``) stays 0-d."""
        if t.op == "fill":
            return _Val("1.0", True, True)
        if t.op == "scale" and t.args[1].op == "fill":
            return self.emit(t.args[0])
        return self.emit(t)

    def _emit(self, t: Term) -> _Val:
        op, b, sc = t.op, self.b, _is_scalar(t)
        if op == "var":
            return _Val(_input_name(t.attr), sc)
        if op == "num":
            return _Val(_literal(t.attr), True, True)
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
                return _Val(_literal(float(a.src.strip("()")) * float(c.src.strip("()"))), True, True)
            s, m = (a, c) if a.scalar else (c, a)
            if s.scalar and m.src in self.products and self.b.name in _SCALED_MATMUL:
                # c*(A*B): the scalar goes to the smallest of A, B and the product (at run time)
                self.helpers["_scaled_matmul"] = _SCALED_MATMUL[self.b.name]
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
                return _Val("1.0", True, True)
            return self.bind(b.ones.format(*(self.dim(d) for d in t.attr)), False)
        if op == "ones":
            if sc:
                return _Val("1.0", True, True)
            return self.bind(b.ones.format(self.dim(t.attr[0]), 1), False)
        if op == "eye":
            if sc:
                return _Val("1.0", True, True)
            return self.bind(b.eye.format(self.dim(t.attr[0])), False)
        if op == "fn":
            return self.fn(t.attr, self.emit(t.args[0]), sc, t.shape)
        if op in ("kron", "kront"):
            x, y = (self.as_array(self.emit(a)).src for a in t.args)
            if op == "kront":
                self.helpers["_kront"] = _KRONT[b.name]
                return self.bind(f"_kront({x}, {y})", sc)
            return self.bind(_KRON[b.name].format(x, y), sc)
        x = t.args[0]
        if (op == "sum" and b.dot and x.op == "had" and not _is_scalar(x)
                and all(y.shape == x.shape and not _broadcast(y) for y in x.args)):
            return self.bind(b.dot.format(*(self.emit(y).src for y in x.args)), True)
        a = self.emit(x)
        if op in ("tr", "det", "diag", "diagv", "vec", "sum") and a.scalar:
            return a
        if op == "inv" and a.scalar:
            return self.bind(f"1.0 / {a.src}", True)
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
            self.helpers["_logdet"] = _LOGDET[b.name]
            return self.bind(f"_logdet({a.src})", True)
        raise UnsupportedError(f"cannot generate code for {op!r} (only for derived gradients)")

    def as_array(self, v: _Val) -> _Val:
        return _Val(self.b.literal.format(v.src), v.scalar) if v.literal else v

    def dim(self, d) -> str:
        if isinstance(d, int):
            return str(d)
        return f"dims[{d!r}][0]"

    def add(self, t: Term) -> _Val:
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
        has_full = any(x.shape == t.shape and not _broadcast(x) for _, x in items) or _is_scalar(t)
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
        return self.bind(src, _is_scalar(t), t.shape, alts)

    def fn(self, name: str, a: _Val, scalar: bool, shape: tuple = (1, 1)) -> _Val:
        b = self.b
        stock = _stock_kind(name, self.registry)
        arg = self.as_array(a).src
        if stock == "sigmoid":
            if b.name == "numpy":
                self.helpers["_sigmoid"] = _SIGMOID_NUMPY
            return self.bind(b.sigmoid.format(arg), scalar)
        if stock == "softplus":
            return self.bind(b.softplus.format(arg), scalar)
        if name in b.fns and stock == "primitive":
            return self.bind(f"{b.fns[name]}({arg})", scalar, shape,
                             self.inplace(b.fns[name], [a], shape))
        helper = f"_fn_{name}"
        if helper not in self.helpers:
            self.helpers[helper] = _function_helper(name, self.registry, b)
        return self.bind(f"{helper}({arg})", scalar)

    # products
    def matmul(self, left: _Val, right: _Val) -> str:
        """``left @ right``; for JAX a transposed operand is contracted in place with
        ``lax.dot_general`` (XLA on CPU copies a transposed matrix before a plain ``@``: ten
        times slower for ``X.T @ r`` with X 2000×2000)."""
        lt, rt = left.src.endswith(".T"), right.src.endswith(".T")
        if self.b.name != "jax" or not (lt or rt):
            return f"{left.src} @ {right.src}"
        a = left.src[:-2] if lt else left.src
        c = right.src[:-2] if rt else right.src
        return (f"jax.lax.dot_general({a}, {c}, ((({0 if lt else 1},), ({1 if rt else 0},)), "
                "((), ())))")

    def known(self, factors: Sequence[Term]) -> _Val | None:
        """The product of ``factors`` if computed already, directly or as its transpose."""
        v = self.chains.get(tuple(factors))
        if v is None:
            v = self.chains.get(tuple(_transpose(f) for f in reversed(factors)))
            v = _tr(v) if v is not None else None
        return v

    def chain(self, factors: list[Term], t: Term) -> _Val:
        v = self.known(factors)
        if v is not None:
            return v
        w = _diag_vector(factors[1]) if len(factors) == 3 else None
        if w is not None and factors[0] == _transpose(factors[2]) and self.b.name == "numpy":
            # A'*diag(w)*A: a symmetric product (BLAS syrk, half the multiply-adds) when w ≥ 0
            self.helpers["_gram"] = _GRAM
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

    def run_plan(self, p: Plan, factors: list[Term], inners: list[Term | None]) -> _Val:
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
    if t.op == "diag" and t.args[0].shape[1] == 1 and not _is_scalar(t):
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


def _names_in(src: str) -> list[str]:
    import re

    return re.findall(r"\b[A-Za-z_]\w*\b", src)


def _input_name(name: str) -> str:
    return f"x_{name}"


# -- elementwise functions -----------------------------------------------------------------------
_STOCK = {"sigmoid": "1/(1 + exp(-x))", "softplus": "log(1 + exp(x))"}


def _stock_kind(name: str, registry) -> str:
    """``"sigmoid"``/``"softplus"`` when ``name`` has the stock definition, ``"primitive"`` for
    a function sympy knows natively, else ``"declared"``."""
    import sympy

    from .functions import PRIMITIVES, X

    decl = registry[name] if registry is not None and name in registry else None
    if decl is None:
        raise UnsupportedError(f"unknown elementwise function {name!r}")
    if name in _STOCK:
        ref = sympy.sympify(_STOCK[name], locals={"x": X, "exp": sympy.exp, "log": sympy.log})
        if _same(decl.expanded, ref):
            return name
    if name in PRIMITIVES and decl.expanded == PRIMITIVES[name](X):
        return "primitive"
    return "declared"


@lru_cache(maxsize=256)
def _same(a: sympy.Expr, b: sympy.Expr) -> bool:
    import sympy

    return sympy.simplify(a - b) == 0


def _function_helper(name: str, registry, b: _Backend) -> str:
    """``def _fn_NAME(x): return ...`` from the function's scalar definition."""
    from .functions import X

    decl = registry[name]

    def go(e: sympy.Expr) -> str:
        if not e.free_symbols:
            try:
                return _literal(float(e))
            except TypeError:
                raise UnsupportedError(f"function {name}: constant {e} is not real") from None
        if e == X:
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
        fname = {"Abs": "abs", "atan": "atan"}.get(e.func.__name__, e.func.__name__)
        if fname in b.fns and len(e.args) == 1:
            return f"{b.fns[fname]}({go(e.args[0])})"
        raise UnsupportedError(f"function {name}: {fname}() has no {b.name} equivalent here")

    body = go(decl.expanded)
    return (f"\n\ndef _fn_{name}(x):\n    \"\"\"{name}(x) = {decl.definition}, elementwise.\"\"\"\n"
            f"    return {body}\n")


# -- modules -------------------------------------------------------------------------------------
def _prune(lines: list[tuple[str, str, frozenset[str]]], roots: set[str]) -> list[tuple[str, str]]:
    need = set(roots)
    for name, _, deps in reversed(lines):
        if name in need:
            need |= deps
    return [(n, s) for n, s, _ in lines if n in need]


def _fmt_shape(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def generate(f: Term, wrt: str, grad: Term, backend: str = "numpy", registry=None,
             version: str = "") -> str:
    """Source of a standalone module computing ``f`` and its gradient ``grad`` w.r.t. ``wrt``.

    Pure: terms in, text out. See the module docstring for what the module defines.
    """
    if backend not in _BACKENDS_SET:
        raise UnsupportedError(f"unknown code generation backend {backend!r}; choose one of "
                               f"{', '.join(BACKENDS)}")
    if registry is None:
        from .functions import default_registry

        registry = default_registry()
    if not _is_scalar(f):
        raise UnsupportedError("code generation needs a 1×1 objective")
    shapes = var_shapes(f)
    if wrt not in shapes:
        raise UnsupportedError(f"{wrt!r} is not a variable of the objective")
    b = _BACKEND[backend]
    em = _Emitter(b, registry)
    grad = hoist_numbers(grad)
    em.scan(f)
    em.scan(grad)
    fv = em.emit(f)
    gv = em.emit(grad)
    bound = {d for s in shapes.values() for d in s if isinstance(d, str)}
    free = sorted({d for d in _generated_dims(em.lines)} - bound)
    if free:
        raise UnsupportedError(f"dimension(s) {', '.join(free)} cannot be inferred from the input "
                               "arrays; give them as integers")
    from .printing import to_text

    names = sorted(shapes)
    prologue = ["    _check_names(arrays)", "    dims = {}"]
    for n in names:
        prologue.append(f"    {_input_name(n)} = _input({n!r}, arrays[{n!r}], "
                        f"{shapes[n]!r}, dims)")
    f_lines = _prune(em.lines, set(_names_in(fv.src)))
    grad_lines = _prune(em.lines, set(_names_in(gv.src)))
    g_lines = _prune(em.lines, set(_names_in(fv.src)) | set(_names_in(gv.src)))
    out_f = b.scalar_out.format(fv.src)
    if backend == "torch":
        out_f = f"torch.as_tensor({fv.src}, dtype=torch.float64)"
    sig = ", ".join(f"{n}=..." for n in names)
    inputs = ", ".join(f"{n} {_fmt_shape(shapes[n])}" for n in names)
    doc = "\n".join([
        f'"""Gradient with respect to {wrt} ({backend}), generated by tracegrad'
        f"{' ' + version if version else ''}.",
        "",
        _wrap(f"f = {to_text(f)}"),
        _wrap(f"gradient = {to_text(grad)}"),
        "",
        f"    f, grad = f_and_grad({sig})",
        f"    f = objective({sig})",
        f"    grad = gradient({sig})",
        f"    err = check_gradient({sig})  # relative error against finite differences",
        "",
        _wrap(f"Inputs: {inputs}. A vector may be passed 1-D or as a column, a scalar as a number; "
              f"the gradient comes back in the shape {wrt} was passed in."),
        '"""'])
    consts = "\n".join([f"INPUTS = {{{', '.join(f'{n!r}: {shapes[n]!r}' for n in names)}}}",
                        f"WRT = {wrt!r}", "FD_STEP = 1e-6"])
    blocks = [_COMMON_HELPERS, _HELPERS[backend], *em.helpers.values()]

    def function(name: str, what: str, lines: list[tuple[str, str]], ret: str) -> str:
        body = [f"def {name}(**arrays):", f'    """{what}"""', *prologue]
        body += [f"    {n} = {s}" for n, s in em.reuse_buffers(lines, set(_names_in(ret)))]
        return "\n".join([*body, f"    return {ret}"])

    blocks.append(function("objective", "f (see the module docstring).", f_lines, out_f))
    blocks.append(function("gradient", f"∂f/∂{wrt} alone (see the module docstring).", grad_lines,
                           f"_like({gv.src}, arrays[WRT])"))
    blocks.append(function("f_and_grad", f"(f, ∂f/∂{wrt}) (see the module docstring).", g_lines,
                           f"{out_f}, _like({gv.src}, arrays[WRT])"))
    blocks.append((_CHECK_TORCH if backend == "torch" else _CHECK).format(wrt=wrt))
    return (f"{doc}\n\n{b.imports}\n\n{consts}\n\n\n"
            + "\n\n\n".join(x.strip("\n") for x in blocks) + "\n")


_MATRIX = {
    "numpy": "np.asarray({0}, dtype=float).reshape(_shape2({0}))",
    "jax": "jnp.asarray({0}, dtype=jnp.float64).reshape(_shape2({0}))",
    "torch": "torch.as_tensor({0}, dtype=torch.float64).reshape(_shape2({0}))",
}
_SHAPE2 = '''

def _shape2(a):
    """A 2-D shape for a result (a 1×1 one may be a number or a 0-d array)."""
    shape = tuple(getattr(a, "shape", ()))
    return shape if len(shape) == 2 else (1, 1)
'''

#: what a second-order module computes: (function, docstring, returned terms) per kind
_SECOND_ORDER = {
    "hessian": "the Hessian ∂²f/∂vec({wrt})², (N, N) with N the number of entries of {wrt}",
    "hvp": "the Hessian-vector product H·vec({direction}), in the shape {wrt} was passed in",
    "jacobian": "the Jacobian ∂vec(F)/∂vec({wrt}), (M, N)",
}

_CHECK_SECOND = {
    "hessian": '''

def check_hessian(**arrays):
    """Relative error of the Hessian against central differences of the gradient (step FD_STEP),
    one column per entry of vec({wrt}): ``|H - fd| / max(1, |fd|)``."""
    h = _to_numpy(hessian(**arrays))
    fd = _column_differences(gradient, arrays, h.shape[0])
    return float(np.linalg.norm(h - fd) / max(1.0, np.linalg.norm(fd)))
''',
    "hvp": '''

def check_hvp(**arrays):
    """Relative error of H·V against the central difference of the gradient along V (step
    FD_STEP): ``|hv - fd| / max(1, |fd|)``."""
    hv = _to_numpy(hvp(**arrays))
    x = _to_numpy(arrays[WRT])
    v = _to_numpy(arrays[DIRECTION]).reshape(x.shape)
    gp = _to_numpy(gradient(**{{**arrays, WRT: x + FD_STEP * v}}))
    gm = _to_numpy(gradient(**{{**arrays, WRT: x - FD_STEP * v}}))
    fd = (gp - gm) / (2 * FD_STEP)
    return float(np.linalg.norm(hv.reshape(fd.shape) - fd) / max(1.0, np.linalg.norm(fd)))
''',
    "jacobian": '''

def check_jacobian(**arrays):
    """Relative error of the Jacobian against central differences of F (step FD_STEP), one
    column per entry of vec({wrt}): ``|J - fd| / max(1, |fd|)``."""
    j = _to_numpy(jacobian(**arrays))
    fd = _column_differences(value, arrays, j.shape[0])
    return float(np.linalg.norm(j - fd) / max(1.0, np.linalg.norm(fd)))
''',
}


#: shared by check_hessian (differences of the gradient) and check_jacobian (of F)
_COLUMN_DIFFERENCES = '''

def _column_differences(fn, arrays, rows):
    """Central differences (step FD_STEP) of vec(fn(**arrays)) in each entry of vec(arrays[WRT]),
    as the columns of a (rows, entries) array."""
    x = _to_numpy(arrays[WRT])
    x = x.reshape(_as2d(WRT, tuple(x.shape), INPUTS[WRT]))
    fd = np.zeros((rows, x.size))
    for k in range(x.size):
        idx = np.unravel_index(k, x.shape, order="F")
        xp, xm = x.copy(), x.copy()
        xp[idx] += FD_STEP
        xm[idx] -= FD_STEP
        fp = _to_numpy(fn(**{**arrays, WRT: xp})).reshape(-1, order="F")
        fm = _to_numpy(fn(**{**arrays, WRT: xm})).reshape(-1, order="F")
        fd[:, k] = (fp - fm) / (2 * FD_STEP)
    return fd
'''


def generate_second_order(of: Term, wrt: str, kind: str, result: Term, gradient: Term | None,
                          direction: str | None = None, backend: str = "numpy", registry=None,
                          version: str = "") -> str:
    """Source of a standalone module for a Hessian, an HVP or a Jacobian (``kind``).

    ``hessian``: ``objective``, ``gradient``, ``hessian`` and ``f_grad_hess`` → (f, ∇f, H),
    ``check_hessian``. ``hvp``: ``objective``, ``gradient``, ``hvp`` (the direction is one of the
    arrays) and ``f_grad_hvp``, ``check_hvp``. ``jacobian``: ``value`` (F), ``jacobian`` and
    ``check_jacobian``. Common subexpressions are shared across everything a function returns;
    second-order results use column-major vec layout. Pure: terms in, text out.
    """
    if backend not in _BACKENDS_SET:
        raise UnsupportedError(f"unknown code generation backend {backend!r}; choose one of "
                               f"{', '.join(BACKENDS)}")
    if kind not in _SECOND_ORDER:
        raise UnsupportedError(f"no code generation for {kind!r}")
    if registry is None:
        from .functions import default_registry

        registry = default_registry()
    scalar_f = kind != "jacobian"
    if scalar_f and (gradient is None or not _is_scalar(of)):
        raise UnsupportedError(f"a {kind} module needs a 1×1 objective and its gradient")
    shapes = {**var_shapes(of), **var_shapes(result)}
    if wrt not in shapes:
        raise UnsupportedError(f"{wrt!r} is not a variable of the expression")
    b = _BACKEND[backend]
    em = _Emitter(b, registry)
    terms = [of, *([gradient] if scalar_f else []), result]
    for t in terms:
        em.scan(t)
    fv = em.emit(of)
    gv = em.emit(gradient) if scalar_f else None
    rv = em.emit(result)
    bound = {d for sh in shapes.values() for d in sh if isinstance(d, str)}
    free = sorted(_generated_dims(em.lines) - bound)
    if free:
        raise UnsupportedError(f"dimension(s) {', '.join(free)} cannot be inferred from the input "
                               "arrays; give them as integers")
    from .printing import to_text

    names = sorted(shapes)
    of_names = sorted(var_shapes(of))
    em.helpers["_shape2"] = _SHAPE2

    def function(name: str, what: str, needed: list[str], vals: list[_Val], ret: str) -> str:
        body = [f"def {name}(**arrays):", f'    """{what}"""',
                f"    _check_names(arrays, {needed!r})", "    dims = {}"]
        body += [f"    {_input_name(n)} = _input({n!r}, arrays[{n!r}], {shapes[n]!r}, dims)"
                 for n in needed]
        roots = {w for v in vals for w in _names_in(v.src)}
        body += [f"    {n} = {src}" for n, src in em.reuse_buffers(_prune(em.lines, roots), roots)]
        return "\n".join([*body, f"    return {ret}"])

    f_out = (f"torch.as_tensor({fv.src}, dtype=torch.float64)" if backend == "torch"
             else b.scalar_out.format(fv.src)) if scalar_f else _MATRIX[backend].format(fv.src)
    r_out = (f"_like({rv.src}, arrays[WRT])" if kind == "hvp"
             else _MATRIX[backend].format(rv.src))
    what = _SECOND_ORDER[kind].format(wrt=wrt, direction=direction)
    blocks = [_COMMON_HELPERS, _HELPERS[backend], *em.helpers.values()]
    sig = ", ".join(f"{n}=..." for n in names)
    if scalar_f:
        g_out = f"_like({gv.src}, arrays[WRT])"
        combined = {"hessian": "f_grad_hess", "hvp": "f_grad_hvp"}[kind]
        blocks += [
            function("objective", "f (see the module docstring).", of_names, [fv], f_out),
            function("gradient", f"∂f/∂{wrt}, in the shape {wrt} was passed in.", of_names, [gv],
                     g_out),
            function(kind, what[0].upper() + what[1:] + ".", names, [rv], r_out),
            function(combined, f"(f, ∂f/∂{wrt}, {kind}), sharing their common subexpressions.",
                     names, [fv, gv, rv], f"{f_out}, {g_out}, {r_out}")]
        usage = [f"    f, g, {'H' if kind == 'hessian' else 'HV'} = {combined}({sig})",
                 f"    err = check_{kind}({sig})  # relative error against finite differences"]
    else:
        blocks += [function("value", "F (see the module docstring).", of_names, [fv], f_out),
                   function("jacobian", what[0].upper() + what[1:] + ".", names, [rv], r_out)]
        usage = [f"    J = jacobian({sig})",
                 f"    err = check_jacobian({sig})  # relative error against finite differences"]
    if kind != "hvp":
        blocks.append(_COLUMN_DIFFERENCES)
    blocks.append(_CHECK_SECOND[kind].format(wrt=wrt))
    inputs = ", ".join(f"{n} {_fmt_shape(shapes[n])}" for n in names)
    label = {"hessian": "H", "hvp": "H*vec(" + str(direction) + ")", "jacobian": "J"}[kind]
    doc = "\n".join([
        f'"""{kind.capitalize() if kind != "hvp" else "Hessian-vector product"} with respect to '
        f"{wrt} ({backend}), generated by tracegrad{' ' + version if version else ''}.",
        "",
        _wrap(f"{'f' if scalar_f else 'F'} = {to_text(of)}"),
        *([_wrap(f"gradient = {to_text(gradient)}")] if scalar_f else []),
        _wrap(f"{label} = {to_text(result)}"),
        "",
        *usage,
        "",
        _wrap(f"Inputs: {inputs}. A vector may be passed 1-D or as a column, a scalar as a number. "
              "Matrices are vectorised column by column (vec)."),
        '"""'])
    consts = "\n".join([f"INPUTS = {{{', '.join(f'{n!r}: {shapes[n]!r}' for n in names)}}}",
                        f"WRT = {wrt!r}", f"DIRECTION = {direction!r}", "FD_STEP = 1e-6"])
    imports = b.imports + ("\nimport numpy as np" if backend == "torch" else "")
    return (f"{doc}\n\n{imports}\n\n{consts}\n\n\n"
            + "\n\n\n".join(x.strip("\n") for x in blocks) + "\n")


def _wrap(text: str, width: int = 100) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width, subsequent_indent="    ", break_long_words=False,
                                    break_on_hyphens=False))


_BACKENDS_SET = frozenset(BACKENDS)


def _generated_dims(lines) -> set[str]:
    import re

    out: set[str] = set()
    for _, src, _ in lines:
        out.update(re.findall(r"dims\['([^']+)'\]", src))
    return out


def codegen(gradient, backend: str = "numpy") -> str:
    """Source of a standalone module for a :class:`~rewrite.expr.Gradient` (see :func:`generate`)
    or a Hessian, HVP or Jacobian (:func:`generate_second_order`).

    >>> import rewrite as rw
    >>> g = rw.gradient("a'*inv(X)*b", "X", {"a": (3,), "X": (3, 3), "b": (3,)})
    >>> src = codegen(g)
    >>> "np.linalg.solve" in src and "np.linalg.inv" not in src
    True
    """
    from . import __version__

    if getattr(gradient, "kind", "") in _SECOND_ORDER:
        d = gradient
        return generate_second_order(d.of, d.wrt, d.kind, d.term, d.gradient, d.direction,
                                     backend, d.registry, __version__)
    if getattr(gradient, "f", None) is None:
        raise UnsupportedError("code generation needs a gradient result (with its objective)")
    return generate(gradient.f, gradient.wrt, gradient.term, backend, gradient.registry, __version__)


def load(source: str, name: str = "tracegrad_generated") -> types.ModuleType:
    """Execute generated source as a fresh module."""
    mod = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), mod.__dict__)
    return mod


class _CallableModule(types.ModuleType):
    """Makes ``rewrite.codegen(gradient, backend)`` call :func:`codegen` while ``rewrite.codegen``
    stays this module (``from rewrite.codegen import load`` and ``rewrite.codegen.load`` work)."""

    def __call__(self, gradient, backend: str = "numpy") -> str:
        return codegen(gradient, backend)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["BACKENDS", "Plan", "codegen", "generate", "generate_second_order", "inverse_cost",
           "load", "matmul_cost", "plan_chain", "solve_cost"]
