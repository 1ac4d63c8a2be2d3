"""The runtime helpers of generated code, kept as real Python files in this package (one per
concern: ``common``, ``check``, and one per backend), and :func:`function_source`, which reads
the text of one of their functions so that it can be copied verbatim into a generated module:
generated modules stay standalone and never import :mod:`rewrite`.

>>> print(function_source("common", "_describe"))
def _describe(shape):
    rows, cols = shape
    if shape == (1, 1):
        return "a scalar"
    if cols == 1:
        return f"a vector of length {rows} (1-D or a column)"
    return f"a matrix of shape ({rows}, {cols})"
"""

from __future__ import annotations

import ast
from functools import cache
from importlib.resources import files


@cache
def _functions(file: str) -> dict[str, str]:
    """The source of every top-level function of ``runtime/<file>.py``, by name, in file order."""
    text = files(__name__).joinpath(f"{file}.py").read_text(encoding="utf-8")
    return {node.name: ast.get_source_segment(text, node) for node in ast.parse(text).body
            if isinstance(node, ast.FunctionDef)}


def function_source(file: str, name: str) -> str:
    """The source text of function ``name`` of ``runtime/<file>.py`` (``file`` without ``.py``).

    >>> function_source("numpy_helpers", "_sigmoid").splitlines()[0]
    'def _sigmoid(x):'
    """
    try:
        return _functions(file)[name]
    except KeyError:
        raise KeyError(f"runtime/{file}.py defines no function {name!r}") from None


def function_names(file: str) -> list[str]:
    """The names of the functions of ``runtime/<file>.py``, in file order.

    >>> function_names("jax_helpers")
    ['_input', '_like', '_to_numpy', '_step', '_logdet', '_kront']
    """
    return list(_functions(file))


__all__ = ["function_names", "function_source"]
