import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from rewrite.numeric import (
    evaluate,
    finite_difference,
    instantiate_dims,
    random_point,
    relative_error,
)

settings.register_profile("ci", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")

DATA = Path(__file__).parent / "data"


def public_cases():
    return json.loads((DATA / "public_cases.json").read_text())


def check_numerically(g, rng=None, spd=(), positive=(), signs=(), dims=None, tol=1e-6):
    """The gradient ``g`` matches central finite differences at a random point."""
    rng = rng or np.random.default_rng(0)
    dims = dims or instantiate_dims(g.f, rng)
    env = random_point(g.f, rng, dims, spd=set(spd), positive=set(positive), signs=set(signs))
    grad = evaluate(g.term, env, g.registry, dims)
    fd = finite_difference(g.f, g.wrt, env, g.registry, dims)
    assert grad.shape == fd.shape
    assert np.all(np.isfinite(fd)), "test point outside the domain"
    err = relative_error(grad, fd)
    assert err < tol, f"relative error {err:.2e} for {g} of {g.f!r}"
    return err


@pytest.fixture
def check():
    return check_numerically
