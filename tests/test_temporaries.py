"""Named temporaries (``where``): the named form has the value of the plain one, its text is valid
input, and the gradient of a deep network prints in size linear in its depth."""

import json

import numpy as np
import pytest
from conftest import public_cases

import rewrite as rw
from rewrite.cli import main
from rewrite.numeric import constraints_from_assumptions, evaluate, instantiate_dims, random_point
from rewrite.stock import default_registry
from rewrite.temporaries import parse_where, substitute
from rewrite.terms import free_vars

CASES = public_cases()
FUNCTIONS = default_registry().names()


def mlp(depth: int, widths: bool = False) -> tuple[str, dict]:
    """sum(tanh(WL*…tanh(W1*x))); with ``widths`` every layer has its own width (non-square)."""
    e = "x"
    for i in range(1, depth + 1):
        e = f"tanh(W{i}*{e})"
    dim = (lambda i: f"n{i}") if widths else (lambda i: "n")
    shapes = {"x": (dim(0),), **{f"W{i}": (dim(i), dim(i - 1)) for i in range(1, depth + 1)}}
    return f"sum({e})", shapes


def mlp_gradient(depth: int, widths: bool = False):
    expr, shapes = mlp(depth, widths)
    return rw.gradient(expr, "W1", shapes)


def where_value(w, env, registry, dims):
    """The named form's value: each definition evaluated in order, then the body."""
    env = dict(env)
    for name, t in w.definitions:
        env[name] = evaluate(t, env, registry, dims)
    return evaluate(w.body, env, registry, dims)


def test_mlp_gradient_prints_linearly_in_depth():
    plain, named = {}, {}
    for depth in (4, 8, 16):
        g = mlp_gradient(depth)
        plain[depth], named[depth] = len(str(g)), len(g.where().text)
    assert named[16] / named[8] < 2.5 and named[8] / named[4] < 2.5
    assert plain[16] / plain[8] > 3  # without names: quadratic
    assert named[16] < plain[16] / 2


@pytest.mark.parametrize("depth", [2, 3, 5])
def test_mlp_named_form_has_the_plain_value(depth):
    g = mlp_gradient(depth, widths=True)
    w = g.where()
    assert len(w.definitions) == depth - 1
    assert w.substituted() == g.term
    rng = np.random.default_rng(depth)
    dims = instantiate_dims(g.f, rng)
    assert len(set(dims.values())) > 1  # non-square layers
    env = random_point(g.f, rng, dims)
    want = evaluate(g.term, env, g.registry, dims)
    np.testing.assert_allclose(where_value(w, env, g.registry, dims), want, rtol=1e-12)
    again = parse_where(w.text, mlp(depth, widths=True)[1], FUNCTIONS)
    np.testing.assert_allclose(evaluate(again, env, g.registry, dims), want, rtol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_public_case_named_form_reparses_to_the_same_value(case):
    g = rw.gradient(case["expr"], case["wrt"], case["shapes"])
    w = g.where(min_chars=4)  # name more than by default, to exercise the printer
    assert w.substituted() == g.term
    assert not {n for n, _ in w.definitions} & free_vars(g.f)
    spd, pos, signs = constraints_from_assumptions(case.get("assume", []))
    rng = np.random.default_rng(11)
    dims = instantiate_dims(g.f, rng)
    env = random_point(g.f, rng, dims, spd=spd, positive=pos, signs=signs)
    want = evaluate(g.term, env, g.registry, dims)
    np.testing.assert_allclose(where_value(w, env, g.registry, dims), want, rtol=1e-10, atol=1e-12)
    again = parse_where(w.text, case["shapes"], FUNCTIONS)
    np.testing.assert_allclose(evaluate(again, env, g.registry, dims), want, rtol=1e-8, atol=1e-10)


def test_names_avoid_the_expressions_variables_and_scalars_get_lower_case():
    sh = {"T0": (3, 2), "t1": (), "x": (2,)}
    e = rw.parse("tr(exp(T0*x)'*exp(T0*x))*tr(exp(T0*x)'*exp(T0*x)) + t1*sum(exp(T0*x))", sh)
    w = e.where()
    names = [n for n, _ in w.definitions]
    assert names == ["T2", "t3"]
    assert w.definitions[1][1].shape == (1, 1)
    assert str(w).splitlines()[0] == "t3*t3 + t1*sum(T2)"


def test_nothing_repeated_is_the_plain_text():
    e = rw.parse("tr(X'*A*X)", {"X": (3, 2), "A": (3, 3)})
    w = e.where()
    assert w.definitions == () and w.text == str(e) and w.latex() == e.latex()


def test_long_subterms_can_be_named_too():
    g = mlp_gradient(6)
    w = g.where(long_chars=60)
    assert max(len(line) for line in w.text.splitlines()) < max(len(line) for line in g.where().text.splitlines())
    assert substitute(w.body, w.definitions) == g.term


def test_latex_uses_the_same_names():
    g = mlp_gradient(3)
    tex = g.where().latex()
    assert tex.startswith(r"\begin{aligned}") and tex.endswith(r"\end{aligned}")
    assert r"\text{where } T_{0} &= \tanh\left(W_{1} x\right)" in tex
    assert r"T_{1} &= \tanh\left(W_{2} T_{0}\right)" in tex


def test_cli_where(capsys):
    expr, shapes = mlp(3)
    argv = ["grad", expr, "--wrt", "W1", *[f"--shape={k}={','.join(v)}" for k, v in shapes.items()]]
    assert main(argv) == 0
    plain = capsys.readouterr().out.strip()
    assert "where" not in plain  # off unless asked
    assert main([*argv, "--where"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "where T0 = tanh(W1*x)," and lines[2] == "      T1 = tanh(W2*T0)"
    assert main([*argv, "--where", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["gradient"] == plain
    assert [d["name"] for d in out["where"]["definitions"]] == ["T0", "T1"]
    assert out["where"]["definitions"][0] == {"name": "T0", "expr": "tanh(W1*x)", "shape": ["n", 1]}
    assert main([*argv, "--where", "--format", "latex"]) == 0
    assert r"\text{where } T_{0}" in capsys.readouterr().out


def test_the_named_form_is_accepted_as_input_and_differentiates():
    """Named temporaries on input: the gradient of ``body where ...`` is that of the plain text."""
    shapes = {"A": (3, 4), "x": (4,)}
    named = rw.gradient("sum(T0 .* T0) where T0 = sin(A*x)", "x", shapes)
    plain = rw.gradient("sum(sin(A*x) .* sin(A*x))", "x", shapes)
    assert named.f == plain.f
    rng = np.random.default_rng(3)
    dims = instantiate_dims(plain.f, rng)
    env = random_point(plain.f, rng, dims)
    assert np.allclose(evaluate(named.term, env, default_registry(), dims),
                       evaluate(plain.term, env, default_registry(), dims))


@pytest.mark.parametrize("text, position, words", [
    ("T0 + T0\nwhere T0 = A*", (2, 14), "expected an operand"),
    ("T0 where T0 A", (1, 10), "expected 'name = expression'"),
    ("T0 where A = B'", (1, 10), "already a variable"),
    ("T0 + T0\nwhere T0 = A*B, T1 = q(A)", (2, 22), "unknown function 'q'"),
])
def test_errors_in_the_named_form_point_into_the_whole_text(text, position, words):
    with pytest.raises(rw.TracegradError) as e:
        rw.Engine().term(text, {"A": (2, 2), "B": (2, 2)})
    assert e.value.position == position and words in e.value.message


def test_cli_names_a_long_answer_by_default_and_not_with_no_where(capsys):
    expr, shapes = mlp(8)
    args = ["grad", expr, "--wrt", "W1"]
    args += [a for k, v in shapes.items() for a in ("--shape", f"{k}={','.join(v)}")]
    assert main(args) == 0
    named = capsys.readouterr().out
    assert "\nwhere " in named
    assert main(args + ["--no-where"]) == 0
    flat = capsys.readouterr().out
    assert "where" not in flat and len(named) < 0.8 * len(flat)
    # the named text reads back as the flat answer
    sh = {k: tuple(v) for k, v in shapes.items()}
    assert rw.Engine().term(named, sh) == rw.Engine().term(flat, sh)
    assert main(["grad", "tr(A*X)", "--wrt", "X", "--shape", "A=2,3", "--shape", "X=3,2"]) == 0
    assert capsys.readouterr().out == "A'\n"  # short answers stay flat
