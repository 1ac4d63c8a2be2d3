import atexit
import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

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

from rewrite.numeric import (  # noqa: E402
    concrete,
    evaluate,
    gradient_error,
    instantiate_dims,
    random_point,
    relative_error,
)
from rewrite.terms import make, var_shapes  # noqa: E402

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
FUZZ_COVERAGE: list[str] = []  # the construct coverage table of CI's sample (test_fuzz.py)


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
            elif key == "fuzz-coverage":
                FUZZ_COVERAGE.append(value)


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
    for table in FUZZ_COVERAGE:
        for line in table.splitlines():
            terminalreporter.write_line(line)
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


# -- answers checked by value ----------------------------------------------------------------
# A test that compares an answer's text with a golden string checks the same answer by value
# too: the result and its printed text (parsed back) against central finite differences, at
# random points with distinct (so non-square) sizes for the symbolic dimensions, shapes included.

def _golden(text: str, golden) -> None:
    if golden is not None:
        options = (golden,) if isinstance(golden, str) else tuple(golden)
        assert text in options, f"printed {text!r}, expected one of {options}"


def _registry(engine=None):
    import rewrite as rw

    return (engine or rw.default_engine()).functions


def check_answer(g, golden=None, seeds=(0, 1), spd=(), positive=(), signs=(), engine=None,
                 tol=1e-6):
    """A gradient ``g``: its printed text is ``golden`` (a string, or a tuple of accepted
    strings; not compared when None), and ``g`` and that text, parsed back with the objective's
    shapes (by ``engine`` when the text uses functions of a user rule file), both match central
    finite differences (:func:`check_numerically`, which checks the shape) at every seed."""
    import rewrite as rw

    text = str(g)
    _golden(text, golden)
    printed = (engine or rw.default_engine()).term(text, var_shapes(g.f))
    assert printed.shape == g.term.shape, f"{text!r} parses to {printed.shape}, not {g.term.shape}"
    probe = SimpleNamespace(f=g.f, term=printed, registry=g.registry, wrt=g.wrt)
    for seed in seeds:
        for which in (g, probe):
            check_numerically(which, np.random.default_rng(seed), spd, positive, signs, tol=tol)


def check_gradient_text(expr: str, wrt: str, shapes: dict, text: str, seed: int = 0,
                        fixed=None, tol=1e-6):
    """The gradient text ``text`` (printed by the CLI, the batch, ...) of ``expr`` in ``wrt``
    has the shape of ``wrt`` and matches central finite differences of ``expr`` at a random
    point (symbolic sizes distinct unless ``fixed``)."""
    import rewrite as rw

    f, g = rw.parse(expr, shapes).term, rw.parse(text, shapes).term
    rng = np.random.default_rng(seed)
    dims = instantiate_dims(make("add", f, make("sum", g)), rng, fixed=fixed)
    probe = SimpleNamespace(f=f, term=g, registry=_registry(), wrt=wrt)
    return check_numerically(probe, rng, dims=dims, tol=tol)


def _vec(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, 1, order="F")


def derivative_differences(d, env: dict, dims: dict, h: float = 1e-6) -> np.ndarray:
    """Central differences of what the second-order result ``d`` is the derivative of: of F in
    every entry of X for a Jacobian (columns in vec order), of the gradient G the same way for
    a Hessian, of G along the direction for an HVP (X's shape)."""
    target = d.of if d.kind == "jacobian" else d.gradient
    x0 = np.asarray(env[d.wrt], dtype=float)
    x0 = x0.reshape(concrete(var_shapes(d.of)[d.wrt], dims))

    def at(x: np.ndarray) -> np.ndarray:
        return _vec(evaluate(target, {**env, d.wrt: x}, d.registry, dims))

    if d.kind == "hvp":
        v = np.asarray(env[d.direction], dtype=float).reshape(x0.shape)
        return ((at(x0 + h * v) - at(x0 - h * v)) / (2 * h)).reshape(x0.shape, order="F")
    cols = []
    for j in range(x0.size):
        e = np.zeros(x0.size)
        e[j] = h
        e = e.reshape(x0.shape, order="F")
        cols.append((at(x0 + e) - at(x0 - e)) / (2 * h))
    return np.hstack(cols)


def check_derivative(d, golden=None, seeds=(0, 1), spd=(), positive=(), tol=1e-6):
    """A Jacobian, Hessian or HVP ``d`` (rw.jacobian/hessian/hvp): its printed text is
    ``golden`` (as for :func:`check_answer`); at each seed's random point, with distinct sizes
    for the symbolic dimensions, ``d`` and its printed text parsed back have the right shape
    (rows(F)·cols(F) × rows(X)·cols(X); N×N, N = rows(X)·cols(X); X's shape) and match central
    differences (:func:`derivative_differences`); and the gradient a Hessian or HVP
    differentiates matches central differences of the objective."""
    import rewrite as rw

    text = str(d)
    _golden(text, golden)
    shapes = var_shapes(d.of)
    x_shape = shapes[d.wrt]
    if d.direction is not None:
        shapes[d.direction] = x_shape
    printed = rw.parse(text, shapes).term
    assert printed.shape == d.term.shape, f"{text!r} parses to {printed.shape}, not {d.term.shape}"
    # one term holding every variable and dimension
    both = make("add", make("tr", make("mul", make("vec", d.of), make("t", make("vec", d.of)))),
                make("add", make("sum", d.term), make("sum", printed)))
    for seed in seeds:
        rng = np.random.default_rng(seed)
        dims = instantiate_dims(both, rng)
        (xr, xc), (fr, fc) = concrete(x_shape, dims), concrete(d.of.shape, dims)
        want = {"jacobian": (fr * fc, xr * xc), "hessian": (xr * xc, xr * xc),
                "hvp": (xr, xc)}[d.kind]
        env = random_point(both, rng, dims, spd=set(spd), positive=set(positive))
        fd = derivative_differences(d, env, dims)
        assert np.all(np.isfinite(fd)), "test point outside the domain"
        assert fd.shape == want
        for term in (d.term, printed):
            value = evaluate(term, env, d.registry, dims)
            assert value.shape == want, f"{d.kind} {text} is {value.shape} at {dims}, not {want}"
            err = relative_error(value, fd)
            assert err < tol, f"{d.kind} {text}: relative error {err:.2e} at {dims}"
        if d.kind != "jacobian":
            probe = SimpleNamespace(f=d.of, term=d.gradient, registry=d.registry, wrt=d.wrt)
            check_numerically(probe, np.random.default_rng(seed), spd, positive, dims=dims,
                              tol=tol)


def check_same_value(a, b, shapes: dict, seed: int = 0, spd=(), tol=1e-9, positive=()):
    """Expressions (text or rw.Expr) ``a`` and ``b`` have the same shape and value at a random
    point (symbolic sizes distinct; ``spd`` names symmetric positive definite matrices,
    ``positive`` entrywise positive ones), e.g. an input and its simplification."""
    import rewrite as rw

    ta = rw.parse(a, shapes).term if isinstance(a, str) else a.term
    tb = rw.parse(b, shapes).term if isinstance(b, str) else b.term
    assert ta.shape == tb.shape, (ta.shape, tb.shape)
    rng = np.random.default_rng(seed)
    both = make("add", make("sum", ta), make("sum", tb))
    dims = instantiate_dims(both, rng)
    env = random_point(both, rng, dims, spd=set(spd), positive=set(positive))
    va, vb = evaluate(ta, env, _registry(), dims), evaluate(tb, env, _registry(), dims)
    assert va.shape == vb.shape == concrete(ta.shape, dims)
    assert relative_error(va, vb) < tol, f"{a} and {b} differ at {dims}"
    return va, vb


def stop_server(proc) -> None:
    """Stop a server started as a subprocess: Ctrl-C, then kill if it does not exit in 20 s."""
    import signal
    import subprocess

    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

