"""The playground's JSON API as pure functions: a request dict in, a status and a response dict
out, computed in the calling process (the server runs them in its worker processes).

The answers are those of ``tracegrad … --format json`` (:func:`rewrite.cli.options.grad_json`,
:func:`rewrite.cli.second_order.result_json`); a request may ask for more (``steps``, ``code``,
``display``). Every failure is ``{"error": {"kind", "message", "position"}}`` with status 400,
including a malformed request (kind ``request``) and an input over the size limits.

>>> status, body = answer("gradient", {"expr": "tr(A*X)", "wrt": "X", "shapes": {"A": [2, 3], "X": [3, 2]}})
>>> status, body["gradient"], body["report"]["stop_reason"]
(200, "A'", 'goal')
>>> status, body = answer("gradient", {"expr": "tr(X'*A*X", "wrt": "X"})
>>> status, body["error"]["kind"], body["error"]["position"]
(400, 'parse', {'line': 1, 'column': 10})
>>> answer("variables", {"expr": "x'*A*x", "shapes": {"x": ["n"]}})[1]["variables"][1]
{'name': 'x', 'shape': ['n'], 'kind': 'vector'}
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..cli.options import CODE_FORMATS, grad_json
from ..cli.second_order import result_json
from ..engine import Engine
from ..errors import LimitError, TracegradError
from ..printing import latex_name
from ..temporaries import named_if_shorter
from ..terms import var_shapes
from ..verify import check
from .settings import Settings

#: the operations of ``POST /api/<operation>`` that run the engine
OPERATIONS = ("gradient", "hessian", "hvp", "jacobian", "simplify", "equivalent", "variables", "viz")

#: a dimension name: a letter, then letters, digits or underscores
DIM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,29}")


class RequestError(TracegradError):
    """A request the API cannot read: not an object, a missing or mistyped field, a value out
    of range."""

    kind = "request"


@lru_cache(maxsize=4)
def engine_for(settings: Settings) -> Engine:
    """One engine per settings in a process (its compiled rules are reused across requests)."""
    return Engine(limits=settings.limits())


# -- reading a request ---------------------------------------------------------------------

def text_field(payload: dict, name: str, settings: Settings, required: bool = True) -> str:
    """The string field ``name``, at most ``settings.max_chars`` characters long.

    >>> text_field({"expr": "x" * 3000}, "expr", Settings())
    Traceback (most recent call last):
    ...
    rewrite.errors.LimitError: expr has 3000 characters; the playground takes at most 2000
    """
    value = payload.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise RequestError(f"{name} must be a string")
    if len(value) > settings.max_chars:
        raise LimitError(f"{name} has {len(value)} characters; the playground takes at most "
                         f"{settings.max_chars}")
    return value


def read_dim(value: object, settings: Settings) -> int | str:
    """A dimension: a positive integer (at most ``settings.max_dim``; digits in a string count)
    or a name.

    >>> read_dim("n", Settings()), read_dim("3", Settings()), read_dim(4, Settings())
    ('n', 3, 4)
    """
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RequestError(f"a dimension is a positive integer or a name, got {value!r}")
    if isinstance(value, int):
        if not 1 <= value <= settings.max_dim:
            raise RequestError(f"a numeric dimension must be between 1 and {settings.max_dim}, "
                               f"got {value}")
        return value
    value = value.strip()
    if not DIM_NAME.fullmatch(value):
        raise RequestError(f"bad dimension name {value!r}: a letter, then letters, digits or _")
    return value


def read_shapes(payload: dict, settings: Settings) -> dict[str, tuple]:
    """``shapes``: variable name → list of at most two dimensions (``[]`` a scalar, ``["n"]``
    a column vector, ``["m", "n"]`` a matrix); a missing or empty field is ``{}``.

    >>> read_shapes({"shapes": {"X": ["n", 3], "w": ["n"], "c": []}}, Settings())
    {'X': ('n', 3), 'w': ('n',), 'c': ()}
    """
    shapes = payload.get("shapes") or {}
    if not isinstance(shapes, dict):
        raise RequestError("shapes must be an object: variable name → list of dimensions")
    if len(shapes) > settings.max_variables:
        raise LimitError(f"{len(shapes)} shapes given; the playground takes at most "
                         f"{settings.max_variables}")
    out = {}
    for name, dims in shapes.items():
        if not isinstance(name, str) or not name.isidentifier() or len(name) > 64:
            raise RequestError(f"bad variable name {name!r} in shapes")
        if not isinstance(dims, list) or len(dims) > 2:
            raise RequestError(f"the shape of {name} must be a list of at most two dimensions")
        out[name] = tuple(read_dim(d, settings) for d in dims)
    return out


def read_structure(payload: dict) -> dict[str, str]:
    """``structure``: variable name → ``"symmetric"`` or ``"spd"`` (gradients only)."""
    structure = payload.get("structure") or {}
    if not isinstance(structure, dict) or not all(
            isinstance(k, str) and v in ("symmetric", "spd") for k, v in structure.items()):
        raise RequestError('structure must map variable names to "symmetric" or "spd"')
    return dict(structure)


def flag(payload: dict, name: str) -> bool:
    """An optional boolean field (missing: false)."""
    value = payload.get(name, False)
    if not isinstance(value, bool):
        raise RequestError(f"{name} must be true or false")
    return value


def kind_of(shape: tuple) -> str:
    """``scalar``, ``vector`` or ``matrix`` for a (rows, cols) shape.

    >>> kind_of((1, 1)), kind_of(("n", 1)), kind_of(("m", "n"))
    ('scalar', 'vector', 'matrix')
    """
    if tuple(shape) == (1, 1):
        return "scalar"
    return "vector" if shape[1] == 1 else "matrix"


def shape_json(shape: tuple) -> list:
    """A shape as JSON: integers stay integers, names become strings."""
    return [d if isinstance(d, int) else str(d) for d in shape]


# -- the operations ------------------------------------------------------------------------

def variables(payload: dict, settings: Settings) -> dict:
    """The variables of ``expr`` with their shapes, as given or inferred from their uses
    (undeclared dimensions are named ``d1``, ``d2``, …), sorted by name; a vector's shape is
    one dimension, a scalar's none."""
    expr = text_field(payload, "expr", settings)
    t = engine_for(settings).term(expr, read_shapes(payload, settings))
    out = []
    for name, shape in sorted(var_shapes(t).items()):
        kind = kind_of(shape)
        dims = {"scalar": (), "vector": shape[:1]}.get(kind, shape)
        out.append({"name": name, "shape": shape_json(dims), "kind": kind})
    return {"expr": expr, "variables": out}


def gradient(payload: dict, settings: Settings) -> dict:
    """``grad --format json``, with ``steps`` (a list of steps), ``code`` (NumPy, JAX and
    PyTorch modules), ``display`` (the LaTeX of f and of the variable's name) and ``check``
    (the relative error against finite differences) on request."""
    expr, wrt = text_field(payload, "expr", settings), text_field(payload, "wrt", settings)
    structure = read_structure(payload)
    steps = flag(payload, "steps")
    g = engine_for(settings).gradient(expr, wrt, read_shapes(payload, settings), steps=steps,
                                      structure=structure)
    checked = check(g, spd={k for k, v in structure.items() if v == "spd"}) \
        if flag(payload, "check") else None
    out = grad_json(expr, wrt, g, checked)
    out["shape"] = shape_json(g.shape)
    named = named_if_shorter(g.term)  # as the CLI prints it by default
    if named:
        out["where"] = named.as_json()
    if steps:
        out["steps"] = [s.as_json() for s in g.steps]
        out["steps_latex"] = g.steps.latex()
    if flag(payload, "code"):
        out["code"] = {backend: g.code(backend) for backend in CODE_FORMATS}
    if flag(payload, "display"):
        out["display"] = {"objective": g.objective.latex(), "wrt": latex_name(wrt)}
    return out


def second_order(kind: str, payload: dict, settings: Settings) -> dict:
    """``hessian|jacobian|hvp --format json`` (``code``, ``display`` and ``check`` as for a
    gradient; ``direction`` names an HVP's direction)."""
    expr, wrt = text_field(payload, "expr", settings), text_field(payload, "wrt", settings)
    shapes = read_shapes(payload, settings)
    eng = engine_for(settings)
    if kind == "hvp":
        direction = payload.get("direction") or None
        if direction is not None and (not isinstance(direction, str) or not direction.isidentifier()):
            raise RequestError("direction must be a variable name")
        d = eng.hvp(expr, wrt, shapes, direction=direction)
    else:
        d = getattr(eng, kind)(expr, wrt, shapes)
    out = result_json(expr, d, check(d) if flag(payload, "check") else None)
    if flag(payload, "code"):
        out["code"] = {backend: d.code(backend) for backend in CODE_FORMATS}
    if flag(payload, "display"):
        out["display"] = {"objective": d.objective.latex(), "wrt": latex_name(wrt)}
    return out


def simplify(payload: dict, settings: Settings) -> dict:
    """``simplify --format json``."""
    expr = text_field(payload, "expr", settings)
    r = engine_for(settings).simplify(expr, read_shapes(payload, settings))
    return {"expr": expr, "simplified": str(r), "latex": r.latex()}


def equivalent(payload: dict, settings: Settings) -> dict:
    """``equiv --format json`` (``equivalent``: true, false or null for unknown), with the
    reason."""
    a, b = text_field(payload, "expr", settings), text_field(payload, "other", settings)
    same = engine_for(settings).equivalent(a, b, read_shapes(payload, settings))
    return {"equivalent": same.value, "reason": same.reason}


def viz_page(payload: dict, settings: Settings) -> dict:
    """The interactive e-graph page of a gradient's derivation (``viz -o out.html``):
    ``{"html", "classes", "total", "error"}``; a derivation that fails is drawn where it
    stopped (``error`` then says why); an error before an e-graph exists is raised."""
    import viz  # networkx and the vendored Graphviz: loaded on first use
    from viz.html import to_html

    expr, wrt = text_field(payload, "expr", settings), text_field(payload, "wrt", settings)
    try:
        g = engine_for(settings).gradient(expr, wrt, read_shapes(payload, settings),
                                          keep_egraph=True, steps=True,
                                          structure=read_structure(payload))
        G, error = viz.egraph_graph(g), None
    except TracegradError as e:
        if e.session is None:  # failed before an e-graph was made (parse, shape, wrt errors)
            raise
        G, error = viz.egraph_graph(e), e.to_json()
    part = viz.view(G, 60)
    return {"html": to_html(part), "classes": viz.counts(part)[0], "total": viz.counts(G)[0],
            "error": error}


def run(op: str, payload: object, settings: Settings | None = None) -> dict:
    """The response of operation ``op`` to ``payload``; raises a :class:`TracegradError`."""
    settings = settings or Settings()
    if not isinstance(payload, dict):
        raise RequestError("the request body must be a JSON object")
    if op == "gradient":
        return gradient(payload, settings)
    if op in ("hessian", "jacobian", "hvp"):
        return second_order(op, payload, settings)
    handlers = {"simplify": simplify, "equivalent": equivalent, "variables": variables,
                "viz": viz_page}
    if op not in handlers:
        raise RequestError(f"unknown operation {op!r}; one of {', '.join(OPERATIONS)}")
    return handlers[op](payload, settings)


def answer(op: str, payload: object, settings: Settings | None = None) -> tuple[int, dict]:
    """``(status, body)``: 200 and the response, or 400 and ``{"error": …}``. Nothing raises:
    running out of memory or recursion depth is a ``limit`` error, and an unexpected failure
    is an ``internal`` error with status 500 (its message, never a traceback)."""
    try:
        return 200, run(op, payload, settings)
    except TracegradError as e:
        return 400, {"error": e.to_json()}
    except RecursionError:
        return 400, {"error": LimitError("the expression is nested too deeply to process").to_json()}
    except MemoryError:
        return 400, {"error": LimitError("out of memory: the request needs more than the "
                                         "playground's memory limit").to_json()}
    except Exception as e:  # a bug: say what, without a traceback
        return 500, {"error": {"kind": "internal", "message": f"{type(e).__name__}: {e}",
                               "position": None}}


#: the Examples menu: documented examples (README, docs/api.md, docs/cli.md)
EXAMPLES: list[dict] = [
    {"title": "quadratic form in a matrix", "op": "gradient", "expr": "tr(X'*A*X)", "wrt": "X",
     "shapes": {"X": ["n", "k"], "A": ["n", "n"]}},
    {"title": "least squares", "op": "gradient", "expr": "norm2sq(X*w - y)", "wrt": "w",
     "shapes": {"X": ["m", "n"], "w": ["n"], "y": ["m"]}},
    {"title": "log-determinant", "op": "gradient", "expr": "logdet(Sigma)", "wrt": "Sigma",
     "shapes": {"Sigma": ["n", "n"]}},
    {"title": "inverse", "op": "gradient", "expr": "a'*inv(X)*b", "wrt": "X",
     "shapes": {"a": ["n"], "X": ["n", "n"], "b": ["n"]}},
    {"title": "softmax cross-entropy", "op": "gradient", "expr": "-sum(Y .* log(softmax(W*X)))",
     "wrt": "W", "shapes": {"W": ["k", "n"], "X": ["n", "m"], "Y": ["k", "m"]}},
    {"title": "ReLU layer", "op": "gradient", "expr": "sum(relu(W*x + b))", "wrt": "W",
     "shapes": {"W": ["k", "n"], "x": ["n"], "b": ["k"]}},
    {"title": "symmetric variable", "op": "gradient", "expr": "tr(S*A)", "wrt": "S",
     "shapes": {"S": ["n", "n"], "A": ["n", "n"]}, "structure": {"S": "symmetric"}},
    {"title": "Hessian of a quadratic form", "op": "hessian", "expr": "x'*A*x", "wrt": "x",
     "shapes": {"x": ["n"], "A": ["n", "n"]}},
    {"title": "Hessian of logistic regression", "op": "hessian",
     "expr": "sum(softplus(X*w)) - y'*X*w", "wrt": "w",
     "shapes": {"X": ["m", "n"], "w": ["n"], "y": ["m"]}},
    {"title": "HVP of log-determinant", "op": "hvp", "expr": "logdet(S)", "wrt": "S",
     "shapes": {"S": ["n", "n"]}},
    {"title": "Jacobian of A*X*B", "op": "jacobian", "expr": "A*X*B", "wrt": "X",
     "shapes": {"A": ["m", "n"], "X": ["n", "p"], "B": ["p", "q"]}},
    {"title": "simplify", "op": "simplify", "expr": "tr(A') + tr(A)", "shapes": {"A": ["n", "n"]}},
    {"title": "equivalent", "op": "equivalent", "expr": "tr(A*B*C)", "other": "tr(C*A*B)",
     "shapes": {}},
    {"title": "a parse error", "op": "gradient", "expr": "tr(X'*A*X", "wrt": "X", "shapes": {}},
]
