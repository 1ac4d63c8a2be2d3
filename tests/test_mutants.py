"""The differential fuzz check can fail: engines built from the stock rules with one rule broken
(mutants) are caught by the same generator and check (tests/fuzzgen.py, tests/test_fuzz.py) on
a fixed seeded sample, while the unmutated stock engine passes the zero-tolerance part of it.

A mutant is caught when some example is WRONG, CRASH or a rejected simplification (the engine's
numeric guard throwing away a simplification that changed the value is exactly how an unsound
simplify rule shows), or when it breaks a fuzz budget on examples the stock engine gets right
(a deleted rule shows as typed errors rather than wrong answers).
"""

from collections import Counter

import pytest
from fuzzgen import CORRECT
from test_fuzz import ZERO_TOLERANCE, budget_violations, run_sample

import rewrite as rw
from rewrite.rulefile import RuleSet, load_text
from rewrite.stock import stock_ruleset

SAMPLE = 100  # examples per engine
SEED = 20240


def replace_rule(name: str, lines: list[str]) -> RuleSet:
    """The stock rules with rule ``name`` replaced by ``lines`` (rule lines of its ruleset, read
    by the rule loader, so they are type-checked) at its place; no lines deletes it."""
    stock = stock_ruleset()
    index = next((i for i, r in enumerate(stock.rules) if r.name == name), None)
    assert index is not None, f"no stock rule named {name}"
    base = stock.copy()
    removed = base.rules.pop(index)
    if not lines:
        return base
    out = load_text(f"ruleset {removed.ruleset}\n" + "\n".join(lines) + "\n", "mutant.rules", base)
    new = out.rules[len(base.rules):]
    assert [r.name for r in new] == [ln.split(":")[0].strip() for ln in lines]
    out.rules = base.rules[:index] + new + base.rules[index:]
    return out


MUTANTS = {
    # the sign of the quotient rule's second term flipped
    "d-hdiv-sign": lambda: replace_rule("d-hdiv", [
        "d-hdiv : d(A ./ B) => d(A) ./ B + (A ./ (B .* B)) .* d(B)"]),
    # the transpose of a 1×1 operand negated: c' is c, and the rule only matches 1×1 operands.
    # (Generalising tidy-had-ones-r to drop any 1×1 factor, A .* b => A if scalar(b), is caught
    # as well, but it collapses e-classes: gigabytes and a minute for this sample.)
    "tidy-t-scalar-negated": lambda: replace_rule("tidy-t-scalar", [
        "tidy-t-scalar : c' => -c if scalar(c)"]),
    # a gradient-collection rule deleted: the adjoint of a 1×1 factor that carries X
    "collect-scale2-deleted": lambda: replace_rule("adj-scale2", []),
    # a simplify rule made unsound for 1×1 operands: a*a is a^2, not 2*a
    "s-sq-scalar-doubled": lambda: replace_rule("s-sq-scalar", ["s-sq-scalar : a*a => 2*a if scalar(a)"]),
}


@pytest.fixture(scope="module")
def control():
    return run_sample(SAMPLE, SEED)


def test_stock_engine_passes_the_sample(control):
    counts = Counter(o.kind for o in control)
    assert sum(counts.values()) == SAMPLE
    bad = [o for o in control if o.kind in ZERO_TOLERANCE]
    assert not bad, f"the stock engine fails the mutants' sample ({dict(counts)}):\n" + \
        "\n".join(str(o) for o in bad[:10])
    assert counts[CORRECT] >= SAMPLE // 2, f"too few examples derived to catch anything: {dict(counts)}"


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_fuzz_check_catches_mutant(mutant, control):
    engine = rw.Engine(MUTANTS[mutant]())
    outcomes = run_sample(SAMPLE, SEED, engine)
    counts = Counter(o.kind for o in outcomes)
    print(f"{mutant}: {dict(counts)}")
    flagged = [o for o in outcomes if o.kind in ZERO_TOLERANCE]
    right_before = {o.text for o in control if o.kind == CORRECT}
    regressed = [o for o in outcomes if o.kind != CORRECT and o.text in right_before]
    caught = bool(flagged) or bool(budget_violations(counts) and regressed)
    assert caught, f"mutant {mutant} passed the fuzz check: {dict(counts)}"
    assert [o.text for o in outcomes] == [o.text for o in control], "the sample is not fixed"


def test_the_mutation_command_catches_core_rules_broken(capsys):
    """The mutation command (``python tests/mutation.py`` runs it over every stock rule) on a
    fixed sample of differential and adjoint rules, each deleted and negated: all caught."""
    from mutation import main

    main(["--rules", "d-mul,d-inv,adj-tr,adj-had-l,adj-sum", "--sample", "30"])
    out = capsys.readouterr().out
    assert "10 mutants: 10 caught, 0 survived" in out, out
