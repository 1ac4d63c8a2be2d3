"""The benchmark parts in tiny sizes: their JSON, the float64 and thread settings they record, the
deviation gate, the fits' exclusions and the markdown's refusal to mix commits (no timing checks)."""

import json

import pytest

from benchmarks import derivation, markdown, run
from benchmarks.common import DEVIATION_GATE, format_table, row_failures


def _float64_everywhere(dtypes: dict) -> bool:
    return bool(dtypes) and set(dtypes.values()) == {"float64"}


def _one_thread(rec: dict) -> None:
    """What a library process records about its threads (run with the default --threads 1)."""
    assert rec["threads"] == 1
    assert all(rec["env"][v] == "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"))
    assert rec.get("cpus", 1) == 1
    if "torch_threads" in rec:
        assert rec["torch_threads"] == 1


def test_quick_part_a_writes_table_json_and_markdown(tmp_path, capsys):
    md = tmp_path / "BENCH.md"
    code = run.main(["--quick", "--part", "a", "--families", "public,mlp-depth", "--cases", "2",
                     "--out", str(tmp_path), "--markdown", str(md)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "e-nodes" in printed and "cookbook-2.1.2-eq49" in printed and "mlp-L4" in printed
    # the fit says which runs it used and how many stopped on a limit (quick: too few for a fit)
    assert "[a] tanh network: no fitted exponent of time against L (L ≥ 4): 1 run ran to the end" in printed
    assert "0 runs stopped on a limit were excluded" in printed
    data = json.loads((tmp_path / "a_derivation.json").read_text())
    assert data["commit"] and data["time_utc"].endswith("Z") and data["wall_seconds"] > 0
    assert "no cache of derivation results" in data["caches"]["results"]
    assert data["startup"]["public"]["stock_rules_cache"] == "0"  # measured with the cache off
    public = data["families"]["public"]
    assert [r["id"] for r in public] == ["cookbook-2.1.2-eq49", "cookbook-2.1.1-eq46-AXB"]
    for r in public + data["families"]["mlp-depth"]:
        assert r["stop"] in derivation.FINISHED and r["enodes"] > 0 and r["iterations"] > 0
        assert not derivation.stopped_on_limit(r)
        assert r["fd_err"] < 1e-6  # the benchmark measured correct derivations
        assert r["peak_mb"] >= 0
        sp = r["split_ms"]  # where the time went: egglog by kind, the rest Python
        assert set(sp) == {"checkpoint", "insert", "rules", "read", "python", "wall"}
        assert all(sp[k] > 0 for k in ("checkpoint", "insert", "rules", "read", "wall"))
        assert sum(sp[k] for k in ("checkpoint", "insert", "rules", "read")) < sp["wall"]
    text = md.read_text()
    assert f"Commit measured: `{data['commit']}` (parts a)." in text
    assert "## Machine" in text and "## a. Derivation latency" in text and "cookbook-2.1.1-eq46-AXB" in text
    assert "| median derivation ≤ 10 ms on the public cases |" in text
    assert "## Caches" in text and "TRACEGRAD_CACHE=0" in text
    assert "* tanh network: no fitted exponent" in text
    assert "| over the public cases | checkpoint | insert terms | run rules |" in text
    assert "egglog alone takes a median" in text
    cold = data["cold_start"]  # whole processes, by where they find the stock rules
    assert set(cold) == {"files", "cache", "first"}
    assert all(v["ms"] > 0 and v["peak_mb"] > 0 for v in cold.values())
    assert "Cold start: a whole fresh process" in text and "read from the start-up cache" in text
    machine = json.loads((tmp_path / "machine.json").read_text())
    assert machine["cores"] >= 1 and machine["versions"]["egglog"] != "not installed"
    assert machine["commit"] == data["commit"]
    pytest.importorskip("matplotlib")
    assert (tmp_path / "a_public.png").stat().st_size > 1000
    assert "](a_public.png)" in text


def test_a_case_stopped_by_a_limit_is_reported_with_its_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_MAX_ITERATIONS", "2")  # inherited by the family's fresh process
    data = derivation.run(quick=True, families=["trace-product"], max_cases=1, log=lambda *a: None)
    (row,) = data["families"]["trace-product"]
    assert row["id"] == "tr-k2-x1"
    assert row["stop"] == "iteration-limit" and "error" in row
    assert derivation.stopped_on_limit(row)
    assert any("iteration-limit" in h for h in derivation.summary(data)["limit_hits"])


def test_summary_fits_exclude_runs_stopped_on_a_limit():
    qsum = [{"id": f"qsum-m{m}", "param": m, "ms": 2.0 * m, "stop": "saturated"} for m in (1, 4, 8, 16)]
    # a gradient, but its simplification stopped on the node limit: faster than the whole work
    qsum.append({"id": "qsum-m64", "param": 64, "ms": 20.0, "stop": "saturated",
                 "phase_limits": "simplify:node-limit"})
    qsum.append({"id": "qsum-m128", "param": 128, "ms": 900.0, "stop": "time-limit", "error": "LimitError"})
    mlp = [{"id": f"mlp-L{n}", "param": n, "ms": 5.0 * n ** 0.5, "stop": "saturated"} for n in (2, 4, 16, 64)]
    data = {"families": {
        "public": [{"id": f"c{i}", "ms": float(i)} for i in range(1, 21)],
        "quadratic-sum": qsum, "mlp-depth": mlp,
    }}
    s = derivation.summary(data)
    assert s["public_median_ms"] == 10.5 and s["public_p95_ms"] == pytest.approx(19.05)
    assert s["qsum_max_m"] == 64 and s["qsum_max_ms"] == 20.0 and s["qsum_max_limited"]
    assert s["qsum_exponent"] == pytest.approx(1.0)  # m = 4, 8, 16 only
    assert s["qsum_fit"]["params"] == [4, 8, 16]
    assert s["qsum_fit"]["excluded"] == ["qsum-m64: simplify:node-limit", "qsum-m128: time-limit"]
    assert s["mlp_exponent"] == pytest.approx(0.5) and s["mlp_fit"]["excluded"] == []
    assert "2 runs stopped on a limit were excluded" in s["fits"][0]
    assert "0 runs stopped on a limit were excluded" in s["fits"][1]
    assert "2 runs stopped on a limit were excluded" in markdown.fit_check(s["qsum_fit"])
    # without the excluded runs the fit would have been distorted
    assert derivation.fitted_exponent([(r["param"], r["ms"]) for r in qsum[1:5]]) < 0.9


def test_benchmark_module_examples():
    import doctest

    from benchmarks import autodiff, common, hessian, vs_sympy

    for mod in (autodiff, common, derivation, hessian, markdown, vs_sympy):
        result = doctest.testmod(mod)
        assert result.attempted > 0 and result.failed == 0, mod.__name__


def test_format_table_aligns_and_marks_missing_values():
    out = format_table([{"a": "x", "b": 1.5}, {"a": "long name"}], [("a", "case"), ("b", "ms")])
    lines = out.splitlines()
    assert lines[0].startswith("case") and lines[2].startswith("x ")
    assert lines[3].split() == ["long", "name", "-"]


def test_part_b_runs_in_its_own_process():
    from benchmarks import vs_sympy

    data = vs_sympy.run_isolated(quick=True, repeats=1, max_cases=2, log=lambda *a: None)
    assert len(data["rows"]) == 2 and data["rows"][0]["id"] == "cookbook-2.1.2-eq49"
    assert all(r["engine"] == "correct" and r["engine_ms"] > 0 for r in data["rows"])
    assert data["summary"]["cases"] == 2
    _one_thread(data["threads"])


def test_part_c_float64_threads_and_gate():
    """Gradient code: every library in its own one-thread process, float64 inputs (the ridge's
    scalar lam too) and results within the gate of the engine's interpreter."""
    from benchmarks import autodiff

    data = autodiff.run(sizes=[8], problems=["ridge"], repeats=1, log=lambda *a: None)
    (row,) = data["rows"]
    assert data["gate"]["passed"] and row["gate"] == "ok", data["gate"]
    assert data["threads"]["threads"] == 1
    assert set(data["threads"]["per_backend"]) == set(data["backends"])
    for b in data["backends"]:
        _one_thread(data["threads"]["per_backend"][b])
        assert row[f"{b}_ms"] > 0
        assert row[f"{b}_dev"] <= DEVIATION_GATE
        assert _float64_everywhere(row[f"{b}_dtypes"]) and "lam" in row[f"{b}_dtypes"], (b, row[f"{b}_dtypes"])
    if "torch" in data["backends"]:
        assert data["threads"]["per_backend"]["torch"]["torch_threads"] == 1
    if "jax" in data["backends"]:
        assert data["threads"]["per_backend"]["jax"]["jax_x64"] is True


def test_part_d_float64_threads_gate_and_markdown(tmp_path):
    """Second order: a tiny run of two problems (one with a scalar lam, one with a matrix
    variable compared in vec layout); every library in its own process, float64 everywhere, and
    every autodiff result within the gate."""
    from benchmarks import hessian

    data = hessian.run(sizes=[8, 12], repeats=1, problems=["ridge-logistic", "trace-quadratic"],
                       log=lambda *a: None)
    assert data["gate"]["passed"], data["gate"]
    assert data["threads"]["threads"] == 1 and "engine" in data["threads"]["per_backend"]
    for rec in data["threads"]["per_backend"].values():
        _one_thread(rec)
    for name, p in data["problems"].items():
        assert [r["n"] for r in p["rows"]] == [8, 12]
        assert p["info"]["derive_seconds"] > 0
        for r in p["rows"]:
            assert r["engine_h"] > 0 and r["engine_v"] > 0 and r["gate"] == "ok"
            assert _float64_everywhere(r["engine_dtypes"])
            for b in p["info"]["backends"]:
                assert r[f"{b}_dev"] <= DEVIATION_GATE, (name, b)
                assert _float64_everywhere(r[f"{b}_dtypes"]), (name, b, r[f"{b}_dtypes"])
                assert r[f"{b}_h"] > 0 and r[f"{b}_v_x"] > 0
    assert "lam" in data["problems"]["ridge-logistic"]["rows"][0]["engine_dtypes"]
    assert data["problems"]["trace-quadratic"]["rows"][0]["N"] == 8  # (8 / 4) × 4 entries
    assert hessian.summary(data) == {}  # nothing measured at n ≥ 500
    (tmp_path / "d_hessian.json").write_text(json.dumps({**data, "commit": "abc1234", "date": "today"}))
    text = markdown.write(tmp_path, tmp_path / "B.md").read_text()
    assert "## d. Generated second-order code against autodiff" in text
    assert "### trace-quadratic: `f = tr(X'*A*X)`" in text
    assert "kron(eye(k), A + A')" in text or "kron(eye(k), A' + A)" in text
    assert "| d: autodiff Hessians and HVPs within 1e-12 (relative) of the engine's, every input float64 | yes" \
        in text
    assert "Threads: 1 math-library thread(s) in every library process" in text


def test_part_d_gate_fails_on_an_injected_deviation(tmp_path, capsys):
    """A relative error of 1e-9 in the autodiff results (the size of the float32 lam it once
    had) fails the gate: in the table, in the markdown and in the exit code."""
    pytest.importorskip("torch")
    md = tmp_path / "B.md"
    code = run.main(["--part", "d", "--sizes", "8", "--repeats", "1", "--inject-deviation", "1e-9",
                     "--problems", "ridge-logistic", "--out", str(tmp_path), "--markdown", str(md)])
    assert code == 1
    captured = capsys.readouterr()
    assert "deviation gate (relative, <= 1e-12) FAILED" in captured.out
    assert "deviation gate failed in part(s) d" in captured.err
    data = json.loads((tmp_path / "d_hessian.json").read_text())
    assert not data["gate"]["passed"] and data["inject_deviation"] == 1e-9
    row = data["problems"]["ridge-logistic"]["rows"][0]
    assert row["torch_dev"] == pytest.approx(1e-9, rel=1e-3)
    assert row["gate"].startswith("FAIL: ") and "torch deviation 1e-09 > 1e-12" in row["gate"]
    text = md.read_text()
    assert "**Deviation gate FAILED**" in text and "**Deviation injected on purpose**" in text
    assert "| d: autodiff Hessians and HVPs within 1e-12 (relative) of the engine's, every input float64 " \
           "| **no — FAILED**" in text


def test_a_float32_scalar_fails_the_checks():
    """What part d once did: torch.as_tensor(0.1) is float32, which the dtype check refuses."""
    torch = pytest.importorskip("torch")
    from benchmarks.common import dtypes_of, rel_dev

    dtypes = dtypes_of({"lam": torch.as_tensor(0.1), "w": torch.ones(2, dtype=torch.float64)})
    assert dtypes == {"lam": "float32", "w": "float64"}
    assert row_failures({"torch_dev": 0.0, "torch_dtypes": dtypes}, ["torch"]) == ["torch: input lam is float32"]
    # and its effect on ridge's H·V (lam*V): (float32(0.1) - 0.1) · max|V|, far above the gate
    v = torch.linspace(-3.5, 3.5, 8, dtype=torch.float64)
    dev = rel_dev((torch.as_tensor(0.1) * v).numpy(), (0.1 * v).numpy())
    assert 1e-9 < dev < 1e-7


def _fake_parts(out, commits: dict) -> None:
    from benchmarks import vs_sympy

    bodies = {"a": {"families": {}}, "b": {"rows": [], "summary": vs_sympy.summarise([])},
              "c": {"rows": []}, "d": {"problems": {}}}
    for i, (part, commit) in enumerate(commits.items()):
        data = {**bodies[part], "date": f"2026-12-0{i + 1} 10:00 UTC", "time_utc": f"2026-12-0{i + 1}T10:00:00Z"}
        if commit:
            data["commit"] = commit
        (out / markdown.PART_FILES[part]).write_text(json.dumps(data))


def test_markdown_refuses_to_mix_commits(tmp_path, capsys):
    _fake_parts(tmp_path, {"a": "new1234", "b": "old5678", "c": None})
    with pytest.raises(markdown.MixedCommitsError) as e:
        markdown.write(tmp_path, tmp_path / "B.md")
    msg = str(e.value)
    assert "a at new1234" in msg and "b at old5678" in msg and "c at not recorded" in msg
    assert "--allow-mixed-commits" in msg
    assert not (tmp_path / "B.md").exists()
    # the same through the runner: exit code 2, nothing written
    assert run.main(["--part", "none", "--out", str(tmp_path), "--markdown", str(tmp_path / "B.md")]) == 2
    assert "come from different commits" in capsys.readouterr().err
    assert not (tmp_path / "B.md").exists()
    # allowed: written, saying which parts are older than the most recent one (c, then a)
    assert run.main(["--part", "none", "--allow-mixed-commits", "--out", str(tmp_path),
                     "--markdown", str(tmp_path / "B.md")]) == 0
    text = (tmp_path / "B.md").read_text()
    assert "Commits measured (mixed): part a `new1234` (older), part b `old5678` (older), part c " \
           "`not recorded`." in text
    assert "**Mixed commits** (written with `--allow-mixed-commits`): parts a, b are older than part c" in text


def test_markdown_header_prints_the_one_commit(tmp_path):
    _fake_parts(tmp_path, {"a": "abc1234", "b": "abc1234", "c": "abc1234", "d": "abc1234"})
    text = markdown.write(tmp_path, tmp_path / "B.md").read_text()
    assert text.splitlines()[2] == "Commit measured: `abc1234` (parts a, b, c, d)."
    assert "Mixed commits" not in text


def test_worker_process_can_be_pinned_to_one_core():
    import os

    from benchmarks.common import run_worker

    rows, err = run_worker("benchmarks.common", "emit", {"ok": 1}, timeout=60, cpus=1)
    assert err is None and rows == [{"ok": 1}]
    if hasattr(os, "sched_getaffinity"):
        code = ("import os, json; print(json.dumps({'cores': len(os.sched_getaffinity(0)), "
                "'omp': os.environ.get('OMP_NUM_THREADS'), 'cache': os.environ.get('TRACEGRAD_CACHE')}))")
        rows, err = run_worker("builtins", "exec", code, timeout=60, threads=1)
        assert err is None and rows == [{"cores": 1, "omp": "1", "cache": "0"}]
