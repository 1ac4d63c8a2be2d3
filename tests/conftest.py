import atexit
import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# The tests keep the on-disk cache of parsed rules (rewrite.cache) out of the user's home: one
# directory per run, shared by the xdist workers (they inherit the environment) and removed at
# the end. Set before rewrite is imported, which may read the cache.
if "TRACEGRAD_CACHE_DIR" not in os.environ:
    _CACHE = tempfile.mkdtemp(prefix="tracegrad-test-cache-")
    os.environ["TRACEGRAD_CACHE_DIR"] = _CACHE
    atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

from rewrite.numeric import gradient_error  # noqa: E402

# Profiles: ``ci`` (the default, what CI runs) is seeded and deterministic; ``fuzz`` is the long,
# random local run. The differential fuzzer (test_fuzz.py) reads its example count from
# FUZZ_EXAMPLES (1,000 for ci, 50,000 for fuzz; the environment variable of that name overrides
# it); other property tests use max_examples.
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or {"ci": 1000, "fuzz": 50_000}.get(PROFILE, 1000))

FUZZ_OUTCOMES: Counter = Counter()
FUZZ_SECONDS = [0.0]
FUZZ_VIOLATIONS: list[str] = []
FUZZ_ERROR_EXAMPLES: list[str] = []  # a few typed errors and outside-domain examples, per shard


def pytest_runtest_logreport(report):
    """Fuzz outcomes travel as user properties, so they add up across xdist workers too."""
    if report.when == "call":
        for key, value in report.user_properties:
            if key == "fuzz-outcome":
                FUZZ_OUTCOMES[value] += 1
            elif key == "fuzz-seconds":
                FUZZ_SECONDS[0] += value
            elif key == "fuzz-example":
                FUZZ_ERROR_EXAMPLES.append(value)


def pytest_sessionfinish(session):
    """The fuzz budgets (test_fuzz.py) hold over the outcomes of every shard: checked once, by
    the process that collects every report (the xdist controller, or the only process)."""
    if not FUZZ_OUTCOMES or hasattr(session.config, "workerinput"):
        return
    from test_fuzz import budget_violations

    FUZZ_VIOLATIONS[:] = budget_violations(FUZZ_OUTCOMES)
    if FUZZ_VIOLATIONS and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if FUZZ_OUTCOMES:
        total = sum(FUZZ_OUTCOMES.values())
        terminalreporter.write_line(f"fuzz outcomes ({total} examples, "
                                    f"{FUZZ_SECONDS[0] / total:.3f} s each): " + ", ".join(
                                        f"{k} {v}" for k, v in sorted(FUZZ_OUTCOMES.items())))
    for line in FUZZ_VIOLATIONS:
        terminalreporter.write_line(f"FAILED fuzz budget: {line}", red=True, bold=True)
    if FUZZ_VIOLATIONS:
        for line in FUZZ_ERROR_EXAMPLES[:12]:
            terminalreporter.write_line(f"  {line}")

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
