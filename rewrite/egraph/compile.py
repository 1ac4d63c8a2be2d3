"""Rules to egglog: each checked :class:`~rewrite.rulefile.Rule` becomes one ``rewrite`` command
per direction, with guards for the shapes the joint typing of its sides requires and for its
side conditions; with provenance, a ``rule`` whose actions also name the e-nodes it builds.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from fractions import Fraction

from ..errors import TracegradError
from ..rulefile import SUBSUMING_PHASES, Rule, RuleSet, computed_tree, dimension_keys, numeric_vars, typed_alone
from ..terms import OPS, Term
from .encode import DimCodec, rat_literal, str_literal
from .schema import PROV, rs_name


def arith(expr: str, numvars: set[str]) -> str:
    """``{k - 1}`` → egglog BigRat arithmetic (checked by :func:`rewrite.rulefile.computed_tree`)."""
    ops = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}

    def go(n) -> str:
        if isinstance(n, ast.BinOp):
            return f"({ops[type(n.op)]} {go(n.left)} {go(n.right)})"
        if isinstance(n, ast.UnaryOp):
            return f"(neg {go(n.operand)})"
        if isinstance(n, ast.Constant):
            return rat_literal(Fraction(str(n.value)))
        return f"n_{n.id}"

    return go(computed_tree(expr, numvars))


class RuleCompiler:
    """Compiles a checked :class:`Rule` into egglog ``rewrite`` commands (one per direction)."""

    def __init__(self, rule: Rule, codec: DimCodec, subsume: bool,
                 provenance: bool = False) -> None:
        self.rule = rule
        self.codec = codec
        self.subsume = subsume
        self.provenance = provenance
        self.numvars = numeric_vars(rule)

    def commands(self) -> list[str]:
        r = self.rule
        self._reverse = False
        out = [self.direction(r.lhs, r.rhs, typed_alone(r, r.lhs_text), r.name)]
        if not r.directed:
            self._reverse = True  # an equation is also compiled right to left
            out.append(self.direction(r.rhs, r.lhs, typed_alone(r, r.rhs_text), r.name + "<-"))
        return out

    def direction(self, pat: Term, tmpl: Term, alone: Term, name: str) -> str:
        joint_keys = dimension_keys(pat)
        alone_keys = dict(dimension_keys(alone))
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
                guards.append(f"({'=' if op == '==' else op} n_{v} {rat_literal(lit)})")
        lhs = self.sexpr(pat, binds, attr_vars, pattern=True)
        used: dict[str, str] = {}
        created: list[str] = []
        rhs = self.sexpr(tmpl, binds, attr_vars, pattern=False, used=used, nodes=created)
        guards += [f"(= {v} {e})" for e, v in used.items()]
        tail = f":ruleset {rs_name(self.rule.ruleset)} :name {str_literal(name)}"
        if self.provenance:
            # the same rewrite, spelled as a rule whose actions also name the e-nodes it builds
            acts = [f"(union __lhs {rhs})"] + ([f"(subsume {lhs})"] if self.subsume else [])
            acts += [f"(set ({PROV}{n[1:]} {str_literal(name)})" for n in created]
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
                    out = f"(Num {arith(self.rule.computed[n.attr], self.numvars)})"
                    if nodes is not None:
                        nodes.append(out)
                    return out
                return self._var(n.attr)
            if n.op == "num":
                out = f"(Num {rat_literal(n.attr)})"
            elif o.attr == "dims":
                ds = [dim(d, ("a", path, i)) for i, d in enumerate(n.attr)]
                out = f"({o.ctor} {' '.join(ds)})"
            else:
                args = " ".join(go(a, (*path, i)) for i, a in enumerate(n.args))
                out = f"({o.ctor} {str_literal(n.attr)} {args})" if o.attr == "name" \
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
