"""Property tests: random well-typed expressions on random non-square shapes.

The gradient matches central finite differences, or a typed error is raised; printing then
parsing preserves meaning. Every objective contains X; a typed error tests nothing: each test
counts its outcomes and fails when more than MAX_VACUOUS of its examples were vacuous.
"""

from collections import Counter

import numpy as np
from fuzzgen import CORRECT, CRASH, REJECTED, WRONG, check, has_x
from hypothesis import given
from hypothesis import strategies as st

import rewrite as rw
from rewrite.numeric import evaluate, instantiate_dims, random_point

MAX_VACUOUS = 0.25  # fraction of examples that may end in a typed error

FUNCS = ["sin", "cos", "tanh", "sigmoid", "softplus"]


@st.composite
def matrix_expr(draw, shape, depth, xshape):
    r, c = shape
    leaves = [f"C{r}{c}"] + (["X"] * 3 if shape == xshape else [])
    if depth <= 0:
        return draw(st.sampled_from(leaves))
    kind = draw(st.sampled_from(["leaf", "add", "sub", "mul", "t", "had", "scale", "fn", "mul"]))
    sub = lambda s: draw(matrix_expr(s, depth - 1, xshape))  # noqa: E731
    if kind == "leaf":
        return draw(st.sampled_from(leaves))
    if kind == "add":
        return f"({sub(shape)} + {sub(shape)})"
    if kind == "sub":
        return f"({sub(shape)} - {sub(shape)})"
    if kind == "mul":
        k = draw(st.sampled_from([2, 3, 4]))
        return f"({sub((r, k))}*{sub((k, c))})"
    if kind == "t":
        return f"({sub((c, r))})'"
    if kind == "had":
        return f"({sub(shape)} .* {sub(shape)})"
    if kind == "scale":
        coef = draw(st.sampled_from(["2", "0.5", "-3", "tr(C22)"]))
        return f"({coef}*{sub(shape)})"
    return f"{draw(st.sampled_from(FUNCS))}({sub(shape)})"


@st.composite
def objective(draw):
    """(text, shapes) of a random 1×1 expression in which X occurs; X has shape m×n, constants
    C{r}{c} are r×c, vectors a{m}, b{n}."""
    m, n = draw(st.sampled_from([(2, 3), (3, 2), (4, 3), (2, 4)]))
    xshape = (m, n)
    depth = draw(st.integers(1, 3))
    body = draw(matrix_expr(xshape, depth, xshape))
    if not has_x(body):
        body = f"({body} + X)"
    kind = draw(st.sampled_from(["tr", "sum", "fro2", "bilinear"]))
    if kind == "tr":
        k = draw(st.sampled_from([2, 3]))
        text = f"tr(C{k}{m}*{body}*C{n}{k})"
    elif kind == "sum":
        text = f"sum({body})"
    elif kind == "fro2":
        text = f"fro2({body})"
    else:
        text = f"a{m}'*{body}*b{n}"
    shapes = {"X": xshape, f"a{m}": (m,), f"b{n}": (n,), "C22": (2, 2)}
    for k in (2, 3, 4):
        for r, c in ((m, k), (k, n), (k, m), (n, k), (k, k), (n, m)):
            shapes[f"C{r}{c}"] = (r, c)
    return text, shapes


def assert_not_vacuous(counts: Counter, useful: str) -> None:
    total = sum(counts.values())
    vacuous = total - counts[useful]
    assert total, "no example ran"
    assert vacuous <= MAX_VACUOUS * total, \
        f"{vacuous} of {total} examples tested nothing (more than {MAX_VACUOUS:.0%}): {dict(counts)}"


def test_random_gradient_is_correct_or_typed_error():
    counts: Counter = Counter()

    @given(objective())
    def run(case):
        text, shapes = case  # objective() always puts X in
        outcome = check(text, shapes)
        counts[outcome.kind] += 1
        # wrong, a crash, or a simplification the engine caught changing the value: raised here,
        # so that hypothesis shrinks the example
        assert outcome.kind not in (WRONG, CRASH, REJECTED), str(outcome)

    run()
    assert_not_vacuous(counts, CORRECT)


@given(objective())
def test_print_then_parse_preserves_meaning(case):
    text, shapes = case
    e = rw.parse(text, shapes)
    again = rw.parse(str(e), shapes)
    rng = np.random.default_rng(1)
    env = random_point(e.term, rng, instantiate_dims(e.term, rng))
    np.testing.assert_allclose(evaluate(again.term, env), evaluate(e.term, env),
                               rtol=1e-10, atol=1e-12)


def test_generated_numpy_code_agrees_and_leaves_inputs_alone():
    """Generated code (which overwrites temporaries it no longer needs) computes f and the
    gradient the interpreter computes, and never writes into the caller's arrays."""
    counts: Counter = Counter()

    @given(objective())
    def run(case):
        text, shapes = case  # objective() always puts X in
        try:
            g = rw.gradient(text, "X", shapes)
        except rw.TracegradError as e:
            counts[f"typed error ({e.kind})"] += 1
            return
        mod = rw.codegen.load(rw.codegen(g, "numpy"))
        rng = np.random.default_rng(2)
        env = random_point(g.f, rng, instantiate_dims(g.f, rng))
        before = {k: v.copy() for k, v in env.items()}
        f, grad = mod.f_and_grad(**env)
        for k, v in env.items():
            np.testing.assert_array_equal(v, before[k], err_msg=f"generated code wrote into {k}")
        np.testing.assert_allclose(f, evaluate(g.f, env, g.registry)[0, 0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(grad, evaluate(g.term, env, g.registry), rtol=1e-8, atol=1e-10)
        counts["compared"] += 1

    run()
    assert_not_vacuous(counts, "compared")
