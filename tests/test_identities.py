"""Textbook identities (Matrix Cookbook) that ``equivalent`` must prove, near misses it must refute,
the three-valued answer, and what ``simplify`` makes of sums the identities expand.

Every identity is also checked numerically on concrete shapes, non-square wherever its shapes
allow, so that the table itself cannot hold a wrong identity."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import check_same_value

import rewrite as rw
from rewrite.cli.main import main
from rewrite.numeric import evaluate

SQ = {"A": ("n", "n"), "B": ("n", "n"), "C": ("n", "n")}

#: (name, a, b, shapes): a = b holds
IDENTITIES = [
    ("tr-add", "tr(A + B)", "tr(A) + tr(B)", SQ),
    ("tr-scale", "tr(2*A)", "2*tr(A)", SQ),
    ("tr-transpose", "tr(A')", "tr(A)", SQ),
    ("tr-cyclic", "tr(A*B)", "tr(B*A)", {"A": ("m", "n"), "B": ("n", "m")}),
    ("tr-cyclic3", "tr(A*B*C)", "tr(C*A*B)", {"A": ("m", "n"), "B": ("n", "p"), "C": ("p", "m")}),
    ("t-add", "(A + B)'", "A' + B'", {"A": ("m", "n"), "B": ("m", "n")}),
    ("t-mul", "(A*B)'", "B'*A'", {"A": ("m", "n"), "B": ("n", "p")}),
    ("t-t", "A''", "A", {"A": ("m", "n")}),
    ("t-scale", "(3*A)'", "3*A'", {"A": ("m", "n")}),
    ("inv-inv", "inv(inv(A))", "A", SQ),
    ("inv-mul", "inv(A*B)", "inv(B)*inv(A)", SQ),
    ("inv-t", "inv(A')", "inv(A)'", SQ),
    ("det-mul", "det(A*B)", "det(A)*det(B)", SQ),
    ("det-t", "det(A')", "det(A)", SQ),
    ("det-inv", "det(inv(A))", "1/det(A)", SQ),
    ("kron-t", "kron(A, B)'", "kron(A', B')", {"A": ("m", "n"), "B": ("p", "q")}),
    ("kron-mixed", "kron(A, B)*kron(C, D)", "kron(A*C, B*D)",
     {"A": ("m", "n"), "B": ("p", "q"), "C": ("n", "r"), "D": ("q", "s")}),
    ("vec-axb", "vec(A*X*B)", "kron(B', A)*vec(X)",
     {"A": ("m", "n"), "X": ("n", "p"), "B": ("p", "q")}),
    ("fro2-tr", "fro2(M)", "tr(M'*M)", {"M": ("m", "n")}),
    ("norm2sq-dot", "norm2sq(x)", "x'*x", {"x": ("n",)}),
    ("diag-had", "diag(a)*b", "a .* b", {"a": ("n",), "b": ("n",)}),
    ("mul-assoc", "(A*B)*C", "A*(B*C)", {"A": ("m", "n"), "B": ("n", "p"), "C": ("p", "q")}),
    ("distrib-l", "A*(B + C)", "A*B + A*C", {"A": ("m", "n"), "B": ("n", "p"), "C": ("n", "p")}),
    ("distrib-r", "(A + B)*C", "A*C + B*C", {"A": ("m", "n"), "B": ("m", "n"), "C": ("n", "p")}),
    ("had-comm", "A .* B", "B .* A", {"A": ("m", "n"), "B": ("m", "n")}),
    ("add-self", "A + A", "2*A", {"A": ("m", "n")}),
    ("quad-tr", "x'*A*x", "tr(A*x*x')", {"x": ("n",), "A": ("n", "n")}),
    ("sum-had", "sum(A .* B)", "tr(A'*B)", {"A": ("m", "n"), "B": ("m", "n")}),
    ("vec-dot", "vec(A)'*vec(B)", "tr(A'*B)", {"A": ("m", "n"), "B": ("m", "n")}),
    ("dot-sym", "x'*y", "y'*x", {"x": ("n",), "y": ("n",)}),
    ("tr-sub", "tr(A + B) - tr(A)", "tr(B)", SQ),
    ("t-sub", "(A + B)' - B'", "A'", {"A": ("m", "n"), "B": ("m", "n")}),
]

#: (name, a, b, shapes): plausible but wrong; must come out False, never proved
NEAR_MISSES = [
    ("tr-noncyclic", "tr(A*B*C)", "tr(A*C*B)", SQ),
    ("t-mul-order", "(A*B)'", "A'*B'", SQ),
    ("inv-mul-order", "inv(A*B)", "inv(A)*inv(B)", SQ),
    ("det-add", "det(A + B)", "det(A) + det(B)", SQ),
    ("det-scale", "det(2*A)", "2*det(A)", SQ),
    ("kron-t-swap", "kron(A, B)'", "kron(B', A')", SQ),
    ("vec-axb-order", "vec(A*X*B)", "kron(A, B')*vec(X)", {"A": ("n", "n"), "X": ("n", "n"), "B": ("n", "n")}),
    ("mul-comm", "A*B", "B*A", SQ),
    ("fro2-not-tr", "fro2(M)", "tr(M*M)", {"M": ("n", "n")}),
    ("tr-product", "tr(A*B)", "tr(A)*tr(B)", SQ),
]

#: how many of IDENTITIES equivalent() proves (15 before rules/identities.rules and the tidy phase in proofs)
PROVED = 32

#: concrete sizes: pairwise different so that nothing is square or conformable by accident;
#: n is the size of every square matrix
SIZES = {"m": 2, "n": 3, "p": 4, "q": 5, "r": 2, "s": 3}


def concrete(shapes: dict) -> dict:
    return {k: tuple(SIZES[d] for d in v) for k, v in shapes.items()}


def numeric_values(a: str, b: str, shapes: dict, seed: int):
    """The values of a and b at a random point of the concrete shapes; square matrices are
    shifted by 2*eye so that inv and det are well conditioned."""
    eng = rw.default_engine()
    ta, tb = eng._pair(a, b, concrete(shapes))
    rng = np.random.default_rng(seed)
    env = {}
    for name, dims in concrete(shapes).items():
        shape = (dims[0], dims[1] if len(dims) > 1 else 1)
        x = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
        env[name] = x + 2 * np.eye(shape[0]) if shape[0] == shape[1] > 1 else x
    return evaluate(ta, env), evaluate(tb, env)


@pytest.mark.parametrize("name, a, b, shapes", IDENTITIES, ids=[i[0] for i in IDENTITIES])
def test_each_identity_holds_numerically(name, a, b, shapes):
    for seed in (0, 1):
        va, vb = numeric_values(a, b, shapes, seed)
        assert np.allclose(va, vb, rtol=1e-9, atol=1e-9), name


@pytest.mark.parametrize("name, a, b, shapes", NEAR_MISSES, ids=[i[0] for i in NEAR_MISSES])
def test_each_near_miss_differs_numerically(name, a, b, shapes):
    va, vb = numeric_values(a, b, shapes, 0)
    assert not np.allclose(va, vb, rtol=1e-6, atol=1e-9), name


def test_the_identity_table():
    """The count proved (reported on failure) and no false claim among the near misses."""
    answers = {name: rw.equivalent(a, b, shapes) for name, a, b, shapes in IDENTITIES}
    unproved = sorted(name for name, v in answers.items() if not v.proved)
    assert not [name for name, v in answers.items() if v.refuted]  # the table is true
    assert len(IDENTITIES) - len(unproved) >= PROVED, f"unproved: {unproved}"
    for name, a, b, shapes in NEAR_MISSES:
        v = rw.equivalent(a, b, shapes)
        assert v.refuted and v == False and not v, name  # noqa: E712 - the comparison is the API


def test_equivalence_is_three_valued():
    proved = rw.equivalent("inv(inv(A))", "A", {"A": (3, 3)})
    assert proved and proved == True and proved.proved and not proved.unknown  # noqa: E712
    assert repr(proved) == "True" and str(proved) == "true" and proved.report is not None
    refuted = rw.equivalent("A*B", "B*A", {"A": (2, 2), "B": (2, 2)})
    assert not refuted and refuted == False and refuted.refuted  # noqa: E712
    assert rw.equivalent("A", "A'", {"A": (2, 3)}).refuted  # shapes differ
    # true (2^3 = 8) but beyond the rules: unknown, neither True nor False, and no exception
    unknown = rw.equivalent("det(2*A)", "8*det(A)", {"A": (3, 3)})
    assert unknown.unknown and not unknown and unknown != True and unknown != False  # noqa: E712
    assert repr(unknown) == "Unknown" and "random points" in unknown.reason


def test_cli_prints_unknown_with_exit_code_3(capsys):
    assert main(["equiv", "det(2*A)", "8*det(A)", "--shape", "A=3,3"]) == 3
    assert capsys.readouterr().out.strip() == "unknown"
    assert main(["equiv", "det(2*A)", "8*det(A)", "--shape", "A=3,3", "--format", "json"]) == 3
    assert capsys.readouterr().out.strip() == '{"equivalent": null}'
    assert main(["equiv", "inv(inv(A))", "A", "--shape", "A=3,3"]) == 0
    assert capsys.readouterr().out.strip() == "true"


#: f(vec(X)) = vec(f(X)) for each elementwise function of the stock registry: an elementwise
#: function commutes with vec (each is its own copy of the trace rule vec-fn, rules/trace.rules)
VEC_IDENTITIES = [(f"vec-{f}", f"{f}(vec(X))", f"vec({f}(X))", {"X": ("m", "n")})
                  for f in ("exp", "log", "sin", "cos", "tanh", "sigmoid", "softplus", "sqrt", "abs",
                            "sign", "step", "relu")]


@pytest.mark.parametrize("name, a, b, shapes", VEC_IDENTITIES, ids=[v[0] for v in VEC_IDENTITIES])
def test_elementwise_functions_commute_with_vec(name, a, b, shapes):
    assert rw.equivalent(a, b, shapes).proved, name
    X = np.random.default_rng(3).uniform(0.2, 2.0, size=(3, 2)) * np.array([[1, -1], [-1, 1], [1, 1]])
    if name in ("vec-log", "vec-sqrt"):
        X = np.abs(X)
    ta, tb = (rw.Engine().term(e, {"X": (3, 2)}) for e in (a, b))
    va, vb = evaluate(ta, {"X": X}), evaluate(tb, {"X": X})
    assert va.shape == vb.shape == (6, 1) and np.allclose(va, vb), name


def test_every_elementwise_function_commutes_with_vec():
    from rewrite.stock import stock_ruleset

    copies = {r.name for r in stock_ruleset().rules if r.name.startswith("vec-fn[")}
    assert copies == {f"vec-fn[{n.removeprefix('vec-')}]" for n, *_ in VEC_IDENTITIES}


#: (expr, what simplify prints for it), A and B n×n (tests/mutation.py checks these too)
SIMPLIFIED = [
    ("tr(A + B) - tr(A)", "tr(B)"),
    ("(A + B)' - B'", "A'"),
    ("inv(inv(A))", "A"),
    ("tr(A) + tr(B)", "tr(A + B)"),
]


@pytest.mark.parametrize("expr, out", SIMPLIFIED)
def test_simplify_cancels_what_the_identities_expand(expr, out):
    shapes = {"A": ("n", "n"), "B": ("n", "n")}
    got = rw.simplify(expr, shapes)
    assert str(got) == out
    check_same_value(expr, got, shapes, spd=("A",))  # and by value (A SPD: inv(inv(A)) defined)


def test_whatever_simplify_reduces_equivalent_proves():
    sq = {"A": ("n", "n"), "B": ("n", "n")}
    for expr in ("inv(inv(A))", "tr(A + B) - tr(A)", "(A + B)' - B'", "det(A')*det(B)"):
        assert rw.equivalent(expr, str(rw.simplify(expr, sq)), sq).proved, expr


# ---------------------------------------------------------------- the identities benchmark ----
# benchmarks/identities.py holds a larger list (part e of the benchmarks): every identity is
# checked numerically here, the engine must prove at least 95 % of them and no near miss.
from benchmarks.identities import IDENTITIES as BENCH_IDENTITIES  # noqa: E402
from benchmarks.identities import NEAR_MISSES as BENCH_NEAR_MISSES  # noqa: E402

#: the share of the benchmark's identities equivalent() must prove
BENCH_PROVED_SHARE = 0.95


def bench_values(case: dict, seed: int, positive: bool = False):
    """The values of a benchmark entry's two sides at a random point of concrete shapes: SPD
    square matrices when its domain says SPD, entrywise positive values when asked or when its
    domain says so, else entries of both signs (square matrices shifted by 2*eye)."""
    eng = rw.default_engine()
    dims = {k: tuple(SIZES.get(d, d) if isinstance(d, str) else d for d in v) for k, v in case["shapes"].items()}
    ta, tb = eng._pair(case["lhs"], case["rhs"], case["shapes"])  # names such as eye(n) stay symbolic
    domain = case.get("domain", "")
    positive = positive or "> 0" in domain or ">= 0" in domain
    rng = np.random.default_rng(seed)
    env = {}
    for name, d in dims.items():
        shape = (d[0] if d else 1, d[1] if len(d) > 1 else 1)
        if "SPD" in domain and shape[0] == shape[1] > 1:
            m = rng.normal(size=shape)
            env[name] = m @ m.T / shape[0] + np.eye(shape[0])
            continue
        x = rng.uniform(0.5, 1.5, shape)
        if not positive:
            x = x * rng.choice([-1.0, 1.0], shape)
        env[name] = x + 2 * np.eye(shape[0]) if shape[0] == shape[1] > 1 and not positive else x
    with np.errstate(all="ignore"):
        return evaluate(ta, env, dims=SIZES), evaluate(tb, env, dims=SIZES)


@pytest.mark.parametrize("case", BENCH_IDENTITIES, ids=[c["name"] for c in BENCH_IDENTITIES])
def test_each_benchmark_identity_holds_numerically(case):
    for seed in (0, 1):
        va, vb = bench_values(case, seed)
        assert np.all(np.isfinite(va)) and np.allclose(va, vb, rtol=1e-9, atol=1e-9), case["name"]


@pytest.mark.parametrize("case", BENCH_NEAR_MISSES, ids=[c["name"] for c in BENCH_NEAR_MISSES])
def test_each_benchmark_near_miss_differs_numerically(case):
    """At some point where both sides are defined (entries of both signs, or positive ones)."""
    defined = 0
    for positive in (False, True):
        for seed in (0, 1, 2):
            va, vb = bench_values(case, seed, positive)
            if np.all(np.isfinite(va)) and np.all(np.isfinite(vb)):
                defined += 1
                if not np.allclose(va, vb, rtol=1e-6, atol=1e-9):
                    return
    pytest.fail(f"{case['name']}: the sides agree at the {defined} points where both are defined")


@pytest.fixture(scope="module")
def bench_answers():
    """equivalent() on every benchmark entry, once for the module."""
    return {kind: {c["name"]: rw.equivalent(c["lhs"], c["rhs"], c["shapes"]) for c in cases}
            for kind, cases in (("identity", BENCH_IDENTITIES), ("near miss", BENCH_NEAR_MISSES))}


def test_benchmark_identities_mostly_proved(bench_answers):
    answers = bench_answers["identity"]
    assert len(answers) >= 70 and len(answers) == len(BENCH_IDENTITIES)  # unique names
    assert not [name for name, v in answers.items() if v.refuted]  # the list is true
    unproved = sorted(name for name, v in answers.items() if not v.proved)
    share = 1 - len(unproved) / len(answers)
    assert share >= BENCH_PROVED_SHARE, f"{100 * share:.1f} % proved; unproved: {unproved}"


def test_no_benchmark_near_miss_is_proved(bench_answers):
    answers = bench_answers["near miss"]
    assert len(answers) >= 25 and len(answers) == len(BENCH_NEAR_MISSES)
    false_claims = sorted(name for name, v in answers.items() if v.proved)
    assert not false_claims, f"FALSE CLAIMS (near misses proved): {false_claims}"


def test_benchmark_entries_cite_and_declare_shapes():
    """Every entry has a citation and declares the shape of every variable it uses."""
    from rewrite.terms import free_vars

    for case in BENCH_IDENTITIES + BENCH_NEAR_MISSES:
        assert case["citation"] and isinstance(case["shapes"], dict), case["name"]
        sides = rw.parse(case["lhs"], case["shapes"]).term, rw.parse(case["rhs"], case["shapes"]).term
        assert free_vars(sides[0]) | free_vars(sides[1]) <= set(case["shapes"]), case["name"]


def test_benchmark_part_e_json_and_markdown(tmp_path):
    """Part e on two entries (no timing checks): its rows, summary and markdown section."""
    import json

    from benchmarks import identities, markdown
    from benchmarks.common import save_json

    data = identities.run(identities=BENCH_IDENTITIES[:1], near_misses=BENCH_NEAR_MISSES[:1], log=lambda *a: None)
    assert [r["kind"] for r in data["rows"]] == ["identity", "near miss"]
    assert all(r["ms"] > 0 and r["sympy"] in ("proved", "not proved") for r in data["rows"])
    s = data["summary"]
    assert (s["identities"], s["proved"], s["near_misses"], s["false_claims"]) == (1, 1, 1, [])
    save_json(tmp_path / "e_identities.json", {**data, "commit": "abc1234", "date": "d"})
    text = markdown.write(tmp_path, tmp_path / "B.md").read_text()
    assert "## e. Textbook identities for `equivalent`" in text and "Commit measured: `abc1234` (parts e)." in text
    assert "| e: no near miss proved (a false claim) | yes (0 of 1 proved) |" in text
    assert f"`{BENCH_IDENTITIES[0]['lhs']} = {BENCH_IDENTITIES[0]['rhs']}`" in text
    assert json.loads((tmp_path / "e_identities.json").read_text())["rows"][0]["engine"] == "proved"


def test_simplify_of_the_difference_of_an_identity_is_zero():
    """One program for both: whatever equivalent proves, simplify(a - b) reduces to a zero of
    the difference's shape."""
    from rewrite.algebra import is_zero

    for name, a, b, shapes in IDENTITIES:
        out = rw.simplify(f"({a}) - ({b})", shapes)
        assert is_zero(out.term), (name, str(out))
        assert out.term.shape == rw.Engine().term(a, shapes).shape, name
