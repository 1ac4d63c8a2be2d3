"""The e-graph's schema, generated from the operator table: one sort ``M`` whose constructors are
the operators of :data:`rewrite.terms.OPS`, the shape functions ``rows``/``cols`` with the typing
rules that fill them (without a merge, so an ill-typed union stops the run instead of passing
silently), the analyses (``isconst``, ``isfree``, ``varying``) that rule side conditions test,
and which of them each phase keeps up to date.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from ..rulefile import PHASES, SUBSUMING_PHASES, RuleSet
from ..terms import OPS

SORT = "M"
# Helper rulesets: typing (always) and one per analysis, each named after the side condition it
# serves. A phase's directed block and its step each run only the analyses their rules test
# (:func:`helper_plan`), with the typing rules, as one combined ruleset.
TYPING = "h_type"
ANALYSES = {"const": ("isconst", "h_const"), "free": ("isfree", "h_free"),
            "varying": ("varying", "h_vary")}
PROV = "P_"  # prefix of the provenance tables (see declarations)
#: the table that binds an inserted term's shared subterms (a function, so never extracted)
SHARE = "share"
#: a goal class (Session.add with ``goal``), and the goal classes found free of differentials
#: (by the ``free`` analysis, so the test rides along with the call that runs it)
GOAL, REACHED, GOAL_RULES = "goal", "reached", "h_goal"


def signature(o) -> list[str]:
    """The egglog argument sorts of an operator's constructor."""
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
    block run to a bounded fixpoint before each step of the others
    (:meth:`rewrite.egraph.program.Program.run_commands`); otherwise every ruleset is in the step.

    >>> from rewrite.rulefile import load_text
    >>> from rewrite.stock import stock_ruleset
    >>> split_phase(stock_ruleset(), "collect")
    ([], ['collect', 'jacobian'])
    >>> mine = load_text("ruleset mine in close\\nm : tr(A'*B) => sum(A .* B)\\n", "m", stock_ruleset())
    >>> split_phase(mine, "close")
    (['mine'], ['trace', 'identities'])
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

    >>> from rewrite.stock import stock_ruleset
    >>> plan = helper_plan(stock_ruleset(), ("expand", "collect", "close", "simplify"))
    >>> plan["collect"], plan["close"]  # collect and jacobian test free, close nothing
    (((), ('free',)), ((), ()))
    >>> plan["expand"], plan["simplify"]  # expand replaces: every analysis the program has
    (((), ('const', 'free')), ((), ()))
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
                 helpers: Iterable[tuple[str, ...]], provenance: bool = False,
                 ops: Collection[str] | None = None) -> str:
    """The sort, its constructors, shape functions, the rules of the ``analyses`` and the
    combined helper rulesets ``helpers`` (each a tuple of analyses; :func:`helper_plan`); the
    constructors, typing and analysis rules only for the operators ``ops`` when given (those
    that can occur; variables and numbers always).

    With ``provenance``, every constructor ``C`` gets a table ``P_C`` (same arguments, a
    ``String`` value, first write wins) naming the rule that created each e-node, and a helper
    ruleset ``origin`` marks the e-nodes of inserted terms as ``"input"``.
    """
    # a constructor is a table egglog copies with every checkpoint: only those that can occur
    declared = [o for o in OPS.values() if o.name != "pvar"
                and (ops is None or o.name in ops or o.name in ("var", "num"))]
    ctors = []
    for o in declared:
        cost = {"grad": " :cost 1000000", "adj": " :cost 1000000", "d": " :cost 1000",
                "add": " :cost 2"}.get(o.name, "")
        ctors.append(f"({o.ctor} {' '.join(signature(o))}{cost})")
    out = [f"(datatype {SORT} {' '.join(ctors)})",
           f"(function rows ({SORT}) i64 :no-merge)",
           f"(function cols ({SORT}) i64 :no-merge)",
           f"(function {SHARE} (i64) {SORT} :no-merge)",
           f"(relation isconst ({SORT}))",
           f"(relation varying ({SORT}))",
           f"(relation isfree ({SORT}))",
           # a class whose free-of-differentials term is sought, and whether it has one yet
           f"(relation {GOAL} ({SORT}))",
           f"(relation {REACHED} ({SORT}))",
           # an inserted variable with its shape, constant or not (see Session.add)
           f"(relation constvar ({SORT} i64 i64))",
           f"(relation varyvar ({SORT} i64 i64))"]
    out.extend(f"(ruleset {name})" for name in (TYPING, *(ANALYSES[k][1] for k in analyses)))
    if "free" in analyses:
        out.append(f"(ruleset {GOAL_RULES})")
    out.extend(f"(ruleset {rs_name(name)})" for name in ruleset_names)
    out.extend(typing_rules(ops))
    out.extend(analysis_rules(analyses, ops))
    for kinds in sorted(set(helpers)):
        parts = " ".join((TYPING, *(ANALYSES[k][1] for k in kinds)))
        out.append(f"(unstable-combined-ruleset {helpers_of(kinds)} {parts})")
    if provenance:
        out.append("(ruleset origin)")
        for o in declared:
            out.append(f"(function {PROV}{o.ctor} ({' '.join(signature(o))}) String "
                       ":merge old)")
            pat, args = pattern_of(o)
            out.append(f"(rule ((= e {pat})) ((set ({PROV}{o.ctor} {' '.join(args)}) "
                       f"\"input\")) :ruleset origin :name \"~origin-{o.name}\")")
    return "\n".join(out)


def rs_name(name: str) -> str:
    return "rs_" + name.replace("-", "_")


def pattern_of(o) -> tuple[str, list[str]]:
    if o.attr == "name":
        args = ["s"] + [f"a{i}" for i in range(o.arity)]
    elif o.attr == "value":
        args = ["v"]
    elif o.attr == "dims":
        args = ["n0", "n1"] if o.name == "fill" else ["n0"]
    else:
        args = [f"a{i}" for i in range(o.arity)]
    return f"({o.ctor} {' '.join(args)})", args


def typing_rules(ops: Collection[str] | None = None) -> list[str]:
    """The rules that set ``rows``/``cols`` of every e-node, for the operators ``ops`` (all
    when None)."""
    out = []
    for o in OPS.values():
        if o.name in ("var", "pvar") or (ops is not None and o.name not in ops):
            continue
        pat, _ = pattern_of(o)
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


def analysis_rules(needed: set[str], ops: Collection[str] | None = None) -> list[str]:
    """The rules of the analyses in ``needed`` (keys of :data:`ANALYSES`) for the operators
    ``ops`` (all when None), and the unpacking of the inserted variables' facts (typing)."""
    out = []
    for o in OPS.values():
        if o.name in ("var", "pvar", "d", "grad", "adj") or (ops is not None and o.name not in ops):
            continue
        pat, args = pattern_of(o)
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
    if "free" in needed:
        out.append(f'(rule (({GOAL} e) (isfree e)) (({REACHED} e)) :ruleset {GOAL_RULES} '
                   ':name "~goal")')
    for rel, extra in (("constvar", ("const", "free")), ("varyvar", ("free",))):
        facts = "".join(f" ({ANALYSES[k][0]} e)" for k in extra if k in needed)
        out.append(f"(rule (({rel} e r c)) ((set (rows e) r) (set (cols e) c){facts}) "
                   f':ruleset {TYPING} :name "~{rel}")')
    return out
