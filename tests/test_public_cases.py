"""Every public case: the gradient matches central finite differences (relative error < 1e-6)."""

import numpy as np
import pytest
from conftest import check_numerically, public_cases

import rewrite as rw
from rewrite.numeric import constraints_from_assumptions

CASES = public_cases()


def assumptions(case):
    return constraints_from_assumptions(case.get("assume", []))


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_public_case_matches_finite_differences(case):
    g = rw.gradient(case["expr"], case["wrt"], case["shapes"])
    assert g.shape == rw.parse(case["wrt"], case["shapes"]).shape
    spd, pos, signs = assumptions(case)
    for seed in (1, 2):
        check_numerically(g, np.random.default_rng(seed), spd, pos, signs)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_public_case_agrees_with_reference_formula(case):
    """The engine's gradient equals the case's stated gradient at random points."""
    from rewrite.numeric import evaluate, instantiate_dims, random_point

    g = rw.gradient(case["expr"], case["wrt"], case["shapes"])
    ref = rw.parse(case["gradient"], case["shapes"]).term
    spd, pos, signs = assumptions(case)
    rng = np.random.default_rng(7)
    dims = instantiate_dims(g.f, rng)
    env = random_point(g.f, rng, dims, spd=spd, positive=pos, signs=signs)
    np.testing.assert_allclose(evaluate(g.term, env, dims=dims), evaluate(ref, env, dims=dims),
                               rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_printed_gradient_reparses_to_same_meaning(case):
    from rewrite.numeric import evaluate, instantiate_dims, random_point

    g = rw.gradient(case["expr"], case["wrt"], case["shapes"])
    again = rw.parse(str(g), case["shapes"]).term
    rng = np.random.default_rng(3)
    spd, pos, signs = assumptions(case)
    dims = instantiate_dims(g.f, rng)
    env = random_point(g.f, rng, dims, spd=spd, positive=pos, signs=signs)
    np.testing.assert_allclose(evaluate(again, env, dims=dims), evaluate(g.term, env, dims=dims),
                               rtol=1e-10, atol=1e-12)
