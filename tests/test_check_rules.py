"""check-rules: every stock rule is sound, every deliberately unsound rule is caught."""

import json
from pathlib import Path

import pytest

import rewrite as rw
from rewrite.check_rules import check_rules_text
from rewrite.cli import main

UNSOUND = sorted((Path(__file__).parent / "data" / "unsound").glob("*.rules"))


def test_every_stock_rule_is_sound_and_tested():
    for seed in (0, 1):
        rep = rw.check_rules(seed=seed)
        assert rep.ok, "\n".join(rep.lines())
        assert not rep.unverified, rep.unverified
        assert rep.checked == len(rep.sound) > 200


def test_the_unsound_suite_is_large_enough():
    assert len(UNSOUND) >= 10


@pytest.mark.parametrize("path", UNSOUND, ids=[p.stem for p in UNSOUND])
def test_each_unsound_rule_is_flagged_with_a_counterexample(path):
    rep = rw.check_rules([path])
    assert rep.checked == 1
    assert not rep.ok
    (bad,) = rep.unsound
    assert bad.where.endswith(f"{path.name}:2")
    assert bad.error > 1e-4 and bad.shapes
    assert main(["check-rules", str(path)]) == 1


@pytest.mark.parametrize("rule", [
    "ruleset trace\nok-cyclic : tr(A*B*C) = tr(C*A*B)\n",
    "ruleset differential\nok-d : d(A*B*C) => d(A)*B*C + A*d(B)*C + A*B*d(C)\n",
    "ruleset collect\nok-g : grad(tr(d(X)'*A), d(X)) => A   if free(A)\n",
    "ruleset simplify\nok-pow : A^k*A^k => A^{2*k}   if int(k), k > 0\n",
    "ruleset trace\nok-had : sum(A .* B) = tr(A'*B)\n",
])
def test_sound_user_rules_pass(rule):
    rep = check_rules_text(rule)
    assert rep.ok and len(rep.sound) == 1, rep.lines()


def test_shapes_are_drawn_non_square_where_allowed():
    import numpy as np

    from rewrite.check_rules import _draw_dims
    from rewrite.rules import load_text

    rs = load_text("ruleset trace\nhc : A .* B = B .* A\nsq : tr(A') = tr(A)\n")
    hc, sq = rs.rules
    draws = [_draw_dims(hc, np.random.default_rng(s)) for s in range(6)]
    a = hc.lhs.args[0].shape
    assert any(d[a[0]] != d[a[1]] for d in draws)
    for s in range(6):
        d = _draw_dims(sq, np.random.default_rng(s))
        r, c = sq.lhs.args[0].args[0].shape
        assert d[r] == d[c]


def test_cli_json_and_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.rules"
    good.write_text("ruleset trace\nmine : tr(A*B) = tr(B*A)   # Matrix Cookbook (16)\n")
    assert main(["check-rules", str(good), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["checked"] == 1 and out["sound"] == 1 and out["unsound"] == []
    broken = tmp_path / "broken.rules"
    broken.write_text("ruleset trace\nx : tr(A) = B\n")
    assert main(["check-rules", str(broken)]) == 2
    assert "broken.rules:2" in capsys.readouterr().err
