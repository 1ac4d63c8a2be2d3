"""Part c: the engine's gradient code against autodiff (``jax.grad`` under ``jit``, ``torch.autograd``).

Six objectives, each derived once with symbolic shapes, then timed at sizes ``n`` (CPU, same
inputs for every backend). Every input, scalars included, is float64 in every library (JAX with
``jax_enable_x64``; PyTorch float64 tensors, 0-d for a scalar); the dtypes actually handed to each
library are recorded. The engine side uses generated code when the package provides
``rewrite.codegen(g, backend)`` (its ``gradient(**arrays)``: the gradient alone, as ``jax.grad``
gives it), and otherwise the gradient's NumPy callable ``g.numpy()``. Each backend runs in its own
fresh process with a fixed number of math-library threads (``--threads``, default 1, set before
the library is imported; one library's idle thread pool never competes with another's). Every
backend's gradient is compared with the engine's expression evaluated by its interpreter
(``rewrite.numeric.evaluate``, NumPy float64): the relative deviation max|got - ref| / max|ref|
above ``DEVIATION_GATE`` (1e-12), a wrong dtype or a failing backend fails the run. A backend that
is not installed is skipped.

>>> sorted(PROBLEMS)
['gauss-nll-sigma', 'least-squares', 'logreg', 'matfact', 'ridge', 'tanh-layer']
>>> data = make_data("ridge", 4, __import__("numpy").random.default_rng(0))
>>> sorted((k, getattr(v, "shape", ())) for k, v in data.items())
[('X', (4, 4)), ('lam', ()), ('w', (4,)), ('y', (4,))]
>>> set(dtypes_of(data).values())
{'float64'}
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from .common import (
    DEVIATION_GATE,
    dtypes_of,
    fixed_threads,
    format_table,
    gate_cell,
    gate_line,
    median,
    plt,
    rel_dev,
    row_failures,
    time_call,
)

BATCH = 64  # columns of the tanh layer's input
RANK = 32  # rank of the matrix factorisation

PROBLEMS: dict[str, dict] = {
    "least-squares": {"expr": "norm2sq(X*w - y)", "wrt": "w",
                      "shapes": {"X": ("m", "p"), "w": ("p",), "y": ("m",)}},
    "ridge": {"expr": "norm2sq(X*w - y) + lam*norm2sq(w)", "wrt": "w",
              "shapes": {"X": ("m", "p"), "w": ("p",), "y": ("m",), "lam": ()}},
    "logreg": {"expr": "sum(log(1 + exp(-y .* (X*w))))", "wrt": "w",
               "shapes": {"X": ("m", "p"), "w": ("p",), "y": ("m",)}},
    "tanh-layer": {"expr": "fro2(tanh(W*X) - Y)", "wrt": "W",
                   "shapes": {"W": ("m", "p"), "X": ("p", "b"), "Y": ("m", "b")}},
    "gauss-nll-sigma": {"expr": "0.5*logdet(Sigma) + 0.5*tr(inv(Sigma)*S)", "wrt": "Sigma",
                        "shapes": {"Sigma": ("n", "n"), "S": ("n", "n")}},
    "matfact": {"expr": "fro2(U*V' - Y)", "wrt": "U",
                "shapes": {"U": ("m", "r"), "V": ("n", "r"), "Y": ("m", "n")}},
}


def _spd(n: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=(n, n))
    return a @ a.T / n + np.eye(n)


def make_data(name: str, n: int, rng: np.random.Generator) -> dict:
    """Inputs of size ``n`` (scaled so that every objective stays finite)."""
    s = 1 / np.sqrt(n)
    if name in ("least-squares", "ridge", "logreg"):
        d = {"X": rng.normal(size=(n, n)) * s, "w": rng.normal(size=n), "y": rng.normal(size=n)}
        if name == "ridge":
            d["lam"] = np.float64(0.1)
        if name == "logreg":
            d["y"] = np.sign(d["y"])
        return d
    if name == "tanh-layer":
        return {"W": rng.normal(size=(n, n)) * s, "X": rng.normal(size=(n, BATCH)),
                "Y": rng.normal(size=(n, BATCH))}
    if name == "gauss-nll-sigma":
        return {"Sigma": _spd(n, rng), "S": _spd(n, rng)}
    if name == "matfact":
        return {"U": rng.normal(size=(n, RANK)), "V": rng.normal(size=(n, RANK)), "Y": rng.normal(size=(n, n))}
    raise ValueError(name)


# ------------------------------------------------------------------ autodiff objectives ----
def _objective(name: str, xp, logdet, inv):
    """The objective written with array module ``xp`` (jax.numpy or torch)."""
    if name == "least-squares":
        return lambda w, X, y: xp.sum((X @ w - y) ** 2)
    if name == "ridge":
        return lambda w, X, y, lam: xp.sum((X @ w - y) ** 2) + lam * xp.sum(w ** 2)
    if name == "logreg":
        return lambda w, X, y: xp.sum(xp.log(1 + xp.exp(-y * (X @ w))))
    if name == "tanh-layer":
        return lambda W, X, Y: xp.sum((xp.tanh(W @ X) - Y) ** 2)
    if name == "gauss-nll-sigma":
        return lambda Sigma, S: 0.5 * logdet(Sigma) + 0.5 * xp.trace(inv(Sigma) @ S)
    if name == "matfact":
        return lambda U, V, Y: xp.sum((U @ V.T - Y) ** 2)
    raise ValueError(name)


def _order(name: str) -> list[str]:
    p = PROBLEMS[name]
    return [p["wrt"]] + [k for k in p["shapes"] if k != p["wrt"]]


def jax_backend():
    """``(make, available)``: ``make(name, data)`` returns a no-argument call giving the gradient."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    def make(name: str, data: dict):
        f = _objective(name, jnp, lambda a: jnp.linalg.slogdet(a)[1], jnp.linalg.inv)
        g = jax.jit(jax.grad(f))
        args = {k: jnp.asarray(data[k], dtype=jnp.float64) for k in _order(name)}
        vals = list(args.values())
        return (lambda: np.asarray(g(*vals).block_until_ready())), dtypes_of(args)

    return make


def torch_backend():
    try:
        import torch
    except ImportError:
        return None

    def make(name: str, data: dict):
        f = _objective(name, torch, torch.logdet, torch.linalg.inv)
        named = {k: torch.as_tensor(np.asarray(data[k], dtype=np.float64)) for k in _order(name)}
        args = list(named.values())  # a scalar is a 0-d float64 tensor, like every other input

        def call():
            x = args[0].detach().requires_grad_(True)
            f(x, *args[1:]).backward()
            return x.grad.numpy()

        return call, dtypes_of(named)

    return make


def _codegen():
    import rewrite as rw

    fn = getattr(rw, "codegen", None)
    if fn is None:
        try:
            fn = importlib.import_module("rewrite.codegen").codegen
        except (ImportError, AttributeError):
            fn = None
    return fn


def engine_backend(backend: str):
    """``make(name, data)`` for the engine's code in ``backend`` (numpy, jax, torch), or None."""
    import rewrite as rw

    codegen = _codegen()
    if backend != "numpy" and (codegen is None or importlib.util.find_spec(backend) is None):
        return None
    grads: dict = {}

    def gradient(name: str):
        if name not in grads:
            p = PROBLEMS[name]
            grads[name] = rw.gradient(p["expr"], p["wrt"], p["shapes"])
        return grads[name]

    if codegen is None:
        def make_numpy(name: str, data: dict):
            fn = gradient(name).numpy()
            return (lambda: fn(**data)), dtypes_of(data)

        return make_numpy

    def make(name: str, data: dict):
        ns: dict = {}
        exec(compile(codegen(gradient(name), backend), f"<tracegrad {name} {backend}>", "exec"), ns)
        fg = ns["gradient"]  # the gradient alone, like jax.grad
        args = data
        if backend == "jax":
            import jax
            import jax.numpy as jnp

            args = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in data.items()}
            try:
                jf = jax.jit(fg)
                jf(**args)
                fg = jf
                JIT[name] = True
            except Exception:  # generated code that cannot be traced runs eagerly
                JIT[name] = False
        elif backend == "torch":
            import torch

            args = {k: torch.as_tensor(np.asarray(v, dtype=np.float64)) for k, v in data.items()}

        def call():
            g = fg(**args)
            if hasattr(g, "block_until_ready"):
                g.block_until_ready()
            return np.asarray(g)

        return call, dtypes_of(args)

    return make


def engine_note() -> str:
    if _codegen() is None:
        return "g.numpy() (the gradient only; rewrite.codegen is not available)"
    return ("generated code: rewrite.codegen(g, backend) → gradient(**arrays), the gradient alone "
            "(like jax.grad); the JAX module is wrapped in jax.jit")


JIT: dict[str, bool] = {}  # problem → whether the generated JAX code could be jitted
ENGINE = ("engine-numpy", "engine-jax", "engine-torch")
AUTODIFF = ("jax", "torch")
BACKENDS = (*ENGINE, *AUTODIFF)


def worker(payload: dict) -> None:
    """One backend in a fresh process (thread pools of different libraries never compete); the
    thread settings are applied before the library is first used."""
    from .common import apply_threads, emit

    b = payload["backend"]
    library = b.removeprefix("engine-")
    if library != "numpy" and importlib.util.find_spec(library) is None:
        emit({"backend": b, "skip": "not installed"})
        return
    emit({"backend": b, "setup": apply_threads(payload["threads"], [library])})

    import rewrite as rw
    from rewrite.numeric import evaluate

    make = engine_backend(library) if b.startswith("engine-") else {"jax": jax_backend,
                                                                     "torch": torch_backend}[b]()
    if make is None:
        emit({"backend": b, "skip": "not installed"})
        return
    inject = float(payload.get("inject_deviation") or 0.0) if b in AUTODIFF else 0.0
    for name in payload["problems"]:
        p = PROBLEMS[name]
        g = rw.gradient(p["expr"], p["wrt"], p["shapes"])
        for n in payload["sizes"]:
            row: dict = {"backend": b, "problem": name, "n": n}
            data = make_data(name, n, np.random.default_rng(n))
            try:
                call, row["dtypes"] = make(name, data)
                got = np.asarray(call(), dtype=np.float64).reshape(np.shape(data[p["wrt"]]))
                if inject:  # a deliberate error (tests: the gate must catch it)
                    got = got * (1 + inject)
                row["ms"] = 1000 * median(time_call(call, payload["repeats"], budget=0.4, warmup=1))
                ref = evaluate(g.term, data).reshape(got.shape)  # the engine's interpreter
                row["rel_diff"] = rel_dev(got, ref)
                if name in JIT:
                    row["jit"] = JIT[name]
            except Exception as e:  # a backend failing on one problem is reported, not fatal
                row["error"] = f"{type(e).__name__}: {e}"[:120]
            emit(row)


def run(quick: bool = False, sizes: list[int] | None = None, problems: list[str] | None = None,
        repeats: int | None = None, threads: int | None = None, inject_deviation: float = 0.0,
        log=print) -> dict:
    """Time every backend (each in its own process, ``threads`` math-library threads) on every
    problem and size, and check every gradient against the engine's interpreter.

    Ratios are engine time / autodiff time. ``inject_deviation`` multiplies the autodiff
    libraries' gradients by 1 + that before they are compared (for testing the gate only;
    recorded in the result).
    """
    from .common import run_worker

    sizes = sizes or ([100, 200] if quick else [100, 500, 2000])
    problems = problems or list(PROBLEMS)
    repeats = repeats or (3 if quick else 7)
    threads = fixed_threads(threads)
    note = engine_note()
    log(f"[c] engine code path: {note}; {threads} math-library thread(s) per backend process")
    cells: dict[tuple, dict] = {}
    backends, skipped, failures, setup = [], [], {}, {}
    for b in BACKENDS:
        payload = {"backend": b, "problems": problems, "sizes": sizes, "repeats": repeats, "threads": threads,
                   "inject_deviation": inject_deviation}
        got, err = run_worker("benchmarks.autodiff", "worker", payload, timeout=1800, threads=threads)
        if any("skip" in r for r in got):
            skipped.append(b)
            log(f"[c] {b}: not installed, skipped")
            continue
        backends.append(b)
        if err:
            failures[b] = err
        for r in got:
            if "setup" in r:
                setup[b] = r["setup"]
                continue
            cell = cells.setdefault((r["problem"], r["n"]), {"problem": r["problem"], "n": r["n"]})
            if "ms" in r:
                cell[f"{b}_ms"] = r["ms"]
                cell[f"{b}_dev"] = r["rel_diff"]
                cell["max_rel_diff"] = max(cell.get("max_rel_diff", 0.0), r["rel_diff"])
            if "dtypes" in r:
                cell[f"{b}_dtypes"] = r["dtypes"]
            if "error" in r:
                cell[f"{b}_error"] = r["error"]
            if "jit" in r:
                cell["engine_jax_jit"] = r["jit"]
        log(f"[c] {b}: " + ", ".join(f"{r['problem']}/{r['n']} {r['ms']:.3g} ms" for r in got if "ms" in r)
            + (f" ({err})" if err else ""))
    for name in problems:  # a (problem, size) no backend reported is not hidden
        for n in sizes:
            cells.setdefault((name, n), {"problem": name, "n": n})
    rows = [cells[k] for k in sorted(cells, key=lambda k: (problems.index(k[0]), k[1]))]
    for row in rows:
        for eb in ENGINE:
            for ad in AUTODIFF:
                if row.get(f"{eb}_ms") and row.get(f"{ad}_ms"):
                    row[f"{eb}/{ad}"] = row[f"{eb}_ms"] / row[f"{ad}_ms"]
        row["gate"] = gate_cell(row_failures(row, backends))
    data = {"rows": rows, "sizes": sizes, "quick": quick, "engine_note": note, "backends": backends,
            "skipped": skipped, "failures": failures, "threads": {"threads": threads, "per_backend": setup},
            "shapes_note": SHAPES_NOTE, "dtype": "float64"}
    if inject_deviation:
        data["inject_deviation"] = inject_deviation
    data["gate"] = gate(data)
    log("")
    log(format_table(rows, table_columns(backends)))
    log(gate_line("c", data["gate"]))
    return data


def gate(data: dict) -> dict:
    """The deviation gate over every problem and size: ``{"threshold", "passed", "failures",
    "max_dev"}`` (a backend process that did not finish fails it too)."""
    backends = data.get("backends", [])
    failures = [f"{r['problem']} n={r['n']}: {why}" for r in data.get("rows", [])
                for why in row_failures(r, backends)]
    failures += [f"process {k}: {v}" for k, v in data.get("failures", {}).items()]
    devs = {b: max((r[f"{b}_dev"] for r in data.get("rows", []) if r.get(f"{b}_dev") is not None),
                   default=None) for b in backends}
    return {"threshold": DEVIATION_GATE, "passed": not failures, "failures": failures, "max_dev": devs}


SHAPES_NOTE = (f"n×n data matrices for least squares, ridge and logistic regression (w: n); tanh layer "
               f"W n×n, X and Y n×{BATCH}; Gaussian NLL Σ and S n×n SPD; matrix factorisation U, V n×{RANK}, "
               f"Y n×n; float64 on CPU")


def table_columns(backends) -> list[tuple[str, str]]:
    cols = [("problem", "problem"), ("n", "n")]
    cols += [(f"{b}_ms", f"{b} ms") for b in backends]
    for eb in ENGINE:
        if eb in backends:
            cols += [(f"{eb}/{ad}", f"{eb[7:]}/{ad}") for ad in AUTODIFF if ad in backends]
    cols += [("max_rel_diff", "max rel dev"), ("gate", "deviation gate")]
    return cols


def summary(data: dict) -> dict:
    """Ratios at n ≥ 500 (engine / autodiff): how many are ≤ 1."""
    out = {}
    for key in [f"{e}/{a}" for e in ENGINE for a in AUTODIFF]:
        vals = [r[key] for r in data.get("rows", []) if r["n"] >= 500 and r.get(key)]
        if vals:
            out[key] = {"median": median(vals), "max": max(vals), "at_most_1": sum(v <= 1 for v in vals),
                        "count": len(vals)}
    return out


def plot(data: dict, out: Path) -> list[Path]:
    pyplot = plt()
    rows = data.get("rows", [])
    if pyplot is None or not rows:
        return []
    problems = list(dict.fromkeys(r["problem"] for r in rows))
    cols = 3
    nrow = (len(problems) + cols - 1) // cols
    fig, axes = pyplot.subplots(nrow, cols, figsize=(4.3 * cols, 3.4 * nrow), squeeze=False)
    for ax, name in zip(axes.flat, problems, strict=False):
        pr = [r for r in rows if r["problem"] == name]
        for b in data.get("backends", []):
            pts = [(r["n"], r[f"{b}_ms"]) for r in pr if r.get(f"{b}_ms")]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=b)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("n")
        ax.set_ylabel("ms per gradient")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(problems):]:
        ax.axis("off")
    fig.tight_layout()
    path = out / "c_autodiff.png"
    fig.savefig(path, dpi=110)
    pyplot.close(fig)
    return [path]
