"""Random well-typed scalar objectives over the whole expression language, and the check that
compares the engine's gradient of one with central finite differences.

``objectives()`` is a hypothesis strategy of ``(text, shapes)``: a 1×1 expression in which the
variable ``X`` occurs at least once (often several times), with every other name declared in
``shapes``. Shapes are drawn small and mostly non-square; sizes of 1 are frequent on purpose
(1×1 matrices, row and column vectors, 1×1 ``X``).

Grammar (``r×c`` is the shape asked for; ``k``, ``n``, ``p``, ``q`` are drawn sizes, 1 to 4; a
nonterminal drawn below depth 0, or once the objective's operator budget is spent, is a leaf)::

    objective := S                                  -- drawn again while X is absent

    S   (1×1) := tr(M_{n×n}) | tr(E_{n×n}) | tr(M_{r×c}*M_{c×r}) | det(SPD) | logdet(SPD)
               | sum(M) | sum(E) | sum(diag(E_{n×n})) | sum(diag(M_{n×n})) | fro2(M)
               | norm2sq(M) | norm2(POS_{n×1}) | norm2(vec(POS)) | u'*M*v | M_{1×n}*M_{n×1}
               | S + S | S - S | -S | S*S | S / POS_{1×1} | S^2 | POS_{1×1}^0.5 | log(POS_{1×1})
               | M_{1×1} | E_{1×1} | leaf
    M   (r×c) := leaf | M + M | M - M | -M | M_{r×k}*M_{k×c} | M_{c×r}' | M_{c×r}'''
               | S*M | M*S | M / POS_{1×1} | number*M | E
               | t + M | M - t | t .* M | M ./ (t .* t + 1) | t ./ POS       (1×1 t or S broadcast)
               | kron(M_{p×q}, M_{p'×q'})  with p·p' = r, q·q' = c
               | square only: inv(SPD) | inv(inv(SPD)) | SPD^-1 | M^2 | M^3 | diag(diag(M))
               |              diag(M_{r×1}) | eye(r)
               | column only: diag(M_{r×r}) | vec(M_{p×q}) with p·q = r | ones(r)
    E   (r×c) := f(M) for f in sin cos tanh sigmoid softplus abs | exp(B) | M .* M
               | M ./ POS | log(POS) | sqrt(POS) | POS .^ a (a in 2, 3, 0.5, -1, 1.5)
               | POS .^ B | POS .^ B_{1×1}
    POS (r×c) := M .* M + 1 | exp(B) | sigmoid(M) + 0.5              (entries positive)
    B   (r×c) := sin(M) | cos(M) | tanh(M) | sigmoid(M) | X | X' | named constant  (bounded)
    SPD (n×n) := M_{k×n}'*M_{k×n} + eye(n)                            (positive definite)
    leaf (r×c):= X | X' | A*X*B (constants around X) | named constant | ones(r)*ones(c)'
               | eye(r) | ones(r) | 1×1: t, s, a number, sum(X), tr(X), fro2(X)

Domains are valid by construction: log, sqrt, non-integer powers and divisors only see POS,
inv, det (whose differential needs an inverse), ^-1 and logdet only SPD, exp only bounded
arguments (so nothing overflows and finite differences stay accurate). An operand written twice
(in M .* M + 1 and M'*M + eye) is drawn at most one level deep, so texts stay short.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
from hypothesis import strategies as st

import rewrite as rw
from rewrite.numeric import evaluate, gradient_error, instantiate_dims, random_point, relative_error

SMOOTH = ["sin", "cos", "tanh", "sigmoid", "softplus"]
BOUNDED = ["sin", "cos", "tanh", "sigmoid"]
NUMBERS = ["2", "0.5", "3", "1.5", "-2"]

# Shapes of X: non-square matrices first, then square, row and column vectors, 1×1. A column
# vector is declared (n,) or (n, 1), a 1×1 X () or (1, 1).
X_SHAPES = [((2, 3), (2, 3)), ((3, 2), (3, 2)), ((4, 2), (4, 2)), ((2, 4), (2, 4)),
            ((3, 4), (3, 4)), ((4, 3), (4, 3)), ((2, 2), (2, 2)), ((3, 3), (3, 3)),
            ((1, 3), (1, 3)), ((1, 2), (1, 2)), ((3, 1), (3,)), ((2, 1), (2, 1)), ((4, 1), (4,)),
            ((1, 1), ()), ((1, 1), (1, 1))]
SIZES = [3, 2, 1, 4, 2, 3]  # hypothesis shrinks towards the first: not 1


def factor_pairs(n: int) -> list[tuple[int, int]]:
    return [(a, n // a) for a in range(1, n + 1) if n % a == 0]


class Gen:
    """Draws the text of typed expressions; ``shapes`` collects every name used."""

    def __init__(self, rnd, xr: int, xc: int, xdecl: tuple, budget: int) -> None:
        self.rnd = rnd  # random.Random, or _Drawn (choices drawn by hypothesis)
        self.xr, self.xc = xr, xc
        self.shapes: dict[str, tuple] = {"X": xdecl}
        self.budget = budget  # operators left to draw; then only leaves

    def spend(self, d: int) -> bool:
        """Whether one more operator may be drawn at depth ``d``."""
        if d <= 0 or self.budget <= 0:
            return False
        self.budget -= 1
        return True

    # -- helpers ------------------------------------------------------------------------
    def pick(self, options):
        return self.rnd.choice(options)

    def size(self) -> int:
        return self.pick(SIZES)

    def const(self, r: int, c: int) -> str:
        if (r, c) == (1, 1):
            name = self.pick("tts")
            self.shapes[name] = ()
            return name
        name = f"{self.pick('ABC')}{r}{c}"
        self.shapes[name] = (r, c)
        return name

    def vector(self, n: int, letter: str) -> str:
        name = f"{letter}{n}"
        self.shapes[name] = (n,)
        return name

    def x_leaf(self, r: int, c: int) -> str:
        xr, xc = self.xr, self.xc
        options = []
        if (r, c) == (xr, xc):
            options += ["X"] * 4
        if (r, c) == (xc, xr):
            options += ["X'"] * 3
        if (r, c) == (1, 1):
            options += ["sum(X)", "fro2(X)"] + (["tr(X)"] if xr == xc else [])
        options.append("wrap")
        kind = self.pick(options)
        if kind != "wrap":
            return kind
        return f"({self.const(r, xr)}*X*{self.const(xc, c)})"

    def leaf(self, r: int, c: int) -> str:
        kinds = ["x", "x", "x", "const", "const"]
        if r > 1 or c > 1:
            kinds.append("block")
        if r == c and r > 1:
            kinds.append("eye")
        if c == 1 and r > 1:
            kinds.append("ones")
        if (r, c) == (1, 1):
            kinds.append("number")
        kind = self.pick(kinds)
        if kind == "x":
            return self.x_leaf(r, c)
        if kind == "const":
            return self.const(r, c)
        if kind == "block":
            return f"(ones({r})*ones({c})')"
        if kind == "eye":
            return f"eye({r})"
        if kind == "ones":
            return f"ones({r})"
        return self.pick(NUMBERS[:4])

    # -- nonterminals -------------------------------------------------------------------
    def mat(self, r: int, c: int, d: int) -> str:
        """An r×c expression."""
        if not self.spend(d):
            return self.leaf(r, c)
        kinds = ["ew", "mul", "bcast", "scale", "add", "sub", "neg", "mul", "t", "num", "ew",
                 "kron", "leaf"]
        if r == c:
            kinds += ["inv", "mpow", "diagm", "diagvec"] + (["t3", "inv2", "pinv"] if d > 1 else [])
        if c == 1:
            kinds += ["diagv", "vec"]
        if (r, c) == (1, 1):
            kinds += ["scalar", "scalar"]
        kind = self.pick(kinds)
        m = lambda rr, cc: self.mat(rr, cc, d - 1)  # noqa: E731
        if kind == "leaf":
            return self.leaf(r, c)
        if kind == "add":
            return f"({m(r, c)} + {m(r, c)})"
        if kind == "sub":
            return f"({m(r, c)} - {m(r, c)})"
        if kind == "neg":
            return f"(-{m(r, c)})"
        if kind == "mul":
            k = self.size()
            return f"({m(r, k)}*{m(k, c)})"
        if kind == "t":
            return f"({m(c, r)})'"
        if kind == "t3":
            return f"({m(c, r)})'''"
        if kind == "scale":
            s = self.scalar(d - 1)
            form = self.pick(["l", "r", "div"])
            if form == "l":
                return f"({s}*{m(r, c)})"
            if form == "r":
                return f"({m(r, c)}*{s})"
            return f"({m(r, c)} / {self.pos(1, 1, d - 1)})"
        if kind == "num":
            return f"({self.pick(NUMBERS)}*{m(r, c)})"
        if kind == "ew":
            return self.ew(r, c, d)
        if kind == "bcast":
            t = self.const(1, 1) if self.pick([True, True, False]) else self.scalar(d - 1)
            form = self.pick(["add", "sub", "had", "div", "rdiv"])
            if form == "add":
                return f"({t} + {m(r, c)})"
            if form == "sub":
                return f"({m(r, c)} - {t})"
            if form == "had":
                return f"({t} .* {m(r, c)})"
            if form == "div":
                return f"({m(r, c)} ./ ({t} .* {t} + 1))"
            return f"({t} ./ {self.pos(r, c, d - 1)})"
        if kind == "kron":
            p, p2 = self.pick(factor_pairs(r))
            q, q2 = self.pick(factor_pairs(c))
            return f"kron({m(p, q)}, {m(p2, q2)})"
        if kind == "inv":
            return f"inv({self.spd(r, d - 1)})"
        if kind == "inv2":
            return f"inv(inv({self.spd(r, d - 1)}))"
        if kind == "pinv":
            return f"({self.spd(r, d - 1)})^-1"
        if kind == "mpow":
            return f"({m(r, r)})^{self.pick(['2', '3'])}"
        if kind == "diagm":
            return f"diag(diag({m(r, r)}))"
        if kind == "diagvec":
            return f"diag({m(r, 1)})"
        if kind == "diagv":
            return f"diag({m(r, r)})"
        if kind == "vec":
            p, q = self.pick(factor_pairs(r))
            return f"vec({m(p, q)})"
        return self.scalar(d - 1)

    def ew(self, r: int, c: int, d: int) -> str:
        """An elementwise function, Hadamard product or quotient, or power, r×c."""
        m = lambda: self.mat(r, c, d - 1)  # noqa: E731
        kind = self.pick(["hdiv", "had", "fn", "exp", "log", "fn", "abs", "had", "sqrt", "epows",
                          "hdiv", "epow", "epow-s"])
        if kind == "fn":
            return f"{self.pick(SMOOTH)}({m()})"
        if kind == "abs":
            return f"abs({m()})"
        if kind == "exp":
            return f"exp({self.bounded(r, c, d - 1)})"
        if kind == "had":
            return f"({m()} .* {m()})"
        if kind == "hdiv":
            return f"({m()} ./ {self.pos(r, c, d - 1)})"
        if kind == "log":
            return f"log({self.pos(r, c, d - 1)})"
        if kind == "sqrt":
            return f"sqrt({self.pos(r, c, d - 1)})"
        if kind == "epows":
            return f"{self.pos(r, c, d - 1)}.^{self.pick(['2', '3', '0.5', '(-1)', '1.5'])}"
        # the exponent in parentheses: P.^X' would read as (P.^X)'
        if kind == "epow":
            return f"{self.pos(r, c, d - 1)}.^({self.bounded(r, c, d - 1)})"
        return f"{self.pos(r, c, d - 1)}.^({self.bounded(1, 1, d - 1)})"

    def pos(self, r: int, c: int, d: int) -> str:
        """An r×c expression with positive entries."""
        kind = self.pick(["sq", "sq", "exp", "sig"])
        if kind == "sq":  # the operand is written twice: kept small
            a = self.mat(r, c, min(d, 1))
            return f"({a} .* {a} + 1)"
        if kind == "exp":
            return f"exp({self.bounded(r, c, d)})"
        return f"(sigmoid({self.mat(r, c, d)}) + 0.5)"

    def bounded(self, r: int, c: int, d: int) -> str:
        """An r×c expression with entries of modest size (exp of it stays far from overflow,
        and so does softplus of that)."""
        if d > 0 and self.pick([True, True, False]):
            return f"{self.pick(BOUNDED)}({self.mat(r, c, d)})"
        xs = (["X"] if (r, c) == (self.xr, self.xc) else []) + \
            (["X'"] if (r, c) == (self.xc, self.xr) else [])
        kind = self.pick(xs + ["const"])
        return self.const(r, c) if kind == "const" else kind

    def spd(self, n: int, d: int) -> str:
        k = self.size()
        a = self.mat(k, n, min(d, 1))  # written twice: kept small
        return f"(({a})'*({a}) + eye({n}))"

    def scalar(self, d: int) -> str:
        """A 1×1 expression."""
        if not self.spend(d):
            return self.leaf(1, 1)
        n, r, c = self.size(), self.size(), self.size()
        m = lambda rr, cc: self.mat(rr, cc, d - 1)  # noqa: E731
        kind = self.pick(["tr-ew", "sum-ew", "div", "tr", "tr-ew", "tr-prod", "det", "logdet",
                          "sum", "sum-diag-ew", "sum-diag", "fro2", "norm2sq", "norm2",
                          "norm2-vec", "quad", "inner", "add", "sub", "neg", "mul", "pow2", "sqrt",
                          "log", "mat", "ew"])
        if kind == "tr":
            return f"tr({m(n, n)})"
        if kind == "tr-ew":
            return f"tr({self.ew(n, n, d)})"
        if kind == "tr-prod":
            return f"tr({m(r, c)}*{m(c, r)})"
        if kind == "det":  # d det(A) = det(A)*tr(inv(A)*dA) needs A invertible
            return f"det({self.spd(n, d - 1)})"
        if kind == "logdet":
            return f"logdet({self.spd(n, d - 1)})"
        if kind == "sum":
            return f"sum({m(r, c)})"
        if kind == "sum-ew":
            return f"sum({self.ew(r, c, d)})"
        if kind == "sum-diag-ew":
            return f"sum(diag({self.ew(n, n, d)}))"
        if kind == "sum-diag":
            return f"sum(diag({m(n, n)}))"
        if kind == "fro2":
            return f"fro2({m(r, c)})"
        if kind == "norm2sq":
            return f"norm2sq({m(r, c)})"
        if kind == "norm2":
            return f"norm2({self.pos(n, 1, d - 1)})"
        if kind == "norm2-vec":
            return f"norm2(vec({self.pos(r, c, d - 1)}))"
        if kind == "quad":
            return f"({self.vector(r, 'u')}'*{m(r, c)}*{self.vector(c, 'v')})"
        if kind == "inner":
            return f"({m(1, n)}*{m(n, 1)})"
        if kind == "add":
            return f"({self.scalar(d - 1)} + {self.scalar(d - 1)})"
        if kind == "sub":
            return f"({self.scalar(d - 1)} - {self.scalar(d - 1)})"
        if kind == "neg":
            return f"(-{self.scalar(d - 1)})"
        if kind == "mul":
            return f"({self.scalar(d - 1)}*{self.scalar(d - 1)})"
        if kind == "div":
            return f"({self.scalar(d - 1)} / {self.pos(1, 1, d - 1)})"
        if kind == "pow2":
            return f"({self.scalar(d - 1)})^2"
        if kind == "sqrt":
            return f"({self.pos(1, 1, d - 1)})^0.5"
        if kind == "log":
            return f"log({self.pos(1, 1, d - 1)})"
        if kind == "mat":
            return m(1, 1)
        return self.ew(1, 1, d)


def has_x(text: str) -> bool:
    return re.search(r"\bX\b", text) is not None


class _Drawn:
    """The two methods of random.Random that Gen uses, as hypothesis draws."""

    def __init__(self, draw) -> None:
        self.draw = draw

    def choice(self, options):
        return self.draw(st.sampled_from(options))

    def randint(self, a: int, b: int) -> int:
        return self.draw(st.integers(a, b))


@st.composite
def objectives(draw, max_depth: int = 6, max_ops: int = 12, seeded: bool = True):
    """(text, shapes): a random well-typed 1×1 objective in which ``X`` occurs, nested at most
    ``max_depth`` deep with at most about ``max_ops`` operators.

    ``seeded`` (the default): hypothesis draws one seed and the choices come from
    ``random.Random(seed)``. Hypothesis drawing every choice itself (``seeded=False``, which
    shrinks) mutates earlier examples and favours first options: about 40 % of 500 examples
    were repeats, against almost none seeded.
    """
    rnd = random.Random(draw(st.integers(0, 2**64 - 1))) if seeded else _Drawn(draw)
    (xr, xc), xdecl = rnd.choice(X_SHAPES)
    for _ in range(5):  # every objective depends on X: draw again if it does not
        gen = Gen(rnd, xr, xc, xdecl, rnd.randint(3, max_ops))
        text = gen.scalar(rnd.randint(2, max_depth))
        if has_x(text):
            return text, dict(gen.shapes)
    return f"{text} + sum(X)", dict(gen.shapes)


# -- the check -----------------------------------------------------------------------------
CORRECT, WRONG, REJECTED, OUTSIDE = "correct", "WRONG", "rejected simplification", "outside domain"
CRASH = "CRASH"  # an exception that is not a TracegradError
TOLERANCE = 1e-5  # relative error of the gradient against finite differences
LIMITS = rw.Limits(seconds=3.0)  # a slow example ends as a typed LimitError, counted as such


def typed(kind: str) -> str:
    return f"typed error ({kind})"


@dataclass
class Outcome:
    kind: str
    text: str
    shapes: dict
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}  shapes={self.shapes}  {self.detail}"


def _refined_error(f, g, env) -> float:
    """Relative error against Richardson-extrapolated central differences (fourth order), the
    second opinion asked before an example is called wrong."""
    x0 = np.asarray(env["X"], dtype=float)
    grad = evaluate(g.term, env, g.registry)
    best = np.inf
    for h in (1e-6, 1e-5, 1e-4, 1e-3, 3e-3, 1e-2):  # small steps for steep objectives
        fd = np.zeros_like(x0)
        for idx in np.ndindex(x0.shape):
            vals = []
            for step in (h, h / 2):
                e = dict(env)
                xp, xm = x0.copy(), x0.copy()
                xp[idx] += step
                xm[idx] -= step
                e["X"] = xp
                fp = evaluate(f, e, g.registry)[0, 0]
                e["X"] = xm
                fm = evaluate(f, e, g.registry)[0, 0]
                vals.append((fp - fm) / (2 * step))
            fd[idx] = (4 * vals[1] - vals[0]) / 3
        if np.all(np.isfinite(fd)):
            best = min(best, relative_error(grad.reshape(fd.shape), fd))
    return best


def check(text: str, shapes: dict, engine: rw.Engine | None = None, limits: rw.Limits | None = None,
          seed: int = 0) -> Outcome:
    """Differentiate ``text`` in X and compare with central differences of the objective as
    written (parsed, not the engine's tidied copy of it), at a random point.

    Outcomes: correct; WRONG (shape of the gradient differs from X's, a NaN/inf gradient where
    the differences are finite, or relative error above TOLERANCE at every step of the finite
    differences and against a fourth-order second opinion); rejected simplification (the
    engine's numeric guard caught a simplification that changed the value: an unsound rule);
    outside domain (the finite differences are not finite); typed error (kind); CRASH (any
    other exception).
    """
    engine = engine or rw.default_engine()
    try:
        f = engine.term(text, shapes)
        g = engine.gradient(text, "X", shapes, limits or LIMITS)
    except rw.TracegradError as e:
        return Outcome(typed(e.kind), text, shapes, str(e)[:200])
    except Exception as e:  # noqa: BLE001 - the contract is a gradient or a typed error
        return Outcome(CRASH, text, shapes, f"{type(e).__name__}: {e}")
    xshape = (1 if len(shapes["X"]) == 0 else shapes["X"][0],
              1 if len(shapes["X"]) < 2 else shapes["X"][1])
    if tuple(g.term.shape) != xshape:
        return Outcome(WRONG, text, shapes, f"gradient {g} is {g.term.shape}, X is {xshape}")
    probe = SimpleNamespace(f=f, term=g.term, registry=g.registry, wrt="X")
    try:
        with np.errstate(all="ignore"):
            grad, fd, err = gradient_error(probe, np.random.default_rng(seed))
            if not err <= TOLERANCE and np.all(np.isfinite(fd)) and np.all(np.isfinite(grad)):
                rng = np.random.default_rng(seed)  # the point gradient_error drew
                env = random_point(f, rng, instantiate_dims(f, rng))
                err = min(err, _refined_error(f, g, env))
    except Exception as e:  # noqa: BLE001 - f is defined there by construction: G is not
        return Outcome(WRONG, text, shapes, f"gradient {g} cannot be evaluated: {type(e).__name__}: {e}")
    if grad.shape != fd.shape:
        return Outcome(WRONG, text, shapes, f"gradient {g} evaluates to {grad.shape}, X is {fd.shape}")
    if not np.all(np.isfinite(fd)):
        return Outcome(OUTSIDE, text, shapes)
    if not np.all(np.isfinite(grad)):
        return Outcome(WRONG, text, shapes, f"gradient {g} is not finite where f is")
    if not err <= TOLERANCE:
        return Outcome(WRONG, text, shapes, f"gradient {g}: relative error {err:.2e}")
    if any(p.get("stop_reason") == "rejected" for p in g.report.phases):
        return Outcome(REJECTED, text, shapes, f"gradient {g}")
    return Outcome(CORRECT, text, shapes)
