"""Shared helpers: machine description, plain-text tables, timing, JSON results, subprocesses.

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
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


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


def thread_env(n: int) -> dict[str, str]:
    """Environment limiting BLAS / OpenMP / XLA to ``n`` threads (read when the libraries load).

    >>> thread_env(2)["OMP_NUM_THREADS"]
    '2'
    """
    env = {v: str(n) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    if n == 1:
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    return env


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a fresh Python process: the repository on its path (so
    that it imports this checkout's ``rewrite`` and ``benchmarks``), plus ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def run_worker(module: str, func: str, payload: dict, timeout: float,
               extra_env: dict[str, str] | None = None,
               cpus: int | None = None) -> tuple[list[dict], str | None]:
    """Run ``module.func(payload)`` in a fresh Python process; it prints one JSON object a line.

    ``cpus``: the process may run on that many cores only (where the OS supports CPU affinity),
    whatever threads its libraries start. Returns the objects printed (also when the process is
    killed on ``timeout``) and an error description (``None`` when the process exited cleanly).
    """
    code = (f"import json, sys; from {module} import {func}; "
            f"{func}(json.loads(sys.stdin.read()))")
    env = worker_env(extra_env)
    if cpus and hasattr(os, "sched_setaffinity"):  # pinned before any library starts threads
        cores = sorted(os.sched_getaffinity(0))[:cpus]
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
