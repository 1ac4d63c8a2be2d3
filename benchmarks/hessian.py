"""Part d, second order: the engine's generated Hessian and Hessian-vector product code against autodiff.

Each objective is derived once with symbolic shapes (``rw.hessian``, ``rw.hvp``), its NumPy
module generated (``d.code("numpy")``: ``hessian(**arrays)``, ``hvp(**arrays)``) and timed at
sizes n against ``jax.hessian`` and ``jax.jvp(jax.grad(f))`` (both under ``jax.jit``, compiled
before timing) and ``torch.autograd.functional.hessian`` / ``hvp`` (float64, CPU, the same
inputs for every backend). Every backend's result is compared with the engine's at each size; a
backend that is not installed is skipped. Run ``python -m benchmarks.hessian`` (``--sizes 100
200 500``, ``--quick``) for the tables, or ``python -m benchmarks.run --part d`` to add them to
``BENCHMARKS.md``. The ratios are backend / engine (above 1: the engine is faster).

>>> sorted(PROBLEMS)
['logistic', 'quadratic', 'ridge-logistic', 'trace-quadratic']
>>> sorted(make_data("quadratic", 3, __import__("numpy").random.default_rng(0)))
['A', 'x']
"""

from __future__ import annotations

import argparse
import importlib
import os
import time

import numpy as np

from .common import format_table, time_call

PROBLEMS: dict[str, dict] = {
    "quadratic": {"expr": "x'*A*x", "wrt": "x", "shapes": {"x": ("n",), "A": ("n", "n")}},
    "logistic": {"expr": "sum(softplus(X*w)) - y'*X*w", "wrt": "w",
                 "shapes": {"X": ("m", "n"), "w": ("n",), "y": ("m",)}},
    "ridge-logistic": {"expr": "sum(softplus(X*w)) - y'*X*w + 0.5*lam*w'*w", "wrt": "w",
                       "shapes": {"X": ("m", "n"), "w": ("n",), "y": ("m",), "lam": ()}},
    # a matrix variable: the Hessian is kron(eye(k), A' + A) in vec layout (size n·k)
    "trace-quadratic": {"expr": "tr(X'*A*X)", "wrt": "X", "shapes": {"X": ("n", "k"), "A": ("n", "n")}},
}
K = 4  # columns of X in trace-quadratic: its Hessian is (n·K) × (n·K)
SIZES = (100, 200, 500, 1000, 2000)


def make_data(name: str, n: int, rng: np.random.Generator) -> dict:
    """Inputs of ``name`` at size n (m = n rows of data)."""
    if name == "quadratic":
        return {"x": rng.normal(size=n), "A": rng.normal(size=(n, n))}
    if name == "trace-quadratic":
        return {"X": rng.normal(size=(n // K, K)), "A": rng.normal(size=(n // K, n // K))}
    data = {"X": rng.normal(size=(n, n)) / np.sqrt(n), "w": rng.normal(size=n),
            "y": (rng.random(n) < 0.5).astype(float)}
    if name == "ridge-logistic":
        data["lam"] = 0.1
    return data


def _objective(name: str, lib):
    """f(wrt, **rest) written with ``lib`` (jax.numpy or torch)."""
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


def _split(name: str, data: dict) -> tuple[str, dict]:
    wrt = PROBLEMS[name]["wrt"]
    return wrt, {k: v for k, v in data.items() if k != wrt}


def engine_side(name: str):
    """(hessian callable, hvp callable, derivation seconds, printed forms)."""
    import rewrite as rw

    p = PROBLEMS[name]
    t0 = time.perf_counter()
    h = rw.hessian(p["expr"], p["wrt"], p["shapes"])
    v = rw.hvp(p["expr"], p["wrt"], p["shapes"])
    seconds = time.perf_counter() - t0
    from rewrite.codegen import load

    hm, vm = load(h.code("numpy"), "bench_hessian"), load(v.code("numpy"), "bench_hvp")
    wrt = p["wrt"]

    def run_v(data, d):
        return vm.hvp(**data, **{v.direction: np.reshape(d, np.shape(data[wrt]), order="F")})

    return (lambda data: hm.hessian(**data)), run_v, seconds, (str(h), str(v))


def jax_side(name: str):
    try:
        jax = importlib.import_module("jax")
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    jnp = importlib.import_module("jax.numpy")
    f = _objective(name, jnp)
    hess = jax.jit(jax.hessian(f))

    @jax.jit
    def hvp(x, v, *rest):
        return jax.jvp(lambda z: jax.grad(f)(z, *rest), (x,), (v,))[1]

    def run_h(data):
        wrt, rest = _split(name, data)
        return np.asarray(hess(jnp.asarray(data[wrt]), *(jnp.asarray(v) for v in rest.values())))

    def run_v(data, d):
        wrt, rest = _split(name, data)
        return np.asarray(hvp(jnp.asarray(data[wrt]), jnp.asarray(d),
                              *(jnp.asarray(v) for v in rest.values())))

    return run_h, run_v


def torch_side(name: str):
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return None
    f = _objective(name, torch)
    af = torch.autograd.functional

    def args(data):
        wrt, rest = _split(name, data)
        return torch.as_tensor(data[wrt]), tuple(torch.as_tensor(v) for v in rest.values())

    def run_h(data):
        x, rest = args(data)
        return af.hessian(lambda z: f(z, *rest), x, vectorize=True).numpy()

    def run_v(data, d):
        x, rest = args(data)
        return af.hvp(lambda z: f(z, *rest), x, torch.as_tensor(d))[1].numpy()

    return run_h, run_v


def best(times: list[float]) -> float:
    """The fastest of the timed calls (the least disturbed by other load on the machine)."""
    return min(times)


def _time(fn, args: tuple, repeats: int, budget: float) -> float:
    return best(time_call(lambda: fn(*args), repeats, budget, warmup=1))


def measure(name: str, sizes, repeats: int = 3, budget: float = 2.0) -> tuple[list[dict], dict]:
    """One row per size: best-of-``repeats`` seconds of each backend (Hessian and HVP) and the max deviation
    of each backend's result from the engine's."""
    ours_h, ours_v, derive_s, forms = engine_side(name)
    backends = {k: s for k, s in (("jax", jax_side(name)), ("torch", torch_side(name))) if s}
    rows = []
    wrt = PROBLEMS[name]["wrt"]
    for n in sizes:
        rng = np.random.default_rng(n)
        data = make_data(name, n, rng)
        flat = _flat(name, data)
        d = rng.normal(size=np.size(data[wrt]))  # a direction, in vec layout
        row: dict = {"n": n, "N": int(np.size(data[wrt]))}
        ref_h, ref_v = ours_h(data), np.ravel(ours_v(data, d), order="F")
        row["engine_h"] = _time(ours_h, (data,), repeats, budget)
        row["engine_v"] = _time(ours_v, (data, d), repeats * 5, budget)
        for b, (bh, bv) in backends.items():
            dev_h = float(np.max(np.abs(bh(flat) - ref_h)))  # also compiles (jax)
            dev_v = float(np.max(np.abs(bv(flat, d) - ref_v)))
            row[f"{b}_h"] = _time(bh, (flat,), repeats, budget)
            row[f"{b}_v"] = _time(bv, (flat, d), repeats * 5, budget)
            row[f"{b}_h_x"] = row[f"{b}_h"] / row["engine_h"]
            row[f"{b}_v_x"] = row[f"{b}_v"] / row["engine_v"]
            row[f"{b}_dev"] = max(dev_h, dev_v)
        rows.append(row)
    return rows, {"derive_seconds": derive_s, "hessian": forms[0], "hvp": forms[1],
                  "backends": sorted(backends)}


COLUMNS = [("n", "n"), ("N", "N (entries of wrt)"), ("engine_h", "engine H s"),
           ("jax_h", "jax.hessian s"), ("jax_h_x", "jax/eng"),
           ("torch_h", "torch hessian s"), ("torch_h_x", "torch/eng"), ("engine_v", "engine HVP s"),
           ("jax_v", "jax jvp(grad) s"), ("jax_v_x", "jax/eng"), ("torch_v", "torch hvp s"),
           ("torch_v_x", "torch/eng"), ("jax_dev", "max|jax-eng|"), ("torch_dev", "max|torch-eng|")]


#: the issue's targets: full Hessians ≥ 10× faster than autodiff at n ≥ 500, HVPs at least as fast
HESSIAN_SPEEDUP, HVP_SPEEDUP, TARGET_N = 10.0, 1.0, 500


def run(quick: bool = False, sizes=None, repeats: int | None = None, problems=None) -> dict:
    """Every problem at every size: ``{"problems": {name: {"rows", "info"}}}`` (part d)."""
    sizes = sizes or ([100, 200] if quick else [100, 500, 1000, 2000])
    repeats = repeats or (1 if quick else 3)
    out: dict = {"sizes": list(sizes), "problems": {}}
    for name in problems or PROBLEMS:
        rows, info = measure(name, sizes, repeats)
        out["problems"][name] = {"rows": rows, "info": info, "expr": PROBLEMS[name]["expr"],
                                 "wrt": PROBLEMS[name]["wrt"]}
    return out


def summary(data: dict) -> dict:
    """Per backend, at n ≥ 500: how many (problem, size) pairs meet each target, and the ratios."""
    out: dict = {}
    for kind, target in (("h", HESSIAN_SPEEDUP), ("v", HVP_SPEEDUP)):
        for b in ("jax", "torch"):
            xs = [r[f"{b}_{kind}_x"] for p in data.get("problems", {}).values() for r in p["rows"]
                  if r["n"] >= TARGET_N and f"{b}_{kind}_x" in r]
            if xs:
                out[f"{'Hessian' if kind == 'h' else 'HVP'} vs {b}"] = {
                    "target": target, "count": len(xs), "hold": sum(x >= target for x in xs),
                    "min": min(xs), "median": float(np.median(xs))}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    ap.add_argument("--quick", action="store_true", help="sizes 100 and 200, one repeat")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    sizes = [100, 200] if a.quick else a.sizes
    repeats = 1 if a.quick else a.repeats
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(f"float64, CPU, BLAS threads: {threads}; seconds: best of the repeats; x/eng > 1: engine faster")
    for name in a.problems:
        rows, info = measure(name, sizes, repeats)
        print(f"\n{name}: f = {PROBLEMS[name]['expr']}  (wrt {PROBLEMS[name]['wrt']}; derived once in "
              f"{info['derive_seconds']:.2f} s; backends: {', '.join(info['backends']) or 'none'})")
        print(f"  H      = {info['hessian']}\n  H*V    = {info['hvp']}")
        print(format_table(rows, [c for c in COLUMNS if any(c[0] in r for r in rows)]))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
