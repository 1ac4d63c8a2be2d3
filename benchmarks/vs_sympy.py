"""Part b: the engine against SymPy (``MatrixSymbol`` + ``.diff``) on the public cases.

SymPy gets the objective as built by :func:`rewrite.sympy_interop.to_sympy` (concrete shapes).
That converter writes a 1×1 matrix product as ``MatrixElement(M, 0, 0)``, which SymPy's matrix
derivative treats as constant; SymPy differentiates ``Trace(M)`` far better, so the comparison
uses the *trace form* (every 1×1 ``MatrixElement(M, 0, 0)`` replaced by the equal ``Trace(M)``)
and also reports how SymPy fares on the converter's form as is.

Per case: ``sympy.core.cache.clear_cache()`` before each timed ``.diff``; a per-case timeout
(``signal.setitimer``; SymPy is pure Python, so the alarm interrupts it) turns a hang into
"timeout". SymPy's answer is evaluated with concrete matrices and compared with central finite
differences of the objective; so is the engine's gradient.

The part runs in a fresh process of its own (:func:`run_isolated`; one math-library thread, the
stock-rules cache off, like every measurement process), the engine warmed up by one untimed
gradient.

>>> import sympy
>>> M = sympy.MatrixSymbol("a", 3, 1).T * sympy.MatrixSymbol("b", 3, 1)
>>> trace_form(sympy.matrices.expressions.matexpr.MatrixElement(M, 0, 0))
Trace(a.T*b)
"""

from __future__ import annotations

import signal
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .common import format_table, median, plt, time_call


class SympyTimeout(Exception):
    """SymPy exceeded the per-case time limit."""


@contextmanager
def alarm(seconds: float):
    """Raise :class:`SympyTimeout` in the block after ``seconds`` (main thread, POSIX)."""
    def handler(signum, frame):
        raise SympyTimeout

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def trace_form(e):
    """Replace every 1×1 ``MatrixElement(M, 0, 0)`` by ``Trace(M)`` (the same value)."""
    import sympy
    from sympy.matrices.expressions.matexpr import MatrixElement

    def rep(x):
        if isinstance(x, MatrixElement) and x.parent.shape == (1, 1):
            return sympy.Trace(x.parent)
        return None

    return e.replace(lambda x: rep(x) is not None, rep)


def _wrt_symbol(e, name: str):
    import sympy

    for s in e.free_symbols | e.atoms(sympy.MatrixSymbol):
        if getattr(s, "name", None) == name:
            return s
    return None


def sympy_attempt(e, wrt: str, shape: tuple[int, int], env: dict, fd: np.ndarray, repeats: int,
                  timeout: float) -> dict:
    """Time SymPy's ``e.diff(wrt)`` and classify its answer against finite differences ``fd``."""
    import sympy
    from sympy.core.cache import clear_cache

    from rewrite.sympy_interop import evaluate_sympy

    x = _wrt_symbol(e, wrt)
    if x is None:
        return {"status": "error", "detail": f"{wrt} not in the sympy expression"}
    res: dict = {}

    def once():
        clear_cache()
        res["d"] = e.diff(x)

    try:
        with alarm(timeout):
            times = time_call(once, repeats, budget=timeout / max(1, repeats) / 2)
    except SympyTimeout:
        return {"status": "timeout", "ms": 1000 * timeout}
    except Exception as ex:  # SymPy raising is one of the outcomes being measured
        return {"status": "error", "detail": f"{type(ex).__name__}: {ex}"[:120]}
    d = res["d"]
    out = {"ms": 1000 * median(times), "answer": str(d)[:200]}
    if d.has(sympy.Derivative):
        out["status"] = "unevaluated"
        return out
    try:
        with alarm(timeout):
            if d == 0:
                val = np.zeros(shape)
            else:
                val = evaluate_sympy(d, env)
    except SympyTimeout:
        out.update(status="wrong", detail="evaluation timed out")
        return out
    except Exception as ex:
        out.update(status="wrong", detail=f"not a matrix expression ({type(d).__name__}: "
                                          f"{type(ex).__name__})")
        return out
    val = np.asarray(val, dtype=float)
    if val.shape == (1, 1) and shape != (1, 1):
        val = np.full(shape, val[0, 0])
    if val.shape != shape:
        out.update(status="wrong", detail=f"shape {val.shape}, expected {shape}")
        return out
    err = float(np.linalg.norm(val - fd) / max(1.0, np.linalg.norm(fd)))
    out["err"] = err
    out["status"] = "correct" if err < 1e-5 else "wrong"
    if not np.any(val):
        out["detail"] = "returned 0"
    elif out["status"] == "wrong":
        out["detail"] = f"relative error {err:.2g}"
    return out


def run(quick: bool = False, repeats: int | None = None, timeout: float | None = None, log=print,
        max_cases: int | None = None) -> dict:
    """Every public case (the first ``max_cases``): engine time, SymPy time (trace form and as
    converted), correctness."""
    import rewrite as rw
    from rewrite.numeric import evaluate, finite_difference, instantiate_dims, random_point, relative_error
    from rewrite.sympy_interop import to_sympy

    from .derivation import assumptions, public_family

    repeats = repeats or (1 if quick else 5)
    timeout = timeout or (5.0 if quick else 20.0)
    cases = public_family()
    if quick:
        cases = cases[:: max(1, len(cases) // 6)]
    cases = cases[:max_cases]
    rw.gradient("tr(A*X)", "X")  # compile the rule program outside the measurements
    rows = []
    log(f"[b] {len(cases)} public cases against SymPy (timeout {timeout:g} s per case) ...")
    for case in cases:
        row: dict = {"id": case["id"]}
        f = rw.parse(case["expr"], case["shapes"]).term
        spd, pos, signs = assumptions(case.get("assume", []))
        rng = np.random.default_rng(5)
        dims = instantiate_dims(f, rng)
        env = random_point(f, rng, dims, spd=spd, positive=pos, signs=signs)
        fd = finite_difference(f, case["wrt"], env, dims=dims)
        shape = fd.shape
        res: dict = {}

        def once(case=case, res=res):
            res["g"] = rw.gradient(case["expr"], case["wrt"], case["shapes"])

        try:
            row["engine_ms"] = 1000 * median(time_call(once, repeats, budget=0.5))
            gval = evaluate(res["g"].term, env, dims=dims).reshape(shape)
            row["engine_err"] = relative_error(gval, fd)
            row["engine"] = "correct" if row["engine_err"] < 1e-5 else "wrong"
        except rw.TracegradError as e:
            row["engine"] = f"error ({e.kind})"
        try:
            e0 = to_sympy(f)
        except rw.TracegradError as ex:
            row.update(sympy="unsupported", sympy_detail=ex.message[:120])
            rows.append(row)
            continue
        env2 = {k: np.asarray(v, dtype=float).reshape(v.shape[0], -1) if np.ndim(v) else v
                for k, v in env.items()}
        best = sympy_attempt(trace_form(e0), case["wrt"], shape, env2, fd, repeats, timeout)
        raw = sympy_attempt(e0, case["wrt"], shape, env2, fd, 1, timeout)
        row.update(sympy=best["status"], sympy_ms=best.get("ms"), sympy_err=best.get("err"),
                   sympy_detail=best.get("detail", ""), sympy_answer=best.get("answer", ""),
                   sympy_raw=raw["status"])
        if row.get("engine_ms") and best.get("ms") and best["status"] not in ("timeout", "error"):
            row["ratio"] = row["engine_ms"] / best["ms"]
        rows.append(row)
    data = {"rows": rows, "quick": quick, "timeout_s": timeout, "summary": summarise(rows)}
    log(format_table(rows, TABLE_COLUMNS))
    log("")
    log(format_summary(data["summary"]))
    return data


def worker(payload: dict) -> None:
    """:func:`run` in this (fresh) process: its printout as ``{"log": line}`` objects, then
    ``{"result": data}``."""
    from .common import apply_threads, emit

    setup = apply_threads(payload["threads"])
    data = run(quick=payload["quick"], repeats=payload["repeats"], max_cases=payload["max_cases"],
               log=lambda line="": emit({"log": str(line)}))
    data["threads"] = setup
    emit({"result": data})


def run_isolated(quick: bool = False, repeats: int | None = None, max_cases: int | None = None,
                 threads: int = 1, timeout: float = 3600.0, log=print) -> dict:
    """:func:`run` in a fresh process with ``threads`` math-library threads."""
    from .common import run_worker

    payload = {"quick": quick, "repeats": repeats, "max_cases": max_cases, "threads": threads}
    got, err = run_worker("benchmarks.vs_sympy", "worker", payload, timeout, threads=threads)
    for r in got:
        if "log" in r:
            log(r["log"])
    data = next((r["result"] for r in got if "result" in r), None)
    if data is None:
        raise RuntimeError(f"part b's process ended without a result: {err or 'no output'}")
    if err:
        data["error"] = err
    return data


TABLE_COLUMNS = [("id", "case"), ("engine_ms", "engine ms"), ("sympy_ms", "sympy ms"),
                 ("ratio", "engine/sympy"), ("engine", "engine"), ("sympy", "sympy (trace form)"),
                 ("sympy_raw", "sympy (as converted)"), ("sympy_detail", "note")]


def summarise(rows: list[dict]) -> dict:
    answered = [r for r in rows if r.get("sympy") in ("correct", "wrong")]
    correct = [r for r in answered if r["sympy"] == "correct"]
    ratios = [r["ratio"] for r in answered if r.get("ratio")]
    s = {
        "cases": len(rows),
        "sympy_answered": len(answered),
        "sympy_correct": len(correct),
        "sympy_correct_as_converted": sum(r.get("sympy_raw") == "correct" for r in rows),
        "sympy_status": {k: sum(r.get("sympy") == k for r in rows)
                         for k in ("correct", "wrong", "unevaluated", "timeout", "error", "unsupported")},
        "engine_correct": sum(r.get("engine") == "correct" for r in rows),
        "median_ratio": median(ratios) if ratios else None,
        "faster_fraction": (sum(x < 1 for x in ratios) / len(ratios)) if ratios else None,
    }
    cr = [r["ratio"] for r in correct if r.get("ratio")]
    s["median_ratio_sympy_correct"] = median(cr) if cr else None
    s["faster_fraction_sympy_correct"] = (sum(x < 1 for x in cr) / len(cr)) if cr else None
    return s


def format_summary(s: dict) -> str:
    def pct(x):
        return "-" if x is None else f"{100 * x:.0f} %"

    def num(x):
        return "-" if x is None else f"{x:.3g}"

    return (f"engine correct on {s['engine_correct']}/{s['cases']} cases; SymPy answers "
            f"{s['sympy_answered']}/{s['cases']} (correct {s['sympy_correct']}, as converted "
            f"{s['sympy_correct_as_converted']}); outcomes {s['sympy_status']}\n"
            f"engine/sympy time ratio over cases SymPy answers: median {num(s['median_ratio'])}, "
            f"engine faster on {pct(s['faster_fraction'])}; over cases SymPy gets right: median "
            f"{num(s['median_ratio_sympy_correct'])}, faster on {pct(s['faster_fraction_sympy_correct'])}")


def plot(data: dict, out: Path) -> list[Path]:
    pyplot = plt()
    rows = data.get("rows", [])
    if pyplot is None or not rows:
        return []
    colors = {"correct": "tab:green", "wrong": "tab:red", "unevaluated": "tab:gray", "timeout": "black",
              "error": "tab:purple", "unsupported": "tab:purple"}
    fig, ax = pyplot.subplots(figsize=(10, 4.5))
    ids = [r["id"] for r in rows]
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r.get("engine_ms") or 0 for r in rows], 0.4, color="tab:blue", label="engine")
    ax.bar(x + 0.2, [r.get("sympy_ms") or 0 for r in rows], 0.4,
           color=[colors.get(r.get("sympy"), "tab:gray") for r in rows])
    for status, c in colors.items():
        if any(r.get("sympy") == status for r in rows):
            ax.bar([0], [0], color=c, label=f"SymPy {status}")
    ax.set_yscale("log")
    ax.set_ylabel("ms (median)")
    ax.set_xticks(x, ids, rotation=75, ha="right", fontsize=7)
    ax.set_title("Engine vs SymPy per public case (SymPy bar colour: its answer vs finite differences)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = out / "b_sympy.png"
    fig.savefig(path, dpi=110)
    pyplot.close(fig)
    return [path]


if __name__ == "__main__":  # pragma: no cover
    t0 = time.perf_counter()
    run(quick=True)
    print(f"{time.perf_counter() - t0:.1f} s")
