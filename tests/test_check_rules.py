"""Rule authoring: loading errors, citations, check-rules (every stock rule sound, every
deliberately unsound rule caught), user rule files in derivations, rules named in the Report."""

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest

import rewrite as rw
from rewrite.check_rules import DRAWS, _draw_dims, check_rule, check_rules_text
from rewrite.cli import main
from rewrite.numeric import gradient_error
from rewrite.rulefile import load_text
from rewrite.stock import stock_ruleset

DATA = Path(__file__).parent / "data"
UNSOUND = sorted((DATA / "unsound").glob("*.rules"))


def bad_rule_of(path: Path) -> tuple[str, int]:
    """The name and line of the one deliberately unsound rule (named bad-...) of a file."""
    for no, line in enumerate(path.read_text().splitlines(), 1):
        m = re.match(r"^(bad-[\w-]+)\s*:", line)
        if m:
            return m.group(1), no
    raise AssertionError(f"{path.name} has no bad-... rule")


# ----------------------------------------------------------------- stock rules ----
def test_every_stock_rule_is_sound_and_tested():
    for seed in (0, 1):
        rep = rw.check_rules(seed=seed)
        assert rep.ok, "\n".join(rep.lines())
        assert not rep.unverified, rep.unverified
        assert rep.checked == len(rep.sound) == len(rep.verdicts) > 200
        assert all(v.verdict == "sound" and v.draws == DRAWS for v in rep.verdicts), [
            str(v) for v in rep.verdicts if v.draws != DRAWS]


def test_a_stock_file_can_be_checked_by_path(capsys):
    from rewrite.stock import stock_dir

    path = stock_dir() / "trace.rules"
    rep = rw.check_rules([path])
    expected = [r.name for r in stock_ruleset().rules if r.source == "trace.rules"]
    assert rep.ok and rep.sound == expected and "tr-cyclic" in expected
    assert main(["check-rules", str(path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["checked"] == len(expected)
    assert main(["check-rules", str(stock_dir() / "nosuch.rules")]) == 2


def test_stock_rules_carry_their_citations():
    rules = {r.name: r for r in stock_ruleset().rules}
    assert rules["tr-cyclic"].citation == "Matrix Cookbook (16)"
    assert rules["d-inv"].citation == "Matrix Cookbook (36)"
    assert rules["mul-assoc"].citation == ""
    cited = {v.rule: v.citation for v in rw.check_rules().verdicts}
    assert cited["d-mul"] == "Matrix Cookbook (37)"


# -------------------------------------------------------------- unsound rules ----
def test_the_unsound_suite_is_large_enough():
    assert len(UNSOUND) >= 15


@pytest.mark.parametrize("path", UNSOUND, ids=[p.stem for p in UNSOUND])
def test_each_unsound_rule_is_flagged_with_a_counterexample(path, capsys):
    name, line = bad_rule_of(path)
    rep = rw.check_rules([path])
    assert not rep.ok
    (bad,) = rep.unsound
    assert bad.rule == name and bad.where == f"{path}:{line}"
    assert bad.error > 1e-3 and bad.shapes and bad.values in ("general", "positive")
    # every other rule the file adds (instances for a declared function) is sound
    assert sorted(rep.sound) == sorted(v.rule for v in rep.verdicts if v.rule != name)
    # the counterexample is reproducible from its seed
    rule = next(r for r in rw.Engine([path]).ruleset.rules if r.name == name)
    again, _ = check_rule(rule, rw.Engine([path]).functions)
    assert again.seed == bad.seed and again.error == pytest.approx(bad.error)
    assert main(["check-rules", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:{line}: {name}: UNSOUND" in out and f"seed {bad.seed}" in out


def test_counterexamples_in_json_name_shapes_seed_and_citation(capsys):
    path = DATA / "unsound" / "noncyclic.rules"
    assert main(["check-rules", str(path), "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    (bad,) = out["unsound"]
    assert bad["rule"] == "bad-cyclic" and bad["citation"] == "not a cyclic shift"
    assert set(bad["shapes"]) == {"A", "B", "C"} and isinstance(bad["seed"], int)
    # typing the rule forces A, B, C square; the draw is not symmetric, so the shift shows
    assert bad["values"] == "general" and bad["error"] > 0.01
    assert out["rules"] == [{"rule": "bad-cyclic", "where": f"{path}:2", "verdict": "unsound",
                             "citation": "not a cyclic shift", "draws": 1}]


@pytest.mark.parametrize("rule", [
    "ruleset trace\nok-cyclic : tr(A*B*C) = tr(C*A*B)\n",
    "ruleset differential\nok-d : d(A*B*C) => d(A)*B*C + A*d(B)*C + A*B*d(C)\n",
    "ruleset differential\nok-d-const : d(A*B) => A*d(B)   if const(A)\n",
    "ruleset differential\nok-d-tanh : d(tanh(A)) => (1 - tanh(A) .* tanh(A)) .* d(A)\n",
    "ruleset collect\nok-g : grad(tr(d(X)'*A), d(X)) => A   if free(A)\n",
    "ruleset jacobian\nok-jac : jac(A*d(X), d(X)) => kron(eye(p), A)   if free(A), shape(X, n, p)\n",
    "ruleset simplify\nok-pow : A^k*A^k => A^{2*k}   if int(k), k > 0\n",
    "ruleset simplify\nok-inv : inv(A*B) => inv(B)*inv(A)\n",
    "ruleset simplify\nok-log : log(A .* B) => log(A) + log(B)\n",
    "ruleset trace\nok-had : sum(A .* B) = tr(A'*B)\n",
    "ruleset trace\nok-had-tr : tr(A*(B .* C)) = tr((A' .* B)'*C)\n",
])
def test_sound_user_rules_pass(rule):
    rep = check_rules_text(rule)
    assert rep.ok and len(rep.sound) == 1, rep.lines()


def test_domain_restricted_rules_are_tested_on_their_domain():
    """log needs positive entries: the general draws do not count, positive draws replace them."""
    rep = check_rules_text("ruleset simplify\nok-log : log(A .* B) => log(A) + log(B)\n")
    (v,) = rep.verdicts
    assert v.verdict == "sound" and v.draws == DRAWS


def test_untestable_rules_are_reported_not_passed():
    rep = check_rules_text("ruleset simplify\nnever : log(-(A .* A) - 1) => A\n")
    assert rep.ok and not rep.sound
    (where, why), = rep.unverified
    assert where.endswith(": never") and "not finite" in why
    assert "not tested" in rep.lines()[0]


def test_counterexamples_are_non_square_where_the_rule_allows():
    rep = rw.check_rules([DATA / "unsound" / "missing_const.rules"])
    (bad,) = rep.unsound
    (ra, ca), (rb, cb) = bad.shapes["A"], bad.shapes["B"]
    assert ca == rb and len({ra, ca, cb}) == 3


def test_shapes_are_drawn_non_square_where_allowed():
    rs = load_text("ruleset trace in close\nhc : A .* B = B .* A\nsq : tr(A') = tr(A)\n"
                   "vc : tr(v*v') = tr(v'*v)   if vector(v)\n")
    hc, sq, vc = rs.rules
    a = hc.lhs.args[0].shape
    for s in range(2):  # the first two draws take pairwise different dimensions
        d = _draw_dims(hc, np.random.default_rng(s), distinct=True)
        assert d[a[0]] != d[a[1]]
    assert any(_draw_dims(hc, np.random.default_rng(s))[a[0]] != _draw_dims(
        hc, np.random.default_rng(s))[a[1]] for s in range(6))
    r, c = sq.lhs.args[0].args[0].shape
    v = vc.lhs.args[0].args[0].shape
    for s in range(6):
        d = _draw_dims(sq, np.random.default_rng(s), distinct=s < 2)
        assert d[r] == d[c]
        d = _draw_dims(vc, np.random.default_rng(s), distinct=s < 2)
        assert v[1] == 1 and d[v[0]] >= 2


def test_cli_exit_codes_verbose_and_json(tmp_path, capsys):
    good = tmp_path / "good.rules"
    good.write_text("ruleset trace\nmine : tr(A*B) = tr(B*A)   # Matrix Cookbook (16)\n")
    assert main(["check-rules", str(good), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["checked"] == 1 and out["sound"] == 1 and out["unsound"] == []
    assert out["rules"][0]["citation"] == "Matrix Cookbook (16)"
    assert main(["check-rules", "--verbose", str(good)]) == 0
    assert f"{good}:2: mine: sound (6 draws) [Matrix Cookbook (16)]" in capsys.readouterr().out
    broken = tmp_path / "broken.rules"
    broken.write_text("ruleset trace\nx : tr(A) = B\n")
    assert main(["check-rules", str(broken)]) == 2
    assert "broken.rules:2" in capsys.readouterr().err
    assert main(["check-rules", str(good), "--draws", "0"]) == 2


# -------------------------------------------------------------- loading errors ----
LOAD_ERRORS = [
    ("syntax: unbalanced", "ruleset trace\nbad : tr(A)) => tr(A')\n", 2, 12, "bad", "unbalanced ')'"),
    ("syntax: no equals", "ruleset trace\nbad : tr(A) tr(A)\n", 2, 7, "bad", "expected exactly one"),
    ("syntax: expression", "ruleset trace\nbad : A + ' => A\n", 2, 11, "bad", "left-hand side"),
    ("syntax: no name", "ruleset trace\ntr(A) = tr(A')\n", 2, 1, None, "expected 'name : lhs"),
    ("unbound", "ruleset trace\nbad : tr(A) => tr(B)\n", 2, 19, "bad",
     "variable B on the right-hand side is not bound on the left"),
    ("unbound reverse", "ruleset trace\nbad : A .* B = A .* C\n", 2, 7, "bad",
     "variable B on the left-hand side is not bound on the right"),
    ("shapes", "ruleset trace\nbad : tr(A) => ones(3)\n", 2, 15, "bad",
     "the two sides cannot have the same shape: 1×1 and 3×1"),
    ("shapes inside", "ruleset trace\nbad : tr(A) => A + ones(3)\n", 2, 16, "bad",
     "cannot have the same shape"),
    ("unknown function", "ruleset trace\nbad : foo(A) => A\n", 2, 7, "bad", "unknown function 'foo'"),
    ("duplicate", "ruleset trace\nmine : A'' => A\nmine : A''' => A'\n", 3, 1, "mine",
     "duplicate rule name"),
    ("duplicate of stock", "ruleset trace\nt-t : A'' => A\n", 2, 1, "t-t", "duplicate rule name"),
    ("unknown ruleset", "ruleset nosuch\nx : A'' => A\n", 1, 9, None, "unknown ruleset 'nosuch'"),
    ("unknown phase", "ruleset mine in nowhere\n", 1, 1, None, "unknown phase 'nowhere'"),
    ("equation in replacing phase", "ruleset mine in tidy\nm : A*B = B*A\n", 2, 5, "m",
     "must be directed"),
    ("unknown condition", "ruleset trace\nm : A'' => A   if symmetric(A)\n", 2, 18, "m",
     "unknown condition"),
    ("condition on unbound", "ruleset trace\nm : A'' => A   if scalar(c)\n", 2, 18, "m",
     "condition on c"),
    ("wrong derivative", "function sq2(x) = x^2; d/dx = x\n", 1, 1, "sq2",
     "disagrees with sympy's"),
    ("rule before ruleset", "m : A'' => A\n", 1, 1, "m", "before any 'ruleset"),
    ("dimension not determined", "ruleset trace\nm : vec(A + c) => vec(A) + c   if scalar(c)\n",
     2, 18, "m", "a dimension on the right-hand side is not determined by the left-hand side"),
    ("dimension not determined, reverse", "ruleset trace\nm : vec(A) + c = vec(A + c)  if scalar(c)\n",
     2, 5, "m", "not determined by the right-hand side (the equation read right to left)"),
]


@pytest.mark.parametrize("text,line,col,name,message", [e[1:] for e in LOAD_ERRORS],
                         ids=[e[0] for e in LOAD_ERRORS])
def test_loading_reports_file_line_col_rule_message(text, line, col, name, message, tmp_path,
                                                    capsys):
    with pytest.raises(rw.RuleFileError) as info:
        load_text(text, "mine.rules", stock_ruleset())
    err = info.value
    assert err.position == (line, col)
    prefix = f"mine.rules:{line}:{col}: " + (f"{name}: " if name else "")
    assert str(err).startswith(prefix) and message in str(err), str(err)
    path = tmp_path / "mine.rules"
    path.write_text(text)
    assert main(["check-rules", str(path)]) == 2
    assert f"mine.rules:{line}:{col}: " in capsys.readouterr().err
    assert main(["grad", "tr(X)", "--wrt", "X", "--rules", str(path), "--format", "json"]) == 2
    got = json.loads(capsys.readouterr().err)["error"]
    assert got["kind"] == "rule-file" and message in got["message"]


def test_citation_is_the_trailing_comment():
    rs = load_text("ruleset trace in close\n# a comment line\nm : A'' => A   # Magnus & Neudecker (2.3)\n"
                   "n : tr(A') = tr(A)\n")
    m, n = rs.rules
    assert (m.citation, m.line, n.citation) == ("Magnus & Neudecker (2.3)", 3, "")


# ---------------------------------------------------------- user rule files ----
SOFTSIGN = "function softsign(x) = x/(1 + abs(x))\n"


def test_a_user_function_differentiates_correctly(tmp_path):
    path = tmp_path / "softsign.rules"
    path.write_text(SOFTSIGN)
    rng = np.random.default_rng(3)
    for expr, wrt, shapes in [
        ("sum(softsign(X*w))", "w", {"X": ("m", "n"), "w": ("n",)}),
        ("tr(A*softsign(X)')", "X", {"A": ("m", "n"), "X": ("m", "n")}),
        ("norm2sq(softsign(X*B) - Y)", "X", {"X": ("m", "k"), "B": ("k", "n"), "Y": ("m", "n")}),
    ]:
        g = rw.gradient(expr, wrt=wrt, shapes=shapes, rules=[path])
        assert g.report.fired()["d-fn[softsign]"] >= 1
        for _ in range(2):
            dims = {d: int(rng.integers(2, 6)) for d in ("m", "n", "k")}
            grad, fd, err = gradient_error(g, rng, dims=dims)
            assert np.all(np.isfinite(fd)) and err < 1e-6, (expr, str(g), err)
    # without the file the function is unknown: a typed error with a position
    with pytest.raises(rw.UnsupportedError):
        rw.gradient("sum(softsign(X*w))", wrt="w", shapes={"X": (3, 4), "w": (4,)})


def test_a_user_rule_joins_a_stock_ruleset_and_fires(tmp_path, capsys):
    path = tmp_path / "exp.rules"
    path.write_text("ruleset simplify\nexp-twice : exp(A) .* exp(A) => exp(2*A)   # exp(a)^2\n")
    shapes = {"X": ("m", "n")}
    plain = rw.gradient("sum(exp(X) .* exp(X))", wrt="X", shapes=shapes)
    assert "exp-twice" not in plain.report.matches
    eng = rw.Engine([path])
    (mine,) = [r for r in eng.ruleset.rules if r.name == "exp-twice"]
    assert mine.ruleset == "simplify" and mine.citation == "exp(a)^2"
    g = eng.gradient("sum(exp(X) .* exp(X))", "X", shapes)
    assert str(g) == "2*exp(2*X)" != str(plain)
    assert g.report.fired()["exp-twice"] >= 1
    assert gradient_error(g)[2] < 1e-6
    assert str(rw.simplify("exp(X) .* exp(X)", rules=[path])) == "exp(2*X)"
    # an Engine built from a RuleSet is the same engine
    assert str(rw.Engine(eng.ruleset).gradient("sum(exp(X) .* exp(X))", "X", shapes)) == "2*exp(2*X)"
    assert main(["grad", "sum(exp(X) .* exp(X))", "--wrt", "X", "--rules", str(path)]) == 0
    assert capsys.readouterr().out.strip() == "2*exp(2*X)"


@pytest.mark.parametrize("phase", ["close", "simplify"])
def test_a_new_ruleset_runs_in_its_phase(tmp_path, phase):
    """close runs in simplify() and equivalent(); simplify also polishes every gradient."""
    path = tmp_path / "mine.rules"
    path.write_text(f"ruleset exp-algebra in {phase}\nexp-sum : exp(A) .* exp(B) => exp(A + B)\n")
    eng = rw.Engine([path])
    assert eng.ruleset.phases["exp-algebra"] == phase
    shapes = {"X": ("m", "n"), "Y": ("m", "n")}
    out = eng.simplify("sum(exp(X) .* exp(Y))", shapes)
    assert out.report.fired()["exp-sum"] >= 1 and str(out) == "sum(exp(X + Y))"
    if phase == "simplify":
        g = eng.gradient("sum(exp(X) .* exp(Y))", "X", shapes)
        assert g.report.fired()["exp-sum"] >= 1
        assert str(g) == "exp(X + Y)"
        assert gradient_error(g)[2] < 1e-6


def test_a_later_file_may_extend_a_ruleset_of_an_earlier_one(tmp_path):
    first, second = tmp_path / "a.rules", tmp_path / "b.rules"
    first.write_text("ruleset exp-algebra in simplify\nexp-twice : exp(A) .* exp(A) => exp(2*A)\n")
    second.write_text("ruleset exp-algebra\nexp-sum : exp(A) .* exp(B) => exp(A + B)\n")
    eng = rw.Engine([first, second])
    assert {r.name: r.ruleset for r in eng.ruleset.rules if r.name.startswith("exp-")} == {
        "exp-twice": "exp-algebra", "exp-sum": "exp-algebra"}
    assert rw.check_rules([first, second]).sound == ["exp-twice", "exp-sum"]
    with pytest.raises(rw.RuleFileError, match="unknown ruleset 'exp-algebra'"):
        rw.Engine([second])


def test_the_report_names_the_rules_that_fired():
    g = rw.gradient("tr(A*X*B)", wrt="X", shapes={"A": ("k", "m"), "X": ("m", "n"), "B": ("n", "k")})
    fired = g.report.fired()
    names = {r.name for r in stock_ruleset().rules}
    assert fired and set(fired) <= names
    assert all(isinstance(n, int) and n > 0 for n in fired.values())
    assert fired["d-mul"] >= 2 and fired["d-const"] >= 2  # d(A*X*B): two products, A and B const
    assert "d-inv" not in fired and "d-fn[exp]" not in fired
    assert g.report.matches.keys() >= fired.keys()


def test_an_unsound_simplify_rule_cannot_change_a_result(caplog):
    # exp(A) .* exp(B) => exp(A .* B) is wrong; loaded anyway, the simplification it enables is
    # compared with its input at random points and rejected, so the gradient stays right
    rules = [Path(__file__).parent.parent / "docs" / "examples" / "wrong.rules"]
    with caplog.at_level(logging.WARNING, logger="rewrite"):
        g = rw.gradient("sum(exp(X) .* exp(Y))", "X", {"X": ("m", "n"), "Y": ("m", "n")},
                        rules=rules)
    assert gradient_error(g, np.random.default_rng(0))[2] < 1e-6
    assert str(g) == "exp(X) .* exp(Y)"
    assert any("changed the value" in r.getMessage() for r in caplog.records)
    assert g.report.phases[-1] == {"phase": "check", "stop_reason": "rejected", "iterations": 0}
