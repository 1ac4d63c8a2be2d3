import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, settings

from rewrite.numeric import gradient_error

settings.register_profile("ci", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz-ci", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

FUZZ_OUTCOMES: Counter = Counter()


def pytest_terminal_summary(terminalreporter):
    if FUZZ_OUTCOMES:
        terminalreporter.write_line("fuzz outcomes: " + ", ".join(
            f"{k} {v}" for k, v in sorted(FUZZ_OUTCOMES.items())))

DATA = Path(__file__).parent / "data"


def public_cases():
    return json.loads((DATA / "public_cases.json").read_text())


def check_numerically(g, rng=None, spd=(), positive=(), signs=(), dims=None, tol=1e-6):
    """The gradient ``g`` matches central finite differences at a random point."""
    grad, fd, err = gradient_error(g, rng, set(spd), set(positive), set(signs), dims)
    assert grad.shape == fd.shape
    assert np.all(np.isfinite(fd)), "test point outside the domain"
    assert err < tol, f"relative error {err:.2e} for {g} of {g.f!r}"
    return err
