"""``tracegrad batch``: one JSON line per job, failing jobs reported in place, exit code 0/2."""

import io
import json

import numpy as np
import pytest
from conftest import check_gradient_text

import rewrite as rw
from rewrite.cli import main
from rewrite.cli.batch import Progress, parse_job, run_batch
from rewrite.errors import ParseError
from rewrite.numeric import evaluate, finite_difference, instantiate_dims, random_point, relative_error
from rewrite.terms import var_shapes

JOBS = [
    '{"expr": "norm2sq(X*w - y)", "wrt": "w", "shapes": {"X": [6, 3], "w": [3], "y": [6]}}',
    "tr(X'*A*X) ; X ; X=n,k A=n,n",
    "",
    "# a comment line",
    "tr(X ; X ; X=3,3",                                   # parse error in the expression
    '{"expr": "tr(A*X)", "wrt": "X", "shapes": {"A": [2, 3], "X": [2, 3]}}',  # shape error
    '{"expr": "tr(A*X)", "wrt": "X"',                     # malformed JSON
    "sum(exp(X)) ; Y",                                    # wrt not in the expression
    '{"expr": "tr(A*X)", "wrt": "X", "shape": {}}',       # unknown key
    "a'*X*b ; X ; a=m X=m,n b=n",
]


def check_result(o: dict, shapes: dict, seeds=(0, 1)) -> None:
    """A batch result by value: its gradient has wrt's shape and matches central finite
    differences of its expression (random distinct sizes for symbolic dimensions), and its
    differential at (X, dX) is tr(G'*dX) = sum(G .* dX) with that gradient."""
    for seed in seeds:
        check_gradient_text(o["expr"], o["wrt"], shapes, o["gradient"], seed=seed)
    dx = "d" + o["wrt"]
    with_dx = {**shapes, dx: shapes[o["wrt"]]}
    both = rw.parse(f"sum(({o['gradient']}) .* {dx}) + {o['differential']}", with_dx).term
    rng = np.random.default_rng(0)
    dims = instantiate_dims(both, rng)
    env = random_point(both, rng, dims)
    df = evaluate(rw.parse(o["differential"], with_dx).term, env, dims=dims)
    gdx = evaluate(rw.parse(f"sum(({o['gradient']}) .* {dx})", with_dx).term, env, dims=dims)
    assert df.shape == (1, 1) and relative_error(df, gdx) < 1e-9, o["differential"]


def run_cli(capsys, lines, *extra, tmp_path):
    path = tmp_path / "jobs.txt"
    path.write_text("\n".join(lines) + "\n")
    code = main(["batch", str(path), *extra])
    cap = capsys.readouterr()
    return code, [json.loads(s) for s in cap.out.splitlines()], cap.err


def test_mixed_good_and_bad_lines(capsys, tmp_path):
    code, out, err = run_cli(capsys, JOBS, tmp_path=tmp_path)
    assert code == 2
    assert err == ""  # no progress bar when stderr is not a terminal
    assert [o["line"] for o in out] == [1, 2, 5, 6, 7, 8, 9, 10]
    ok = {o["line"]: o for o in out if "error" not in o}
    bad = {o["line"]: o["error"] for o in out if "error" in o}
    assert sorted(ok) == [1, 2, 10]
    assert bad[5]["kind"] == "parse" and bad[5]["position"] == {"line": 5, "column": 5}
    # an error in a JSON job's "expr" is located in that string (line 1): A*X at column 4
    assert bad[6]["kind"] == "shape" and bad[6]["position"] == {"line": 1, "column": 4}
    assert "inner dimensions" in bad[6]["message"]
    assert bad[7]["kind"] == "parse" and "malformed JSON" in bad[7]["message"]
    assert bad[7]["position"] == {"line": 7, "column": 31}  # past the end: ',' or '}' missing
    assert bad[8]["kind"] == "wrt" and bad[8]["position"] is None and "'Y'" in bad[8]["message"]
    assert bad[9]["kind"] == "parse" and "unknown key" in bad[9]["message"]
    assert bad[9]["position"] == {"line": 9, "column": 1}
    # the answers, by value
    check_result(ok[1], {"X": (6, 3), "w": (3,), "y": (6,)})
    check_result(ok[2], {"X": ("n", "k"), "A": ("n", "n")})
    check_result(ok[10], {"a": ("m",), "X": ("m", "n"), "b": ("n",)})


def test_error_positions_point_into_the_line(capsys, tmp_path):
    """A text job's expression error is located in the input line (shifted by where the
    expression starts), a JSON job's in its "expr" string; each job reports its own error."""
    lines = ["tr(A*X) ; X ; A=2,3 X=2,3",
             "   tr(A*X) ; X ; A=2,3 X=2,3",
             '{"expr": "sum(X) + tr(X)", "wrt": "X", "shapes": {"X": [2, 3]}}',
             "tr(X) ; X ; X=2,3",
             "x'*y ; x ; x=3 y=4"]
    code, out, _ = run_cli(capsys, lines, tmp_path=tmp_path)
    assert code == 2 and [o["line"] for o in out] == [1, 2, 3, 4, 5]
    assert all(o["error"]["kind"] == "shape" for o in out)
    assert [tuple(o["error"]["position"].values()) for o in out] == [
        (1, 4), (2, 7), (1, 10), (4, 1), (5, 1)]
    assert "square" in out[2]["error"]["message"] and "square" in out[3]["error"]["message"]


def test_fields_are_those_of_grad_json(capsys, tmp_path):
    code, out, _ = run_cli(capsys, [JOBS[1]], tmp_path=tmp_path)
    assert code == 0
    assert main(["grad", "tr(X'*A*X)", "--wrt", "X", "--shape", "X=n,k", "--shape", "A=n,n",
                 "--format", "json"]) == 0
    single = json.loads(capsys.readouterr().out)
    (job,) = out
    assert set(job) == set(single) | {"line"}
    for key in ("expr", "wrt", "gradient", "differential", "latex"):
        assert job[key] == single[key]
    assert set(job["report"]) == set(single["report"])
    check_result(job, {"X": ("n", "k"), "A": ("n", "n")})  # the fields shared are right


def test_batch_gradients_match_finite_differences(capsys, tmp_path):
    lines = ["norm2sq(X*w - y) ; w ; X=m,n w=n y=m",
             '{"expr": "tr(A*X*B*X\'*C)", "wrt": "X", "shapes": {"A": "p,m", "X": "m,n", "B": "n,n",'
             ' "C": "m,p"}}',
             "sum(softplus(-y .* (X*w))) ; w ; X=m,n w=n y=m"]
    code, out, _ = run_cli(capsys, lines, "--check", tmp_path=tmp_path)
    assert code == 0 and len(out) == 3
    for o in out:
        assert o["check"]["relative_error"] < 1e-6
    # checked here too, not only by the batch's own --check: random distinct sizes, two points
    logistic = {"X": ("m", "n"), "w": ("n",), "y": ("m",)}
    check_result(out[0], logistic)
    check_result(out[1], {"A": ("p", "m"), "X": ("m", "n"), "B": ("n", "n"), "C": ("m", "p")})
    check_result(out[2], logistic)
    shapes = {"X": ("m", "n"), "w": ("n",), "y": ("m",)}
    f = rw.parse("norm2sq(X*w - y)", shapes).term
    g = rw.parse(out[0]["gradient"], shapes).term
    rng = np.random.default_rng(3)
    dims = instantiate_dims(f, rng, fixed={"m": 5, "n": 3})
    env = random_point(f, rng, dims)
    fd = finite_difference(f, "w", env, dims=dims)
    assert relative_error(evaluate(g, env, dims=dims), fd) < 1e-6


def test_all_good_exits_zero_and_reads_stdin(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("tr(A*X) ; X ; A=2,3 X=3,2\n\nsum(X) ; X\n"))
    assert main(["batch", "-"]) == 0
    out = [json.loads(s) for s in capsys.readouterr().out.splitlines()]
    assert [o["line"] for o in out] == [1, 3] and out[0]["gradient"] == "A'"
    check_result(out[0], {"A": (2, 3), "X": (3, 2)})
    # no shapes given: X has the symbolic shape the parser gives it; the gradient is all ones
    check_result(out[1], var_shapes(rw.parse("sum(X)").term))
    assert "ones(" in out[1]["gradient"]


def test_an_unexpected_exception_does_not_stop_the_batch(monkeypatch):
    from rewrite.engine import default_engine

    eng = default_engine()
    real = eng.gradient

    def flaky(expr, wrt, shapes=None, limits=None):
        if "boom" in expr:
            raise RuntimeError("engine bug")
        return real(expr, wrt, shapes, limits)

    monkeypatch.setattr(eng, "gradient", flaky)
    out = io.StringIO()
    code = run_batch(["tr(boom*X) ; X", "tr(A*X) ; X ; A=2,3 X=3,2"], out, eng)
    rows = [json.loads(s) for s in out.getvalue().splitlines()]
    assert code == 2
    assert rows[0]["error"]["kind"] == "internal" and "engine bug" in rows[0]["error"]["message"]
    assert rows[1]["gradient"] == "A'"
    check_result(rows[1], {"A": (2, 3), "X": (3, 2)})


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal():
    tty, out = FakeTerminal(), io.StringIO()
    assert run_batch(["tr(A*X) ; X ; A=2,3 X=3,2", "tr(X ; X"], out, progress_stream=tty) == 2
    assert "2/2 (1 failed)" in tty.getvalue() and tty.getvalue().endswith("\n")
    assert all(line.startswith("{") for line in out.getvalue().splitlines())
    pipe = io.StringIO()
    p = Progress(3, pipe)
    p.step(True)
    p.close()
    assert pipe.getvalue() == ""


def test_parse_job_forms_and_errors():
    job = parse_job('  {"expr": "tr(X)", "wrt": "X", "shapes": {"X": [3, 3]}, "check": true}', 4)
    assert (job.expr, job.wrt, job.shapes, job.check) == ("tr(X)", "X", {"X": (3, 3)}, True)
    job = parse_job("tr(X) ; X ; X=3,3 c=", 1)
    assert job.shapes == {"X": (3, 3), "c": ()}
    assert parse_job("   ", 1) is None and parse_job("# note", 1) is None
    with pytest.raises(ParseError) as e:
        parse_job("tr(X) ; X ; X=3,3,3", 7)
    assert e.value.position == (7, 13)
    with pytest.raises(ParseError, match="shape of 'X'"):
        parse_job('{"expr": "tr(X)", "wrt": "X", "shapes": {"X": [0, 3]}}', 1)
    with pytest.raises(ParseError, match="'check' must be true or false"):
        parse_job('{"expr": "tr(X)", "wrt": "X", "check": "yes"}', 1)
    with pytest.raises(ParseError, match="must be an object"):
        parse_job('["tr(X)", "X"]', 1)


def test_missing_file_is_an_error(capsys, tmp_path):
    assert main(["batch", str(tmp_path / "nope.txt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read" in err
