"""Differential fuzzing over the whole language: random well-typed objectives (tests/fuzzgen.py:
every operator, trace/diag/sum of elementwise functions and Hadamard products, broadcast
scalars, 1×1 and vector X, constant blocks, nested transposes and inverses, scalar factors that
carry X; domains valid by construction) against central finite differences of the objective
as written.

Each example ends in one outcome: correct, WRONG, CRASH, rejected simplification, outside
domain, or typed error (kind) (see ``fuzzgen.check``). A shard fails on any WRONG, CRASH or
rejected simplification, listing the examples. A rejected simplification is a right answer
(the engine's numeric guard kept the unsimplified gradient) but proves a rule unsound, so it
fails like a wrong one. The whole run fails (conftest, at the end of the session, over the
outcomes of every shard and worker) when the budgets below are exceeded; the outcome counts,
and some examples behind a budget exceeded, are printed in the terminal summary.

CI runs the seeded ``ci`` profile (1,000 examples in 8 shards, the same examples every run);
``HYPOTHESIS_PROFILE=fuzz`` runs 50,000 random ones (``FUZZ_EXAMPLES`` overrides the count).
"""

import math
import re
import time
from collections import Counter

from conftest import FUZZ_EXAMPLES, PROFILE
from fuzzgen import CRASH, OUTSIDE, REJECTED, WRONG, check, objectives, typed
from hypothesis import HealthCheck, given, seed, settings

import rewrite as rw
from rewrite.terms import free_vars, post_order

# Budgets, as fractions of the examples run (calibrate here). WRONG, CRASH and rejected
# simplifications have none: one fails its shard.
MAX_CANONICAL_FORM = 0.0  # CanonicalFormError: the rules did not reach df = tr(G'*dX)
MAX_LIMIT = 0.02  # LimitError (a time, iteration or e-node limit)
MAX_OTHER_TYPED = 0.005  # any other typed error (shape, unsupported, domain, ...)
MAX_OUTSIDE_DOMAIN = 0.01  # finite differences not finite: the generator's domains failed
ZERO_TOLERANCE = (WRONG, CRASH, REJECTED)

SHARDS = 8  # the examples are split over shards so that pytest-xdist runs them in parallel


def budget_violations(counts: Counter) -> list[str]:
    """What the outcome counts of a run break: one line per budget exceeded."""
    total = sum(counts.values())
    if not total:
        return []
    limit, canonical = counts[typed("limit")], counts[typed("canonical-form")]
    other = sum(n for k, n in counts.items() if k.startswith("typed error")) - limit - canonical
    out = [f"{k} {counts[k]} > 0" for k in ZERO_TOLERANCE if counts[k]]
    for name, n, frac in (("canonical-form errors", canonical, MAX_CANONICAL_FORM),
                          ("limit errors", limit, MAX_LIMIT),
                          ("other typed errors", other, MAX_OTHER_TYPED),
                          ("outside domain", counts[OUTSIDE], MAX_OUTSIDE_DOMAIN)):
        allowed = math.floor(frac * total)
        if n > allowed:
            out.append(f"{name} {n} > {allowed} ({frac:.1%} of {total})")
    return out


def run_sample(n: int, seed_value: int | None, engine=None, limits=None) -> list:
    """The outcomes of ``n`` generated objectives (fixed by ``seed_value`` unless None)."""
    outcomes = []

    @settings(max_examples=n, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(case=objectives())
    def run(case):
        outcomes.append(check(*case, engine=engine, limits=limits))

    if seed_value is not None:
        run = seed(seed_value)(run)
    run()
    return outcomes


# every operator of the language (as typed terms: ``/`` and unary minus are ``scale``, a
# broadcast 1×1 operand is ``fill``, norm2sq is ``fro2``) and every elementwise function
LANGUAGE_OPS = {"add", "mul", "scale", "had", "hdiv", "t", "tr", "det", "logdet", "inv", "mpow", "epow",
                "epows", "fn", "sum", "norm2", "fro2", "eye", "ones", "fill", "diag", "diagv", "vec", "kron"}
FUNCTIONS = {"exp", "log", "sin", "cos", "tanh", "sigmoid", "softplus", "sqrt", "abs"}
ELEMENTWISE = {"fn", "had", "hdiv", "epow", "epows"}


def test_generator_is_well_typed_and_covers_the_language():
    cases = []

    @settings(max_examples=400, deadline=None, database=None)
    @given(case=objectives())
    def run(case):
        cases.append(case)

    seed(7)(run)()
    ops, functions, features = Counter(), Counter(), Counter()
    for text, shapes in cases:
        term = rw.parse(text, shapes).term  # raises on an ill-typed objective
        assert term.shape == (1, 1) and "X" in free_vars(term), text
        nodes = list(post_order(term))
        ops.update({n.op for n in nodes})
        functions.update({n.attr for n in nodes if n.op == "fn"})
        xr, xc = (tuple(shapes["X"]) + (1, 1))[:2]
        features["1×1 X"] += (xr, xc) == (1, 1)
        features["row X"] += xr == 1 < xc
        features["column X"] += xc == 1 < xr
        features["X several times"] += len(re.findall(r"\bX\b", text)) > 1
        features["tr/sum/diag of elementwise"] += any(
            n.op in ("tr", "sum", "diagv") and n.args[0].op in ELEMENTWISE for n in nodes)
        features["broadcast scalar"] += any(n.op == "scale" and n.args[1].op == "fill" for n in nodes)
        features["scalar factor with X"] += any(
            n.op == "scale" and "X" in free_vars(n.args[0]) and n.args[1].shape != (1, 1) for n in nodes)
        features["1×1 Hadamard or power"] += any(n.op in ELEMENTWISE and n.shape == (1, 1) for n in nodes)
    assert not LANGUAGE_OPS - set(ops), f"never generated: {LANGUAGE_OPS - set(ops)}"
    assert not FUNCTIONS - set(functions), f"never generated: {FUNCTIONS - set(functions)}"
    rare = {k: n for k, n in features.items() if n < len(cases) // 50}
    assert not rare and len(features) == 8, f"rarely generated (of {len(cases)}): {rare or dict(features)}"


def _shard(i: int):
    def test(record_property):
        start = time.perf_counter()
        outcomes = run_sample(-(-FUZZ_EXAMPLES // SHARDS), 1000 + i if PROFILE == "ci" else None)
        for o in outcomes:
            record_property("fuzz-outcome", o.kind)
        for o in [o for o in outcomes if o.kind.startswith("typed error") or o.kind == OUTSIDE][:5]:
            record_property("fuzz-example", str(o)[:300])
        record_property("fuzz-seconds", time.perf_counter() - start)
        counts = Counter(o.kind for o in outcomes)
        assert outcomes, "no example ran"
        bad = [o for o in outcomes if o.kind in ZERO_TOLERANCE]
        assert not bad, f"{len(bad)} of {len(outcomes)} examples failed ({dict(counts)}):\n" + \
            "\n".join(str(o) for o in bad[:20])

    test.__name__ = f"test_fuzz_gradient_is_correct_or_a_typed_error_{i}"
    return test


for _i in range(SHARDS):
    globals()[f"test_fuzz_gradient_is_correct_or_a_typed_error_{_i}"] = _shard(_i)
