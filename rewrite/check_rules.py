"""Numeric soundness of rules: every rule is evaluated on random matrices (``check-rules``).

Each rule is instantiated several times: dimensions drawn at random (pairwise different on the
first two draws, so non-square wherever the pattern allows; 1 for ``scalar``, vectors for
``vector``, equal for ``square``), pattern
variables filled with random matrices (a general draw and an entrywise-positive draw, so that
``log``/``sqrt``/``inv`` have a domain), numeric variables drawn to satisfy ``num``/``int`` and
comparisons.  Both sides are evaluated with numpy and must agree.

Differentials are evaluated as directional derivatives: every pattern variable P moves along a
random direction dP (zero when ``const(P)``), and ``d(E)`` is the central difference of E along
them.  ``grad(s, x)`` is the G with s = tr(G'*x): s is linear in the differential x, so G is read
off by evaluating s at the basis matrices; ``jac(F, x)`` likewise gives J with
vec(F) = J*vec(x), and ``adj(E, W, x)`` the G with tr(W'*E) = tr(G'*x).  In the first argument of
these, a pattern variable that the rule does not declare ``free`` (or ``const``) stands for an
expression linear in x: it is drawn as a random linear map of x (a random tensor), so that a
collection rule is checked on a linear E and not on a constant (for which both sides are 0).
The tutorial docs/rules.md describes the method for rule authors.

What a numeric check cannot see: ``free``/``varying`` are preconditions about which subterms
contain the differentiation variable; a pattern variable is drawn as an independent matrix, so
a rule that needs ``free(A)`` for ``grad`` to be defined at all is checked under it.

>>> report = check_rules_text("ruleset trace\\nbad-t : (A*B)' = A'*B'\\n")
>>> report.ok, [u.rule for u in report.unsound]
(False, ['bad-t'])
>>> check_rules_text("ruleset trace\\ngood-t : (A*B)' = B'*A'\\n").ok
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import TracegradError
from .numeric import evaluate
from .rulefile import Rule, RuleSet, load_text
from .shapes import DimVar
from .stock import stock_dir, stock_ruleset, with_user_files
from .terms import Term

DRAWS = 6          # shape/value draws per rule (half general, half entrywise positive)
STEP = 1e-3        # central-difference step for d(...), with Richardson extrapolation
TOLERANCE = 1e-6   # relative disagreement that makes a rule unsound (1e-4 with differentials)


@dataclass
class Counterexample:
    """A draw on which the two sides of a rule disagree."""

    rule: str
    where: str
    shapes: dict[str, tuple[int, int]]
    seed: int
    error: float
    detail: str = ""
    values: str = "general"  # or "positive": the kind of value draw (see check_rule)
    citation: str = ""

    def __str__(self) -> str:
        shapes = ", ".join(f"{k}: {r}×{c}" for k, (r, c) in sorted(self.shapes.items()))
        what = self.detail or f"relative error {self.error:.2e}"
        cite = f" [{self.citation}]" if self.citation else ""
        return (f"{self.where}: {self.rule}: UNSOUND — {what} (shapes {shapes}; {self.values} "
                f"values, seed {self.seed}){cite}")


@dataclass(frozen=True)
class Verdict:
    """One checked rule: ``verdict`` is ``sound``, ``unsound`` or ``untested``."""

    rule: str
    where: str
    verdict: str
    citation: str = ""
    draws: int = 0  # draws on which both sides could be evaluated

    def __str__(self) -> str:
        cite = f" [{self.citation}]" if self.citation else ""
        return f"{self.where}: {self.rule}: {self.verdict} ({self.draws} draws){cite}"


@dataclass
class CheckReport:
    """Outcome of :func:`check_rules`: sound rules, counterexamples, rules no draw could test,
    and a :class:`Verdict` (with the rule's citation) for every rule checked."""

    checked: int = 0
    sound: list[str] = field(default_factory=list)
    unsound: list[Counterexample] = field(default_factory=list)
    unverified: list[tuple[str, str]] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unsound

    def summary(self) -> str:
        rules = "rule" if self.checked == 1 else "rules"
        return (f"checked {self.checked} {rules}: {len(self.sound)} sound, {len(self.unsound)} "
                f"unsound, {len(self.unverified)} not testable numerically")

    def lines(self, verbose: bool = False) -> list[str]:
        """Counterexamples and untested rules, then the summary; ``verbose`` lists every
        rule's verdict (and citation) first."""
        out = [str(v) for v in self.verdicts] if verbose else []
        out += [str(u) for u in self.unsound]
        out += [f"{where}: not tested: {why}" for where, why in self.unverified]
        return out + [self.summary()]

    def as_json(self) -> dict:
        """The object printed by ``tracegrad check-rules --format json``."""
        return {"checked": self.checked, "sound": len(self.sound),
                "unsound": [{"rule": u.rule, "where": u.where, "shapes": u.shapes, "seed": u.seed,
                             "values": u.values, "error": u.error, "detail": u.detail,
                             "citation": u.citation} for u in self.unsound],
                "untested": [{"rule": w, "reason": r} for w, r in self.unverified],
                "rules": [{"rule": v.rule, "where": v.where, "verdict": v.verdict,
                           "citation": v.citation, "draws": v.draws} for v in self.verdicts]}


class _Skip(Exception):
    """This draw cannot be evaluated (a domain or shape problem, not a verdict)."""


# ------------------------------------------------------------------------ dimensions ----
def _walk(t: Term):
    yield t
    for a in t.args:
        yield from _walk(a)


def _dimvars(t: Term) -> set[DimVar]:
    out: set[DimVar] = set()
    for n in _walk(t):
        out.update(d for d in n.shape if isinstance(d, DimVar))
        if isinstance(n.attr, tuple):
            out.update(d for d in n.attr if isinstance(d, DimVar))
    return out


def _pvar_shapes(rule: Rule) -> dict[str, tuple]:
    shapes: dict[str, tuple] = {}
    for side in (rule.lhs, rule.rhs):
        for n in _walk(side):
            if n.op == "pvar":
                shapes.setdefault(n.attr, n.shape)
    return shapes


def _draw_dims(rule: Rule, rng: np.random.Generator, distinct: bool = False,
               ones: bool = False) -> dict[DimVar, int]:
    """Sizes for the rule's dimension variables (2 to 4; ``distinct``: pairwise different, so
    no product is square or conformable by accident; ``ones``: all 1, every matrix 1×1)."""
    parent: dict[DimVar, DimVar] = {}

    def find(d: DimVar) -> DimVar:
        while parent.get(d, d) is not d:
            d = parent[d]
        return d

    fixed: dict[DimVar, int] = {}
    shapes = _pvar_shapes(rule)
    for c in rule.conditions:
        shp = shapes.get(c.args[0]) if c.args else None
        if shp is None:
            continue
        if c.kind == "scalar":
            for d in shp:
                if isinstance(d, DimVar):
                    fixed[d] = 1
        elif c.kind == "vector" and isinstance(shp[1], DimVar):
            fixed[shp[1]] = 1
        elif c.kind == "square" and all(isinstance(d, DimVar) for d in shp):
            parent[find(shp[1])] = find(shp[0])
    dims = _dimvars(rule.lhs) | _dimvars(rule.rhs)
    roots: dict[DimVar, int] = {}
    order = [int(k) for k in rng.permutation(len(dims))] if distinct else []
    for d in sorted(dims, key=lambda v: v.id):
        r = find(d)
        if r not in roots:
            roots[r] = 1 if ones else 2 + order[len(roots)] if distinct else int(rng.integers(2, 5))
    val = {d: roots[find(d)] for d in dims}
    for d, v in fixed.items():
        for e in dims:
            if find(e) is find(d):
                val[e] = v
    # products the rule typing leaves open: vec(A) is (rows·cols)×1, kron multiplies dimensions
    for _ in range(3):
        for side in (rule.lhs, rule.rhs):
            for n in _walk(side):
                def v(d):
                    return val.get(d, d) if isinstance(d, DimVar) else d
                if n.op == "vec" and isinstance(n.shape[0], DimVar):
                    a = n.args[0].shape
                    if isinstance(v(a[0]), int) and isinstance(v(a[1]), int):
                        val[n.shape[0]] = v(a[0]) * v(a[1])
                elif n.op in ("kron", "kront"):
                    (ar, ac), (br, bc) = n.args[0].shape, n.args[1].shape
                    for i, (x, y) in enumerate(((ar, br), (ac, bc))):
                        if isinstance(n.shape[i], DimVar) and isinstance(v(x), int) \
                                and isinstance(v(y), int):
                            val[n.shape[i]] = v(x) * v(y)
    return val


def _concrete(t: Term, val: dict) -> Term:
    def dim(d):
        if isinstance(d, DimVar):
            return val[d]
        if isinstance(d, str):
            raise _Skip(f"symbolic dimension {d!r} in a rule")
        return d

    attr = tuple(dim(d) for d in t.attr) if isinstance(t.attr, tuple) else t.attr
    return Term(t.op, tuple(_concrete(a, val) for a in t.args), attr,
                (dim(t.shape[0]), dim(t.shape[1])))


# ------------------------------------------------------------------------- numbers ----
_NUM_POOL = [Fraction(1, 2), Fraction(3, 2), Fraction(2), Fraction(3), Fraction(-1, 2),
             Fraction(-2), Fraction(5, 4), Fraction(1), Fraction(0), Fraction(-1)]
_ARITH = re.compile(r"^[\w\s+\-*/().]+$")


def _numvars(rule: Rule) -> set[str]:
    out = {c.args[0] for c in rule.conditions if c.kind in ("num", "int", "cmp")}
    return out | set(rule.computed)


def _draw_numbers(rule: Rule, rng: np.random.Generator) -> dict[str, Fraction]:
    names = sorted({c.args[0] for c in rule.conditions if c.kind in ("num", "int", "cmp")})
    out: dict[str, Fraction] = {}
    for name in names:
        conds = [c for c in rule.conditions if c.args and c.args[0] == name]
        pool = list(_NUM_POOL) + [Fraction(int(k)) for k in range(-4, 6)]
        if any(c.kind == "int" for c in conds):
            pool = [p for p in pool if p.denominator == 1]
        for c in conds:
            if c.kind == "cmp":
                op, lit = c.args[1], c.args[2]
                ok = {"<": lambda p, q: p < q, "<=": lambda p, q: p <= q, ">": lambda p, q: p > q,
                      ">=": lambda p, q: p >= q, "==": lambda p, q: p == q,
                      "!=": lambda p, q: p != q}[op]
                pool = [p for p in pool if ok(p, Fraction(lit))]
        if not pool:
            raise _Skip(f"no number satisfies the conditions on {name}")
        out[name] = pool[int(rng.integers(len(pool)))]
    for name, expr in rule.computed.items():
        if not _ARITH.match(expr):
            raise _Skip(f"cannot evaluate {{{expr}}}")
        try:
            out[name] = Fraction(eval(expr, {"__builtins__": {}}, dict(out)))  # noqa: S307
        except (ZeroDivisionError, NameError, SyntaxError, TypeError) as e:
            raise _Skip(f"{{{expr}}}: {e}") from None
    return out


# ---------------------------------------------------------------------- evaluation ----
class _Eval:
    """Evaluates a concrete rule term; ``d`` and ``grad`` numerically (see the module doc)."""

    def __init__(self, registry, numbers: dict[str, Fraction],
                 linear: dict[str, np.ndarray] | None = None, x: str = "") -> None:
        self.registry = registry
        self.numbers = numbers
        self.linear = linear or {}  # pattern variable -> tensor of its linear map of env[x]
        self.x = x

    def value(self, t: Term, env: dict, dirs: dict) -> np.ndarray:
        if t.op == "pvar":
            if t.attr in self.linear:
                return np.einsum("abij,ij->ab", self.linear[t.attr], env[self.x])
            return env[t.attr]
        if t.op == "adj":
            return self.adjoint(t.args[0], t.args[1], t.args[2], env, dirs)
        if t.op == "d":
            return self.differential(t.args[0], env, dirs)
        if t.op == "grad":
            return self.gradient(t.args[0], t.args[1], env, dirs)
        if t.op == "jac":
            return self.jacobian(t.args[0], t.args[1], env, dirs)
        args, values = [], {}
        for i, a in enumerate(t.args):
            v = self.value(a, env, dirs)
            if a.op == "num" or (a.op == "pvar" and a.attr in self.numbers):
                # exponents must stay literal numbers for the evaluator
                args.append(a if a.op == "num" else Term("num", (), self.numbers[a.attr], (1, 1)))
            else:
                args.append(Term("var", (), f"_{i}", v.shape))
                values[f"_{i}"] = v
        shallow = Term(t.op, tuple(args), t.attr, t.shape)
        with np.errstate(all="ignore"):
            try:
                out = evaluate(shallow, values, self.registry)
            except (np.linalg.LinAlgError, ValueError, TracegradError) as e:
                raise _Skip(str(e)) from None
        return np.asarray(out, dtype=float)

    def differential(self, e: Term, env: dict, dirs: dict) -> np.ndarray:
        def at(h: float) -> np.ndarray:
            moved = {k: v + h * dirs[k] if k in dirs else v for k, v in env.items()}
            return self.value(e, moved, dirs)

        def central(h: float) -> np.ndarray:
            return (at(h) - at(-h)) / (2 * h)

        return (4 * central(STEP / 2) - central(STEP)) / 3  # Richardson: error O(h⁴)

    def _linear_in(self, x: Term, env: dict, dirs: dict):
        """A function m ↦ (env, dirs) with the differential ``x`` set to ``m``."""
        if x.op == "d" and x.args[0].op == "pvar":
            name, table = x.args[0].attr, "dirs"
        elif x.op == "pvar":
            name, table = x.attr, "env"
        else:
            raise _Skip("the differential argument is neither d(P) nor a pattern variable")

        def at(m: np.ndarray):
            e2, d2 = dict(env), dict(dirs)
            (d2 if table == "dirs" else e2)[name] = m
            return e2, d2

        return at

    def gradient(self, s: Term, x: Term, env: dict, dirs: dict) -> np.ndarray:
        """G with s = tr(G'*x), s linear in the differential x (a d(P) or a pattern variable):
        the adjoint of s with seed 1."""
        return self.read_off(s, np.ones((1, 1)), x, env, dirs)

    def adjoint(self, e: Term, w: Term, x: Term, env: dict, dirs: dict) -> np.ndarray:
        """G with tr(W'*E) = tr(G'*x), E linear in the differential x."""
        return self.read_off(e, self.value(w, env, dirs), x, env, dirs)

    def read_off(self, e: Term, seed: np.ndarray, x: Term, env: dict, dirs: dict) -> np.ndarray:
        """G with sum(seed .* E) = tr(G'*x), E linear in x: E evaluated at the basis matrices."""
        at = self._linear_in(x, env, dirs)
        r, c = x.shape
        base = self.value(e, *at(np.zeros((r, c))))
        if base.shape != seed.shape:
            raise _Skip(f"a seed of shape {seed.shape} for a term of shape {base.shape}")
        g = np.zeros((r, c))
        for i in range(r):
            for j in range(c):
                m = np.zeros((r, c))
                m[i, j] = 1.0
                g[i, j] = float(np.sum(seed * (self.value(e, *at(m)) - base)))
        return g

    def jacobian(self, f: Term, x: Term, env: dict, dirs: dict) -> np.ndarray:
        """J with vec(F) = J*vec(x) (column-major), F linear in the differential x."""
        at = self._linear_in(x, env, dirs)
        r, c = x.shape
        base = self.value(f, *at(np.zeros((r, c)))).reshape(-1, order="F")
        cols = []
        for k in range(r * c):
            e = np.zeros(r * c)
            e[k] = 1.0
            cols.append(self.value(f, *at(e.reshape((r, c), order="F"))).reshape(-1, order="F")
                        - base)
        return np.stack(cols, axis=1)


def _uses_differentials(rule: Rule) -> bool:
    return any(n.op in ("d", "grad", "jac", "adj") for side in (rule.lhs, rule.rhs)
               for n in _walk(side))


#: operators whose first argument is linear in their last (the differential)
COLLECTORS = ("grad", "jac", "adj")


def linear_variables(rule: Rule) -> tuple[str, set[str]]:
    """(x, P): the differential ``x`` of the rule's collectors when it is a pattern variable, and
    the pattern variables P in their first arguments that stand for expressions linear in x
    (those not declared free, const or numeric).

    >>> from rewrite.rulefile import load_text
    >>> text = "ruleset collect in collect\\nm : adj(A*E, W, x) => adj(E, A'*W, x)  if free(A)\\n"
    >>> r = load_text(text, "c").rules[0]
    >>> linear_variables(r)
    ('x', {'E'})
    """
    fixed = {c.args[0] for c in rule.conditions if c.kind in ("free", "const")} | _numvars(rule)
    xs, inner = set(), set()
    for side in (rule.lhs, rule.rhs):
        for n in _walk(side):
            if n.op in COLLECTORS:
                xs.add(n.args[-1])
                inner |= {m.attr for m in _walk(n.args[0]) if m.op == "pvar"}
    if len(xs) != 1 or next(iter(xs)).op != "pvar":
        return "", set()
    x = next(iter(xs)).attr
    return x, inner - fixed - {x}


def check_rule(rule: Rule, registry, draws: int = DRAWS, seed: int = 0
               ) -> tuple[Counterexample | str | None, int]:
    """(None when sound on every draw, a Counterexample, or why no draw could be evaluated;
    the number of draws evaluated).

    Draw k uses ``numpy.random.default_rng(1000*seed + k)``; even draws take values of both
    signs, odd draws entrywise positive values; the first two draws take pairwise different
    dimensions, the third makes every dimension 1 (a rule sound for matrices may not be for
    1×1 operands).  Draws outside the domain of a side (log of a negative number, a singular
    matrix) do not count: up to ``3*draws`` are made to evaluate ``draws`` of them.
    """
    tol = 1e-4 if _uses_differentials(rule) else TOLERANCE
    numvars = _numvars(rule)
    const = {c.args[0] for c in rule.conditions if c.kind == "const"}
    xname, lin = linear_variables(rule)
    evaluated, why = 0, "no draw could be evaluated"
    for k in range(3 * draws):
        if evaluated >= draws:
            break
        s = seed * 1000 + k
        rng = np.random.default_rng(s)
        positive = k % 2 == 1
        values = "positive" if positive else "general"
        try:
            val = _draw_dims(rule, rng, distinct=k < 2, ones=k == 2)
            lhs, rhs = _concrete(rule.lhs, val), _concrete(rule.rhs, val)
            nums = _draw_numbers(rule, rng)
            env: dict[str, np.ndarray] = {}
            dirs: dict[str, np.ndarray] = {}
            shapes: dict[str, tuple[int, int]] = {}
            for side in (lhs, rhs):
                for n in _walk(side):
                    if n.op != "pvar" or n.attr in env:
                        continue
                    r, c = n.shape
                    if n.attr in numvars:
                        if n.attr not in nums:
                            raise _Skip(f"no value for {n.attr}")
                        env[n.attr] = np.array([[float(nums[n.attr])]])
                        continue
                    shapes[n.attr] = (r, c)
                    if positive:
                        m = rng.uniform(0.5, 2.0, size=(r, c))
                    else:  # both signs, kept away from 0 (elementwise division, powers)
                        m = rng.choice([-1.0, 1.0], size=(r, c)) * rng.uniform(0.3, 2.0, (r, c))
                    if r == c and r > 1:  # well conditioned, not symmetric
                        m = m + 2.0 * np.eye(r)
                    env[n.attr] = m
                    dirs[n.attr] = (np.zeros((r, c)) if n.attr in const
                                    else rng.normal(size=(r, c)))
            linear = {}
            for name in sorted(lin):
                (r, c), (xr, xc) = env[name].shape, env[xname].shape
                linear[name] = rng.normal(size=(r, c, xr, xc))
            ev = _Eval(registry, nums, linear, xname)
            a = ev.value(lhs, env, dirs)
            b = ev.value(rhs, env, dirs)
        except _Skip as e:
            why = str(e)
            continue
        except RecursionError:  # pragma: no cover - pathological rule
            why = "too deeply nested"
            continue
        if a.shape != b.shape:
            return Counterexample(rule.name, rule.where, shapes, s, float("inf"),
                                  f"sides have shapes {a.shape} and {b.shape}", values,
                                  rule.citation), evaluated
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            why = "values not finite on the draws (domain)"
            continue
        evaluated += 1
        scale = max(float(np.max(np.abs(a), initial=0)), float(np.max(np.abs(b), initial=0)), 1.0)
        err = float(np.max(np.abs(a - b), initial=0)) / scale
        if err > tol:
            return Counterexample(rule.name, rule.where, shapes, s, err, "", values,
                                  rule.citation), evaluated
    return (None if evaluated else why), evaluated


def check_ruleset(rs: RuleSet, rules: list[Rule] | None = None, draws: int = DRAWS,
                  seed: int = 0) -> CheckReport:
    """Check ``rules`` (all rules of ``rs`` by default) against ``rs``'s functions."""
    report = CheckReport()
    for rule in rules if rules is not None else rs.rules:
        report.checked += 1
        out, n = check_rule(rule, rs.functions, draws, seed)
        if out is None:
            report.sound.append(rule.name)
            verdict = "sound"
        elif isinstance(out, Counterexample):
            report.unsound.append(out)
            verdict = "unsound"
        else:
            report.unverified.append((f"{rule.where}: {rule.name}", out))
            verdict = "untested"
        report.verdicts.append(Verdict(rule.name, rule.where, verdict, rule.citation, n))
    return report


def check_rules(paths: list[str | Path] | None = None, draws: int = DRAWS,
                seed: int = 0) -> CheckReport:
    """Check the rules of ``paths`` (loaded on top of the stock rules), or the stock rules.

    A path to a stock rule file (in :func:`rewrite.stock.stock_dir`) selects the stock rules of
    that file; they are not loaded a second time.
    """
    if not paths:
        return check_ruleset(stock_ruleset(), draws=draws, seed=seed)
    home = stock_dir().resolve()

    def is_stock(p: str | Path) -> bool:
        return Path(p).resolve().parent == home and Path(p).is_file()

    user = [p for p in paths if not is_stock(p)]
    stock_files = {Path(p).name for p in paths if is_stock(p)}
    rs = with_user_files(user)
    stock = {id(r) for r in stock_ruleset().rules}
    return check_ruleset(rs, [r for r in rs.rules if id(r) not in stock or r.source in stock_files],
                         draws, seed)


def check_rules_text(text: str, source: str = "<rules>", draws: int = DRAWS,
                     seed: int = 0) -> CheckReport:
    """Check the rules of rule-file text (on top of the stock rules).

    >>> rep = check_rules_text("ruleset trace\\nmine : tr(A*B) = tr(B*A)   # Matrix Cookbook (16)\\n")
    >>> print(rep.lines(verbose=True)[0])
    <rules>:2: mine: sound (6 draws) [Matrix Cookbook (16)]
    """
    rs = load_text(text, source, stock_ruleset())
    stock = {id(r) for r in stock_ruleset().rules}
    return check_ruleset(rs, [r for r in rs.rules if id(r) not in stock], draws, seed)


__all__ = ["CheckReport", "Counterexample", "Verdict", "check_rule", "check_rules", "check_rules_text",
           "check_ruleset"]
