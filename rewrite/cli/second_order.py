"""The ``hessian``, ``jacobian`` and ``hvp`` subcommands: their parsers, handler and JSON."""

from __future__ import annotations

import json

from ..second_order import DIRECTION, Derivative
from ..verify import check
from .options import CODE_FORMATS, engine_from, parse_shapes, print_check


def result_json(expr: str, d: Derivative, checked: float | None = None) -> dict:
    """The object printed by ``tracegrad hessian|jacobian|hvp --format json``."""
    out = {"expr": expr, "wrt": d.wrt, "kind": d.kind, "result": str(d), "latex": d.latex(),
           "shape": [x if isinstance(x, int) else str(x) for x in d.shape]}
    if d.direction is not None:
        out["direction"] = d.direction
    if d.report is not None:
        out["report"] = d.report.as_json()
    if checked is not None:
        out["check"] = {"relative_error": checked}
    return out


def cmd_second_order(args) -> int:
    """``tracegrad hessian|jacobian|hvp EXPR --wrt X [--shape ...] [--format FORMAT]``."""
    eng = engine_from(args)
    shapes = parse_shapes(args.shape)
    if args.cmd == "hvp":
        d = eng.hvp(args.expr, args.wrt, shapes, direction=args.direction)
    else:
        d = getattr(eng, args.cmd)(args.expr, args.wrt, shapes)
    checked = check(d, spd=set(args.spd or ()), positive=set(args.positive or ())) \
        if args.check else None
    if args.format in CODE_FORMATS:
        print(d.code(args.format), end="")
        print_check(checked)
        return 0
    if args.format == "json":
        print(json.dumps(result_json(args.expr, d, checked)))
        return 0
    print(d.latex() if args.format == "latex" else d)
    print_check(checked)
    return 0


def add_parsers(sub) -> None:
    """Sub-parsers of ``hessian``, ``jacobian`` and ``hvp`` (called by :func:`rewrite.cli.main.build_parser`)."""
    helps = {"hessian": "Hessian of a scalar expression (vec layout for a matrix variable)",
             "jacobian": "Jacobian d vec(F) / d vec(X) of a vector or matrix expression",
             "hvp": "Hessian-vector product as an expression in a direction V"}
    for name, text in helps.items():
        sp = sub.add_parser(name, help=text)
        sp.add_argument("expr")
        sp.add_argument("--wrt", required=True)
        sp.add_argument("--shape", action="append", metavar="NAME=DIMS",
                        help="e.g. X=n,k (matrix), w=n (vector), c= (scalar)")
        sp.add_argument("--rules", action="append", metavar="FILE", help="extra rule file")
        sp.add_argument("--format", choices=["text", "latex", "json", "numpy", "jax", "torch"],
                        default="text", help="numpy|jax|torch: print a standalone module")
        sp.add_argument("--check", action="store_true",
                        help="verify numerically against finite differences at a random point")
        sp.add_argument("--spd", action="append", metavar="NAME",
                        help="with --check: draw NAME as a symmetric positive definite matrix")
        sp.add_argument("--positive", action="append", metavar="NAME",
                        help="with --check: draw NAME with positive entries (log, sqrt, ...)")
        if name == "hvp":
            sp.add_argument("--direction", metavar="NAME", default=None,
                            help=f"name of the direction variable (default {DIRECTION}, or "
                            f"{DIRECTION}2, ... when taken)")
