"""The derivation step by step: every step is an equality, and names rules that exist."""

import json

import numpy as np
import pytest
from conftest import public_cases

import rewrite as rw
from rewrite.cli import main
from rewrite.numeric import constraints_from_assumptions, evaluate, instantiate_dims, random_point
from rewrite.steps import format_steps
from rewrite.stock import stock_ruleset
from rewrite.terms import Term, contains, var_shapes

CASES = public_cases()
RULE_NAMES = {r.name for r in stock_ruleset().rules}


def _env_for(step: Term, base: dict, wrt: str, direction: np.ndarray, dims) -> dict | None:
    """``base`` plus differentials: d<wrt> = direction, d<constant> = 0; None when the step
    still holds a differential of a compound expression (not evaluable)."""
    if contains(step, "d"):
        return None
    env = dict(base)
    for name in var_shapes(step):
        if name in env:
            continue
        assert name.startswith("d") and name[1:] in base, name
        env[name] = direction if name == "d" + wrt else np.zeros_like(base[name[1:]])
    return env


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_every_step_is_an_equality(case):
    g = rw.gradient(case["expr"], case["wrt"], case.get("shapes") or {}, steps=True)
    steps = g.steps
    assert steps[0].quantity == "f" and steps[0].phase == "input"
    assert steps[-1].quantity == "G" and steps[-1].text == str(g)
    assert [s.phase for s in steps].count("canonical form") == 1
    rng = np.random.default_rng(1)
    spd, pos, signs = constraints_from_assumptions(case.get("assume", []))
    dims = instantiate_dims(g.f, rng)
    base = random_point(g.f, rng, dims, spd=spd, positive=pos, signs=signs)
    fval = evaluate(g.f, base, g.registry, dims)
    G = evaluate(g.term, base, g.registry, dims)
    V = rng.normal(size=G.shape)
    dval = np.sum(G * V)  # df = tr(G'*dX) at dX = V
    checked = {"f": 0, "df": 0, "G": 0}
    for s in steps:
        env = _env_for(s.term, base, g.wrt, V, dims)
        if env is None:
            continue  # a differential of a compound expression, not yet expanded
        got = evaluate(s.term, env, g.registry, dims)
        want = {"f": fval, "df": dval, "G": G}[s.quantity]
        assert np.allclose(got, want, rtol=1e-8, atol=1e-10), (s.quantity, s.text)
        checked[s.quantity] += 1
    assert checked["f"] >= 1 and checked["df"] >= 1 and checked["G"] >= 1


@pytest.mark.parametrize("case", CASES[:12], ids=[c["id"] for c in CASES[:12]])
def test_steps_name_rules_of_the_rule_set(case):
    g = rw.gradient(case["expr"], case["wrt"], case.get("shapes") or {}, steps=True)
    for s in g.steps:
        if s.phase not in ("input", "differentiate", "read off"):
            assert s.rules, s
        for r in s.rules:
            assert r.removesuffix("<-") in RULE_NAMES, r


def test_tidy_step_names_its_rule():
    g = rw.gradient("tr(X'')", "X", {"X": (2, 2)}, steps=True)
    tidy = [s for s in g.steps if s.phase == "tidy" and s.quantity == "f"]
    assert tidy and tidy[0].text == "tr(X)" and "tidy-t-t" in tidy[0].rules


def test_steps_are_recorded_only_when_asked():
    assert rw.gradient("tr(A*X)", "X").steps is None
    g = rw.gradient("tr(A*X)", "X", steps=True)
    text = format_steps(g.steps)
    assert text.splitlines()[0].split() == ["1", "f", "=", "tr(A*X)", "input"]
    assert "d-mul" in text


def test_every_enode_has_a_provenance():
    g = rw.gradient("tr(X'*A*X)", "X", {"X": (3, 2)}, keep_egraph=True)
    nodes = g.session.serialize()["nodes"].values()
    rules = [n["rule"] for n in nodes]
    assert all(rules)
    assert {r for r in rules if r != "input"} <= {*RULE_NAMES, *(n + "<-" for n in RULE_NAMES)}
    # the objective's own e-nodes are the input's; the derivation made the rest
    assert any(n["label"] == "var(X)" and n["rule"] == "input" for n in nodes)
    assert any(n["rule"] == "d-mul" for n in nodes)


def test_cli_steps(capsys):
    assert main(["grad", "tr(X'*A*X)", "--wrt", "X", "--steps"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "(A' + A)*X"
    assert out[0].split()[:4] == ["1", "f", "=", "tr(X'*A*X)"]
    assert any("canonical form" in line for line in out)
    assert main(["grad", "tr(A*X)", "--wrt", "X", "--steps", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["gradient"] == "A'"
    assert data["steps"][0] == {"quantity": "f", "expr": "tr(A*X)", "phase": "input",
                                "rules": []}
    assert data["steps"][-1]["expr"] == "A'"
