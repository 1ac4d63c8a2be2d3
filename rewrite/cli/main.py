"""The ``tracegrad`` command line (docs/cli.md): the parser, one handler per subcommand, and
``main``. Errors: one line on stderr, exit code 2.

>>> main(["grad", "tr(A*X)", "--wrt", "X", "--shape", "A=2,3", "--shape", "X=3,2"])
A'
0
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from ..check_rules import check_rules
from ..errors import LimitError, TracegradError, UnsupportedError
from ..parse import BUILTIN_CALLS, BUILTIN_HELP
from ..steps import format_steps, steps_latex
from ..temporaries import named_if_shorter
from ..verify import check
from ..version import VERSION
from .batch import cmd_batch
from .options import (
    CODE_FORMATS,
    Parser,
    add_limit_options,
    engine_from,
    fail,
    grad_json,
    parse_shapes,
    print_check,
)
from .second_order import add_parsers as add_second_order_parsers
from .second_order import cmd_second_order
from .serve import add_parser as add_serve_parser
from .serve import cmd_serve

EPILOG = """examples:
  tracegrad grad "tr(X'*A*X)" --wrt X --shape X=n,k --shape A=n,n
  tracegrad grad "norm2sq(X*w - y)" --wrt w --shape X=m,n --shape w=n --shape y=m --format json
  tracegrad simplify "tr(A') + tr(A)" --shape A=n,n
  tracegrad hessian "x'*A*x" --wrt x --shape x=n --shape A=n,n
  tracegrad equiv "tr(A*B*C)" "tr(C*A*B)"
  tracegrad grad "tr(X'*A*X)" --wrt X --shape X=n,k --shape A=n,n --format numpy > grad_x.py
  printf 'tr(A*X) ; X ; A=2,3 X=3,2\n' | tracegrad batch -
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``tracegrad`` parser with every subcommand."""
    p = Parser(prog="tracegrad", description="Matrix calculus by equality saturation.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"tracegrad {VERSION}")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=Parser)

    def common(sp, formats=("text", "latex", "json")):
        sp.add_argument("--shape", action="append", metavar="NAME=DIMS",
                        help="e.g. X=n,k (matrix), w=n (vector), c= (scalar)")
        sp.add_argument("--rules", action="append", metavar="FILE", help="extra rule file")
        sp.add_argument("--format", choices=list(formats), default="text")

    g = sub.add_parser("grad", help="gradient of a scalar expression")
    g.add_argument("expr")
    g.add_argument("--wrt", required=True)
    g.add_argument("--check", action="store_true",
                   help="verify numerically against finite differences at a random point")
    g.add_argument("--steps", action="store_true",
                   help="print the derivation step by step, with the rules behind each step "
                   "(text: before the gradient; latex: an align* block; json: a \"steps\" list)")
    g.add_argument("--where", action=argparse.BooleanOptionalAction, default=None,
                   help="name repeated subexpressions: the gradient, then 'where T0 = ...' lines "
                   "(text and latex; json: a \"where\" object). Default: on for text and latex "
                   "when the flat answer is long (over 160 characters) and naming shortens it "
                   "by a fifth; --no-where prints it flat")
    g.add_argument("--symmetric", action="append", metavar="NAME", default=[],
                   help="declare a square variable symmetric: its gradient is (G + G')/2")
    g.add_argument("--spd", action="append", metavar="NAME", default=[],
                   help="declare a variable symmetric positive definite (as --symmetric; "
                   "--check draws it SPD)")
    g.add_argument("--positive", action="append", metavar="NAME", default=[],
                   help="with --check: draw NAME with positive entries (log, sqrt, ...)")
    common(g, ("text", "latex", "json", *CODE_FORMATS))
    s = sub.add_parser("simplify", help="simplify an expression")
    s.add_argument("expr")
    common(s)
    e = sub.add_parser("equiv", aliases=list(ALIASES), help="are two expressions equal?",
                       description="Prints true (the rules prove it), false (a random point "
                       "shows they differ) or unknown (neither within the limits); exit code 0, 0 "
                       "or 3.")
    e.add_argument("a")
    e.add_argument("b")
    common(e)
    b = sub.add_parser("batch", help="one gradient job per line; one JSON line out per job",
                       description="Jobs: JSON lines {\"expr\", \"wrt\", \"shapes\"} or "
                       "'EXPR ; WRT ; X=n,k A=n,n'. Exit code 0 if every job succeeded, 2 if any "
                       "line was malformed or failed.")
    b.add_argument("file", metavar="FILE|-", help="job file, or - for standard input")
    b.add_argument("--rules", action="append", metavar="FILE", help="extra rule file")
    b.add_argument("--check", action="store_true",
                   help="verify every gradient against finite differences")
    add_second_order_parsers(sub)
    v = sub.add_parser("viz", help="draw the e-graph of a gradient's derivation",
                       description="Write the e-graph (e-classes as frames labelled with their id, "
                       "shape and term; e-nodes as boxes with their operator, id and the rule that "
                       "made them; the extracted gradient in red) as PNG or SVG (laid out by "
                       "Graphviz's dot), DOT, GraphML, node-link JSON or a self-contained "
                       "interactive HTML page, chosen by the suffix of -o. A derivation that fails "
                       "is drawn as it stopped (the stuck construct in orange); the error goes to "
                       "stderr and the exit code is 2.")
    v.add_argument("expr")
    v.add_argument("--wrt", required=True)
    v.add_argument("-o", "--output", required=True, metavar="OUT.{png,svg,dot,graphml,json,html}")
    v.add_argument("--history", action="store_true",
                   help="also plot the saturation history to OUT.history.png")
    v.add_argument("--steps", action="store_true",
                   help="also print the derivation step by step (the HTML page always shows it)")
    v.add_argument("--all", action="store_true",
                   help="draw the whole e-graph, not only the extracted term's e-classes and "
                   "their neighbours")
    v.add_argument("--max-classes", type=int, default=60, metavar="N",
                   help="draw at most N e-classes (default 60; 0: no cap)")
    v.add_argument("--shape", action="append", metavar="NAME=DIMS")
    v.add_argument("--rules", action="append", metavar="FILE", help="extra rule file")
    f = sub.add_parser("functions", help="list the functions an expression can call",
                       description="The built-in functions with their arguments and meaning, "
                       "then the elementwise functions declared in the rule files (stock and "
                       "--rules) with their derivative f'(x).")
    f.add_argument("--rules", action="append", metavar="FILE", help="extra rule file")
    f.add_argument("--format", choices=["text", "json"], default="text",
                   help="json: {\"builtin\": [{name, call, meaning}], \"elementwise\": [{name, "
                   "derivative, source}]}")
    c = sub.add_parser("check-rules", help="test rules numerically for soundness",
                       description="Evaluate both sides of every rule on random matrices (several "
                       "shape draws). Exit code 0 when all are sound, 1 when a rule is unsound "
                       "(its counterexample is printed), 2 when a file cannot be loaded.")
    c.add_argument("files", nargs="*", metavar="FILE",
                   help="rule files (loaded on top of the stock rules); none: the stock rules")
    c.add_argument("--draws", type=int, default=6, help="random draws per rule (default 6)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--format", choices=["text", "json"], default="text")
    c.add_argument("-v", "--verbose", action="store_true",
                   help="list every rule with its verdict and citation")
    for name, sp in sub.choices.items():
        # no derivation in check-rules and functions; an alias shares its command's parser
        if name not in ("check-rules", "functions") and name not in ALIASES:
            add_limit_options(sp)
    add_serve_parser(sub)  # its own limits, with the playground's defaults
    return p


def _cmd_viz(args) -> int:
    try:
        import viz
    except ImportError as e:  # pragma: no cover - matplotlib missing
        raise TracegradError(f"viz needs matplotlib: pip install -e '.[viz]' ({e})") from None
    out = Path(args.output)
    formats = (".png", ".svg", ".dot", ".graphml", ".json", ".html")
    if out.suffix.lower() not in formats:
        raise UnsupportedError(f"-o {args.output}: the suffix must be one of {', '.join(formats)}")
    try:
        g = engine_from(args).gradient(args.expr, args.wrt, parse_shapes(args.shape),
                                       keep_egraph=True, steps=True)
    except TracegradError as e:
        if e.session is None:  # failed before an e-graph was made (parse, shape, wrt errors)
            raise
        # the failure view: the e-graph as it was when the derivation stopped, written anyway;
        # the error itself goes to stderr (exit code 2) as for any other command
        G = viz.egraph_graph(e)
        if args.steps and G.graph.get("steps"):
            print("\n".join(G.graph["steps"]))
        n_part = _write_viz(viz, G, out, args, e.report)
        print(f"{out}: {n_part} of {viz.counts(G)[0]} e-classes; the derivation failed, drawn "
              "where it stopped")
        if G.graph.get("stuck_text"):
            print(G.graph["stuck_text"])
        raise
    if args.steps:
        print(format_steps(g.steps))
    G = viz.egraph_graph(g)
    n_part = _write_viz(viz, G, out, args, g.report)
    print(f"{out}: {n_part} of {viz.counts(G)[0]} e-classes; gradient {g}")
    return 0


def _write_viz(viz, G, out: Path, args, report) -> int:
    """Write the view of ``G`` the options ask for (and the history); its class count."""
    part = viz.view(G, args.max_classes, args.all)
    viz.write(part, out)
    if args.history and report is not None:
        viz.history(report, out.with_suffix(".history.png"))
    return viz.counts(part)[0]


def _cmd_check_rules(args) -> int:
    if args.draws < 1:
        raise TracegradError("--draws must be at least 1")
    rep = check_rules(args.files, draws=args.draws, seed=args.seed)
    if args.format == "json":
        print(json.dumps(rep.as_json()))
    else:
        for line in rep.lines(verbose=args.verbose):
            print(line)
    return 0 if rep.ok else 1


def _cmd_functions(args) -> int:
    registry = engine_from(args).functions
    if args.format == "json":
        print(json.dumps({
            "builtin": [{"name": name, "call": BUILTIN_HELP[name][0], "meaning": BUILTIN_HELP[name][1]}
                        for name in sorted(BUILTIN_CALLS)],
            "elementwise": [{"name": n, "derivative": registry[n].derivative_text("x").replace("(x)", "x"),
                             "source": registry[n].source} for n in registry.names()]}))
        return 0
    width = max(len(call) for call, _ in BUILTIN_HELP.values())
    print("built in:")
    for name in sorted(BUILTIN_CALLS):
        call, meaning = BUILTIN_HELP[name]
        print(f"  {call:<{width}}  {meaning}")
    names = registry.names()
    print("elementwise (declared in rule files), with the derivative f'(x):")
    derivs = {n: registry[n].derivative_text("x").replace("(x)", "x") for n in names}
    width = max((len(n) for n in names), default=0) + 3
    dwidth = max((len(d) for d in derivs.values()), default=0)
    for name in names:
        source = registry[name].source
        print(f"  {name + '(x)':<{width}}  f'(x) = {derivs[name]:<{dwidth}}  {source}".rstrip())
    return 0


def _cmd_grad(args) -> int:
    structure = {**dict.fromkeys(args.symmetric, "symmetric"), **dict.fromkeys(args.spd, "spd")}
    try:
        g = engine_from(args).gradient(args.expr, args.wrt, parse_shapes(args.shape),
                                       steps=args.steps, structure=structure)
    except (UnsupportedError, LimitError) as e:
        if e.report is not None and args.format != "json":  # the derivation ran: it can be drawn
            e.message += ("; tracegrad viz with the same arguments and -o stuck.html shows the "
                          "e-graph where it stopped")
        raise
    checked = check(g, positive=set(args.positive)) if args.check else None
    if args.where is None:  # the default: named when that makes a long answer much shorter
        named = named_if_shorter(g.term) if args.format in ("text", "latex") else None
    else:
        named = g.where() if args.where else None
    if args.steps and args.format not in ("json", "latex"):
        print(format_steps(g.steps), file=sys.stdout if args.format == "text" else sys.stderr)
    if args.format == "json":
        out = grad_json(args.expr, args.wrt, g, checked)
        if args.steps:
            out["steps"] = [s.as_json() for s in g.steps]
        if named:
            out["where"] = named.as_json()
        print(json.dumps(out))
    elif args.format in CODE_FORMATS:
        print(g.code(args.format), end="")
        print_check(checked)
    elif args.format == "latex":
        if args.steps:  # its last row is G
            print(steps_latex(g.steps))
        if named or not args.steps:
            print(named.latex() if named else g.latex())
    else:
        print(named.text if named else g)
        print_check(checked)
    return 0


def _cmd_simplify(args) -> int:
    r = engine_from(args).simplify(args.expr, parse_shapes(args.shape))
    print(json.dumps({"expr": args.expr, "simplified": str(r), "latex": r.latex()})
          if args.format == "json" else (r.latex() if args.format == "latex" else r))
    return 0


def _cmd_equiv(args) -> int:
    """Prints true, false or unknown; exit code 0 when decided, 3 when unknown."""
    same = engine_from(args).equivalent(args.a, args.b, parse_shapes(args.shape))
    print(json.dumps({"equivalent": same.value}) if args.format == "json" else str(same))
    return 3 if same.unknown else 0


# One handler per subcommand; build_parser registers the matching sub-parser.
COMMANDS = {"check-rules": _cmd_check_rules, "functions": _cmd_functions, "viz": _cmd_viz,
            "grad": _cmd_grad, "simplify": _cmd_simplify,
            "equiv": _cmd_equiv, "batch": cmd_batch,
            "hessian": cmd_second_order, "jacobian": cmd_second_order, "hvp": cmd_second_order,
            "serve": cmd_serve}


#: other names people type for a subcommand
ALIASES = {"equivalent": "equiv"}


def run(args) -> int:
    """Run the subcommand ``args.cmd`` (an alias runs the command it names)."""
    return COMMANDS[ALIASES.get(args.cmd, args.cmd)](args)


class _Warnings(logging.Handler):
    """The engine's warnings on stderr as ``warning: ...`` lines (stderr looked up per record)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"warning: {record.getMessage()}", file=sys.stderr)


def _show_warnings() -> None:
    logger = logging.getLogger("rewrite")
    if not any(isinstance(h, _Warnings) for h in logger.handlers):
        logger.addHandler(_Warnings(logging.WARNING))


#: characters that make an argument starting with '-' an expression, not an option
_EXPRESSION_CHARS = frozenset("'*()+/^.,[] ")


def leading_minus_as_expression(argv: list[str]) -> list[str]:
    """Arguments that start with '-' but read as an expression (``-x'*A*x``, ``-logdet(X)``)
    get a leading space, so that the option parser takes them as the expression instead of
    an unknown option (the expression parser ignores the space); ``--`` still works.

    >>> leading_minus_as_expression(["grad", "-x'*A*x", "--wrt", "x", "-o", "f.html"])
    ['grad', " -x'*A*x", '--wrt', 'x', '-o', 'f.html']
    """
    out, rest = [], False
    for a in argv:
        if a == "--":
            rest = True
        if not rest and a.startswith("-") and not a.startswith("--") and len(a) > 2 \
                and _EXPRESSION_CHARS & set(a):
            a = " " + a
        out.append(a)
    return out


def main(argv: list[str] | None = None) -> int:
    _show_warnings()
    parser = build_parser()
    args = parser.parse_args(leading_minus_as_expression(sys.argv[1:] if argv is None else argv))
    for k, v in vars(args).items():  # the space added above goes, so positions stay exact
        if isinstance(v, str) and v.startswith(" -"):
            setattr(args, k, v[1:])
    fmt = getattr(args, "format", "text")
    try:
        return run(args)
    except TracegradError as e:
        return fail(e, fmt)
    except RecursionError:
        return fail(LimitError("expression too deeply nested"), fmt)
    except MemoryError:
        return fail(LimitError("out of memory (TRACEGRAD_MAX_MEMORY_MB bounds the e-graph's "
                                "growth; a lower value stops earlier)"), fmt)
    except BrokenPipeError:  # the reader closed the pipe (| head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
