"""Differential fuzzing over the whole language: random well-typed objectives (depth up to 6,
random non-square shapes, domains respected by construction: log/sqrt of x.*x + 1, logdet and
inv of M'*M + eye, exp of a scaled argument) against central finite differences.

Outcomes are counted (correct / typed error / wrong; wrong must stay 0) and printed in the
terminal summary. CI runs the seeded ``ci`` profile (1,000 examples in 8 shards);
``HYPOTHESIS_PROFILE=fuzz`` runs 50,000 random ones.
"""

import re

import numpy as np
from conftest import FUZZ_EXAMPLES, PROFILE
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import rewrite as rw
from rewrite.numeric import gradient_error

EW = ["sin", "cos", "tanh", "sigmoid", "softplus"]


def x_leaves(r, c, x) -> list[str]:
    """r×c leaves that contain the variable, weighted; the plainest first."""
    name, xr, xc = x
    return ([name] * 4 if (r, c) == (xr, xc) else []) \
        + ([f"{name}'"] * 3 if (c, r) == (xr, xc) else []) \
        + ([f"(K{r}_{xr}*{name}*K{xc}_{c})"] * 2 if (r, c) != (xr, xc) else [])


@st.composite
def mat(draw, r, c, depth, x):
    """Text of an r×c expression; ``x`` is (name, rows, cols) of the variable."""
    leaves = [f"K{r}_{c}"] + x_leaves(r, c, x)
    if depth <= 0:
        return draw(st.sampled_from(leaves))
    sub = lambda rr, cc: draw(mat(rr, cc, depth - 1, x))  # noqa: E731
    kinds = ["leaf", "add", "sub", "mul", "t", "had", "scale", "fn", "log", "sqrt", "epow"]
    if r == c:
        kinds += ["inv", "pow", "diagm"]
    if c == 1:
        kinds += ["diagv"]
    kind = draw(st.sampled_from(kinds))
    k = draw(st.sampled_from([1, 2, 3]))
    if kind == "leaf":
        return draw(st.sampled_from(leaves))
    if kind == "add":
        return f"({sub(r, c)} + {sub(r, c)})"
    if kind == "sub":
        return f"({sub(r, c)} - {sub(r, c)})"
    if kind == "mul":
        return f"({sub(r, k)}*{sub(k, c)})"
    if kind == "t":
        return f"({sub(c, r)})'"
    if kind == "had":
        return f"({sub(r, c)} .* {sub(r, c)})"
    if kind == "scale":
        coef = draw(st.sampled_from(["2", "0.5", "-3", "tr(K2_2)", "s", f"sum({sub(r, c)})"]))
        return f"({coef}*{sub(r, c)})"
    if kind == "fn":
        return f"{draw(st.sampled_from(EW))}({sub(r, c)})"
    if kind == "log":
        a = sub(r, c)
        return f"log(({a}) .* ({a}) + 1)"
    if kind == "sqrt":
        a = sub(r, c)
        return f"sqrt(({a}) .* ({a}) + 1)"
    if kind == "epow":
        a = sub(r, c)
        return f"(({a}) .* ({a}) + 1).^{draw(st.sampled_from(['2', '0.5', '-1', '3']))}"
    if kind == "inv":
        m = sub(k + 1, r)
        return f"inv(({m})'*({m}) + eye({r}))"
    if kind == "pow":
        return f"({sub(r, r)})^{draw(st.sampled_from(['2', '3']))}"
    if kind == "diagm":
        return f"diag(diag({sub(r, r)}))"
    return f"(diag({sub(r, 1)})*{sub(r, 1)})"  # diag of a vector times a vector: r×1


@st.composite
def objective(draw):
    wrt = draw(st.sampled_from(["matrix", "matrix", "vector", "scalar"]))
    if wrt == "matrix":
        xr, xc = draw(st.sampled_from([(2, 3), (3, 2), (4, 3), (2, 4), (3, 3)]))
    elif wrt == "vector":
        xr, xc = draw(st.sampled_from([2, 3, 4])), 1
    else:
        xr, xc = 1, 1
    x = ("X", xr, xc)
    depth = draw(st.integers(1, 6))
    r, c = draw(st.sampled_from([(xr, xc), (xr, xc), (xr, xc), (2, 3), (3, 3), (3, 1)]))
    body = draw(mat(r, c, depth, x))
    if not re.search(r"\bX\b", body):  # every objective depends on X
        body = f"({body} + {x_leaves(r, c, x)[0]})"
    kind = draw(st.sampled_from(["tr", "sum", "fro2", "logdet", "quad", "norm2"]))
    if kind == "tr":
        text = f"tr(K{c}_{r}*{body})"
    elif kind == "sum":
        text = f"sum({body})"
    elif kind == "fro2":
        text = f"fro2({body})"
    elif kind == "logdet":
        text = f"logdet(({body})'*({body}) + eye({c}))"
    elif kind == "quad":
        text = f"u{r}'*{body}*v{c}"
    else:
        text = f"norm2(vec({body}) .* vec({body}) + 1)"
    shapes = {"X": (xr, xc), "s": (), f"u{r}": (r,), f"v{c}": (c,)}
    for a in range(1, 6):
        for b in range(1, 6):
            shapes[f"K{a}_{b}"] = (a, b)
    return text, shapes


SHARDS = 8  # the examples are split over shards so that pytest-xdist runs them in parallel
LIMITS = rw.Limits(seconds=4.0)  # a slow example ends as a typed LimitError, counted as such


def _check(case, record_property) -> None:
    text, shapes = case
    try:
        g = rw.gradient(text, "X", shapes, limits=LIMITS)
    except rw.TracegradError as e:
        record_property("fuzz-outcome", f"typed error ({e.kind})")
        return
    grad, fd, err = gradient_error(g, np.random.default_rng(0))
    if not np.all(np.isfinite(fd)):
        record_property("fuzz-outcome", "outside domain")
        return
    if err > 1e-5:
        record_property("fuzz-outcome", "WRONG")
        raise AssertionError(f"wrong gradient: {text} {shapes}: {g} (relative error {err:.2e})")
    # a simplification that changed the value was caught and not used: right, but a rule bug
    rejected = any(p["stop_reason"] == "rejected" for p in g.report.phases)
    record_property("fuzz-outcome", "correct (a simplification rejected)" if rejected
                    else "correct")


def _shard(i: int):
    test = settings(max_examples=-(-FUZZ_EXAMPLES // SHARDS), suppress_health_check=[
        HealthCheck.too_slow, HealthCheck.function_scoped_fixture])(given(case=objective())(_check))
    if PROFILE == "ci":
        test = seed(1000 + i)(test)  # CI draws the same examples every run
    test.__name__ = f"test_fuzz_gradient_is_correct_or_a_typed_error_{i}"
    return test


for _i in range(SHARDS):
    globals()[f"test_fuzz_gradient_is_correct_or_a_typed_error_{_i}"] = _shard(_i)
