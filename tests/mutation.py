"""Rule mutation testing: break one stock rule at a time and require the fast checks to notice.

    python tests/mutation.py                         # every stock rule deleted, differential and
                                                     # collect rules also negated
    python tests/mutation.py --rulesets differential,collect --sample 60
    python tests/mutation.py --rules d-hdiv,adj-t    # just these rules

A mutant is *caught* when the targeted cases (the public gradient cases, the per-construct cases
of tests/test_completeness.py, its compact answers and its gradient through f(vec(X)) for each
elementwise function f, the compact answers of tests/test_gradients.py, the ML-language
gradients and compact answers of tests/test_ml_language.py, the gradients of
tests/test_rule_effects.py, and the Jacobians and compact second-order forms of
tests/test_second_order.py), the textbook identities that ``equivalent``
proves (tests/test_identities.py and the table of benchmarks/identities.py, with its near
misses; ``simplify(a - b)`` a zero for each of the former, the simplifications
tests/test_identities.py prints, and the printed results and identities of
tests/test_rule_effects.py) or a seeded fuzz sample (tests/fuzzgen.py) show it: an identity
no longer proved, a near miss proved, a wrong, crashed or rejected result on a case the stock
engine gets right, an answer printed otherwise than a test requires (the cases with a golden
text), or a typed error there (a deleted rule shows as a construct the engine can no longer
finish). Mutants:

* ``deleted``: the rule removed;
* ``negated`` (rules of the ``differential`` and ``collect`` rulesets): its right-hand side
  negated, ``lhs => -(rhs)``, which type-checks for every rule and is wrong unless the side is 0
  (a side that is 0, as the differentials of sign and step, ``0 .* d(A)``, is not negated: that
  mutant is the rule itself).

A survivor is a rule whose loss no check notices: either the rule is redundant (another rule
covers its cases: delete it and say in its file which rule covers them) or a test is missing
(for a rule that only makes results tidier, an entry of tests/test_rule_effects.py whose printed
result needs it). The command prints one line per mutant and the survivor count, and exits 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import public_cases  # noqa: E402
from fuzzgen import CORRECT  # noqa: E402
from test_completeness import CASES as CONSTRUCT_CASES  # noqa: E402
from test_completeness import COMPACT, VEC_FUNCTIONS  # noqa: E402
from test_fuzz import run_sample  # noqa: E402
from test_gradients import COMPACT_OUTPUT  # noqa: E402
from test_identities import IDENTITIES as TEST_IDENTITIES  # noqa: E402
from test_identities import SIMPLIFIED, VEC_IDENTITIES  # noqa: E402
from test_ml_language import ANSWERS as ML_ANSWERS  # noqa: E402
from test_ml_language import GRADIENTS as ML_GRADIENTS  # noqa: E402
from test_mutants import replace_rule  # noqa: E402
from test_rule_effects import GRADIENTS as EFFECT_GRADIENTS  # noqa: E402
from test_rule_effects import PROVED as EFFECT_PROVED  # noqa: E402
from test_rule_effects import SIMPLIFY as EFFECT_SIMPLIFY  # noqa: E402
from test_rule_effects import TIDY as EFFECT_TIDY  # noqa: E402
from test_rule_effects import tidied  # noqa: E402
from test_second_order import A_OPTIMAL, JACOBIANS  # noqa: E402

import rewrite as rw  # noqa: E402
from rewrite.algebra import is_zero  # noqa: E402
from rewrite.numeric import gradient_error  # noqa: E402
from rewrite.stock import stock_ruleset  # noqa: E402
from rewrite.verify import derivative_error  # noqa: E402

NEGATED_RULESETS = ("differential", "collect")
LIMITS = rw.Limits(seconds=3.0)


def mutants(names: list[str]) -> list[tuple[str, str, list[str]]]:
    """(rule, kind, replacement lines) for the rules ``names``."""
    out = []
    for r in stock_ruleset().rules:
        if r.name not in names:
            continue
        out.append((r.name, "deleted", []))
        if r.ruleset in NEGATED_RULESETS and r.directed:
            cond = r.text.split(" if ", 1)[1] if " if " in r.text else ""
            line = f"{r.name} : {r.lhs_text} => -({r.rhs_text})" + (f" if {cond}" if cond else "")
            rhs = r.rhs_text.replace(" ", "")
            zero = rhs.startswith(("(0).*", "0*"))  # -(0 .* dA) or -(0*X): the same rule
            if not r.computed and not zero:
                out.append((r.name, "negated", [line.split("#")[0]]))
    return out


def targeted_cases() -> list[dict]:
    """The targeted cases: id, expr, wrt and shapes of each."""
    cases = [dict(c, shapes={k: tuple(v) for k, v in c["shapes"].items()}) for c in public_cases()]
    cases += [{"id": f"construct {e} / {w}", "expr": e, "wrt": w, "shapes": s} for e, w, s in CONSTRUCT_CASES]
    cases += [{"id": f"ml {e} / {w}", "expr": e, "wrt": w, "shapes": s, "golden": gold}
              for e, w, s, gold in ML_GRADIENTS + COMPACT]
    cases += [{"id": f"vec-fn {e} / {w}", "expr": e, "wrt": w, "shapes": s, "golden": gold,
               "positive": pos} for e, w, s, gold, pos in VEC_FUNCTIONS]
    # the compact answers of ML objectives (tests/test_ml_language.py)
    cases += [{"id": f"ml answer {e} / {w}", "expr": e, "wrt": w, "shapes": s, "golden": gold}
              for e, w, s, gold in ML_ANSWERS]
    # tests/test_gradients.py's compact answers, with the value constraints that test uses
    cases += [{"id": f"compact {e} / {w}", "expr": e, "wrt": w, "shapes": s, "golden": gold,
               "spd": {"X"} if "det" in e else set(),
               "positive": {"M", "W", "H"} if "log(M" in e else set()} for e, w, s, gold in COMPACT_OUTPUT]
    # tests/test_rule_effects.py: gradients printed as a rule makes them
    cases += [{"id": f"{r}: {e} / {w}", "expr": e, "wrt": w, "shapes": s, "golden": gold}
              for r, e, w, s, gold in EFFECT_GRADIENTS]
    return cases


#: second-order answers whose printed form tests/test_second_order.py::test_compact_forms requires
SECOND_ORDER = [
    ("hessian", "x'*A*x", "x", {"x": ("n",), "A": ("n", "n")}, ("A' + A", "A + A'")),
    ("hessian", "tr(X'*A*X)", "X", {"X": ("n", "k"), "A": ("n", "n")},
     ("kron(eye(k), A' + A)", "kron(eye(k), A + A')")),
    ("hessian", "logdet(X)", "X", {"X": ("n", "n")}, ("-kront(inv(X), inv(X)')",)),
    ("hvp", "tr(X'*A*X)", "X", {"X": ("n", "k"), "A": ("n", "n")}, ("(A + A')*V", "(A' + A)*V")),
    ("hessian", "x'*A'*diag(b)*A*x", "x", {"x": ("n",), "A": ("m", "n"), "b": ("m",)}, ("2*A'*diag(b)*A",)),
    # the forms docs/cli.md shows (its examples run as tests) and test_vector_jacobian_is_m_by_n
    ("jacobian", "A*X*B", "X", {"A": ("m", "n"), "X": ("n", "p"), "B": ("p", "q")}, ("kron(B', A)",)),
    ("jacobian", "sigmoid(X*w)", "w", {"X": ("m", "n"), "w": ("n",)},
     ("diag((1 - sigmoid(X*w)) .* sigmoid(X*w))*X",)),
    ("hessian", "sum(softplus(X*w)) - y'*X*w", "w", {"X": ("m", "n"), "w": ("n",), "y": ("m",)},
     ("X'*diag((1 - sigmoid(X*w)) .* sigmoid(X*w))*X",)),
    ("hvp", "logdet(S)", "S", {"S": ("n", "n")}, ("-inv(S)'*V'*inv(S)'",)),
    ("hessian", "logdet(S) + x'*inv(S)*x", "S", {"S": ("n", "n"), "x": ("n",)},
     lambda text: "0*" not in text and text.count("kront(") == 3),
    ("jacobian", "sqrt(X)", "X", {"X": ("n", "p")}, ("0.5*diag(vec(1 ./ X.^(0.5)))",)),
    ("hessian", "sum(sqrt(X*w))", "w", {"X": ("m", "n"), "w": ("n",)}, ("-0.25*X'*diag(1 ./ (X*w).^(1.5))*X",)),
    ("hessian", "a'*diag(sqrt(x))*a", "x", {"a": ("n",), "x": ("n",)}, ("-0.25*diag(diag(a*a') ./ x.^(1.5))",)),
    ("hessian", "a'*diag(inv(S))", "S", {"a": ("n",), "S": ("n", "n")}, A_OPTIMAL),
]


def second_order_outcomes(engine: rw.Engine) -> list[str]:
    """One outcome per SECOND_ORDER case (correct, the printed form, or the typed error's kind),
    then one per Jacobian of tests/test_second_order.py (correct, WRONG against central
    differences, or the typed error's kind)."""
    import numpy as np

    out = []
    for expr, wrt, shapes, kw in JACOBIANS:
        try:
            j = engine.jacobian(expr, wrt, shapes, limits=LIMITS)
        except rw.TracegradError as e:
            out.append(f"typed {e.kind}")
            continue
        err = derivative_error(j, np.random.default_rng(0), **kw)[2]
        out.append("correct" if err <= 1e-5 else "WRONG")
    for kind, expr, wrt, shapes, goldens in SECOND_ORDER:
        try:
            text = str(getattr(engine, kind)(expr, wrt, shapes, limits=LIMITS))
        except rw.TracegradError as e:
            out.append(f"typed {e.kind}")
            continue
        ok = goldens(text) if callable(goldens) else text in goldens
        out.append("correct" if ok else f"printed {text!r}, not as the test requires")
    return out


def identity_cases() -> tuple[list[tuple], list[tuple]]:
    """(a, b, shapes) of the textbook identities that ``equivalent`` proves
    (tests/test_identities.py, tests/test_rule_effects.py and the table of
    benchmarks/identities.py), and of the near misses of that table (false identities)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.identities import IDENTITIES as TABLE
    from benchmarks.identities import NEAR_MISSES

    true = [(a, b, sh) for _, a, b, sh in TEST_IDENTITIES + VEC_IDENTITIES + EFFECT_PROVED]
    true += [(r["lhs"], r["rhs"], r["shapes"]) for r in TABLE]
    return true, [(r["lhs"], r["rhs"], r["shapes"]) for r in NEAR_MISSES]


def printed_cases() -> list[tuple[str, str, str, dict, str]]:
    """(label, how, expr, shapes, printed): the simplifications tests/test_identities.py and
    tests/test_rule_effects.py print (``how`` "simplify"), and what tidy alone leaves in the
    latter ("tidy")."""
    square = {"A": ("n", "n"), "B": ("n", "n")}
    return ([(f"simplify({e})", "simplify", e, square, p) for e, p in SIMPLIFIED]
            + [(f"{r}: simplify({e})", "simplify", e, sh, p) for r, e, sh, p in EFFECT_SIMPLIFY]
            + [(f"{r}: tidy({e})", "tidy", e, sh, p) for r, e, sh, p in EFFECT_TIDY])


def identity_labels() -> list[str]:
    """What each outcome of :func:`identity_outcomes` is about."""
    true, false = identity_cases()
    return ([f"identity {a} = {b}" for a, b, _ in true] + [f"near miss {a} = {b}" for a, b, _ in false]
            + [f"simplify(({a}) - ({b}))" for _, a, b, _ in TEST_IDENTITIES]
            + [label for label, *_ in printed_cases()])


def identity_outcomes(engine: rw.Engine) -> list[str]:
    """One outcome per identity of :func:`identity_cases` (proved or not), one per near miss
    (a proof of one is a FALSE CLAIM), one per identity of tests/test_identities.py whether
    ``simplify(a - b)`` is a zero, and one per printed result of :func:`printed_cases`."""
    true, false = identity_cases()
    out = []
    for cases, claim in ((true, "proved"), (false, "FALSE CLAIM")):
        for a, b, shapes in cases:
            try:
                out.append(claim if engine.equivalent(a, b, shapes) else "not proved")
            except rw.TracegradError as e:
                out.append(f"typed {e.kind}")
    for _, a, b, shapes in TEST_IDENTITIES:
        try:
            out.append("zero" if is_zero(engine.simplify(f"({a}) - ({b})", shapes).term) else "not zero")
        except rw.TracegradError as e:
            out.append(f"typed {e.kind}")
    for _, how, expr, shapes, printed in printed_cases():
        try:
            got = str(engine.simplify(expr, shapes)) if how == "simplify" else tidied(engine, expr, shapes)
            out.append("as printed" if got == printed else f"printed {got!r}, not {printed!r}")
        except rw.TracegradError as e:
            out.append(f"typed {e.kind}")
    return out


def public_outcomes(engine: rw.Engine) -> list[str]:
    """One outcome per targeted case: correct, WRONG or the typed error's kind."""
    import numpy as np

    out = []
    for c in targeted_cases():
        try:
            g = engine.gradient(c["expr"], c["wrt"], c["shapes"], limits=LIMITS)
        except rw.TracegradError as e:
            out.append(f"typed {e.kind}")
            continue
        except Exception as e:  # noqa: BLE001 - a crash is a finding
            out.append(f"CRASH {type(e).__name__}")
            continue
        err = gradient_error(g, np.random.default_rng(0), spd=c.get("spd", set()),
                             positive=c.get("positive", set()))[2]
        goldens = (c["golden"],) if isinstance(c.get("golden"), str) else c.get("golden")
        if not err <= 1e-6:
            out.append("WRONG")
        elif goldens and str(g) not in goldens:
            out.append(f"printed {str(g)!r}, not the tested {c['golden']!r}")
        else:
            out.append("correct")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rules", help="comma-separated rule names (default: every stock rule)")
    p.add_argument("--rulesets", help="comma-separated rulesets (default: all)")
    p.add_argument("--sample", type=int, default=60, help="fuzz examples per mutant (default 60)")
    p.add_argument("--seed", type=int, default=31337)
    args = p.parse_args(argv)
    stock = stock_ruleset()
    names = [r.name for r in stock.rules
             if (not args.rules or r.name in args.rules.split(","))
             and (not args.rulesets or r.ruleset in args.rulesets.split(","))]
    base_public = public_outcomes(rw.Engine(stock))
    base_second = second_order_outcomes(rw.Engine(stock))
    base_fuzz = run_sample(args.sample, args.seed, rw.Engine(stock), LIMITS)
    base_ids = identity_outcomes(rw.Engine(stock))
    id_labels = identity_labels()
    survivors: list[str] = []
    counts: Counter = Counter()
    for name, kind, lines in mutants(names):
        start = time.perf_counter()
        try:
            engine = rw.Engine(replace_rule(name, lines))
        except rw.TracegradError as e:
            print(f"{name:18s} {kind:8s} not built: {e}")
            continue
        pub = public_outcomes(engine)
        where = [f"{c['id']}: {o}" for c, o, b in zip(targeted_cases(), pub, base_public, strict=True)
                 if b == "correct" and o != "correct"]
        if not where:
            labels = [f"jacobian {j[0]}" for j in JACOBIANS] + [f"{c[0]} {c[1]}" for c in SECOND_ORDER]
            where = [f"{label}: {o}" for label, o, b
                     in zip(labels, second_order_outcomes(engine), base_second, strict=True)
                     if b == "correct" and o != "correct"]
        if not where:  # an identity no longer proved, or a near miss proved
            now = identity_outcomes(engine)
            where = [f"{label}: {o}" for label, o, b in zip(id_labels, now, base_ids, strict=True)
                     if o != b and (b in ("proved", "zero", "as printed") or o == "FALSE CLAIM")]
        if not where:
            fuzz = run_sample(args.sample, args.seed, engine, LIMITS)
            where = [f"fuzz: {o.kind}: {o.text[:60]}" for o, b in zip(fuzz, base_fuzz, strict=True)
                     if b.kind == CORRECT and o.kind != CORRECT]
        caught = bool(where)
        counts["caught" if caught else "survived"] += 1
        if not caught:
            survivors.append(f"{name} ({kind})")
        print(f"{name:18s} {kind:8s} {'caught' if caught else 'SURVIVED':8s} "
              f"{time.perf_counter() - start:5.1f} s  {where[0] if where else ''}", flush=True)
    print(f"{sum(counts.values())} mutants: {counts['caught']} caught, {counts['survived']} survived")
    if survivors:
        print("survivors: " + ", ".join(survivors))
    return 0


if __name__ == "__main__":
    sys.exit(main())
