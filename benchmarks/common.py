"""Shared helpers: machine description, plain-text tables, timing, JSON results, subprocesses,
thread settings, the deviation gate.

>>> print(format_table([{"a": 1, "b": 2.5}], [("a", "a"), ("b", "b")]))
a  b
-  ---
1  2.5
>>> percentile([1.0, 2.0, 3.0, 4.0], 50)
2.5
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_CASES = ROOT / "tests" / "data" / "public_cases.json"
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
DEFAULT_MARKDOWN = ROOT / "BENCHMARKS.md"

#: parts c and d: the largest relative deviation (:func:`rel_dev`) of any library's result from
#: the reference that still passes; above it the run fails (exit code 1)
DEVIATION_GATE = 1e-12
#: math-library threads per measurement process unless ``--threads`` says otherwise
DEFAULT_THREADS = 1
#: what the measurement processes run with, so that no figure depends on a cache
NO_CACHE_ENV = {"TRACEGRAD_CACHE": "0"}
#: the caches there are, and how the benchmarks treat them (written into each part's JSON)
CACHES = {
    "results": "none: the package keeps no cache of derivation results (every derivation starts "
               "from an e-graph restored to the loaded rule program's checkpoint; its in-process caches "
               "hold only the parsed stock rules, compiled rule programs, the grammar and code-generation "
               "helpers, all built before any timing)",
    "stock_rules": "off in every measurement process (TRACEGRAD_CACHE=0: the stock rules are parsed "
                   "from the rule files, before any timing); only part a's cold-start table uses the "
                   "start-up cache, on purpose, in temporary directories",
    "sympy": "cleared (sympy.core.cache.clear_cache) before every timed .diff",
    "jax": "persistent compilation cache off (jax_enable_compilation_cache=False); the first, "
           "compiling call is never timed",
}


# ------------------------------------------------------------------------------ machine ----
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def source_commit() -> str:
    """The commit of the code measured (short hash, ``+changes`` when tracked files differ from
    it), or ``unknown`` outside a git checkout."""
    # --no-optional-locks: `git status` must not refresh (write) the index of the checkout measured
    git = ["git", "--no-optional-locks"]
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def stamp() -> dict:
    """What each part's JSON records about when and where it ran: the commit, a local date for
    people and a UTC time that sorts."""
    return {"commit": source_commit(), "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def machine_info() -> dict:
    """CPU model, cores, RAM, OS, Python and the versions of the packages measured."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "cores": cores,
        "ram_gib": _ram_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {d: _version(d) for d in ("tracegrad", "egglog", "numpy", "sympy", "jax", "jaxlib",
                                               "torch", "matplotlib")},
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


# ------------------------------------------------------------------------------- tables ----
def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v != v:
            return "nan"
        if v == 0:
            return "0"
        if abs(v) >= 100:
            return f"{v:.0f}"
        if abs(v) >= 1:
            return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
        return f"{v:.2g}"
    return str(v)


def format_table(rows: Sequence[dict], columns: Sequence[tuple[str, str]]) -> str:
    """A plain-text table; ``columns`` are ``(key, header)`` pairs, missing values print ``-``."""
    cells = [[header for _, header in columns]]
    cells += [[_cell(r.get(key)) for key, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths).rstrip())
    return "\n".join(lines)


def markdown_table(rows: Sequence[dict], columns: Sequence[tuple[str, str]]) -> str:
    """The same table in GitHub markdown."""
    out = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        out.append("| " + " | ".join(_cell(r.get(k)).replace("|", "\\|") for k, _ in columns) + " |")
    return "\n".join(out)


# ------------------------------------------------------------------------------- timing ----
def percentile(xs: Iterable[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in 0..100)."""
    s = sorted(xs)
    if not s:
        return float("nan")
    pos = (len(s) - 1) * q / 100
    lo, hi = int(pos), min(int(pos) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def time_call(fn: Callable[[], object], repeats: int, budget: float = 1.0, warmup: int = 0) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls (fewer if one call exceeds ``budget`` seconds)."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if sum(times) > budget * max(1, repeats):
            break
    return times


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# --------------------------------------------------------------------------- results I/O ----
def save_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")


def load_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------ threads ----
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def fixed_threads(n: int | None) -> int:
    """The thread count a measurement process gets: ``n``, or every core this process may use
    when ``n`` is 0 (still a fixed, recorded number).

    >>> fixed_threads(1), fixed_threads(0) >= 1
    (1, True)
    """
    if n is None:
        return DEFAULT_THREADS
    if n < 0:
        raise ValueError(f"threads must be >= 0, got {n}")
    if n == 0:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return n


def thread_env(n: int) -> dict[str, str]:
    """Environment limiting BLAS / OpenMP / XLA to ``n`` threads, for a process about to start
    (the libraries read it when they load, so it is set before any of them is imported).

    XLA has no flag for its CPU thread count: with one thread its Eigen pool is turned off, and
    :func:`run_worker` pins the process to ``n`` cores (XLA sizes its pools from the affinity).

    >>> env = thread_env(2)
    >>> env["OMP_NUM_THREADS"], "XLA_FLAGS" in env
    ('2', False)
    >>> thread_env(1)["XLA_FLAGS"]
    '--xla_cpu_multi_thread_eigen=false'
    """
    env = {v: str(n) for v in THREAD_VARS}
    if n == 1:
        flags = os.environ.get("XLA_FLAGS", "").replace("--xla_cpu_multi_thread_eigen=true", "").strip()
        env["XLA_FLAGS"] = " ".join(f for f in (flags, "--xla_cpu_multi_thread_eigen=false") if f)
    return env


def apply_threads(n: int, libraries: Iterable[str] = ()) -> dict:
    """Worker side, first thing: set the thread count of the ``libraries`` that take it at run
    time (``torch``: intra- and inter-op threads; ``jax``: the persistent compilation cache is
    turned off and float64 on) and return what the process actually runs with, for the JSON."""
    rec: dict = {"threads": n, "env": {v: os.environ.get(v) for v in (*THREAD_VARS, "XLA_FLAGS")}}
    if hasattr(os, "sched_getaffinity"):
        rec["cpus"] = len(os.sched_getaffinity(0))
    if "torch" in libraries:
        import torch

        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:  # already set (or parallel work started) in this process
            pass
        rec["torch_threads"] = torch.get_num_threads()
        rec["torch_interop_threads"] = torch.get_num_interop_threads()
    if "jax" in libraries:
        import jax

        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_enable_compilation_cache", False)
        rec["jax_x64"] = bool(jax.config.jax_enable_x64)
    return rec


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a fresh Python process: the repository on its path (so
    that it imports this checkout's ``rewrite`` and ``benchmarks``), the stock-rules cache off
    (:data:`NO_CACHE_ENV`), plus ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(NO_CACHE_ENV)
    env.update(extra or {})
    return env


# ------------------------------------------------------------------------------ accuracy ----
def rel_dev(got, ref) -> float:
    """The relative deviation of ``got`` from the reference ``ref``: max|got - ref| / max|ref|
    (inf for a shape mismatch or a non-finite value; 0 when both are all zeros).

    >>> import numpy as np
    >>> rel_dev(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    0.5
    >>> rel_dev(np.zeros(2), np.zeros(2)), rel_dev(np.ones(2), np.zeros(3))
    (0.0, inf)
    """
    import numpy as np

    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return float("inf")
    diff = float(np.max(np.abs(got - ref), initial=0.0))
    scale = float(np.max(np.abs(ref), initial=0.0))
    if not (np.isfinite(diff) and np.isfinite(scale)):
        return float("inf")
    if diff == 0.0:
        return 0.0
    return diff / scale if scale > 0 else float("inf")


def dtypes_of(values: dict) -> dict[str, str]:
    """The dtype of each input actually handed to a library (``float64`` for every one is the
    requirement); Python numbers would be ``float``/``int``.

    >>> import numpy as np
    >>> dtypes_of({"x": np.ones(2), "lam": np.float64(0.1), "k": 3})
    {'x': 'float64', 'lam': 'float64', 'k': 'int'}
    """
    out = {}
    for k, v in values.items():
        dt = getattr(v, "dtype", None)
        out[k] = str(dt).removeprefix("torch.") if dt is not None else type(v).__name__
    return out


def run_worker(module: str, func: str, payload: dict, timeout: float,
               extra_env: dict[str, str] | None = None,
               cpus: int | None = None, threads: int | None = None) -> tuple[list[dict], str | None]:
    """Run ``module.func(payload)`` in a fresh Python process; it prints one JSON object a line.

    ``cpus``: the process may run on that many cores only (where the OS supports CPU affinity),
    whatever threads its libraries start. ``threads``: the process's math libraries get that many
    threads (:func:`thread_env`, set before it starts) and as many cores. Returns the objects
    printed (also when the process is killed on ``timeout``) and an error description (``None``
    when the process exited cleanly).
    """
    code = (f"import json, sys; from {module} import {func}; "
            f"{func}(json.loads(sys.stdin.read()))")
    if threads:
        extra_env = {**thread_env(threads), **(extra_env or {})}
        cpus = cpus or threads
    env = worker_env(extra_env)
    if cpus and hasattr(os, "sched_setaffinity"):  # pinned before any library starts threads
        # which cores: rotated by this process's id, so that concurrent runs (test workers) spread
        avail = sorted(os.sched_getaffinity(0))
        start = os.getpid() % len(avail)
        cores = sorted((avail[start:] + avail[:start])[:cpus])
        code = f"import os; os.sched_setaffinity(0, {cores!r}); {code}"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    error = None
    try:
        out, err = proc.communicate(json.dumps(payload), timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        error = f"timeout after {timeout:.0f} s"
    if error is None and proc.returncode != 0:
        tail = (err or "").strip().splitlines()[-1:] or [""]
        error = f"exit code {proc.returncode}: {tail[0][:200]}"
    rows = []
    for line in (out or "").splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    return rows, error


def emit(obj: dict) -> None:
    """Print one JSON line (worker side) and flush, so partial results survive a kill."""
    print(json.dumps(obj, default=str), flush=True)


def plt():
    """matplotlib.pyplot with a non-interactive backend, or None when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError:
        return None
    return pyplot


def row_failures(row: dict, compared, also=(), gate: float = DEVIATION_GATE) -> list[str]:
    """Why one (problem, size) row of parts c and d fails its checks: a library's error, an
    input that was not float64 (``{name}_error``, ``{name}_dtypes``, for ``compared`` and
    ``also``), or, for each of ``compared``, a relative deviation ``{name}_dev`` above ``gate``
    or missing.

    >>> row_failures({"jax_dev": 2e-16, "torch_dev": 5e-9}, ["jax", "torch"])
    ['torch deviation 5e-09 > 1e-12']
    >>> row_failures({"jax_dev": 0.0, "jax_dtypes": {"lam": "float32"}}, ["jax"])
    ['jax: input lam is float32']
    >>> row_failures({"engine_error": "ValueError: x"}, ["jax"], also=["engine"])
    ['engine error: ValueError: x', 'jax not compared']
    """
    out = []
    for b in (*also, *compared):
        if row.get(f"{b}_error"):
            out.append(f"{b} error: {row[f'{b}_error']}")
        out += [f"{b}: input {k} is {t}" for k, t in (row.get(f"{b}_dtypes") or {}).items() if t != "float64"]
    for b in compared:
        dev = row.get(f"{b}_dev")
        if dev is None:
            if not row.get(f"{b}_error"):
                out.append(f"{b} not compared")
        elif not dev <= gate:  # also catches nan
            out.append(f"{b} deviation {dev:.2g} > {gate:g}")
    return out


def gate_cell(failures: list[str]) -> str:
    """The table's cell for a row's checks."""
    return "ok" if not failures else "FAIL: " + "; ".join(failures)


def gate_line(part: str, g: dict) -> str:
    """One printed line on a part's deviation gate.

    >>> gate_line("d", {"threshold": 1e-12, "passed": True, "max_dev": {"jax": 3e-16}})
    '[d] deviation gate (relative, <= 1e-12) passed; largest deviation: jax 3e-16'
    """
    devs = ", ".join(f"{b} {v:.2g}" for b, v in g.get("max_dev", {}).items() if v is not None)
    head = f"[{part}] deviation gate (relative, <= {g['threshold']:g})"
    if g.get("passed"):
        return f"{head} passed; largest deviation: {devs or '-'}"
    fails = g.get("failures", [])
    return (f"{head} FAILED on {len(fails)} check(s): "
            + "; ".join(fails[:8]) + (" ..." if len(fails) > 8 else "") + f" (largest deviation: {devs or '-'})")
