"""Part a: derivation latency on the public cases and on scaling families.

Each family runs in a fresh Python process (cases in increasing size). For every case:
median wall-clock time of ``rewrite.gradient`` (parsing, the e-graph run, extraction and the
simplification of G), the run's report (stop reason, iterations, e-classes, e-nodes), the growth
of the process's peak resident set since warm-up (``resource.getrusage(...).ru_maxrss``, which
also counts egglog's Rust heap; cumulative along the family) and the relative error of the
gradient against central finite differences at a random point.

There is no result cache to turn off: every timed call runs the whole derivation (the package
caches only the parsed stock rules, and the processes here run with that cache off,
``TRACEGRAD_CACHE=0``, except the cold-start measurement, which times it on purpose). A fitted
growth exponent uses only the runs that ran to their end (goal or saturation) in every phase: a
run whose report shows it stopped on a limit (iterations, e-nodes, time, memory; in the derivation or in a phase
such as the bounded simplification of G) did less than the whole work, and is excluded and
counted.

>>> [c["id"] for c in trace_product_family([3], [1, 2])]
['tr-k3-x1', 'tr-k3-x2']
>>> trace_product_family([3], [2])[0]["expr"]
'tr(X*F1*X)'
>>> quadratic_sum_family([2])[0]["expr"]
"x'*A1*x + x'*A2*x"
>>> nested_inverse_family([2])[0]["expr"]
'tr(B*inv(A2 + inv(A1 + X)))'
>>> elementwise_chain_family([2])[0]["expr"]
'sum(sin(A2 .* tanh(A1 .* X)))'
>>> stopped_on_limit({"stop": "saturated", "phase_limits": "simplify:node-limit"})
True
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from rewrite.numeric import constraints_from_assumptions
from rewrite.report import TIMING_KINDS

from .common import (
    PUBLIC_CASES,
    emit,
    format_table,
    median,
    percentile,
    plt,
    run_worker,
    time_call,
)

STARTUP = "_startup"  # the worker's row for its first gradient (rules compiled and loaded)
FAMILIES = ("public", "trace-product", "quadratic-sum", "nested-inverse", "elementwise-chain",
            "mlp-depth")
#: stop reasons that mean a run (or one of its phases) was cut short by a limit
LIMIT_STOPS = ("iteration-limit", "node-limit", "time-limit", "memory-limit")
#: stop reasons of a run that ended on its own: it reached its goal, or no rule changed anything
FINISHED = ("goal", "saturated")
#: a fitted exponent needs at least this many runs that ran to their end
FIT_MIN_POINTS = 3
EW_FUNCTIONS = ("tanh", "sin", "exp", "sigmoid", "cos", "softplus")


# ----------------------------------------------------------------------------- families ----
def trace_product_family(ks, xs) -> list[dict]:
    """tr(F1…Fk) with X at ``x`` evenly spread positions among the ``k`` factors.

    Dimensions are non-square names chained around the trace; when two X are adjacent (cyclically)
    every factor is square ``n×n``.
    """
    out = []
    for k in ks:
        for x in xs:
            if x > k:
                continue
            pos = {round(i * k / x) for i in range(x)}
            names, c = [], 0
            for i in range(k):
                if i in pos:
                    names.append("X")
                else:
                    c += 1
                    names.append(f"F{c}")
            adjacent = any(names[i] == "X" == names[(i + 1) % k] for i in range(k))
            shapes: dict[str, tuple] = {}
            if adjacent:
                shapes = {n: ("n", "n") for n in names}
            else:
                shapes["X"] = ("p", "q")
                left = "p"
                for i, n in enumerate(names):
                    if n == "X":
                        left = "q"
                        continue
                    nxt = names[(i + 1) % k]
                    right = "p" if nxt == "X" else f"d{i}"
                    shapes[n] = (left, right)
                    left = right
            out.append({"id": f"tr-k{k}-x{x}", "expr": "tr(" + "*".join(names) + ")", "wrt": "X",
                        "shapes": shapes, "param": k, "series": f"X x{x}"})
    return out


def quadratic_sum_family(ms) -> list[dict]:
    """x'*A1*x + … + x'*Am*x with distinct n×n matrices."""
    out = []
    for m in ms:
        shapes = {"x": ("n",), **{f"A{i}": ("n", "n") for i in range(1, m + 1)}}
        expr = " + ".join(f"x'*A{i}*x" for i in range(1, m + 1))
        out.append({"id": f"qsum-m{m}", "expr": expr, "wrt": "x", "shapes": shapes, "param": m,
                    "series": "quadratic forms"})
    return out


def nested_inverse_family(depths) -> list[dict]:
    """tr(B*inv(Ad + inv(… inv(A1 + X))))."""
    out = []
    for d in depths:
        e = "X"
        for i in range(1, d + 1):
            e = f"inv(A{i} + {e})"
        shapes = {"X": ("n", "n"), "B": ("n", "n"), **{f"A{i}": ("n", "n") for i in range(1, d + 1)}}
        out.append({"id": f"inv-d{d}", "expr": f"tr(B*{e})", "wrt": "X", "shapes": shapes, "param": d,
                    "series": "nested inverses"})
    return out


def elementwise_chain_family(depths) -> list[dict]:
    """sum(f_d(A_d .* … f_1(A1 .* X))) cycling through elementwise functions."""
    out = []
    for d in depths:
        e = "X"
        for i in range(1, d + 1):
            e = f"{EW_FUNCTIONS[(i - 1) % len(EW_FUNCTIONS)]}(A{i} .* {e})"
        shapes = {"X": ("m", "n"), **{f"A{i}": ("m", "n") for i in range(1, d + 1)}}
        out.append({"id": f"ew-d{d}", "expr": f"sum({e})", "wrt": "X", "shapes": shapes, "param": d,
                    "series": "elementwise chain"})
    return out


def mlp_depth_family(depths) -> list[dict]:
    """sum(tanh(WL*…tanh(W1*x))) with respect to the first weight: the gradient of an L-layer
    tanh network."""
    out = []
    for d in depths:
        e = "x"
        for i in range(1, d + 1):
            e = f"tanh(W{i}*{e})"
        shapes = {"x": ("n",), **{f"W{i}": ("n", "n") for i in range(1, d + 1)}}
        out.append({"id": f"mlp-L{d}", "expr": f"sum({e})", "wrt": "W1", "shapes": shapes, "param": d,
                    "series": "tanh network"})
    return out


def fitted_exponent(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(time) against log(size): 1 is linear growth.

    >>> round(fitted_exponent([(2, 10.0), (4, 20.0), (8, 40.0)]), 6)
    1.0
    """
    if len(points) < 2:
        return None
    xs, ys = [math.log(a) for a, _ in points], [math.log(b) for _, b in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def stopped_on_limit(row: dict) -> bool:
    """Whether a case's report shows a limit: its stop reason, or a phase's (``phase_limits``).

    >>> stopped_on_limit({"stop": "saturated"}), stopped_on_limit({"stop": "iteration-limit"})
    (False, True)
    """
    if row.get("stop") in LIMIT_STOPS:
        return True
    return any(h.rsplit(":", 1)[-1] in LIMIT_STOPS for h in (row.get("phase_limits") or "").split())


def scaling_fit(rows: list[dict], min_param: float, min_points: int = FIT_MIN_POINTS) -> dict:
    """The fitted exponent of time against the size parameter over the runs with ``param >=
    min_param`` that produced a gradient without stopping on a limit (in any phase: each ran to
    its goal or saturation); the runs left out, by why.

    >>> rows = [{"id": f"q{m}", "param": m, "ms": 2.0 * m, "stop": "saturated"} for m in (4, 8, 16)]
    >>> rows.append({"id": "q32", "param": 32, "ms": 9.0, "stop": "saturated",
    ...              "phase_limits": "simplify:node-limit"})
    >>> fit = scaling_fit(rows, 4)
    >>> round(fit["exponent"], 6), fit["params"], fit["excluded"]
    (1.0, [4, 8, 16], ['q32: simplify:node-limit'])
    >>> scaling_fit(rows[:2], 4)["exponent"] is None  # too few points for a fit
    True
    """
    pts, params, excluded, failed = [], [], [], []
    for r in sorted((r for r in rows if r.get("param") is not None and r["param"] >= min_param),
                    key=lambda r: r["param"]):
        if stopped_on_limit(r):
            excluded.append(f"{r['id']}: {r.get('phase_limits') or r.get('stop')}")
        elif r.get("error") or not r.get("ms"):
            failed.append(f"{r['id']}: {r.get('stop') or r.get('error')}")
        else:
            pts.append((r["param"], r["ms"]))
            params.append(r["param"])
    exponent = fitted_exponent(pts) if len(pts) >= min_points else None
    return {"exponent": exponent, "params": params, "min_param": min_param, "min_points": min_points,
            "excluded": excluded, "failed": failed}


def fit_text(label: str, var: str, fit: dict | None) -> str:
    """One sentence on a fit: its exponent, the runs used, and the runs excluded.

    >>> t = fit_text("Sum", "m", {"exponent": 0.9, "params": [4, 8, 16], "min_param": 4, "min_points": 3,
    ...                           "excluded": ["q32: simplify:node-limit"], "failed": []})
    >>> t[:68]
    'Sum: fitted exponent of time against m (m ≥ 4; runs m = 4, 8, 16) = '
    >>> t[68:]
    '0.9 (1 = linear); 1 run stopped on a limit was excluded (q32: simplify:node-limit).'
    """
    if not fit:
        return f"{label}: not measured."
    used = ", ".join(str(p) for p in fit["params"]) or "none"
    if fit["exponent"] is None:
        k = len(fit["params"])
        head = (f"{label}: no fitted exponent of time against {var} ({var} ≥ {fit['min_param']}): "
                f"{k} {'run' if k == 1 else 'runs'} ran to the end ({var} = {used}), a fit needs "
                f"{fit['min_points']}")
    else:
        head = (f"{label}: fitted exponent of time against {var} ({var} ≥ {fit['min_param']}; runs "
                f"{var} = {used}) = {fit['exponent']:.2g} (1 = linear)")
    ex = fit["excluded"]
    tail = (f"; {len(ex)} {'run' if len(ex) == 1 else 'runs'} stopped on a limit "
            f"{'was' if len(ex) == 1 else 'were'} excluded" + (f" ({'; '.join(ex)})" if ex else ""))
    if fit["failed"]:
        tail += f"; {len(fit['failed'])} runs without a gradient were left out ({'; '.join(fit['failed'])})"
    return head + tail + "."


def public_family() -> list[dict]:
    cases = json.loads(PUBLIC_CASES.read_text())
    return [{"id": c["id"], "expr": c["expr"], "wrt": c["wrt"], "shapes": c["shapes"],
             "assume": c.get("assume", []), "param": i, "series": "public"} for i, c in enumerate(cases)]


def family_cases(name: str, quick: bool) -> list[dict]:
    if name == "public":
        return public_family()
    if name == "trace-product":
        return trace_product_family([2, 4, 8] if quick else range(2, 17), [1, 2] if quick else range(1, 5))
    if name == "quadratic-sum":
        return quadratic_sum_family([1, 4, 16] if quick else [1, 2, 4, 8, 16, 32, 64])
    if name == "nested-inverse":
        return nested_inverse_family([1, 2] if quick else range(1, 7))
    if name == "elementwise-chain":
        return elementwise_chain_family([1, 3] if quick else range(1, 9))
    if name == "mlp-depth":
        return mlp_depth_family([2, 4] if quick else [2, 4, 8, 16, 32])
    raise ValueError(f"unknown family {name!r}")


# ------------------------------------------------------------------------------- worker ----
def assumptions(assume: list[str]) -> tuple[set, set, set]:
    """Names needing SPD / positive / ±1 values, from a public case's ``assume`` list."""
    return constraints_from_assumptions(assume)


def _maxrss_mb(maxrss: int | None = None) -> float:
    """A peak resident set in MB: ``maxrss`` as ``ru_maxrss`` gives it (another process's), or
    this process's."""
    import resource
    import sys

    if maxrss is None:
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024  # bytes on macOS


def worker(payload: dict) -> None:
    """Run one family in this (fresh) process, printing one JSON line per case."""
    import os
    import time

    import numpy as np

    import rewrite as rw
    from rewrite.numeric import gradient_error

    rw.parse("tr(A*X)")  # the stock rules read (from the files: TRACEGRAD_CACHE=0), not timed
    t0, m0 = time.perf_counter(), _maxrss_mb()
    try:  # compile the rule program once, outside the measurements
        rw.gradient("tr(A*X)", "X")
    except rw.TracegradError:
        pass  # tight user limits: the program is compiled all the same
    base = _maxrss_mb()
    # what a fresh process pays once: compiling the stock rules for egglog and loading them
    emit({"id": STARTUP, "ms": 1000 * (time.perf_counter() - t0), "peak_mb": round(base - m0, 1),
          "stock_rules_cache": os.environ.get("TRACEGRAD_CACHE", "default (on)")})
    for case in payload["cases"]:
        row = {k: case[k] for k in ("id", "expr", "param", "series")}
        result: dict = {}

        def once(case=case, result=result):
            t = time.perf_counter()
            g = result["g"] = rw.gradient(case["expr"], case["wrt"], case["shapes"])
            wall = 1000 * (time.perf_counter() - t)
            split = {k: 1000 * v for k, v in g.report.timings.items()}
            result.setdefault("splits", []).append(
                {**split, "python": wall - sum(split.values()), "wall": wall})

        try:
            times = time_call(once, payload["repeats"], budget=payload["budget"])
            g = result["g"]
            r = g.report
            row.update(ms=1000 * median(times), ms_min=1000 * min(times), runs=len(times),
                       stop=r.stop_reason, iterations=r.iterations, eclasses=r.eclasses, enodes=r.enodes)
            # where the time went (median per kind over the runs): inside egglog, and Python
            splits = result["splits"]
            row["split_ms"] = {k: median([sp[k] for sp in splits]) for k in splits[0]}
            # A phase (e.g. the bounded simplification of G) that stopped on a limit is shown too.
            hit = [f"{ph['phase']}:{ph['stop_reason']}" for ph in r.phases
                   if str(ph["stop_reason"]) in LIMIT_STOPS]
            if hit:
                row["phase_limits"] = " ".join(hit)
            other = [f"{ph['phase']}:{ph['stop_reason']}" for ph in r.phases
                     if str(ph["stop_reason"]) not in (*LIMIT_STOPS, *FINISHED)]
            if other:  # e.g. a simplification round that fell back: not a limit
                row["phase_other"] = " ".join(other)
            if payload.get("check", True):
                spd, pos, signs = assumptions(case.get("assume", []))
                if case["series"] in ("nested inverses",):
                    spd = set(case["shapes"])  # SPD summands keep every inverse well conditioned
                _, _, err = gradient_error(g, np.random.default_rng(1), spd, pos, signs)
                row["fd_err"] = err
        except rw.TracegradError as e:
            rep = getattr(e, "report", None)
            row.update(stop=rep.stop_reason if rep else e.kind, error=f"{type(e).__name__}: {e.message}"[:160])
            if rep is not None:
                row.update(ms=1000 * rep.seconds, iterations=rep.iterations, eclasses=rep.eclasses,
                           enodes=rep.enodes)
        row["peak_mb"] = round(_maxrss_mb() - base, 1)
        emit(row)


# -------------------------------------------------------------------------- cold start ----
#: the README's first command, ``tracegrad grad "tr(X'*A*X)" --wrt X --shape X=n,k --shape A=n,n``,
#: as the installed script runs it (the CLI's entry point), then the peak resident set
COLD_CODE = ("import resource, sys\n"
             "from rewrite.cli import main\n"
             "code = main(['grad', \"tr(X'*A*X)\", '--wrt', 'X', '--shape', 'X=n,k', '--shape', 'A=n,n'])\n"
             "assert code == 0, code\n"
             "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
#: how a process can find the stock rules: parsed from the files (every process before the
#: cache), from the cache, or parsed and written to an empty cache (a first run)
COLD_MODES = ("files", "cache", "first")


def cold_start(rounds: int = 5) -> dict:
    """Wall-clock time and peak memory of a whole fresh process (interpreter start, ``import
    rewrite``, one gradient), in each of :data:`COLD_MODES`, alternating; medians per mode.

    Every process finds Python's compiled bytecode, as an installed package has it (pip compiles
    it at install; an editable install writes it on first import): in a bytecode cache of its
    own (``PYTHONPYCACHEPREFIX``, warmed by the first, untimed run), even where the environment
    says not to write bytecode (``PYTHONDONTWRITEBYTECODE``), which would otherwise make every
    process compile the package from source (~0.1 s)."""
    import subprocess
    import sys
    import tempfile
    import time

    from .common import worker_env

    times: dict[str, list[float]] = {m: [] for m in COLD_MODES}
    mbs: dict[str, list[float]] = {m: [] for m in COLD_MODES}
    with tempfile.TemporaryDirectory(prefix="tracegrad-bench-cache-") as tmp:
        warm = Path(tmp) / "warm"
        pyc = {"PYTHONPYCACHEPREFIX": str(Path(tmp) / "bytecode")}
        envs = {"files": worker_env({"TRACEGRAD_CACHE": "0", **pyc}),
                "cache": worker_env({"TRACEGRAD_CACHE": "1", "TRACEGRAD_CACHE_DIR": str(warm), **pyc})}
        for env in envs.values():
            env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run([sys.executable, "-c", COLD_CODE], env=envs["cache"], check=True,
                       capture_output=True)  # fills the warm cache
        for i in range(rounds):
            envs["first"] = {**envs["cache"], "TRACEGRAD_CACHE_DIR": str(Path(tmp) / f"empty{i}")}
            for mode in COLD_MODES:
                t0 = time.perf_counter()
                out = subprocess.run([sys.executable, "-c", COLD_CODE], env=envs[mode], check=True,
                                     capture_output=True, text=True)
                times[mode].append(1000 * (time.perf_counter() - t0))
                mbs[mode].append(_maxrss_mb(int(out.stdout.split()[-1])))
    return {m: {"ms": median(times[m]), "peak_mb": round(median(mbs[m]), 1), "runs": rounds}
            for m in COLD_MODES}


# ------------------------------------------------------------------------------ runner ----
def run(quick: bool = False, families=FAMILIES, repeats: int | None = None, timeout: float = 900.0,
        max_cases: int | None = None, log=print) -> dict:
    """Run the families (each in a fresh process) and return ``{"families": {name: rows}}``."""
    from .common import CACHES

    out: dict = {"families": {}, "quick": quick, "errors": {}, "caches": CACHES}
    for name in families:
        cases = family_cases(name, quick)[:max_cases]
        payload = {"cases": cases, "repeats": repeats or (1 if quick else 5), "budget": 0.5,
                   "check": True}
        log(f"[a] {name}: {len(cases)} cases ...")
        rows, err = run_worker("benchmarks.derivation", "worker", payload, timeout)
        out.setdefault("startup", {})[name] = next((r for r in rows if r["id"] == STARTUP), None)
        rows = [r for r in rows if r["id"] != STARTUP]
        done = {r["id"] for r in rows}
        for c in cases:  # a case the process never reported (killed, crashed) is not hidden
            if c["id"] not in done:
                rows.append({"id": c["id"], "expr": c["expr"], "param": c["param"], "series": c["series"],
                             "stop": "not run", "error": err or "process ended"})
        if err:
            out["errors"][name] = err
        out["families"][name] = rows
        log(format_table(rows, TABLE_COLUMNS))
        for key, label, var in FITS:
            if FIT_FAMILY[key] == name:
                log(fit_text(label, var, scaling_fit(rows, 4)))
        log("")
    if "public" in families:
        log("[a] cold start of a process ...")
        out["cold_start"] = cold_start(1 if quick else 5)
        log(format_table([{"mode": m, **v} for m, v in out["cold_start"].items()],
                         [("mode", "stock rules from"), ("ms", "ms"), ("peak_mb", "peak MB")]))
    return out


TABLE_COLUMNS = [("id", "case"), ("ms", "ms"), ("ms_min", "min ms"), ("iterations", "iters"),
                 ("eclasses", "e-classes"), ("enodes", "e-nodes"), ("peak_mb", "peak MB"), ("stop", "stop"),
                 ("phase_limits", "phase limits hit"), ("fd_err", "fd err")]


def summary(data: dict) -> dict:
    """Target figures: public median/p95, tr(F1…F16), 64-term sum and its growth exponent, the
    tanh network's gradient time by depth and its growth exponent."""
    fam = data.get("families", {})
    s: dict = {}
    pub = [r["ms"] for r in fam.get("public", []) if r.get("ms") is not None and not r.get("error")]
    if pub:
        s["public_median_ms"] = median(pub)
        s["public_p95_ms"] = percentile(pub, 95)
        s["public_max_ms"] = max(pub)
        s["public_n"] = len(pub)
    s["public_failed"] = [r["id"] for r in fam.get("public", []) if r.get("error")]
    # each public case's split, with egglog's kinds summed (the rows are left as they are)
    splits = [{**r["split_ms"], "egglog": sum(r["split_ms"].get(k, 0.0) for k in TIMING_KINDS)}
              for r in fam.get("public", []) if r.get("split_ms") and not r.get("error")]
    if splits:
        kinds = [*TIMING_KINDS, "python", "egglog"]
        wall = sum(sp["wall"] for sp in splits)
        s["public_split"] = {
            "median_ms": {k: median([sp.get(k, 0.0) for sp in splits]) for k in [*kinds, "wall"]},
            "share": {k: sum(sp.get(k, 0.0) for sp in splits) / wall for k in kinds}}
    first = (data.get("startup") or {}).get("public")
    if first:
        s["startup_ms"], s["startup_mb"] = first["ms"], first["peak_mb"]
    cold = data.get("cold_start")
    if cold:
        s["cold"] = cold
        s["cold_ratio"] = cold["cache"]["ms"] / cold["files"]["ms"]
    for r in fam.get("trace-product", []):
        if r["id"] == "tr-k16-x1":
            s["tr16_ms"], s["tr16_stop"] = r.get("ms"), r.get("stop")
            s["tr16_limited"] = stopped_on_limit(r)
    q = [r for r in fam.get("quadratic-sum", []) if r.get("ms") and not r.get("error")]
    if q:
        top = max(q, key=lambda r: r["param"])
        s["qsum_max_m"], s["qsum_max_ms"] = top["param"], top["ms"]
        s["qsum_max_limited"] = stopped_on_limit(top)
    if fam.get("quadratic-sum"):
        s["qsum_fit"] = scaling_fit(fam["quadratic-sum"], 4)
        if s["qsum_fit"]["exponent"] is not None:
            s["qsum_exponent"] = s["qsum_fit"]["exponent"]
    mlp = [(r["param"], r["ms"]) for r in fam.get("mlp-depth", []) if r.get("ms") and not r.get("error")]
    if mlp:
        s["mlp_ms"] = dict(mlp)
        deepest = max((r for r in fam["mlp-depth"] if r.get("ms") and not r.get("error")),
                      key=lambda r: r["param"])
        s["mlp_max_l"], s["mlp_max_ms"] = deepest["param"], deepest["ms"]
        s["mlp_max_peak_mb"] = deepest.get("peak_mb")
        s["mlp_max_limited"] = stopped_on_limit(deepest)
    if fam.get("mlp-depth"):
        s["mlp_fit"] = scaling_fit(fam["mlp-depth"], 4)
        if s["mlp_fit"]["exponent"] is not None:
            s["mlp_exponent"] = s["mlp_fit"]["exponent"]
    s["limit_hits"] = [f"{n}/{r['id']}: {r.get('stop')}" for n, rows in fam.items() for r in rows
                       if r.get("stop") not in (*FINISHED, None) or r.get("error")]
    s["fits"] = fit_lines(s)
    s["phase_limit_hits"] = [f"{n}/{r['id']}: {r['phase_limits']}" for n, rows in fam.items() for r in rows
                             if r.get("phase_limits")]
    return s


#: the fitted exponents: (summary key, label, size variable), each over its family's runs with size ≥ 4
FITS = (("qsum_fit", "Quadratic sum", "m"), ("mlp_fit", "tanh network", "L"))
FIT_FAMILY = {"qsum_fit": "quadratic-sum", "mlp_fit": "mlp-depth"}


def fit_lines(s: dict) -> list[str]:
    """One sentence per fitted exponent in summary ``s`` (what the printout and markdown say)."""
    return [fit_text(label, var, s[key]) for key, label, var in FITS if key in s]


def plot(data: dict, out: Path) -> list[Path]:
    """Public-case latencies (bars) and scaling families (time and e-nodes against size)."""
    pyplot = plt()
    if pyplot is None:
        return []
    fam = data.get("families", {})
    files = []
    pub = fam.get("public", [])
    if pub:
        fig, ax = pyplot.subplots(figsize=(10, 4.5))
        ids = [r["id"] for r in pub]
        vals = [r.get("ms") or 0 for r in pub]
        colors = ["tab:red" if r.get("error") else "tab:blue" for r in pub]
        ax.bar(range(len(ids)), vals, color=colors)
        ax.axhline(10, color="tab:green", ls="--", lw=1, label="median target 10 ms")
        ax.axhline(50, color="tab:orange", ls="--", lw=1, label="p95 target 50 ms")
        ax.set_xticks(range(len(ids)), ids, rotation=75, ha="right", fontsize=7)
        ax.set_ylabel("ms (median)")
        ax.set_yscale("log")
        ax.set_title("Derivation latency, public cases (red: stopped without a gradient)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        files.append(out / "a_public.png")
        fig.savefig(files[-1], dpi=110)
        pyplot.close(fig)
    scal = [n for n in FAMILIES[1:] if fam.get(n)]
    if scal:
        for key, label, fname in (("ms", "ms (median)", "a_scaling_time.png"),
                                  ("enodes", "e-nodes", "a_scaling_enodes.png"),
                                  ("peak_mb", "peak RSS growth, MB", "a_scaling_memory.png")):
            fig, axes = pyplot.subplots(1, len(scal), figsize=(4.2 * len(scal), 3.8), squeeze=False)
            for ax, name in zip(axes[0], scal, strict=True):
                series: dict[str, list] = {}
                for r in fam[name]:
                    if r.get(key) is not None:
                        series.setdefault(r["series"], []).append(
                            (r["param"], r[key], bool(r.get("error")), stopped_on_limit(r)))
                for sname, pts in sorted(series.items()):
                    pts.sort()
                    line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=sname)
                    bad = [p for p in pts if p[2]]
                    if bad:
                        ax.plot([p[0] for p in bad], [p[1] for p in bad], "x", color="red", ms=8)
                    cut = [p for p in pts if p[3] and not p[2]]  # a gradient, but a phase hit a limit
                    if cut:
                        ax.plot([p[0] for p in cut], [p[1] for p in cut], "o", mfc="none", color="black", ms=8)
                if name == "trace-product" and key == "ms":
                    ax.axhline(200, color="gray", ls="--", lw=1, label="k=16 target 200 ms")
                if name == "quadratic-sum":
                    ax.set_xscale("log", base=2)
                    if key == "ms":
                        ax.axhline(1000, color="gray", ls="--", lw=1, label="m=64 target 1 s")
                ax.set_yscale("log" if key != "peak_mb" else "linear")
                ax.set_title(name, fontsize=10)
                ax.set_xlabel({"trace-product": "factors k", "quadratic-sum": "terms m"}.get(name, "depth"))
                ax.set_ylabel(label)
                ax.legend(fontsize=7)
            fig.tight_layout()
            files.append(out / fname)
            fig.savefig(files[-1], dpi=110)
            pyplot.close(fig)
    return files
