"""The benchmark runner's quick mode produces its tables, JSON, plots and markdown (no timing checks)."""

import json

import pytest

from benchmarks import derivation, run
from benchmarks.common import format_table


def test_quick_part_a_writes_table_json_and_markdown(tmp_path, capsys):
    md = tmp_path / "BENCH.md"
    code = run.main(["--quick", "--part", "a", "--families", "public,trace-product", "--cases", "2",
                     "--out", str(tmp_path), "--markdown", str(md)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "e-nodes" in printed and "cookbook-2.1.2-eq49" in printed and "tr-k2-x1" in printed
    data = json.loads((tmp_path / "a_derivation.json").read_text())
    public = data["families"]["public"]
    assert [r["id"] for r in public] == ["cookbook-2.1.2-eq49", "cookbook-2.1.1-eq46-AXB"]
    for r in public + data["families"]["trace-product"]:
        assert r["stop"] == "saturated" and r["enodes"] > 0 and r["iterations"] > 0
        assert r["fd_err"] < 1e-6  # the benchmark measured correct derivations
        assert r["peak_mb"] >= 0
    text = md.read_text()
    assert "## Machine" in text and "## a. Derivation latency" in text and "cookbook-2.1.1-eq46-AXB" in text
    assert "| median derivation ≤ 10 ms on the public cases |" in text
    cold = data["cold_start"]  # whole processes, by where they find the stock rules
    assert set(cold) == {"files", "cache", "first"}
    assert all(v["ms"] > 0 and v["peak_mb"] > 0 for v in cold.values())
    assert "Cold start: a whole fresh process" in text and "read from the start-up cache" in text
    machine = json.loads((tmp_path / "machine.json").read_text())
    assert machine["cores"] >= 1 and machine["versions"]["egglog"] != "not installed"
    pytest.importorskip("matplotlib")
    assert (tmp_path / "a_public.png").stat().st_size > 1000
    assert "](a_public.png)" in text


def test_a_case_stopped_by_a_limit_is_reported_with_its_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_MAX_ITERATIONS", "2")  # inherited by the family's fresh process
    data = derivation.run(quick=True, families=["trace-product"], max_cases=1, log=lambda *a: None)
    (row,) = data["families"]["trace-product"]
    assert row["id"] == "tr-k2-x1"
    assert row["stop"] == "iteration-limit" and "error" in row
    assert any("iteration-limit" in h for h in derivation.summary(data)["limit_hits"])


def test_summary_figures_from_rows():
    data = {"families": {
        "public": [{"id": f"c{i}", "ms": float(i)} for i in range(1, 21)],
        "quadratic-sum": [{"id": f"q{m}", "param": m, "ms": 2.0 * m, "stop": "saturated"} for m in (4, 8, 16, 64)],
    }}
    s = derivation.summary(data)
    assert s["public_median_ms"] == 10.5 and s["public_p95_ms"] == pytest.approx(19.05)
    assert s["qsum_max_m"] == 64 and s["qsum_max_ms"] == 128.0
    assert s["qsum_exponent"] == pytest.approx(1.0)


def test_benchmark_module_examples():
    import doctest

    from benchmarks import autodiff, common, markdown, vs_sympy

    for mod in (autodiff, common, derivation, markdown, vs_sympy):
        result = doctest.testmod(mod)
        assert result.attempted > 0 and result.failed == 0, mod.__name__


def test_format_table_aligns_and_marks_missing_values():
    out = format_table([{"a": "x", "b": 1.5}, {"a": "long name"}], [("a", "case"), ("b", "ms")])
    lines = out.splitlines()
    assert lines[0].startswith("case") and lines[2].startswith("x ")
    assert lines[3].split() == ["long", "name", "-"]


def test_part_d_rows_summary_and_markdown(tmp_path):
    """Second order: a tiny run of two problems (one with a matrix variable, compared in vec
    layout) agrees with every installed autodiff backend and lands in the report."""
    from benchmarks import hessian, markdown

    data = hessian.run(sizes=[8, 12], repeats=1, problems=["trace-quadratic", "logistic"])
    for name, p in data["problems"].items():
        assert [r["n"] for r in p["rows"]] == [8, 12]
        for r in p["rows"]:
            assert r["engine_h"] > 0 and r["engine_v"] > 0
            for b in p["info"]["backends"]:
                assert r[f"{b}_dev"] < 1e-9, (name, b)
    assert data["problems"]["trace-quadratic"]["rows"][0]["N"] == 8  # (8 / 4) × 4 entries
    assert hessian.summary(data) == {}  # nothing measured at n ≥ 500
    (tmp_path / "d_hessian.json").write_text(json.dumps(data))
    md = markdown.write(tmp_path, tmp_path / "B.md")
    text = md.read_text()
    assert "## d. Generated second-order code against autodiff" in text
    assert "### trace-quadratic: `f = tr(X'*A*X)`" in text
    assert "kron(eye(k), A + A')" in text or "kron(eye(k), A' + A)" in text


def test_worker_process_can_be_pinned_to_one_core():
    import os

    from benchmarks.common import run_worker

    rows, err = run_worker("benchmarks.common", "emit", {"ok": 1}, timeout=60, cpus=1)
    assert err is None and rows == [{"ok": 1}]
    if hasattr(os, "sched_getaffinity"):
        code = "import os, json; print(json.dumps({'cores': len(os.sched_getaffinity(0))}))"
        rows, err = run_worker("builtins", "exec", code, timeout=60, cpus=1)
        assert err is None and rows == [{"cores": 1}]
