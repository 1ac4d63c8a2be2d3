"""Part d, second order: the engine's generated Hessian and Hessian-vector product code against autodiff.

Each objective is derived once with symbolic shapes (``rw.hessian``, ``rw.hvp``), its NumPy
module generated (``d.code("numpy")``: ``hessian(**arrays)``, ``hvp(**arrays)``) and timed at
sizes n against ``jax.hessian`` and ``jax.jvp(jax.grad(f))`` (both under ``jax.jit``, compiled
before timing) and ``torch.autograd.functional.hessian`` / ``hvp``. Each library runs in its own
fresh process with a fixed number of math-library threads (``--threads``, default 1; set before
the library is imported): first the engine's process, which times its code and writes the inputs
and its results for every problem and size to a temporary directory, then one process for JAX and
one for PyTorch, which read the same inputs. Every input, scalars included, is float64 on the CPU
in every library (JAX with ``jax_enable_x64``); the dtypes actually handed to each library are
recorded. Each autodiff result is compared with the engine's: the relative deviation is
max|autodiff - engine| / max|engine| (Hessian and HVP, the larger); above ``DEVIATION_GATE``
(1e-12) on any problem and size, or a wrong dtype, or a library failing, the run fails. A
library that is not installed is skipped. Run ``python -m benchmarks.hessian`` (``--sizes 100
200 500``, ``--quick``) for the tables, or ``python -m benchmarks.run --part d`` to add them to
``BENCHMARKS.md``. The ratios are autodiff / engine (above 1: the engine is faster).

>>> sorted(PROBLEMS)
['logistic', 'quadratic', 'ridge-logistic', 'trace-quadratic']
>>> data = make_data("ridge-logistic", 3, __import__("numpy").random.default_rng(0))
>>> sorted(data), dtypes_of(data)["lam"]
(['X', 'lam', 'w', 'y'], 'float64')
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import (
    DEVIATION_GATE,
    dtypes_of,
    emit,
    fixed_threads,
    format_table,
    gate_cell,
    gate_line,
    rel_dev,
    row_failures,
    run_worker,
    time_call,
)

PROBLEMS: dict[str, dict] = {
    "quadratic": {"expr": "x'*A*x", "wrt": "x", "shapes": {"x": ("n",), "A": ("n", "n")},
                  "args": ("x", "A")},
    "logistic": {"expr": "sum(softplus(X*w)) - y'*X*w", "wrt": "w",
                 "shapes": {"X": ("m", "n"), "w": ("n",), "y": ("m",)}, "args": ("w", "X", "y")},
    "ridge-logistic": {"expr": "sum(softplus(X*w)) - y'*X*w + 0.5*lam*w'*w", "wrt": "w",
                       "shapes": {"X": ("m", "n"), "w": ("n",), "y": ("m",), "lam": ()},
                       "args": ("w", "X", "y", "lam")},
    # a matrix variable: the Hessian is kron(eye(k), A' + A) in vec layout (size n·k)
    "trace-quadratic": {"expr": "tr(X'*A*X)", "wrt": "X", "shapes": {"X": ("n", "k"), "A": ("n", "n")},
                        "args": ("X", "A")},
}
K = 4  # columns of X in trace-quadratic: its Hessian is (n·K) × (n·K)
SIZES = (100, 500, 1000, 2000)
QUICK_SIZES = (100, 200)
BACKENDS = ("engine", "jax", "torch")  # one process each, in this order (the engine's first)
AUTODIFF = ("jax", "torch")


def make_data(name: str, n: int, rng: np.random.Generator) -> dict:
    """Inputs of ``name`` at size n (m = n rows of data), every one float64 (scalars too)."""
    if name == "quadratic":
        return {"x": rng.normal(size=n), "A": rng.normal(size=(n, n))}
    if name == "trace-quadratic":
        return {"X": rng.normal(size=(n // K, K)), "A": rng.normal(size=(n // K, n // K))}
    data = {"X": rng.normal(size=(n, n)) / np.sqrt(n), "w": rng.normal(size=n),
            "y": (rng.random(n) < 0.5).astype(np.float64)}
    if name == "ridge-logistic":
        data["lam"] = np.float64(0.1)
    return data


def _objective(name: str, lib):
    """f(wrt, *rest) written with ``lib`` (jax.numpy or torch), arguments in ``args`` order."""
    softplus = (lambda z: lib.logaddexp(0.0, z)) if lib.__name__.startswith("jax") else (
        lambda z: lib.nn.functional.softplus(z))
    if name == "quadratic":
        return lambda x, A: x @ A @ x
    if name == "trace-quadratic":  # X passed as vec(X) (column-major), like the engine's layout
        def trace_quadratic(x, A):
            X = _unvec(x, A.shape[0])
            return lib.trace(X.T @ A @ X)

        return trace_quadratic
    if name == "logistic":
        return lambda w, X, y: softplus(X @ w).sum() - y @ (X @ w)
    return lambda w, X, y, lam: softplus(X @ w).sum() - y @ (X @ w) + 0.5 * lam * (w @ w)


def _unvec(x, rows: int):
    """The matrix whose column-major vectorisation is x."""
    return x.reshape(-1, rows).T


def _flat(name: str, data: dict) -> dict:
    """The autodiff side's inputs: a matrix variable as its vec (so Hessians compare in vec layout)."""
    wrt = PROBLEMS[name]["wrt"]
    if np.ndim(data[wrt]) == 2:
        return {**data, wrt: data[wrt].reshape(-1, order="F")}
    return data


# ------------------------------------------------------------------------------ libraries ----
def engine_side(name: str):
    """(hessian callable, hvp callable, derivation seconds, printed forms) of the engine's
    generated NumPy code."""
    import rewrite as rw

    p = PROBLEMS[name]
    t0 = time.perf_counter()
    h = rw.hessian(p["expr"], p["wrt"], p["shapes"])
    v = rw.hvp(p["expr"], p["wrt"], p["shapes"])
    seconds = time.perf_counter() - t0
    hm: dict = {}
    vm: dict = {}
    exec(compile(h.code("numpy"), f"<tracegrad hessian {name}>", "exec"), hm)
    exec(compile(v.code("numpy"), f"<tracegrad hvp {name}>", "exec"), vm)
    wrt = p["wrt"]

    def run_h(data):
        return hm["hessian"](**data)

    def run_v(data, d):
        return vm["hvp"](**data, **{v.direction: np.reshape(d, np.shape(data[wrt]), order="F")})

    return run_h, run_v, seconds, (str(h), str(v))


def jax_side(name: str):
    """(prepare, hessian, hvp): ``prepare(flat, d)`` makes the library's float64 inputs once."""
    import jax
    import jax.numpy as jnp

    f = _objective(name, jnp)
    hess = jax.jit(jax.hessian(f))

    @jax.jit
    def hvp(x, v, *rest):
        return jax.jvp(lambda z: jax.grad(f)(z, *rest), (x,), (v,))[1]

    def prepare(flat: dict, d):
        args = {k: jnp.asarray(flat[k], dtype=jnp.float64) for k in PROBLEMS[name]["args"]}
        return list(args.values()), jnp.asarray(d, dtype=jnp.float64), dtypes_of(args)

    def run_h(args, dv):
        return np.asarray(hess(*args).block_until_ready())

    def run_v(args, dv):
        return np.asarray(hvp(args[0], dv, *args[1:]).block_until_ready())

    return prepare, run_h, run_v


def torch_side(name: str):
    """(prepare, hessian, hvp) with ``torch.autograd.functional``; float64 tensors throughout."""
    import torch

    f = _objective(name, torch)
    af = torch.autograd.functional

    def prepare(flat: dict, d):
        args = {k: torch.as_tensor(np.asarray(flat[k], dtype=np.float64)) for k in PROBLEMS[name]["args"]}
        return list(args.values()), torch.as_tensor(np.asarray(d, dtype=np.float64)), dtypes_of(args)

    def run_h(args, dv):
        x, *rest = args
        return af.hessian(lambda z: f(z, *rest), x, vectorize=True).numpy()

    def run_v(args, dv):
        x, *rest = args
        return af.hvp(lambda z: f(z, *rest), x, dv)[1].numpy()

    return prepare, run_h, run_v


def best(times: list[float]) -> float:
    """The fastest of the timed calls (the least disturbed by other load on the machine)."""
    return min(times)


def _time(fn, args: tuple, repeats: int, budget: float) -> float:
    """Best of ``repeats`` calls; the caller has made one call already (the result compared, which
    also compiled the JAX functions), so none is spent on warming up."""
    return best(time_call(lambda: fn(*args), repeats, budget))


# -------------------------------------------------------------------------------- worker ----
def _reference(directory: Path, name: str, n: int) -> Path:
    return directory / f"{name}-n{n}.npz"


def worker(payload: dict) -> None:
    """One library in this (fresh) process: ``engine`` times the generated NumPy code and writes
    inputs and results to ``payload["dir"]``; ``jax`` / ``torch`` read them, time autodiff and
    report their deviation from the engine's results. One JSON line per (problem, size)."""
    from .common import apply_threads

    b = payload["backend"]
    try:
        setup = apply_threads(payload["threads"], [b] if b in AUTODIFF else [])
    except ImportError:
        emit({"skip": "not installed"})
        return
    emit({"setup": setup})
    directory = Path(payload["dir"])
    if b == "engine":
        _engine_worker(payload, directory)
    else:
        _autodiff_worker(b, payload, directory)


def _engine_worker(payload: dict, directory: Path) -> None:
    import rewrite as rw

    rw.gradient("tr(A*X)", "X")  # stock rules read and the derivation program compiled, untimed
    for name in payload["problems"]:
        try:
            ours_h, ours_v, seconds, forms = engine_side(name)
        except Exception as e:  # reported (the autodiff processes then find no reference)
            emit({"problem": name, "error": f"{type(e).__name__}: {e}"[:160]})
            continue
        emit({"problem": name, "info": {"derive_seconds": seconds, "hessian": forms[0], "hvp": forms[1]}})
        wrt = PROBLEMS[name]["wrt"]
        for n in payload["sizes"]:
            rng = np.random.default_rng(n)
            data = make_data(name, n, rng)
            d = rng.normal(size=np.size(data[wrt]))  # a direction, in vec layout
            row: dict = {"problem": name, "n": n, "N": int(np.size(data[wrt])), "dtypes": dtypes_of(data)}
            try:
                ref_h = np.asarray(ours_h(data), dtype=np.float64)
                ref_v = np.ravel(ours_v(data, d), order="F").astype(np.float64)
                np.savez(_reference(directory, name, n), d=d, ref_h=ref_h, ref_v=ref_v,
                         **{f"in_{k}": np.asarray(v) for k, v in data.items()})
                row["h_s"] = _time(ours_h, (data,), payload["repeats"], payload["budget"])
                row["v_s"] = _time(ours_v, (data, d), payload["repeats"] * 5, payload["budget"])
            except Exception as e:
                row["error"] = f"{type(e).__name__}: {e}"[:160]
            emit(row)


def _autodiff_worker(b: str, payload: dict, directory: Path) -> None:
    side = {"jax": jax_side, "torch": torch_side}[b]
    inject = float(payload.get("inject_deviation") or 0.0)
    for name in payload["problems"]:
        prepare, run_h, run_v = side(name)
        for n in payload["sizes"]:
            row: dict = {"problem": name, "n": n}
            path = _reference(directory, name, n)
            if not path.exists():
                row["error"] = "no engine result to compare with"
                emit(row)
                continue
            try:
                with np.load(path) as z:
                    data = {k[3:]: z[k] for k in z.files if k.startswith("in_")}
                    d, ref_h, ref_v = z["d"], z["ref_h"], z["ref_v"]
                args, dv, dtypes = prepare(_flat(name, data), d)
                row["dtypes"] = {**dtypes, "direction": dtypes_of({"d": dv})["d"]}
                got_h, got_v = run_h(args, dv), run_v(args, dv)  # also compiles (jax)
                if inject:  # a deliberate error (tests: the gate must catch it)
                    got_h, got_v = got_h * (1 + inject), got_v * (1 + inject)
                row["dev_h"] = rel_dev(got_h, ref_h)
                row["dev_v"] = rel_dev(got_v, ref_v)
                row["absdev"] = float(max(np.max(np.abs(got_h - ref_h)), np.max(np.abs(got_v - ref_v))))
                row["h_s"] = _time(run_h, (args, dv), payload["repeats"], payload["budget"])
                row["v_s"] = _time(run_v, (args, dv), payload["repeats"] * 5, payload["budget"])
            except Exception as e:  # a library failing on one problem is reported, not fatal
                row["error"] = f"{type(e).__name__}: {e}"[:160]
            emit(row)


# -------------------------------------------------------------------------------- runner ----
COLUMNS = [("n", "n"), ("N", "N (entries of wrt)"), ("engine_h", "engine H s"),
           ("jax_h", "jax.hessian s"), ("jax_h_x", "jax/eng"),
           ("torch_h", "torch hessian s"), ("torch_h_x", "torch/eng"), ("engine_v", "engine HVP s"),
           ("jax_v", "jax jvp(grad) s"), ("jax_v_x", "jax/eng"), ("torch_v", "torch hvp s"),
           ("torch_v_x", "torch/eng"), ("jax_dev", "rel dev jax"), ("torch_dev", "rel dev torch"),
           ("gate", "deviation gate")]


#: the issue's targets: full Hessians ≥ 10× faster than autodiff at n ≥ 500, HVPs at least as fast
HESSIAN_SPEEDUP, HVP_SPEEDUP, TARGET_N = 10.0, 1.0, 500


def run(quick: bool = False, sizes=None, repeats: int | None = None, problems=None,
        threads: int | None = None, inject_deviation: float = 0.0, timeout: float = 3600.0,
        log=print) -> dict:
    """Every problem at every size, each library in its own process (part d):
    ``{"problems": {name: {"rows", "info", "expr", "wrt"}}, "gate": {...}, "threads": ...}``.

    ``inject_deviation`` multiplies the autodiff results by 1 + that before they are compared
    (for testing the gate only; recorded in the result).
    """
    sizes = list(sizes or (QUICK_SIZES if quick else SIZES))
    repeats = repeats or (1 if quick else 3)
    problems = list(problems or PROBLEMS)
    threads = fixed_threads(threads)
    out: dict = {"sizes": sizes, "quick": quick, "repeats": repeats, "problems": {},
                 "threads": {"threads": threads, "per_backend": {}}, "backends": [], "skipped": [],
                 "failures": {}, "dtype": "float64"}
    if inject_deviation:
        out["inject_deviation"] = inject_deviation
    cells: dict[tuple, dict] = {}
    infos: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="tracegrad-bench-d-") as tmp:
        for b in BACKENDS:
            payload = {"backend": b, "problems": problems, "sizes": sizes, "repeats": repeats,
                       "budget": 2.0, "threads": threads, "dir": tmp,
                       "inject_deviation": inject_deviation if b != "engine" else 0.0}
            got, err = run_worker("benchmarks.hessian", "worker", payload, timeout, threads=threads)
            if any("skip" in r for r in got):
                out["skipped"].append(b)
                log(f"[d] {b}: not installed, skipped")
                continue
            out["backends"].append(b)
            if err:
                out["failures"][b] = err
            for r in got:
                if "setup" in r:
                    out["threads"]["per_backend"][b] = r["setup"]
                elif "info" in r:
                    infos[r["problem"]] = r["info"]
                elif "n" not in r:
                    out["failures"][f"{b} {r['problem']}"] = r.get("error")
                else:
                    _merge(cells.setdefault((r["problem"], r["n"]), {"n": r["n"]}), b, r)
            log(f"[d] {b}: " + ", ".join(f"{r['problem']}/{r['n']} H {r['h_s']:.3g} s" for r in got
                                       if "h_s" in r) + (f" ({err})" if err else ""))
    autodiff = [b for b in AUTODIFF if b in out["backends"]]
    for name in problems:
        rows = [cells.get((name, n), {"n": n}) for n in sizes]
        for row in rows:
            row["gate"] = _gate_cell(row, autodiff)
        info = {"derive_seconds": None, "hessian": "-", "hvp": "-", **infos.get(name, {}),
                "backends": autodiff}
        out["problems"][name] = {"rows": rows, "info": info, "expr": PROBLEMS[name]["expr"],
                                 "wrt": PROBLEMS[name]["wrt"]}
    out["gate"] = gate(out)
    for name, p in out["problems"].items():
        log(f"\n{name}: f = {p['expr']}  (wrt {p['wrt']}; H = {p['info']['hessian']}; "
            f"H*V = {p['info']['hvp']})")
        log(format_table(p["rows"], [c for c in COLUMNS if any(c[0] in r for r in p["rows"])]))
    log("")
    log(gate_line("d", out["gate"]))
    return out


def _merge(cell: dict, b: str, r: dict) -> None:
    """One library's row into the (problem, n) cell, under keys prefixed with its name."""
    key = "engine" if b == "engine" else b
    if "N" in r:
        cell["N"] = r["N"]
    if "error" in r:
        cell[f"{key}_error"] = r["error"]
    if "dtypes" in r:
        cell[f"{key}_dtypes"] = r["dtypes"]
    for kind in ("h", "v"):
        if f"{kind}_s" in r:
            cell[f"{key}_{kind}"] = r[f"{kind}_s"]
    if b != "engine" and "dev_h" in r:
        cell[f"{b}_dev_h"], cell[f"{b}_dev_v"] = r["dev_h"], r["dev_v"]
        cell[f"{b}_dev"] = max(r["dev_h"], r["dev_v"])
        cell[f"{b}_absdev"] = r["absdev"]  # max|autodiff - engine|, for reference
    for kind in ("h", "v"):
        if b != "engine" and cell.get(f"engine_{kind}") and cell.get(f"{b}_{kind}"):
            cell[f"{b}_{kind}_x"] = cell[f"{b}_{kind}"] / cell[f"engine_{kind}"]


def _gate_cell(row: dict, backends) -> str:
    return gate_cell(row_failures(row, backends, also=("engine",)))


def gate(data: dict) -> dict:
    """The deviation gate over every problem and size: ``{"threshold", "passed", "failures",
    "max_dev"}`` (a library process that did not finish fails it too)."""
    autodiff = [b for b in AUTODIFF if b in data.get("backends", [])]
    failures = [f"{name} n={r['n']}: {why}" for name, p in data.get("problems", {}).items()
                for r in p["rows"] for why in row_failures(r, autodiff, also=("engine",))]
    failures += [f"process {k}: {v}" for k, v in data.get("failures", {}).items()]
    devs = {b: max((r[f"{b}_dev"] for p in data.get("problems", {}).values() for r in p["rows"]
                    if r.get(f"{b}_dev") is not None), default=None) for b in autodiff}
    return {"threshold": DEVIATION_GATE, "passed": not failures, "failures": failures, "max_dev": devs}


def summary(data: dict) -> dict:
    """Per backend, at n ≥ 500: how many (problem, size) pairs meet each target, and the ratios."""
    out: dict = {}
    for kind, target in (("h", HESSIAN_SPEEDUP), ("v", HVP_SPEEDUP)):
        for b in AUTODIFF:
            xs = [r[f"{b}_{kind}_x"] for p in data.get("problems", {}).values() for r in p["rows"]
                  if r["n"] >= TARGET_N and f"{b}_{kind}_x" in r]
            if xs:
                out[f"{'Hessian' if kind == 'h' else 'HVP'} vs {b}"] = {
                    "target": target, "count": len(xs), "hold": sum(x >= target for x in xs),
                    "min": min(xs), "median": float(np.median(xs))}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help=f"default {' '.join(map(str, SIZES))}")
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    ap.add_argument("--quick", action="store_true", help="sizes 100 and 200, one repeat")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None,
                    help="math-library threads per library process (default 1; 0 = every core)")
    a = ap.parse_args(argv)
    threads = fixed_threads(a.threads)
    print(f"float64, CPU, {threads} thread(s) per library process; seconds: best of the repeats; "
          "x/eng > 1: engine faster")
    data = run(quick=a.quick, sizes=a.sizes, repeats=a.repeats, problems=a.problems, threads=threads)
    return 0 if data["gate"]["passed"] else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
