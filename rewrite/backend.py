"""The only module that talks to egglog: compile rules, insert terms, run with limits, extract.

Terms become constructors of one sort ``M`` (names from :data:`rewrite.terms.OPS`); dimensions
become ``i64`` (symbolic names are encoded as distinct large primes so that ``vec``'s products
stay unique).  Shapes are computed in the e-graph by generated typing rules (functions ``rows``
and ``cols`` without a merge, so an ill-typed union stops the run instead of passing silently),
and ``isconst``/``varying`` record which classes are free of, or depend on, the variable.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import importlib.util
import itertools
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from .errors import CanonicalFormError, LimitError, TracegradError, UnsupportedError
from .parse import Elaborator
from .report import Limits, Report, rss_mb
from .rules import PHASES, SUBSUMING_PHASES, Rule, RuleSet
from .terms import CTOR_TO_OP, OPS, Term, make, post_order


def _egglog_bindings():
    """egglog's compiled module (the e-graph itself), loaded without egglog's Python front end.

    ``import egglog.bindings`` first runs ``egglog/__init__``, which imports egglog's whole
    Python API (with black, for pretty-printing): ~0.2 s of every process's start, for nothing
    the engine uses. So the extension module is loaded on its own, under its usual name; should
    the egglog package be imported later, a one-shot import hook gives it its ``bindings``
    attribute as the normal import would have. If egglog is already imported, or its layout is
    not the expected one, this is the normal import.
    """
    if "egglog" not in sys.modules and "egglog.bindings" not in sys.modules:
        try:
            spec = importlib.util.find_spec("egglog")
            where = [Path(p) for p in (spec.submodule_search_locations or [])]
            path = next(d / f"bindings{suffix}" for d in where
                        for suffix in importlib.machinery.EXTENSION_SUFFIXES
                        if (d / f"bindings{suffix}").is_file())
            bspec = importlib.util.spec_from_file_location("egglog.bindings", path)
            module = importlib.util.module_from_spec(bspec)
            sys.modules["egglog.bindings"] = module
            bspec.loader.exec_module(module)
            sys.meta_path.insert(0, _BindingsAttribute())
            return module
        except Exception:  # pragma: no cover - another layout: the normal import below
            sys.modules.pop("egglog.bindings", None)
    import egglog.bindings

    return egglog.bindings


class _BindingsAttribute(importlib.abc.MetaPathFinder):
    """When the egglog package is imported after its bindings were loaded on their own, set its
    ``bindings`` attribute before its ``__init__`` runs (then leave the import system)."""

    def find_spec(self, name, path=None, target=None):
        if name != "egglog":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _WithBindings(spec.loader)
        return spec


class _WithBindings(importlib.abc.Loader):
    def __init__(self, loader) -> None:
        self._loader = loader

    def __getattr__(self, name: str):  # get_code, get_resource_reader, … of the real loader
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.bindings = sys.modules["egglog.bindings"]
        self._loader.exec_module(module)


eg = _egglog_bindings()

# egglog logs a failed extraction before raising it; the engine turns the failure into a typed
# error (or a documented fallback), so the log line would only be noise on a user's stderr.
logging.getLogger("egglog.extract").setLevel(logging.CRITICAL)

SORT = "M"
# Helper rulesets: typing (always) and one per analysis, each named after the side condition it
# serves. A phase's directed block and its step each run only the analyses their rules test
# (:func:`helper_plan`), with the typing rules, as one combined ruleset.
TYPING = "h_type"
ANALYSES = {"const": ("isconst", "h_const"), "free": ("isfree", "h_free"),
            "varying": ("varying", "h_vary")}
DIRECTED_REPEAT = 32
DIRECTED_CHUNK = 4
PROV = "P_"  # prefix of the provenance tables (see declarations)
TRAIL_MAX_ENODES = 20_000  # larger e-graphs are not serialized per step to name rules
# Handles of inserted terms ($t<n>, and $s<n>_<k> for their shared subterms) are numbered once
# per process, not per session: a pooled e-graph is reused through push/pop, and egglog can
# resolve a global whose name was bound in an earlier (popped) session to a stale binding, so
# that the inserted term silently differs from the one given. A name is never bound twice.
_HANDLE_NUMBERS = itertools.count(1)


class EngineError(TracegradError):
    """egglog stopped with an internal error (e.g. an ill-typed union from an unsound rule)."""

    kind = "engine"


# --------------------------------------------------------------------------------- dims ----
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


def _rat(v: Fraction) -> str:
    return f'(bigrat (from-string "{v.numerator}") (from-string "{v.denominator}"))'


def _str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ------------------------------------------------------------------------ declarations ----
def _signature(o) -> list[str]:
    if o.attr == "name":
        return ["String"] + [SORT] * o.arity
    if o.attr == "value":
        return ["BigRat"]
    if o.attr == "dims":
        return ["i64"] * (2 if o.name == "fill" else 1)
    return [SORT] * o.arity


def split_phase(rs: RuleSet, phase: str) -> tuple[list[str], list[str]]:
    """The rulesets of ``phase`` with rules, as (directed block, step).

    In a phase that has both, the rulesets made only of directed rules (like ``collect``) form a
    block run to a bounded fixpoint before each step of the others (:meth:`Program.run_commands`);
    otherwise every ruleset is in the step.

    >>> from rewrite.rules import load_text, stock_ruleset
    >>> split_phase(stock_ruleset(), "collect")
    ([], ['collect', 'jacobian'])
    >>> mine = load_text("ruleset mine in close\\nm : tr(A'*B) => sum(A .* B)\\n", "m", stock_ruleset())
    >>> split_phase(mine, "close")
    (['mine'], ['trace'])
    """
    names = [n for n in rs.rulesets_in(phase) if any(r.ruleset == n for r in rs.rules)]
    directed = [n for n in names if all(r.directed for r in rs.rules if r.ruleset == n)]
    if not directed or len(directed) == len(names):
        return [], names
    return directed, [n for n in names if n not in directed]


def helper_plan(rs: RuleSet, phases: Iterable[str] = PHASES,
                replacing: Iterable[str] = SUBSUMING_PHASES
                ) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """For each of ``phases``, the analyses (condition kinds of :data:`ANALYSES`) kept up to date
    by its directed block and by its step: those their rules test. An analysis catches up on
    what was added while it did not run (egglog matches a rule against everything added since
    that rule last ran), except on e-nodes replaced meanwhile: so a replacing (subsuming) phase
    keeps every analysis of the program up to date, or a class whose remaining e-nodes only
    form a cycle would never get the fact.

    >>> from rewrite.rules import stock_ruleset
    >>> plan = helper_plan(stock_ruleset(), ("expand", "collect", "close", "simplify"))
    >>> plan["collect"], plan["close"]  # collect and jacobian test free, trace varying
    (((), ('free',)), ((), ('varying',)))
    >>> plan["expand"], plan["simplify"]
    (((), ('const', 'free', 'varying')), ((), ()))
    """
    def kinds(names: list[str]) -> tuple[str, ...]:
        used = {c.kind for r in rs.rules if r.ruleset in names for c in r.conditions}
        return tuple(k for k in ANALYSES if k in used)

    plan = {ph: tuple(map(kinds, split_phase(rs, ph))) for ph in phases}
    every = {k for parts in plan.values() for part in parts for k in part}
    full = tuple(k for k in ANALYSES if k in every)
    return {ph: ((), full) if ph in replacing else parts for ph, parts in plan.items()}


def helpers_of(kinds: tuple[str, ...]) -> str:
    """The name of the combined helper ruleset: typing plus the analyses ``kinds``."""
    return "_".join(("helpers", *kinds))


def declarations(ruleset_names: list[str], analyses: set[str],
                 helpers: Iterable[tuple[str, ...]], provenance: bool = False) -> str:
    """The sort, its constructors, shape functions, the rules of the ``analyses`` and the
    combined helper rulesets ``helpers`` (each a tuple of analyses; :func:`helper_plan`).

    With ``provenance``, every constructor ``C`` gets a table ``P_C`` (same arguments, a
    ``String`` value, first write wins) naming the rule that created each e-node, and a helper
    ruleset ``origin`` marks the e-nodes of inserted terms as ``"input"``.
    """
    ctors = []
    for o in OPS.values():
        if o.name == "pvar":
            continue
        cost = {"grad": " :cost 1000000", "adj": " :cost 1000000", "d": " :cost 1000",
                "add": " :cost 2"}.get(o.name, "")
        ctors.append(f"({o.ctor} {' '.join(_signature(o))}{cost})")
    out = [f"(datatype {SORT} {' '.join(ctors)})",
           f"(function rows ({SORT}) i64 :no-merge)",
           f"(function cols ({SORT}) i64 :no-merge)",
           f"(function {SHARE} (i64) {SORT} :no-merge)",
           f"(relation isconst ({SORT}))",
           f"(relation varying ({SORT}))",
           f"(relation isfree ({SORT}))",
           # an inserted variable with its shape, constant or not (see Session.add)
           f"(relation constvar ({SORT} i64 i64))",
           f"(relation varyvar ({SORT} i64 i64))"]
    out.extend(f"(ruleset {name})" for name in (TYPING, *(ANALYSES[k][1] for k in analyses)))
    out.extend(f"(ruleset {rs_name(name)})" for name in ruleset_names)
    out.extend(_typing_rules())
    out.extend(_analysis_rules(analyses))
    for kinds in sorted(set(helpers)):
        parts = " ".join((TYPING, *(ANALYSES[k][1] for k in kinds)))
        out.append(f"(unstable-combined-ruleset {helpers_of(kinds)} {parts})")
    if provenance:
        out.append("(ruleset origin)")
        for o in OPS.values():
            if o.name == "pvar":
                continue
            out.append(f"(function {PROV}{o.ctor} ({' '.join(_signature(o))}) String "
                       ":merge old)")
            pat, args = _pattern_of(o)
            out.append(f"(rule ((= e {pat})) ((set ({PROV}{o.ctor} {' '.join(args)}) "
                       f"\"input\")) :ruleset origin :name \"~origin-{o.name}\")")
    return "\n".join(out)


def rs_name(name: str) -> str:
    return "rs_" + name.replace("-", "_")


def _pattern_of(o) -> tuple[str, list[str]]:
    if o.attr == "name":
        args = ["s"] + [f"a{i}" for i in range(o.arity)]
    elif o.attr == "value":
        args = ["v"]
    elif o.attr == "dims":
        args = ["n0", "n1"] if o.name == "fill" else ["n0"]
    else:
        args = [f"a{i}" for i in range(o.arity)]
    return f"({o.ctor} {' '.join(args)})", args


def _typing_rules() -> list[str]:
    out = []
    for o in OPS.values():
        if o.name in ("var", "pvar"):
            continue
        pat, _ = _pattern_of(o)
        facts, vals = [f"(= e {pat})"], []
        for which, spec in (("rows", o.rows), ("cols", o.cols)):
            k = spec[0]
            if k == "1":
                vals.append("1")
            elif k in ("r", "c"):
                v = f"{which}_{k}{spec[1]}"
                facts.append(f"(= {v} ({'rows' if k == 'r' else 'cols'} a{spec[1]}))")
                vals.append(v)
            elif k == "a":
                vals.append(f"n{spec[1]}")
            elif k == "rc":
                facts.append(f"(= {which}_rr (rows a{spec[1]})) (= {which}_cc (cols a{spec[1]}))")
                vals.append(f"(* {which}_rr {which}_cc)")
            elif k in ("rr", "cc"):  # product of one dimension of two arguments (kron)
                f = "rows" if k == "rr" else "cols"
                facts.append(f"(= {which}_x ({f} a{spec[1]})) (= {which}_y ({f} a{spec[2]}))")
                vals.append(f"(* {which}_x {which}_y)")
        out.append(f"(rule ({' '.join(facts)}) ((set (rows e) {vals[0]}) (set (cols e) {vals[1]})) "
                   f":ruleset {TYPING} :name \"~type-{o.name}\")")
    return out


def _analysis_rules(needed: set[str]) -> list[str]:
    """The rules of the analyses in ``needed`` (keys of :data:`ANALYSES`), and the unpacking of
    the inserted variables' facts (typing)."""
    out = []
    for o in OPS.values():
        if o.name in ("var", "pvar", "d", "grad", "adj"):
            continue
        pat, args = _pattern_of(o)
        margs = [a for a in args if a.startswith("a")]
        for kind in ("const", "free"):
            if kind in needed:
                rel, rs = ANALYSES[kind]
                facts = " ".join(f"({rel} {a})" for a in margs)
                out.append(f"(rule ((= e {pat}) {facts}) (({rel} e)) :ruleset {rs} "
                           f":name \"~{kind}-{o.name}\")")
        if "varying" in needed:
            for a in margs:
                out.append(f"(rule ((= e {pat}) (varying {a})) ((varying e)) "
                           f":ruleset {ANALYSES['varying'][1]} :name \"~vary-{o.name}-{a}\")")
    if "varying" in needed:
        out.append(f'(rule ((= e (D a))) ((varying e)) :ruleset {ANALYSES["varying"][1]} '
                   ':name "~vary-d")')
    for rel, extra in (("constvar", ("const", "free")), ("varyvar", ("free",))):
        facts = "".join(f" ({ANALYSES[k][0]} e)" for k in extra if k in needed)
        out.append(f"(rule (({rel} e r c)) ((set (rows e) r) (set (cols e) c){facts}) "
                   f':ruleset {TYPING} :name "~{rel}")')
    return out


# ----------------------------------------------------------------------------- terms ----
#: the table that binds an inserted term's shared subterms (a function, so never extracted)
SHARE = "share"
_SHARE_NUMBERS = itertools.count()


def term_sexpr(t: Term, codec: DimCodec) -> tuple[list[str], str]:
    """A ground term as egglog commands binding its shared subterms, and an expression.

    Terms are DAGs: a subterm used more than once is written once, set in the ``share`` table
    under a fresh number and referred to as ``(share k)``, so the text grows with the number of
    distinct subterms, not with the size of the tree. (Bound to egglog globals with ``let``,
    they made egglog 13.2 extract wrong terms from large inputs: a child replaced by another
    class of the input, e.g. ``B2'*B2'`` for ``A37'*B2'`` in a sum of 150+ products; a
    function table is not part of extraction.)

    >>> from rewrite.terms import make, var
    >>> x = make("t", var("x", (2, 1)))
    >>> binds, e = term_sexpr(make("add", x, x), DimCodec())
    >>> len(binds), e.count("(share ")
    (1, 2)
    """
    uses: dict[Term, int] = {}
    stack = [t]
    while stack:
        n = stack.pop()
        uses[n] = uses.get(n, 0) + 1
        if uses[n] == 1:
            stack.extend(n.args)
    binds: list[str] = []
    memo: dict[Term, str] = {}
    for n in post_order(t):  # arguments first: no recursion limit for deep terms
        o = OPS[n.op]
        if n.op == "var":
            out = f"(Var {_str(n.attr)})"
        elif n.op == "num":
            out = f"(Num {_rat(n.attr)})"
        elif o.attr == "dims":
            out = f"({o.ctor} {' '.join(str(codec.encode(d)) for d in n.attr)})"
        elif o.attr == "name":
            out = f"({o.ctor} {_str(n.attr)} {' '.join(memo[a] for a in n.args)})"
        elif n.op == "pvar":
            raise TracegradError("pattern variable in a ground term")
        else:
            out = f"({o.ctor} {' '.join(memo[a] for a in n.args)})"
        if n.args and uses[n] > 1:
            k = next(_SHARE_NUMBERS)
            binds.append(f"(set ({SHARE} {k}) {out})")
            out = f"({SHARE} {k})"
        memo[n] = out
    return binds, memo[t]


# ----------------------------------------------------------------------------- rules ----
def _keys(t: Term) -> list[tuple[tuple, object]]:
    """(key, dim) for every pattern-variable axis and dimension attribute, in a fixed order."""
    out: list[tuple[tuple, object]] = []

    def go(n: Term, path: tuple) -> None:
        if n.op == "pvar":
            out.append((("v", n.attr, 0), n.shape[0]))
            out.append((("v", n.attr, 1), n.shape[1]))
        if OPS[n.op].attr == "dims":
            for i, d in enumerate(n.attr):
                out.append((("a", path, i), d))
        for i, a in enumerate(n.args):
            go(a, (*path, i))

    go(t, ())
    return out


def _arith(expr: str, numvars: set[str]) -> str:
    """``{k - 1}`` → egglog BigRat arithmetic."""
    try:
        tree = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError:
        raise TracegradError(f"cannot read computed number {{{expr}}}") from None
    ops = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}

    def go(n) -> str:
        if isinstance(n, ast.BinOp) and type(n.op) in ops:
            return f"({ops[type(n.op)]} {go(n.left)} {go(n.right)})"
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return f"(neg {go(n.operand)})"
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)):
            return _rat(Fraction(str(n.value)))
        if isinstance(n, ast.Name) and n.id in numvars:
            return f"n_{n.id}"
        raise TracegradError(f"cannot compute {{{expr}}}")

    return go(tree)


@dataclass
class _Side:
    text: str
    term: Term  # typed jointly with the other side


class RuleCompiler:
    """Compiles a checked :class:`Rule` into egglog ``rewrite`` commands (one per direction)."""

    def __init__(self, rule: Rule, codec: DimCodec, subsume: bool,
                 provenance: bool = False) -> None:
        self.rule = rule
        self.codec = codec
        self.subsume = subsume
        self.provenance = provenance
        conds = rule.conditions
        self.numvars = {c.args[0] for c in conds if c.kind in ("num", "int", "cmp")}

    def commands(self) -> list[str]:
        r = self.rule
        self._reverse = False
        out = [self.direction(r.lhs, r.rhs, self._alone(r.lhs_text), r.name)]
        if not r.directed:
            self._reverse = True  # an equation is also compiled right to left
            out.append(self.direction(r.rhs, r.lhs, self._alone(r.rhs_text), r.name + "<-"))
        return out

    def _alone(self, text: str) -> Term:
        """The side ``text`` of the rule typed on its own (memoized on the rule)."""
        r = self.rule
        t = r.alone.get(text)
        if t is None:
            t = r.alone[text] = self._elaborate_alone(text)
        return t

    def _elaborate_alone(self, text: str) -> Term:
        r = self.rule
        conds = r.conditions
        el = Elaborator(None, r.function_names, rule_mode=True,
                        scalars=[c.args[0] for c in conds if c.kind in ("scalar", "num", "int", "cmp")],
                        vectors=[c.args[0] for c in conds if c.kind == "vector"],
                        squares=[c.args[0] for c in conds if c.kind == "square"])
        for key in r.computed:
            el.env[key] = (1, 1)
        for c in conds:
            if c.kind == "shape":
                v, m_, n_ = c.args
                el.env.setdefault(v, (el.u.fresh(), el.u.fresh()))
                el.u.unify(el.env[v][0], el.u.dim(m_))
                el.u.unify(el.env[v][1], el.u.dim(n_))
        return el.elaborate(text)

    def direction(self, pat: Term, tmpl: Term, alone: Term, name: str) -> str:
        joint_keys = _keys(pat)
        alone_keys = dict(_keys(alone))
        guards: list[str] = []
        binds: dict[object, str] = {}  # joint dim -> egglog i64 expression
        attr_vars: dict[tuple, str] = {}

        def dim_expr(key: tuple) -> str | None:
            if key[0] == "v":
                if key[1] in self.numvars:
                    return None
                return f"({'rows' if key[2] == 0 else 'cols'} v_{key[1]})"
            return attr_vars[key]

        for i, (key, _) in enumerate(k for k in joint_keys if k[0][0] == "a"):
            attr_vars[key] = f"dv{i}"
        # group keys by the dimension the joint typing requires
        groups: dict[object, list[tuple]] = {}
        for key, d in joint_keys:
            groups.setdefault(d if not isinstance(d, int) else ("int", d), []).append(key)
        for req, keys in groups.items():
            seen: dict[object, str] = {}
            for key in keys:
                e = dim_expr(key)
                if e is None:
                    continue
                implied = alone_keys.get(key)
                ik = implied if not isinstance(implied, int) else ("int", implied)
                if isinstance(req, tuple) and req[0] == "int" and ik != req:
                    guards.append(f"(= {e} {req[1]})")
                if ik not in seen:
                    if seen:
                        guards.append(f"(= {e} {next(iter(seen.values()))})")
                    seen[ik] = e
            if seen:
                binds[req] = next(iter(seen.values()))
        for c in self.rule.conditions:
            v = c.args[0]
            if c.kind == "scalar" and v not in self.numvars:
                guards += [f"(= (rows v_{v}) 1)", f"(= (cols v_{v}) 1)"]
            elif c.kind == "vector":
                guards.append(f"(= (cols v_{v}) 1)")
            elif c.kind == "square":
                guards.append(f"(= (rows v_{v}) (cols v_{v}))")
            elif c.kind == "const":
                guards.append(f"(isconst {self._var(v)})")
            elif c.kind == "free":
                guards.append(f"(isfree {self._var(v)})")
            elif c.kind == "varying":
                guards.append(f"(varying {self._var(v)})")
            elif c.kind == "int":
                guards.append(f"(= (denom n_{v}) (bigint 1))")
            elif c.kind == "cmp":
                op, lit = c.args[1], c.args[2]
                guards.append(f"({'=' if op == '==' else op} n_{v} {_rat(lit)})")
        lhs = self.sexpr(pat, binds, attr_vars, pattern=True)
        used: dict[str, str] = {}
        created: list[str] = []
        rhs = self.sexpr(tmpl, binds, attr_vars, pattern=False, used=used, nodes=created)
        guards += [f"(= {v} {e})" for e, v in used.items()]
        tail = f":ruleset {rs_name(self.rule.ruleset)} :name {_str(name)}"
        if self.provenance:
            # the same rewrite, spelled as a rule whose actions also name the e-nodes it builds
            acts = [f"(union __lhs {rhs})"] + ([f"(subsume {lhs})"] if self.subsume else [])
            acts += [f"(set ({PROV}{n[1:]} {_str(name)})" for n in created]
            return f"(rule ((= __lhs {lhs}) {' '.join(guards)}) ({' '.join(acts)}) {tail})"
        when = f" :when ({' '.join(guards)})" if guards else ""
        sub = " :subsume" if self.subsume else ""
        return f"(rewrite {lhs} {rhs}{when}{sub} {tail})"

    def _var(self, v: str) -> str:
        return f"(Num n_{v})" if v in self.numvars else f"v_{v}"

    def sexpr(self, t: Term, binds: dict, attr_vars: dict, pattern: bool,
              used: dict | None = None, nodes: list[str] | None = None) -> str:
        """``t`` as an egglog pattern or action; ``nodes`` collects its constructor calls."""
        def dim(d, key) -> str:
            if isinstance(d, int):
                return str(d)
            if pattern:
                return attr_vars[key]
            if d in binds:
                e = binds[d]
                if not e.startswith("("):
                    return e
                if e not in used:
                    used[e] = f"bd{len(used)}"
                return used[e]
            made, given = ("left", "right") if getattr(self, "_reverse", False) \
                else ("right", "left")
            raise TracegradError(f"rule {self.rule.name}: a dimension on the {made}-hand side is "
                                 f"not determined by the {given}-hand side"
                                 + (" (the equation read right to left)" if made == "left"
                                    else ""))

        def go(n: Term, path: tuple) -> str:
            o = OPS[n.op]
            if n.op == "pvar":
                if n.attr in self.rule.computed:
                    out = f"(Num {_arith(self.rule.computed[n.attr], self.numvars)})"
                    if nodes is not None:
                        nodes.append(out)
                    return out
                return self._var(n.attr)
            if n.op == "num":
                out = f"(Num {_rat(n.attr)})"
            elif o.attr == "dims":
                ds = [dim(d, ("a", path, i)) for i, d in enumerate(n.attr)]
                out = f"({o.ctor} {' '.join(ds)})"
            else:
                args = " ".join(go(a, (*path, i)) for i, a in enumerate(n.args))
                out = f"({o.ctor} {_str(n.attr)} {args})" if o.attr == "name" \
                    else f"({o.ctor} {args})"
            if nodes is not None:
                nodes.append(out)
            return out

        return go(t, ())


def is_involution(r: Rule) -> bool:
    """``f(f(A)) => A`` for a one-argument operator ``f``."""
    lhs, rhs = r.lhs, r.rhs
    return (rhs.op == "pvar" and len(lhs.args) == 1 and len(lhs.args[0].args) == 1
            and lhs.args[0].op == lhs.op and lhs.attr == lhs.args[0].attr
            and lhs.args[0].args[0] == rhs)


def compile_rules(rs: RuleSet, codec: DimCodec, provenance: bool = False,
                  replacing: Iterable[str] = SUBSUMING_PHASES) -> str:
    """The rules of ``rs`` as egglog commands; the directed rules of the ``replacing`` phases
    replace (subsume) what they match."""
    out = []
    for r in rs.rules:
        # An involution (A'' => A, inv(inv(A)) => A) only adds: had it replaced the outer node
        # of X''', that node is X' once X'' and X are merged, and X' would be gone.
        subsume = rs.phases[r.ruleset] in replacing and not is_involution(r)
        out.extend(RuleCompiler(r, codec, subsume, provenance).commands())
    return "\n".join(out)


# ----------------------------------------------------------------------------- runs ----
class Program:
    """Declarations and compiled rules for the ``phases`` of one RuleSet (default: all), parsed
    once and replayed per e-graph.

    A session's e-graph is a checkpoint of the loaded program, taken and restored per session;
    both cost time in proportion to the rules compiled, so a session that runs a few phases
    uses a program of just those (:meth:`rewrite.engine.Engine.program_for`).
    """

    def __init__(self, rs: RuleSet, provenance: bool = False,
                 phases: Iterable[str] = PHASES,
                 replacing: Iterable[str] = SUBSUMING_PHASES) -> None:
        self.phases = tuple(phases)
        self.replacing = tuple(replacing)
        rs = RuleSet([r for r in rs.rules if rs.phases[r.ruleset] in self.phases],
                     {n: ph for n, ph in rs.phases.items() if ph in self.phases},
                     rs.functions, rs.files, rs.templates)
        self.rs = rs
        self.provenance = provenance
        self.codec = DimCodec()
        names = list(rs.phases)
        self.helpers = helper_plan(rs, self.phases, self.replacing)
        combined = [kinds for block_step in self.helpers.values() for kinds in block_step]
        # every analysis a phase keeps up to date, and free after collect or close (Session.is_free)
        self.analyses = {k for kinds in combined for k in kinds}
        if {"collect", "close"} & set(self.phases):
            self.analyses.add("free")
        text = (declarations(names, self.analyses, combined, provenance) + "\n"
                + compile_rules(rs, self.codec, provenance, self.replacing))
        self.text = text
        probe = eg.EGraph()
        try:
            # One command per line, parsed line by line: a parsed command keeps the text it was
            # parsed from for its source span, so parsing the whole program at once kept a copy
            # of all of it per command (~220 MB for the derivation's rules, ~170 MB more once
            # loaded into an e-graph); now each keeps its own line.
            self.commands = [c for line in text.split("\n") if line.strip()
                             for c in probe.parse_program(line)]
        except eg.EggSmolError as e:  # pragma: no cover - a compiler bug, not user input
            raise EngineError(f"internal: rules failed to compile: {e}") from None
        self._run_cache: dict[str, list] = {}
        self._pool = threading.local()
        self._push = probe.parse_program("(push)")
        self._pop = probe.parse_program("(pop)")
        self._print_size = probe.parse_program("(print-size)")
        self._counted: dict[str, bool] = {}  # table name -> whether its rows are term e-nodes
        self._rule_base: dict[str, str | None] = {}  # egglog rule name -> counted name
        self._origin = probe.parse_program("(run origin 1)") if provenance else None
        # brings isfree up to date (the phase that ran last may not have kept it so)
        self._catch_up_free = probe.parse_program(
            f"(run-schedule (saturate (run {ANALYSES['free'][1]})))")

    def acquire(self):
        """An e-graph holding the declarations and rules, checkpointed with ``push``.

        Replaying the compiled program costs ~100 ms; restoring a checkpoint costs ~1 ms, so the
        main thread keeps a small pool of loaded e-graphs (egglog e-graphs are not shared across
        threads).
        """
        free = getattr(self._pool, "free", None)
        if free is None:
            free = self._pool.free = []
        if free:
            g = free.pop()
        else:
            g = eg.EGraph()
            g.run_program(*self.commands)
        g.run_program(*self._push)
        return g

    def release(self, g) -> None:
        """Restore the checkpoint of ``g`` and return it to this thread's pool."""
        g.run_program(*self._pop)
        self._pool.free.append(g)

    def run_commands(self, egraph, phase: str) -> tuple[tuple[list, list, int] | None, list]:
        """One iteration of ``phase`` as (directed block, step): shapes and analyses first (at the
        end of the block, when there is one), then the phase's rulesets.

        In a phase that also has equations, rulesets made only of directed rules (like
        ``collect``) are cheap and run to a bounded fixpoint (up to :data:`DIRECTED_REPEAT`
        rounds, :data:`DIRECTED_CHUNK` per call so that limits are checked in between) before
        each single step of the equational ones, so what they can conclude is never waiting
        behind the growth of the equational closure. The block (a chunk, a single round, and the
        number of directed rulesets in a round) is ``None`` otherwise.
        """
        if phase not in self._run_cache:
            if phase not in self.phases:
                raise EngineError(f"internal: phase {phase!r} is not compiled in this program "
                                  f"(phases: {', '.join(self.phases)})")
            directed, names = split_phase(self.rs, phase)
            block_kinds, step_kinds = self.helpers[phase]
            step_helpers = f"(saturate (run {helpers_of(step_kinds)}))"
            block = None
            if directed:
                helpers = f"(saturate (run {helpers_of(block_kinds)}))"
                runs = " ".join(f"(run {rs_name(n)})" for n in directed)
                block = (egraph.parse_program(
                    f"(run-schedule (repeat {DIRECTED_CHUNK} (seq {runs} {helpers})))"),
                    egraph.parse_program(f"(run-schedule (seq {runs} {helpers}))"), len(directed))
                if set(step_kinds) <= set(block_kinds):
                    # a block call always ends with its helpers saturated: nothing to catch up
                    step_helpers = ""
            step = " ".join(f"(run {rs_name(n)})" for n in names)
            self._run_cache[phase] = (block, egraph.parse_program(
                f"(run-schedule {step_helpers} (seq {step}))"))
        return self._run_cache[phase]


class Session:
    """One e-graph: insert terms, run phases under limits, extract."""

    def __init__(self, program: Program, limits: Limits, pooled: bool = True) -> None:
        self.p = program
        self.codec = program.codec
        self.limits = limits
        # egglog e-graphs must be dropped on the thread that made them; a pool living in a
        # worker thread's locals would be dropped elsewhere when the thread ends, so only the
        # main thread pools (other threads replay the program per session).
        self._discard = pooled  # the caller does not keep this e-graph after close()
        pooled = pooled and threading.current_thread() is threading.main_thread()
        if pooled:
            self.eg = program.acquire()
        else:
            self.eg = eg.EGraph()
            self.eg.run_program(*program.commands)
            self.eg.run_program(*program._push)
        self._pooled = pooled
        self._healthy = True
        self.matches: dict[str, int] = {}
        self.iterations = 0
        self.history: list[dict] = []
        self.phases: list[dict] = []
        self.t0 = time.perf_counter()
        self.rss0 = rss_mb()
        self.var_shapes: dict[str, tuple] = {}
        self._enodes: int | None = None  # the e-node count, while no call may have changed it
        # the derivation trail (provenance programs only): watched handles, extracted after
        # every iteration; a change of the extracted term is one step
        self.watched: dict[str, str] = {}
        self.trail: list[dict] = []
        self._last: dict[str, Term] = {}

    def reset(self) -> None:
        """Forget every inserted term and run (back to the loaded rules); counters are kept."""
        self._enodes = None
        self.eg.run_program(*self.p._pop)
        self.eg.run_program(*self.p._push)
        self.var_shapes = {}
        self.watched, self._last = {}, {}

    def close(self) -> None:
        """Give a pooled e-graph back, or drop a throwaway one now, on this thread (state
        discarded); an e-graph kept for inspection stays."""
        if self._pooled:
            self._pooled = False
            if self._healthy:
                self.p.release(self.eg)
        elif self._discard:
            self._discard = False
            self.eg = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, text: str):
        self._enodes = None
        try:
            return self.eg.run_program(*self.eg.parse_program(text))
        except BaseException as e:
            raise self._failure(e) from None

    def _failure(self, e: BaseException) -> BaseException:
        """The typed error for an exception raised by egglog (others are returned as they are).

        Symbolic dimensions are encoded as primes above 10⁶ (:class:`DimCodec`), so a shape
        that multiplies four of them (the vec of a Kronecker product of two n×m matrices)
        overflows egglog's 64-bit integers.
        """
        panic = type(e).__name__ == "PanicException"
        if not panic and not isinstance(e, eg.EggSmolError):
            return e
        first = str(e).splitlines()[0][:300]
        if "call of primitive * failed" in str(e):
            return UnsupportedError(
                "a dimension here is a product of more than three symbolic dimensions, beyond "
                "the engine's dimension encoding (64-bit); give some sizes as integers")
        if panic:
            self._healthy = False
            return EngineError(f"e-graph panic (an ill-typed union: is a rule unsound?): {first}")
        return EngineError(f"e-graph error: {first}")

    def add(self, t: Term, varying: set[str] = frozenset()) -> str:
        """Insert a term; returns the name of its e-class handle.

        Every variable is marked free of differentials, and constant unless it is in
        ``varying`` (the variable of differentiation), and gets its shape: from one
        ``constvar``/``varyvar`` fact, unpacked by the helper rules before the next step.
        """
        from .terms import var_shapes

        cmds = []
        for name, shape in var_shapes(t).items():
            if name in self.var_shapes:
                continue
            self.var_shapes[name] = shape
            # one fact per variable (a command costs more than the rule that unpacks it)
            cmds.append(f"({'varyvar' if name in varying else 'constvar'} (Var {_str(name)}) "
                        f"{self.codec.encode(shape[0])} {self.codec.encode(shape[1])})")
        n = next(_HANDLE_NUMBERS)
        handle = f"$t{n}"
        binds, expr = term_sexpr(t, self.codec)
        cmds += binds
        cmds.append(f"(let {handle} {expr})")
        self.run("\n".join(cmds))
        if self.p.provenance:  # every e-node without a provenance yet is one of the input's
            self._call(self.p._origin)
        return handle

    def watch(self, label: str, handle: str) -> None:
        """Record the extracted term of ``handle`` (as ``label``) whenever an iteration changes
        it (provenance programs only); the entries go to :attr:`trail`."""
        if not self.p.provenance:
            raise EngineError("internal: a derivation trail needs a provenance program")
        self.watched[label] = handle
        self._snapshot("input", 0, {}, self.size())

    def _snapshot(self, phase: str, iteration: int, fired: dict[str, int],
                  n_nodes: int) -> None:
        data = index = None  # the serialized e-graph, read once per iteration when needed
        for label, handle in self.watched.items():
            try:
                t = self.extract(handle)
            except EngineError:
                continue
            prev = self._last.get(label)
            if t == prev:
                continue
            self._last[label] = t
            if data is None and n_nodes <= TRAIL_MAX_ENODES:
                data = self.serialize()
                index = node_index(data)
            self.trail.append({"label": label, "phase": phase, "iteration": iteration,
                               "term": t, "fired": dict(fired),
                               "made_by": made_by(data, t, prev, index) if data else []})

    def size(self) -> int:
        """The number of term e-nodes (rows of the constructor tables)."""
        if self._enodes is None:
            try:
                out = self.eg.run_program(*self.p._print_size)
            except BaseException as e:
                raise self._failure(e) from None
            self._enodes = self._count(out[0].sizes)
        return self._enodes

    def _count(self, sizes) -> int:
        counted = self.p._counted
        n = 0
        for name, k in sizes:
            c = counted.get(name)
            if c is None:
                c = counted[name] = name[0].isupper() and not name.startswith(PROV)
            if c:
                n += k
        return n

    def eclasses(self) -> int:
        frozen = self.eg.freeze()
        outs = set()
        for name, fn in frozen.functions.items():
            if name in CTOR_TO_OP:
                outs.update(row.output for row in fn.rows)
        return len(outs)

    def saturate(self, phase: str, limits: Limits | None = None, stop_when=None) -> str:
        """Run ``phase`` one iteration at a time until it saturates, ``stop_when()`` holds or a
        limit is reached; returns the stop reason.

        Limits are checked after every egglog call: e-nodes, the session's wall-clock time
        (counted from its start, so one derivation has one budget), and memory growth.
        """
        lim = limits or self.limits
        block, step = self.p.run_commands(self.eg, phase)
        iters, n_nodes = 0, self.size()
        for _ in range(lim.iterations):
            traced = self.p.provenance
            before = dict(self.matches) if traced else {}
            if block is not None:
                rounds = 0
                while rounds < DIRECTED_REPEAT:
                    # whole chunks while far from the node limit, single rounds near it
                    chunk = n_nodes * 64 < lim.enodes
                    changed, n_nodes, settled = self._call(block[0] if chunk else block[1],
                                                           settle=block[2])
                    rounds += DIRECTED_CHUNK if chunk else 1
                    reason = self._over(lim, n_nodes)
                    if reason or not changed or settled:
                        break
                if reason:
                    break
            changed, n_nodes, _ = self._call(step)
            iters += 1
            entry = {"phase": phase, "iteration": iters, "enodes": n_nodes,
                     "seconds": time.perf_counter() - self.t0}
            if traced:  # also e-classes and the matches of each rule in this iteration
                fired = {k: v - before.get(k, 0) for k, v in self.matches.items()
                         if v > before.get(k, 0)}
                entry.update(eclasses=self.eclasses(), matches=fired)
                if self.watched:
                    self._snapshot(phase, iters, fired, n_nodes)
            self.history.append(entry)
            if not changed:
                reason = "saturated"
                break
            reason = self._over(lim, n_nodes)
            if reason:
                break
            if stop_when is not None and stop_when():
                reason = "saturated"
                break
        else:
            reason = "iteration-limit"
        self.iterations += iters
        self.phases.append({"phase": phase, "stop_reason": reason, "iterations": iters})
        return reason

    def _call(self, cmds, settle: int = 0) -> tuple[bool, int, bool]:
        """Run parsed commands and count matches per rule; returns ``(changed, enodes,
        settled)``: whether the e-graph changed, its e-node count (read in the same egglog call)
        and, with ``settle`` (the number of ruleset runs in a round of a repeated schedule),
        whether the last round changed nothing: its runs and the run before them report no change
        (a saturation's last, unchanged iteration is not reported, so the run before is the
        previous round's), i.e. the repetition reached its fixpoint and running it again would
        be a no-op.
        """
        self._enodes = None
        try:
            out = self.eg.run_program(*cmds, *self.p._print_size)
        except BaseException as e:
            raise self._failure(e) from None
        report = out[-2].report
        bases, matches = self.p._rule_base, self.matches
        for rname, n in report.num_matches_per_rule.items():
            base = bases.get(rname, 0)
            if base == 0:
                base = bases[rname] = None if rname.startswith("~") else \
                    rname[:-2] if rname.endswith("<-") else rname
            if base is not None:
                matches[base] = matches.get(base, 0) + n
        # each access to ``iterations`` converts every iteration's report: read it only when
        # ``updated`` does not settle the answer
        changed, settled = report.updated, False
        if not changed:
            last = report.iterations[-1:]
            changed = bool(last) and last[0].rule_set_report.changed
        elif settle:
            tail = report.iterations[-settle - 1:]
            settled = len(tail) == settle + 1 and not any(
                it.rule_set_report.changed for it in tail)
        self._enodes = self._count(out[-1].sizes)
        return changed, self._enodes, settled

    def _over(self, lim: Limits, n_nodes: int) -> str:
        """The limit reached with ``n_nodes`` e-nodes in the graph, or ``""``."""
        if n_nodes > lim.enodes:
            return "node-limit"
        if time.perf_counter() - self.t0 > lim.seconds:
            return "time-limit"
        if lim.memory_mb and rss_mb() - self.rss0 > lim.memory_mb:
            return "memory-limit"
        return ""

    def extract(self, handle: str) -> Term:
        n = self._enodes
        out = self.run(f"(extract {handle})")
        self._enodes = n  # extraction reads the e-graph only
        best = out[0]
        return self.to_term(best.termdag, best.term)

    def to_term(self, dag, tid) -> Term:
        memo: dict[int, Term] = {}

        def go(i: int) -> Term:
            if i in memo:
                return memo[i]
            node = dag.get(i)
            name = node.name
            if name == "Var":
                vname = _lit(dag.get(node.args[0]))
                t = Term("var", (), vname, self.var_shapes[vname])
            elif name == "Num":
                t = Term("num", (), _rat_value(dag, node.args[0]), (1, 1))
            else:
                op = CTOR_TO_OP[name]
                o = OPS[op]
                if o.attr == "dims":
                    dims = tuple(self.codec.decode(_lit(dag.get(a))) for a in node.args)
                    if op in ("ones", "fill") and all(d == 1 for d in dims):
                        t = Term("num", (), Fraction(1), (1, 1))  # a 1×1 block of ones is 1
                    else:
                        t = make(op, attr=dims)
                elif o.attr == "name":
                    t = make(op, *(go(a) for a in node.args[1:]), attr=_lit(dag.get(node.args[0])))
                else:
                    args = tuple(go(a) for a in node.args)
                    if op == "mul" and (args[0].shape == (1, 1) or args[1].shape == (1, 1)):
                        # the language's reading of '*' with a 1×1 side (rules match it as such)
                        op, args = "scale", (args if args[0].shape == (1, 1) else args[::-1])
                    elif op == "had" and args[0].shape == args[1].shape == (1, 1):
                        op = "scale"  # a 1×1 Hadamard product is a product (an adjoint seed's)
                    t = make(op, *args)
            memo[i] = t
            return t

        return go(tid)

    def is_free(self, handle: str) -> bool:
        """Whether the class of ``handle`` holds a term free of differentials (``isfree``)."""
        if "free" not in self.p.analyses:
            raise EngineError("internal: is_free needs a program with the collect or close phase")
        try:
            self.eg.run_program(*self.p._catch_up_free,
                                *self.eg.parse_program(f"(check (isfree {handle}))"))
            return True
        except eg.EggSmolError:
            return False

    def same_class(self, a: str, b: str) -> bool:
        try:
            self.eg.run_program(*self.eg.parse_program(f"(check (= {a} {b}))"))
            return True
        except eg.EggSmolError:
            return False

    def serialize(self) -> dict:
        """The e-graph as plain data (the one place that reads egglog's serialization).

        ``{"classes": {id: {"rows", "cols"}}, "nodes": {id: {"op", "label", "children",
        "eclass", "cost", "subsumed", "rule"}}}``: only term classes (sort ``M``); literal
        children (names, numbers, dimensions) are folded into the node's ``label``; ``rule``
        names the rule that created the e-node (``"input"`` for inserted terms) with a
        provenance program, and is ``None`` otherwise.
        """
        import json

        data = json.loads(self.eg.serialize([]).to_json())
        raw = data["nodes"]
        shapes: dict[str, dict] = {}
        leaf_value: dict[str, int] = {}  # an i64 class → its value (its childless node's op)
        for n in raw.values():
            if not n["children"] and n["eclass"] not in leaf_value:
                try:
                    leaf_value[n["eclass"]] = int(n["op"])
                except ValueError:
                    pass
        for n in raw.values():  # rows/cols function rows: children [class], output i64
            if n["op"] in ("rows", "cols") and n["children"]:
                child_cls = raw[n["children"][0]]["eclass"] if n["children"][0] in raw else None
                out = leaf_value.get(n.get("eclass", ""))
                if child_cls is not None and out is not None:
                    shapes.setdefault(child_cls, {})[n["op"]] = self.codec.decode(out)
        prov: dict[tuple, str] = {}  # (constructor, argument classes) -> rule name
        if self.p.provenance:
            literal = {n["eclass"]: n["op"] for n in raw.values() if not n["children"]}
            for n in raw.values():
                if n["op"].startswith(PROV) and n["eclass"] in literal:
                    key = (n["op"][len(PROV):], tuple(raw[c]["eclass"] for c in n["children"]))
                    prov[key] = _literal(literal[n["eclass"]])
        nodes, classes = {}, {}
        for nid, n in raw.items():
            if n["op"] not in CTOR_TO_OP or not n["eclass"].startswith(f"{SORT}-"):
                continue
            lits = [_literal(raw[c]["op"]) for c in n["children"] if not _is_term(raw.get(c))]
            if n["op"] in ("Eye", "Ones", "Fill"):
                lits = [str(self.codec.decode(int(x))) if str(x).lstrip("-").isdigit() else x
                        for x in lits]
            label = CTOR_TO_OP[n["op"]] + (f"({', '.join(map(str, lits))})" if lits else "")
            nodes[nid] = {"op": CTOR_TO_OP[n["op"]], "label": label,
                          "children": [raw[c]["eclass"] for c in n["children"]
                                       if _is_term(raw.get(c))],
                          "eclass": n["eclass"], "cost": float(n.get("cost", 1.0)),
                          "subsumed": bool(n.get("subsumed", False)),
                          "rule": prov.get((n["op"], tuple(raw[c]["eclass"]
                                                           for c in n["children"])))}
            sh = shapes.get(n["eclass"], {})
            classes[n["eclass"]] = {"rows": sh.get("rows"), "cols": sh.get("cols")}
        return {"classes": classes, "nodes": nodes}

    def report(self, reason: str) -> Report:
        return Report(reason, self.iterations, self.eclasses(), self.size(),
                      time.perf_counter() - self.t0, dict(self.matches), list(self.phases),
                      list(self.history))


def node_index(data: dict) -> dict[tuple, str]:
    """(label, child classes) → e-node id, for the nodes of ``data`` (see :func:`locate`)."""
    by_key: dict[tuple, str] = {}
    for nid, n in data["nodes"].items():
        by_key.setdefault((n["label"], tuple(n["children"])), nid)
    return by_key


def locate(data: dict, term: Term, index: dict[tuple, str] | None = None) -> dict[Term, str]:
    """Subterm of ``term`` → id of the e-node that spells it in ``data`` (from
    :meth:`Session.serialize`), matched bottom-up; subterms not found are left out.
    ``index`` is :func:`node_index` of ``data``, when the caller has it already.

    A 1×1 factor read back as ``scale`` may be a ``Scale`` or a ``Mul`` node (either order).
    """
    from .printing import fmt_number

    by_key = index if index is not None else node_index(data)
    found: dict[Term, str] = {}
    cls: dict[Term, str | None] = {}

    def label(t: Term) -> str:
        if t.op == "var":
            return f"var({t.attr})"
        if t.op == "num":
            return f"num({fmt_number(t.attr) if t.attr.denominator == 1 else t.attr})"
        if t.op == "fn":
            return f"fn({t.attr})"
        if isinstance(t.attr, tuple):
            return f"{t.op}({', '.join(map(str, t.attr))})"
        return t.op

    for t in post_order(term):
        kids = tuple(cls.get(a) for a in t.args)
        cls[t] = None
        if any(k is None for k in kids):
            continue
        keys = [(label(t), kids)]
        if t.op == "scale":
            keys += [("mul", kids), ("mul", kids[::-1])]
        for key in keys:
            nid = by_key.get(key)
            if nid is not None:
                found[t] = nid
                cls[t] = data["nodes"][nid]["eclass"]
                break
    return found


def made_by(data: dict, term: Term, prev: Term | None,
            index: dict[tuple, str] | None = None) -> list[str]:
    """The rules that created the e-nodes spelling ``term`` that ``prev`` does not use,
    outermost first (``"input"`` and unknown provenance left out)."""
    index = index if index is not None else node_index(data)
    old = set() if prev is None else set(locate(data, prev, index).values())
    where = locate(data, term, index)
    out: list[str] = []
    for t in _subterms(term):
        nid = where.get(t)
        if nid is None or nid in old:
            continue
        rule = data["nodes"][nid].get("rule")
        if rule and rule != "input" and rule not in out:
            out.append(rule)
    return out


def _subterms(t: Term) -> list[Term]:
    """Distinct subterms, outermost first (breadth first)."""
    out, seen, queue = [], {t}, deque([t])
    while queue:
        n = queue.popleft()
        out.append(n)
        for a in n.args:
            if a not in seen:
                seen.add(a)
                queue.append(a)
    return out


def _is_term(n) -> bool:
    return n is not None and n["eclass"].startswith(f"{SORT}-")


def _literal(op: str):
    """A serialized primitive: ``"X"`` → X, ``42`` → 42, a rational as p or p/q."""
    import re

    if op.startswith('"') and op.endswith('"'):
        return op[1:-1]
    m = re.search(r"numer: (-?\d+), denom: (\d+)", op)
    if m:
        return m.group(1) if m.group(2) == "1" else f"{m.group(1)}/{m.group(2)}"
    return op


def _lit(node):
    v = node.value
    return v.value if hasattr(v, "value") else v


def _rat_value(dag, tid) -> Fraction:
    node = dag.get(tid)  # (bigrat (from-string "p") (from-string "q"))
    p, q = (_lit(dag.get(dag.get(a).args[0])) for a in node.args)
    return Fraction(int(p), int(q))


__all__ = ["Program", "Session", "DimCodec", "EngineError", "LimitError", "CanonicalFormError"]
