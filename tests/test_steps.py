"""The derivation step by step: every step is an equality, and names rules that exist."""

import json

import numpy as np
import pytest
from conftest import public_cases

import rewrite as rw
from rewrite.cli import main
from rewrite.numeric import constraints_from_assumptions, evaluate, instantiate_dims, random_point
from rewrite.pipeline import IDENTITIES_REMOVED, NORMAL_FORMS, NORMAL_FORMS_PHASE
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
        for r in s.rules:  # a rule of the rule set, or a normal form kept outside the rules
            names = (*NORMAL_FORMS, IDENTITIES_REMOVED) if s.phase == NORMAL_FORMS_PHASE \
                else RULE_NAMES
            assert r.removesuffix("<-") in names, (s.phase, r)


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
    assert out[-1] == "(A + A')*X"
    assert out[0].split()[:4] == ["1", "f", "=", "tr(X'*A*X)"]
    assert any("canonical form" in line for line in out)
    assert main(["grad", "tr(A*X)", "--wrt", "X", "--steps", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["gradient"] == "A'"
    assert data["steps"][0] == {"quantity": "f", "expr": "tr(A*X)", "phase": "input",
                                "rules": []}
    assert data["steps"][-1]["expr"] == "A'"


def latex_problems(tex: str) -> list[str]:
    """What is wrong with a LaTeX block: unbalanced braces, ``\\left``/``\\right`` or
    ``\\begin``/``\\end``, and characters that are operators of the expression language, not LaTeX."""
    import re

    problems, stack = [], []
    for m in re.finditer(r"\\[{}]|\\left\b|\\right\b|\\begin\{(\w+\*?)\}|\\end\{(\w+\*?)\}|[{}]", tex):
        tok = m.group(0)
        if tok in (r"\{", r"\}"):
            continue
        if tok.startswith(r"\begin"):
            stack.append(("env", m.group(1)))
        elif tok.startswith(r"\end"):
            if not stack or stack.pop() != ("env", m.group(2)):
                problems.append(f"unmatched {tok}")
        elif tok in ("{", r"\left"):
            stack.append(tok)
        else:
            want = "{" if tok == "}" else r"\left"
            if not stack or stack.pop() != want:
                problems.append(f"unmatched {tok} at {m.start()}")
    problems += [f"unclosed {s}" for s in stack]
    body = re.sub(r"\\(begin|end)\{\w+\*\}", "", tex)
    for op in (".*", "./", ".^", "*", "'", "inv(", "logdet(", "eye("):
        if op in body:
            problems.append(f"raw operator {op!r}")
    problems += [f"non-ASCII {c!r}" for c in sorted(set(tex)) if not c.isascii()]
    return problems


def test_latex_problems_are_found():
    assert latex_problems(r"\begin{align*} \left(a\right) \{ \end{align*}") == []
    assert latex_problems(r"\left(a b") == [r"unclosed \left"]
    assert latex_problems(r"{a .* b}}") == ["unmatched } at 8", "raw operator '.*'", "raw operator '*'"]
    assert latex_problems(r"\begin{align*} \end{aligned}")
    assert latex_problems("A ⊙ B") == ["non-ASCII '⊙'"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_derivation_in_latex_is_well_formed(case):
    from rewrite.steps import steps_latex

    g = rw.gradient(case["expr"], case["wrt"], case.get("shapes") or {}, steps=True)
    tex = steps_latex(g.steps)
    assert latex_problems(tex) == [], tex
    rows = tex.splitlines()
    assert rows[0] == r"\begin{align*}" and rows[-1] == r"\end{align*}"
    assert len(rows) == len(g.steps) + 2
    assert rows[1].startswith("f &= ") and all(" && " in r for r in rows[1:-1])
    assert any(r.startswith(r"\mathrm{d}f &= ") for r in rows)
    assert any(r"\text{canonical form:}" in r for r in rows)
    assert rows[-2].split(" &= ", 1)[1].startswith(g.latex())  # the last row is the gradient
    for s in g.steps:
        for r in s.rules:
            assert r.removesuffix("<-") in tex


def test_cli_steps_latex(capsys):
    assert main(["grad", "logdet(X)", "--wrt", "X", "--shape", "X=n,n", "--steps", "--format",
                 "latex"]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    assert out.out.splitlines() == [
        r"\begin{align*}",
        r"f &= \log\det\left(X\right) && \text{input} \\",
        r"\mathrm{d}f &= \mathrm{d}\log\det\left(X\right) && \text{differentiate} \\",
        r"  &= \operatorname{tr}\left(X^{-1} \mathrm{d}X\right) && \text{d-logdet} \\",
        r"  &= \operatorname{tr}\left(X^{-1} \mathrm{d}X\right) && \text{canonical form:}\ "
        r"\text{adj-mul-l}, \text{adj-tr}, \text{grad-adj} \\",
        r"G &= X^{-\top} I_{n} && \text{read off} \\",
        r"  &= X^{-\top} && \text{normal forms:}\ \text{identities removed}",
        r"\end{align*}"]
