"""Run the benchmarks, print plain-text tables, write PNG plots and BENCHMARKS.md.

    python -m benchmarks.run [--quick] [--part a|b|c|d|e|all|none] [--sizes 100,500,2000] [--threads N]
                             [--out DIR] [--markdown FILE] [--profile] [--allow-mixed-commits]

Parts: a = derivation latency (public cases and scaling families), b = against SymPy,
c = generated gradient code against jax.grad / torch.autograd, d = generated Hessian and HVP code
against jax.hessian / jax.jvp(jax.grad) / torch.autograd.functional, e = textbook identities for
``equivalent`` (and near misses it must not prove) against SymPy; none = only rewrite the
markdown from the JSON results. Each part's JSON records the commit measured; the markdown step
refuses results of different commits unless ``--allow-mixed-commits``.

Exit code: 0; 1 when a deviation gate of part c or d failed (a library's result more than 1e-12
away, relatively, from the reference, a non-float64 input, or a library failing) or part e found
a false claim (a near miss proved); 2 when the
markdown step refused to mix commits (or, from argparse, for a wrong command line).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"


def build_parser() -> argparse.ArgumentParser:
    from benchmarks.common import DEFAULT_MARKDOWN, DEFAULT_OUT

    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("a", "b", "c", "d", "e", "all", "none"), default="all",
                   help="which part to run (none: only rewrite the markdown from the JSON results)")
    p.add_argument("--quick", action="store_true",
                   help="small smoke run (a minute or two; not for figures: fewer cases, sizes 100 and 200)")
    p.add_argument("--sizes", default=None,
                   help="part c/d problem sizes, comma separated (default c: 100,500,2000; "
                        "d: 100,500,1000,2000)")
    p.add_argument("--families", default=None,
                   help="part a families, comma separated (public, trace-product, quadratic-sum, "
                        "nested-inverse, elementwise-chain, mlp-depth)")
    p.add_argument("--problems", default=None,
                   help="parts c and d: only these problems, comma separated (a part none of whose "
                        "problems is named runs all of them)")
    p.add_argument("--cases", type=int, default=None, help="part a: keep only the first N cases of each family")
    p.add_argument("--repeats", type=int, default=None, help="timed repetitions per measurement")
    p.add_argument("--threads", type=int, default=None,
                   help="parts b, c and d: BLAS / PyTorch / XLA threads per library process (default 1, a "
                        "like-for-like comparison that stays stable on a busy machine; 0 = every core "
                        "this process may use, also fixed and recorded)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for JSON results and PNG plots")
    p.add_argument("--markdown", type=Path, default=DEFAULT_MARKDOWN, help="markdown report to (re)write")
    p.add_argument("--profile", action="store_true",
                   help="profile the slowest public case with cProfile and add the top to the report "
                        "(always done with --part all)")
    p.add_argument("--allow-mixed-commits", action="store_true",
                   help="write the markdown even when the parts' results come from different commits "
                        "(it then says which parts are older)")
    p.add_argument("--inject-deviation", type=float, default=0.0, metavar="REL",
                   help="testing only: multiply the autodiff results of parts c and d by 1 + REL before "
                        "comparing them (the deviation gate must then fail; recorded in the results)")
    return p


def profile_case(expr: str, wrt: str, shapes: dict, out: Path, top: int = 25, commit: str | None = None) -> str:
    """cProfile one warm derivation; the time split (egglog run / extract / Python) and the top."""
    import cProfile
    import io
    import pstats

    import rewrite as rw

    rw.gradient("tr(A*X)", "X")
    rw.gradient(expr, wrt, shapes)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(5):
        rw.gradient(expr, wrt, shapes)
    prof.disable()
    total = (time.perf_counter() - t0) / 5
    st = pstats.Stats(prof)
    groups: dict[str, float] = {}
    callers_of_run: dict[str, float] = {}
    simplify_s = 0.0
    for (file, _line, func), (_cc, _nc, tt, ct, callers) in st.stats.items():  # type: ignore[attr-defined]
        groups[_category(file, func)] = groups.get(_category(file, func), 0.0) + tt / 5
        if "/rewrite/" in file and func in ("_simplify_term", "simplify_term"):
            simplify_s = max(simplify_s, ct / 5)  # the outermost call (cumulative time)
        if "run_program" in func:
            for (_cf, _cl, cfunc), stat in callers.items():
                callers_of_run[cfunc] = callers_of_run.get(cfunc, 0.0) + stat[2] / 5
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("cumulative").print_stats(top)
    lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if "ncalls" in ln), 0)
    head = [f"case: {expr}  (wrt {wrt}); {1000 * total:.1f} ms per derivation under cProfile (5 runs)"]
    head.append("self time by where it is spent:")
    for k, v in sorted(groups.items(), key=lambda kv: -kv[1])[:12]:
        head.append(f"  {k:44s} {1000 * v:8.2f} ms  ({100 * v / total:4.1f} %)")
    head.append(f"simplification of G afterwards (simplify_term, cumulative): {1000 * simplify_s:.1f} ms "
                f"({100 * simplify_s / total:.0f} %); the derivation proper: {1000 * (total - simplify_s):.1f} ms")
    if callers_of_run:
        head.append("egglog run_program time by the Python function that called it:")
        for k, v in sorted(callers_of_run.items(), key=lambda kv: -kv[1]):
            head.append(f"  {k:44s} {1000 * v:8.2f} ms")
    text = "\n".join(head + ["", f"top {top} by cumulative time:"] + lines[start:start + top + 1])
    (out / "profile.txt").write_text(text + "\n")
    from benchmarks.common import save_json, stamp

    rec = {"text": text, "expr": expr, "wrt": wrt, **stamp()}
    save_json(out / "profile.json", {**rec, "commit": commit or rec["commit"]})
    return text


def _category(file: str, func: str) -> str:
    """Where a profiled function's own time is spent: egglog's Rust core, or which Python."""
    if "EGraph" in func or "egglog" in func:
        name = func.split("'")[1] if "'" in func else func
        return f"egglog (Rust) {name}"
    if file.startswith("~") or file.startswith("<"):
        return f"builtin {func.strip('<>')[:40]}"
    if "/rewrite/" in file.replace("\\", "/"):  # a module of the package, subpackages included
        return "Python rewrite/" + file.replace("\\", "/").rsplit("/rewrite/", 1)[1]
    for lib in ("lark", "egglog", "sympy", "numpy"):
        if f"/{lib}/" in file:
            return f"Python {lib}"
    return "Python other"


def _problems(arg: str | None, known: dict) -> list[str] | None:
    """The ``--problems`` of one part: those it has (None: all of them)."""
    if not arg:
        return None
    mine = [p for p in arg.split(",") if p in known]
    return mine or None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from benchmarks import autodiff, derivation, hessian, identities, markdown, vs_sympy

    known = {**autodiff.PROBLEMS, **hessian.PROBLEMS}
    unknown = [p for p in (args.problems or "").split(",") if p and p not in known]
    if unknown:
        parser.error(f"unknown problem(s) {', '.join(unknown)}; part c has {', '.join(autodiff.PROBLEMS)}, "
                     f"part d {', '.join(hessian.PROBLEMS)}")
    from benchmarks.common import CACHES, fixed_threads, load_json, machine_info, save_json, stamp

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    parts = {"all": "abcde", "none": ""}.get(args.part, args.part)
    threads = fixed_threads(args.threads)
    t0 = time.perf_counter()
    gates_failed: list[str] = []
    commit = stamp()["commit"]  # the code measured: the commit when the run starts
    if parts or args.profile:
        info = machine_info()
        info.update(quick=args.quick, **stamp())
        save_json(out / "machine.json", info)
        print(f"machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB, Python {info['python']}; "
              f"commit {info['commit']}")

    def finish(name: str, data: dict, t_part: float) -> None:
        data.update(stamp(), commit=commit, caches=CACHES, wall_seconds=round(time.perf_counter() - t_part, 1))
        save_json(out / name, data)
        print(f"[{name[0]}] done in {data['wall_seconds']:.0f} s")

    if "a" in parts:
        t_part = time.perf_counter()
        fams = args.families.split(",") if args.families else list(derivation.FAMILIES)
        data = derivation.run(quick=args.quick, families=fams, repeats=args.repeats, max_cases=args.cases)
        finish("a_derivation.json", data, t_part)
        derivation.plot(data, out)
        s = derivation.summary(data)
        print("[a] summary: " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in s.items() if not isinstance(v, dict | list)))
        for line in s["fits"]:
            print(f"[a] {line}")
    if "b" in parts:
        t_part = time.perf_counter()
        data = vs_sympy.run_isolated(quick=args.quick, repeats=args.repeats, threads=threads)
        finish("b_sympy.json", data, t_part)
        vs_sympy.plot(data, out)
    if "c" in parts:
        t_part = time.perf_counter()
        sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else None
        data = autodiff.run(quick=args.quick, sizes=sizes, repeats=args.repeats, threads=threads,
                            problems=_problems(args.problems, autodiff.PROBLEMS),
                            inject_deviation=args.inject_deviation)
        finish("c_autodiff.json", data, t_part)
        autodiff.plot(data, out)
        for k, v in autodiff.summary(data).items():
            print(f"[c] {k} at n >= 500: median {v['median']:.3g}, max {v['max']:.3g}, "
                  f"<= 1 on {v['at_most_1']}/{v['count']}")
        if not data["gate"]["passed"]:
            gates_failed.append("c")
    if "d" in parts:
        t_part = time.perf_counter()
        sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else None
        data = hessian.run(quick=args.quick, sizes=sizes, repeats=args.repeats, threads=threads,
                           problems=_problems(args.problems, hessian.PROBLEMS),
                           inject_deviation=args.inject_deviation)
        finish("d_hessian.json", data, t_part)
        for k, v in hessian.summary(data).items():
            print(f"[d] {k} at n >= {hessian.TARGET_N}: {v['hold']}/{v['count']} reach "
                  f"{v['target']:g}x; min {v['min']:.3g}x, median {v['median']:.3g}x")
        if not data["gate"]["passed"]:
            gates_failed.append("d")
    if "e" in parts:
        t_part = time.perf_counter()
        data = identities.run_isolated(threads=threads)
        finish("e_identities.json", data, t_part)
        if data["summary"]["false_claims"]:
            gates_failed.append("e")
    if args.profile or args.part == "all":
        a = load_json(out / "a_derivation.json") or {}
        pub = [r for r in a.get("families", {}).get("public", []) if r.get("ms")]
        cases = {c["id"]: c for c in derivation.public_family()}
        slow = max(pub, key=lambda r: r["ms"])["id"] if pub else next(iter(cases))
        c = cases[slow]
        print(profile_case(c["expr"], c["wrt"], c["shapes"], out, commit=commit))
    deviation = [p for p in gates_failed if p in "cd"]
    if deviation:
        print(f"benchmarks: the deviation gate failed in part(s) {', '.join(deviation)} (see the tables)",
              file=sys.stderr)
    if "e" in gates_failed:
        print("benchmarks: part e: a near miss was proved, a false claim (see the table)", file=sys.stderr)
    try:
        md = markdown.write(out, args.markdown, allow_mixed=args.allow_mixed_commits)
    except markdown.MixedCommitsError as e:
        print(f"benchmarks: not writing {args.markdown}: {e}", file=sys.stderr)
        return 2
    print(f"wrote {md} and plots in {out} ({time.perf_counter() - t0:.0f} s)")
    return 1 if gates_failed else 0


if __name__ == "__main__":
    sys.exit(main())
