"""Write ``BENCHMARKS.md`` from the JSON results of the five parts (whichever exist).

The parts' JSON files record the commit they were measured at. When they differ, :func:`write`
refuses (:class:`MixedCommitsError`) unless told ``allow_mixed=True`` (``--allow-mixed-commits``),
and then says in the report which parts are older.

>>> check(True, 3.0, "ms")
'yes (3 ms)'
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from . import autodiff, derivation, hessian, identities, vs_sympy
from .common import DEVIATION_GATE, load_json, markdown_table

PART_FILES = {"a": "a_derivation.json", "b": "b_sympy.json", "c": "c_autodiff.json", "d": "d_hessian.json",
              "e": "e_identities.json"}


class MixedCommitsError(RuntimeError):
    """The parts' results were measured at different commits (and mixing was not allowed)."""


def check(ok: bool | None, value, unit: str = "") -> str:
    if ok is None or value is None:
        return "not measured"
    v = f"{value:.3g}" if isinstance(value, float) else str(value)
    return f"{'yes' if ok else 'no'} ({v}{' ' + unit if unit else ''})"


def _img(md: Path, png: Path, alt: str) -> str:
    rel = os.path.relpath(png, md.parent).replace(os.sep, "/")
    return f"![{alt}]({rel})" if png.exists() else f"*({alt}: plot not written — matplotlib missing)*"


def _when(part: dict) -> str:
    return part.get("time_utc") or part.get("date") or ""


def commits(parts: dict) -> dict[str, str]:
    """The commit each present part records (``not recorded`` for results that predate it).

    >>> commits({"a": {"commit": "abc1234"}, "b": {}, "c": None})
    {'a': 'abc1234', 'b': 'not recorded'}
    """
    return {k: (v.get("commit") or "not recorded") for k, v in parts.items() if v is not None}


def older_parts(parts: dict) -> list[str]:
    """The parts not measured at the commit of the most recently run part.

    >>> older_parts({"a": {"commit": "new", "time_utc": "2026-12-05T10:00:00Z"},
    ...              "b": {"commit": "old", "time_utc": "2026-12-04T10:00:00Z"}, "c": {}})
    ['b', 'c']
    """
    cs = commits(parts)
    if not cs:
        return []
    newest = max(cs, key=lambda k: _when(parts[k]))
    return [k for k, c in cs.items() if c != cs[newest]]


def mixed_message(parts: dict, out: Path | str = "the results directory") -> str:
    """Why the markdown step refuses to mix parts of different commits, and what to do."""
    listed = "; ".join(f"{k} at {c} ({(parts[k] or {}).get('date') or 'no date'})"
                       for k, c in commits(parts).items())
    return (f"the benchmark results in {out} come from different commits ({listed}); parts "
            f"{', '.join(older_parts(parts))} are older. Rerun every part at one commit "
            "(python -m benchmarks.run), or pass --allow-mixed-commits to write them with a line "
            "saying which parts are older.")


def runs_section(parts: dict) -> list[str]:
    """Which commit and date each part's results come from; a warning naming the older parts
    when they differ (only written when mixing was allowed).

    >>> lines = runs_section({"a": {"commit": "abc1234", "date": "d1", "wall_seconds": 61.0}, "b": {},
    ...                       "c": None})
    >>> lines[4:6]
    ['| a | abc1234 | d1 | 61 s |', '| b | not recorded | - | - |']
    >>> lines[7][:60]
    '**Mixed commits** (written with `--allow-mixed-commits`): pa'
    """
    present = {k: v for k, v in parts.items() if v is not None}
    if not present:
        return []
    cs = commits(present)
    L = ["## Runs", "", "| part | commit | date | wall time |", "|---|---|---|---|"]
    for (k, v), c in zip(present.items(), cs.values(), strict=True):
        secs = v.get("wall_seconds")
        L.append(f"| {k} | {c} | {v.get('date') or '-'} | {'-' if secs is None else f'{secs:.0f} s'} |")
    L.append("")
    old = older_parts(present)
    if old:
        newest = next(k for k in cs if k not in old)
        L += [f"**Mixed commits** (written with `--allow-mixed-commits`): part{'s' if len(old) > 1 else ''} "
              f"{', '.join(old)} {'are' if len(old) > 1 else 'is'} older than part {newest} (commit "
              f"{cs[newest]}): " + "; ".join(f"{k} at {cs[k]}" for k in old)
              + ". Compare figures across parts with care.", ""]
    return L


def caches_section(parts: dict) -> list[str]:
    """How the caches were set, as the parts' results record it (and which parts do not say).

    >>> for line in caches_section({"a": {"caches": {"results": "none"}}, "b": {}, "c": None})[2:5]:
    ...     print(line)
    No figure here comes from a cache (as recorded by part a; part b does not record it):
    <BLANKLINE>
    * **results**: none.
    """
    present = {k: v for k, v in parts.items() if v is not None and k in PART_FILES}
    recorded = [k for k, v in present.items() if v.get("caches")]
    if not present:
        return []
    if not recorded:
        return ["## Caches", "", "Not recorded by these results.", ""]
    silent = [k for k in present if k not in recorded]
    head = f"No figure here comes from a cache (as recorded by part{'s' if len(recorded) > 1 else ''} " \
        + ", ".join(recorded)
    if silent:
        head += f"; part{'s' if len(silent) > 1 else ''} {', '.join(silent)} " \
            f"{'do' if len(silent) > 1 else 'does'} not record it"
    items = [f"* **{k.replace('_', ' ')}**: {v}" for k, v in present[recorded[0]]["caches"].items()]
    items = [i + (";" if n < len(items) - 1 else ".") for n, i in enumerate(items)]
    return ["## Caches", "", head + "):", "", *items, ""]


def header_commit(parts: dict) -> str:
    """The header's line on the commit measured.

    >>> header_commit({"a": {"commit": "abc1234"}, "b": {"commit": "abc1234"}, "c": None})
    'Commit measured: `abc1234` (parts a, b).'
    """
    cs = commits(parts)
    if not cs:
        return "Commit measured: no results yet."
    if len(set(cs.values())) == 1:
        return f"Commit measured: `{next(iter(cs.values()))}` (parts {', '.join(cs)})."
    old = older_parts(parts)
    return ("Commits measured (mixed): " + ", ".join(
        f"part {k} `{c}`" + (" (older)" if k in old else "") for k, c in cs.items()) + ".")


#: after a target's value: the run measured stopped on a limit (in some phase)
LIMITED = " — stopped on a limit"


def fit_check(fit: dict | None, most: float = 1.1) -> str:
    """A targets-table cell for a fitted exponent (at most ``most``), with the runs it left out.

    >>> fit_check({"exponent": None, "params": [4, 8], "min_points": 3, "excluded": ["q16: x"]})
    'not measured (2 runs ran to the end, a fit needs 3; 1 run stopped on a limit was excluded)'
    """
    if not fit:
        return "not measured"
    k = len(fit["excluded"])
    ex = f"{k} {'run' if k == 1 else 'runs'} stopped on a limit {'was' if k == 1 else 'were'} excluded"
    used = f"{len(fit['params'])} {'run' if len(fit['params']) == 1 else 'runs'}"
    if fit["exponent"] is None:
        return f"not measured ({used} ran to the end, a fit needs {fit['min_points']}; {ex})"
    return f"{check(fit['exponent'] <= most, fit['exponent'])}; {used}, {ex}"


def gate_row(label: str, g: dict | None) -> str:
    """A targets-table row for a part's deviation gate (float64 everywhere, relative deviation)."""
    if not g:
        return f"| {label} | not measured |"
    devs = ", ".join(f"{b} {v:.2g}" for b, v in g.get("max_dev", {}).items() if v is not None)
    if g.get("passed"):
        return f"| {label} | yes (largest: {devs or '-'}) |"
    return (f"| {label} | **no — FAILED** on {len(g['failures'])} check(s): "
            + "; ".join(g["failures"][:5]).replace("|", "\\|")
            + (" …" if len(g["failures"]) > 5 else "") + " |")


def threads_text(th) -> str:
    """How many threads each library process had (as its JSON records it)."""
    if not isinstance(th, dict):  # results from before the thread setting was recorded per process
        return f"{th} math-library thread(s) per backend process" if th else "the libraries' default threads"
    per = th.get("per_backend", {})
    bits = []
    for b, rec in per.items():
        extra = [f"torch {rec['torch_threads']}/{rec.get('torch_interop_threads')} intra/inter-op"] \
            if "torch_threads" in rec else []
        if rec.get("cpus") is not None:
            extra.append(f"{rec['cpus']} core(s)")
        bits.append(f"{b}: {', '.join(extra) or 'env only'}")
    return (f"{th.get('threads')} math-library thread(s) in every library process (`--threads`; "
            "`OMP_NUM_THREADS`, `OPENBLAS_NUM_THREADS`, `MKL_NUM_THREADS` and, with one thread, "
            "`XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`, set before the library is imported; "
            "`torch.set_num_threads`; the process pinned to as many cores, from which XLA sizes its "
            "pools)" + (f" — as recorded: {'; '.join(bits)}" if bits else ""))


#: how to run the benchmarks (the report's header)
COMMANDS = [
    "python -m benchmarks.run                # all parts, then this file (wall times: ## Runs)",
    "python -m benchmarks.run --quick        # smoke run, a minute or two",
    "python -m benchmarks.run --part a       # one part: the markdown step then refuses to mix commits",
    "python -m benchmarks.run --part a --allow-mixed-commits   # ... unless told (it names the older parts)",
    "python -m benchmarks.run --part none    # only rewrite this file from benchmarks/results/",
    "python -m benchmarks.run --part c --threads 0   # c/d: every core per library (default 1 thread)",
]


def load_parts(out: Path) -> dict:
    """Each part's JSON results in ``out`` (None for a part never run), and the profile's when
    there is one (it records its commit too)."""
    parts = {k: load_json(out / f) for k, f in PART_FILES.items()}
    prof = load_json(out / "profile.json")
    if prof is not None:
        parts["profile"] = prof
    return parts


def write(out: Path, md: Path, allow_mixed: bool = False) -> Path:
    """Regenerate the markdown report ``md`` from the results in ``out``.

    Raises :class:`MixedCommitsError` when the parts' results record different commits, unless
    ``allow_mixed``; the report then names the older parts.
    """
    machine = load_json(out / "machine.json") or {}
    parts = load_parts(out)
    if older_parts(parts) and not allow_mixed:
        raise MixedCommitsError(mixed_message(parts, out))
    a, b, c, d, e = (parts[k] for k in "abcde")
    L: list[str] = ["# Benchmarks", "", header_commit(parts), ""]
    L += ["Generated by `python -m benchmarks.run` (see `benchmarks/`); every number below comes from "
          "the JSON files in `benchmarks/results/`, written by the same run. Speed is measured here, "
          "never in unit tests. Ratios compare the engine with another tool *in the same run*.", ""]
    L += ["```", *COMMANDS, "```", ""]
    if machine:
        v = machine.get("versions", {})
        L += ["## Machine", "", "| | |", "|---|---|",
              f"| CPU | {machine.get('cpu')} |", f"| cores | {machine.get('cores')} |",
              f"| RAM | {machine.get('ram_gib')} GiB |", f"| OS | {machine.get('os')} |",
              f"| Python | {machine.get('python')} |",
              "| packages | " + ", ".join(f"{k} {val}" for k, val in v.items()) + " |",
              f"| date | {machine.get('date')} |", ""]
        if machine.get("quick"):
            L += ["**These results come from a `--quick` run** (fewer cases, one repetition).", ""]
    L += runs_section(parts)
    L += caches_section(parts)
    L += ["## Targets", "", "| target | holds? |", "|---|---|"]
    sa = derivation.summary(a) if a else {}
    sb = (b or {}).get("summary", {})
    sc = autodiff.summary(c) if c else {}
    med, p95 = sa.get("public_median_ms"), sa.get("public_p95_ms")
    L.append("| median derivation ≤ 10 ms on the public cases | "
             f"{check(med is not None and med <= 10, med, 'ms')} |")
    L.append("| p95 derivation ≤ 30 ms on the public cases | "
             f"{check(p95 is not None and p95 <= 30, p95, 'ms')} |")
    ff = sb.get("faster_fraction_sympy_correct")
    L.append("| faster than SymPy on ≥ 90 % of the cases SymPy answers correctly | "
             f"{check(ff is not None and ff >= 0.9, None if ff is None else 100 * ff, '%')} |")
    fa = sb.get("faster_fraction")
    L.append("| … and on the cases SymPy answers, right or wrong (a wrong 0 comes back in 0.1 ms) | "
             f"{check(fa is not None and fa >= 0.9, None if fa is None else 100 * fa, '%')} |")
    t16 = sa.get("tr16_ms")
    L.append(f"| tr(F1…F16) ≤ 100 ms | {check(t16 is not None and t16 <= 100, t16, 'ms')}"
             f"{LIMITED if sa.get('tr16_limited') else ''} |")
    qm = sa.get("qsum_max_ms")
    L.append(f"| {sa.get('qsum_max_m', 64)}-term quadratic sum ≤ 300 ms | "
             f"{check(qm is not None and qm <= 300, qm, 'ms')}{LIMITED if sa.get('qsum_max_limited') else ''} |")
    L.append("| … growing at most linearly (fitted exponent of time vs terms, m ≥ 4, runs not stopped "
             f"on a limit) | {fit_check(sa.get('qsum_fit'))} |")
    L.append("| L-layer tanh network gradient growing at most linearly in L (fitted exponent, L ≥ 4, runs "
             f"not stopped on a limit) | {fit_check(sa.get('mlp_fit'))} |")
    ml, mm = sa.get("mlp_max_l"), sa.get("mlp_max_ms")
    if ml is not None:
        peak = sa.get("mlp_max_peak_mb")
        L.append(f"| L = {ml} tanh network gradient < 1 s (peak resident set reported) | "
                 f"{check(mm < 1000, mm, 'ms')}{LIMITED if sa.get('mlp_max_limited') else ''}"
                 f"{'' if peak is None else f'; peak +{peak:g} MB'} |")
    cold = (sa.get("cold") or {}).get("cache")
    if cold:
        L.append("| cold `tracegrad grad` (a fresh process, the README's first command), stock rules "
                 f"from the start-up cache ≤ 0.3 s | {check(cold['ms'] <= 300, cold['ms'], 'ms')} |")
    for key, v in sc.items():
        L.append(f"| generated gradient {key} ≤ 1.0 at n ≥ 500 | "
                 f"{v['at_most_1']}/{v['count']} problem-sizes hold; median {v['median']:.3g}, "
                 f"max {v['max']:.3g} |")
    for key, v in (hessian.summary(d) if d else {}).items():
        L.append(f"| generated {key.split()[0]} ≥ {v['target']:g}× faster than {key.split()[-1]} "
                 f"at n ≥ {hessian.TARGET_N} | {v['hold']}/{v['count']} problem-sizes hold; "
                 f"min {v['min']:.3g}×, median {v['median']:.3g}× |")
    L += identity_targets(e)
    if c:
        L.append(gate_row(f"c: every library's gradient within {DEVIATION_GATE:g} (relative) of the engine's "
                          "interpreter, every input float64", c.get("gate")))
    if d:
        L.append(gate_row(f"d: autodiff Hessians and HVPs within {DEVIATION_GATE:g} (relative) of the "
                          "engine's, every input float64", d.get("gate")))
    L.append("")
    if a:
        L += ["## a. Derivation latency", ""]
        L += ["Time: median wall-clock time of `rewrite.gradient(expr, wrt, shapes)` (parse, e-graph "
              "phases, extraction and simplification of G) over repeated runs in a warm process (the rule "
              "program is compiled once before measuring). *iters*, *e-classes*, *e-nodes* and *stop* come "
              "from the result's `.report`. **Memory**: each family runs in a fresh process; *peak MB* is the "
              "growth of the process's peak resident set (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) since "
              "the warm-up, read after each case. It includes egglog's Rust heap (which `tracemalloc` cannot "
              "see) and is cumulative along the family (cases run in increasing size), i.e. the peak needed "
              "up to that case. *fd err* is the gradient's relative error against central finite differences "
              "at a random point (non-square sizes). A case stopped by a limit shows its stop reason; "
              "*min ms* is the fastest run (less sensitive to other load on the machine than the median). "
              "No result cache: every timed call runs the whole derivation; the processes run with the "
              "stock-rules cache off (`TRACEGRAD_CACHE=0`), except the cold-start table below, which "
              "measures it.", ""]
        if a.get("errors"):
            L += [f"Processes that did not finish: {a['errors']}", ""]
        if sa.get("limit_hits"):
            L += ["Cases that stopped without a gradient or on a limit: " + "; ".join(sa["limit_hits"]), ""]
        else:
            L += ["Every case produced a gradient; no derivation stopped on a limit.", ""]
        if sa.get("phase_limit_hits"):
            L += [f"{len(sa['phase_limit_hits'])} cases produced their gradient with a phase stopped by its "
                  "limit (column *phase limits hit*; usually the bounded simplification of G, which then "
                  "returns the best form found so far): " + "; ".join(sa["phase_limit_hits"]), ""]
        fam = a.get("families", {})
        if fam.get("public"):
            L += ["### Public cases", "",
                  f"median {med:.3g} ms, p95 {p95:.3g} ms, max {sa.get('public_max_ms', 0):.3g} ms "
                  f"over {sa.get('public_n')} cases." if med is not None else "", "",
                  f"Once per process, before these: the first gradient (the stock rules compiled for "
                  f"egglog and loaded into e-graphs) took {sa['startup_ms']:.3g} ms and grew the peak "
                  f"resident set by {sa['startup_mb']:.3g} MB." if sa.get("startup_ms") is not None else "", "",
                  *_cold_start(sa),
                  *_time_split(sa),
                  _img(md, out / "a_public.png", "public cases"), "",
                  markdown_table(fam["public"], derivation.TABLE_COLUMNS), ""]
        L += ["### Scaling families", "",
              "* **trace-product**: `tr(X*F1*…)` with k factors, X at 1–4 evenly spread positions "
              "(non-square chained dimensions; all n×n when two X are adjacent);",
              "* **quadratic-sum**: `x'*A1*x + … + x'*Am*x`;",
              "* **nested-inverse**: `tr(B*inv(Ad + inv(… inv(A1 + X))))`;",
              "* **elementwise-chain**: `sum(f_d(A_d .* … f_1(A1 .* X)))` cycling tanh, sin, exp, sigmoid, "
              "cos, softplus;",
              "* **mlp-depth**: `sum(tanh(WL*…tanh(W1*x)))` with respect to W1 (an L-layer tanh network).", "",
              _img(md, out / "a_scaling_time.png", "scaling: time"), "",
              _img(md, out / "a_scaling_enodes.png", "scaling: e-nodes"), "",
              _img(md, out / "a_scaling_memory.png", "scaling: memory"), ""]
        L += ["In the plots a red × is a case that produced no gradient, a black circle one whose "
              "report shows a phase stopped on a limit. Fitted exponents use only the runs that ran to "
              "their end (goal or saturation) in every phase (a run stopped on a limit did less than the "
              "whole work):", ""]
        L += [f"* {line}" for line in derivation.fit_lines(sa)] + [""]
        if sa.get("mlp_ms"):
            L += ["tanh network: " + ", ".join(f"L = {k}: {v:.3g} ms" for k, v in sa["mlp_ms"].items())
                  + ".", ""]
        for name in derivation.FAMILIES[1:]:
            if fam.get(name):
                L += [f"#### {name}", "", markdown_table(fam[name], derivation.TABLE_COLUMNS), ""]
    if b:
        L += ["## b. Against SymPy", ""]
        doc = re.sub(r":\w+:`", "`", (vs_sympy.__doc__ or "").split(">>>")[0].strip()).replace("``", "`")
        L += [doc, "",
              "*engine ms* is the whole `rewrite.gradient` call; *sympy ms* the `.diff` call alone (building "
              "the SymPy expression is not timed). *engine/sympy* < 1 means the engine is faster. "
              f"Per-case SymPy timeout: {b.get('timeout_s')} s. A case SymPy *answers* is one where it returns "
              "an expression free of unevaluated `Derivative` (right or wrong).", "",
              "```", vs_sympy.format_summary(sb), "```", "",
              _img(md, out / "b_sympy.png", "engine vs SymPy"), "",
              markdown_table(b.get("rows", []), vs_sympy.TABLE_COLUMNS), ""]
    if c:
        L += ["## c. Generated gradient code against autodiff", ""]
        L += [f"Engine code path: {c.get('engine_note')}. Autodiff: `jax.jit(jax.grad(f))` and "
              "`torch.autograd` (forward + `backward()`), CPU, on identical inputs, every one float64 in "
              "every library, scalars included (JAX with `jax_enable_x64`, PyTorch 0-d float64 tensors; the "
              "dtypes handed to each library are recorded in the JSON and checked); compile time (first "
              "call) excluded, median of repeated calls. Each backend runs in its own fresh process, so the "
              "thread pools of NumPy's BLAS, XLA and PyTorch never compete. Ratios are engine time / "
              "autodiff time (< 1: the engine's code is faster). *max rel dev* is the largest relative "
              "deviation, max|got − ref| / max|ref|, of any backend's gradient from the engine's expression "
              "evaluated by its interpreter (`rewrite.numeric.evaluate`, NumPy float64); *deviation gate* "
              f"fails a row when one is above {DEVIATION_GATE:g}, an input is not float64 or a backend "
              "fails, and a failed row makes the run's exit code non-zero.", "",
              f"Shapes: {c.get('shapes_note')}.", "", f"Threads: {threads_text(c.get('threads'))}.", ""]
        L += _gate_lines(c.get("gate"), c.get("inject_deviation"))
        if c.get("failures"):
            L += [f"Backend processes that did not finish: {c['failures']}", ""]
        if c.get("skipped"):
            L += [f"Not installed (skipped): {', '.join(c['skipped'])}.", ""]
        L += [_img(md, out / "c_autodiff.png", "generated code vs autodiff"), "",
              markdown_table(c.get("rows", []), autodiff.table_columns(c.get("backends", []))), ""]
    if d:
        L += ["## d. Generated second-order code against autodiff", ""]
        L += ["The engine's generated Hessian and Hessian-vector product code (NumPy) against `jax.hessian` "
              "and `jax.jvp(jax.grad(f))` (under `jax.jit`, compiled before timing) and "
              "`torch.autograd.functional.hessian` / `hvp`, on the same inputs, every one float64 in every "
              "library, scalars included (JAX with `jax_enable_x64`; the dtypes handed to each library are "
              "recorded in the JSON and checked). "
              "Each library runs in its own fresh process: the engine's first, which also writes the inputs "
              "and its results for the others to read.", "",
              "Times are seconds, best of the repeats; *x/eng* is autodiff time / engine time (above 1: the "
              "engine is faster); *rel dev* the relative deviation max|autodiff − engine| / max|engine| "
              "(the larger of the Hessian's and the HVP's); *deviation gate* fails a row when one is above "
              f"{DEVIATION_GATE:g}, an input is not float64 or a library fails, and a failed row makes the "
              "run's exit code non-zero. n is the problem size (N, the number of entries of the variable, "
              "is the Hessian's order). Targets: full Hessian ≥ "
              f"{hessian.HESSIAN_SPEEDUP:g}× faster, HVP ≥ {hessian.HVP_SPEEDUP:g}× (at least as fast), "
              f"at n ≥ {hessian.TARGET_N}.", "", f"Threads: {threads_text(d.get('threads'))}.", ""]
        L += _gate_lines(d.get("gate"), d.get("inject_deviation"))
        if d.get("failures"):
            L += [f"Library processes that did not finish or failed on a problem: {d['failures']}", ""]
        if d.get("skipped"):
            L += [f"Not installed (skipped): {', '.join(d['skipped'])}.", ""]
        for name, p in d.get("problems", {}).items():
            info = p["info"]
            secs = info.get("derive_seconds")
            L += [f"### {name}: `f = {p['expr']}` (wrt `{p['wrt']}`)", "",
                  f"H = `{info['hessian']}`; H·V = `{info['hvp']}`; derived once in "
                  + (f"{secs:.2f} s" if secs is not None else "-")
                  + " (in the engine's process, after one untimed gradient).", "",
                  markdown_table(p["rows"], [c for c in hessian.COLUMNS
                                             if any(c[0] in r for r in p["rows"])]), ""]
    L += identities_section(e)
    prof = parts.get("profile")
    if prof:
        L += ["## Profile of one derivation", "", "```", prof["text"].rstrip(), "```", ""]
    md.write_text("\n".join(L).rstrip() + "\n")
    return md


def _gate_lines(g: dict | None, injected=None) -> list[str]:
    """A part's deviation gate, said in the report (and loudly when it failed)."""
    out = []
    if injected:
        out += [f"**Deviation injected on purpose** (`--inject-deviation {injected:g}`, a test of the gate): "
                "these figures are not measurements of the libraries.", ""]
    if not g:
        return out + ["Deviation gate: not recorded (results from before the gate).", ""]
    if g.get("passed"):
        return out
    return out + [f"**Deviation gate FAILED** ({len(g['failures'])} check(s), threshold {g['threshold']:g}): "
                  + "; ".join(g["failures"]), ""]


def _time_split(sa: dict) -> list[str]:
    """Where a public case's time goes: inside the e-graph engine (egglog) by kind, and Python."""
    sp = sa.get("public_split")
    if not sp:
        return []
    med, share = sp["median_ms"], sp["share"]
    cols = [("checkpoint", "checkpoint"), ("insert", "insert terms"), ("rules", "run rules"),
            ("read", "read results"), ("egglog", "egglog in all"), ("python", "Python")]
    return ["Where the time goes (each run's report times the calls into egglog, the e-graph engine; "
            "the rest of the run's wall time is Python). *checkpoint*: restoring the loaded rules' "
            "checkpoint for each e-graph session (one for the derivation, one per round of simplifying "
            "G) and discarding the session's e-graph; *insert terms*: adding the objective and G; "
            "*run rules*: the phases' rule runs (with the goal test riding along); "
            "*read results*: extraction, sizes and e-class counts.",
            "",
            "| over the public cases | " + " | ".join(h for _, h in cols) + " | wall |",
            "|---|" + "---|" * (len(cols) + 1),
            "| median per case (ms) | " + " | ".join(f"{med[k]:.3g}" for k, _ in cols)
            + f" | {med['wall']:.3g} |",
            "| share of all the time | " + " | ".join(f"{100 * share[k]:.0f} %" for k, _ in cols)
            + " | 100 % |",
            "",
            f"egglog alone takes a median {med['egglog']:.3g} ms per public case"
            + (", above the 10 ms target before any Python runs." if med["egglog"] > 10 else
               f", Python a median {med['python']:.3g} ms, the whole call a median "
               f"{med['wall']:.3g} ms."),
            ""]


def _cold_start(sa: dict) -> list[str]:
    """Part a's cold-start table: a whole process, by where it finds the stock rules."""
    cold = sa.get("cold")
    if not cold:
        return []
    what = {"files": "parsed from the rule files (`TRACEGRAD_CACHE=0`)",
            "cache": "read from the start-up cache",
            "first": "parsed, then written to an empty cache (a first run)"}
    rows = [{"mode": what.get(m, m), "ms": v["ms"], "peak_mb": v["peak_mb"]} for m, v in cold.items()]
    runs = next(iter(cold.values())).get("runs", 1)
    return ["Cold start: a whole fresh process running the README's first command, `tracegrad grad "
            "\"tr(X'*A*X)\" --wrt X --shape X=n,k --shape A=n,n` (interpreter start, the CLI's "
            "imports, one gradient printed; Python's bytecode compiled, as an installed package has "
            "it), by where it finds the stock rules; median of "
            f"{runs} alternating runs. From the cache it takes {sa['cold_ratio']:.2f}× the time of "
            "parsing the files.", "",
            markdown_table(rows, [("mode", "stock rules"), ("ms", "ms"), ("peak_mb", "peak MB")]), ""]


def identity_targets(e: dict | None) -> list[str]:
    """The targets-table rows of part e: the share of identities proved, no false claim, and the
    count against SymPy's.

    >>> rows = identity_targets({"summary": {"identities": 80, "proved": 78, "proved_share": 0.975,
    ...     "sympy_proved": 30, "near_misses": 30, "false_claims": [], "sympy_false_claims": []}})
    >>> for row in rows:
    ...     print(row)
    | e: ≥ 95 % of the textbook identities proved by `equivalent` | yes (97.5 %) |
    | e: no near miss proved (a false claim) | yes (0 of 30 proved) |
    | e: more identities proved than SymPy (`simplify(lhs - rhs) == 0`) proves | yes (78 vs 30) |
    """
    if not e:
        return []
    s = e["summary"]
    share = None if s.get("proved_share") is None else 100 * s["proved_share"]
    bad = s["false_claims"]
    versus = f"{s['proved']} vs {s['sympy_proved']}"
    return [f"| e: ≥ 95 % of the textbook identities proved by `equivalent` | "
            f"{check(share is not None and share >= 95, share, '%')} |",
            "| e: no near miss proved (a false claim) | "
            + (f"yes (0 of {s['near_misses']} proved) |" if not bad
               else f"**no — FALSE CLAIMS**: {', '.join(bad)} |"),
            "| e: more identities proved than SymPy (`simplify(lhs - rhs) == 0`) proves | "
            f"{check(s['proved'] > s['sympy_proved'], versus)} |"]


#: part e's markdown table: (key, header)
IDENTITY_COLUMNS = [("kind", "kind"), ("name", "name"), ("identity_md", "identity"), ("shapes_md", "shapes"),
                    ("engine", "engine"), ("ms", "engine ms"), ("sympy", "SymPy"), ("sympy_ms", "SymPy ms"),
                    ("citation", "citation")]


def _shape_text(shapes: dict) -> str:
    """``A: m×n, c: scalar, x: n`` (a column vector by its length).

    >>> _shape_text({"A": ["m", "n"], "c": [], "x": ["n"]})
    'A: m×n, c: scalar, x: n'
    """
    def one(dims):
        return "scalar" if not dims else "×".join(str(d) for d in dims)

    return ", ".join(f"{k}: {one(v)}" for k, v in shapes.items()) or "-"


def identities_section(e: dict | None) -> list[str]:
    """Part e's section: what is measured, the summary, the unproved identities and the table."""
    if not e:
        return []
    s = e["summary"]
    doc = re.sub(r":\w+:`", "`", (identities.__doc__ or "").split("Run it on its own")[0].strip())
    rows = [{**r, "identity_md": f"`{r['identity']}`" + (f" ({r['domain']})" if r.get("domain") else ""),
             "shapes_md": _shape_text(r.get("shapes", {}))} for r in e.get("rows", [])]
    unproved = [r for r in rows if r["kind"] == "identity" and r["engine"] != "proved"]
    L = ["## e. Textbook identities for `equivalent`", "", doc.replace("``", "`"), "",
         "*engine ms* is the whole `rewrite.equivalent(lhs, rhs, shapes)` call (parsing, the proof in an "
         "e-graph and, when not proved, the numeric refutation at random points); *SymPy ms* the "
         f"`sympy.simplify` call alone (timeout {e.get('timeout_s')} s).", "",
         "```", identities.format_summary(s), "```", ""]
    if unproved:
        L += ["Not proved by the engine: " + "; ".join(
            f"`{r['identity']}` ({r['engine']}{': ' + r['note'] if r.get('note') else ''})"
            for r in unproved) + ".", ""]
    L += [markdown_table(rows, IDENTITY_COLUMNS), ""]
    return L
