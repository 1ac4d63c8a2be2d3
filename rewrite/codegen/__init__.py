"""Generate standalone source code computing f and ∂f/∂X with NumPy, JAX or PyTorch.

The generated module defines ``f_and_grad(**arrays) -> (f, gradient)``, ``objective(**arrays)``,
``gradient(**arrays)`` and ``check_gradient(**arrays)`` (relative error against central finite
differences), following the numeric conventions of the API: a vector may be passed 1-D or as a
column, a scalar as a number, and the gradient comes back in the shape its variable was passed in.

Code is generated from the typed terms of ``f`` and ``G`` together: every common subexpression is
computed once and shared between ``f`` and the gradient. Matrix products are planned as chains:
the bracketing minimises the number of multiply-adds (dynamic programming over the chain, see
:func:`plan_chain`; symbolic dimensions count as one large size, and the term's own bracketing
is kept unless another is cheaper); ``inv(A)*B`` becomes a linear solve unless ``inv(A)`` is
needed on its own anyway; ``logdet`` uses ``slogdet``; ``sigmoid`` and ``softplus`` are evaluated
without overflow; ``sum(A .* B)`` and ``fro2(A)`` are dot products; ``c*(A*B)`` scales the
smallest of A, B and the product (chosen at run time). NumPy code overwrites a
temporary array nothing reads afterwards instead of allocating a new one (never an input).

The package: :mod:`.plan` (cost model and chain planner), :mod:`.backends` (each backend's
spellings), :mod:`.emit` (terms to lines of code), :mod:`.runtime` (the helper functions
generated code carries, as real Python files) and :mod:`.module` (assembling a module).
``rewrite.codegen`` itself is callable: ``rewrite.codegen(gradient, backend)`` is
:func:`codegen`.

>>> import rewrite as rw
>>> g = rw.gradient("tr(A*X)", "X", {"A": (2, 3), "X": (3, 2)})
>>> mod = load(rw.codegen(g, "numpy"))
>>> import numpy as np
>>> f, grad = mod.f_and_grad(A=np.ones((2, 3)), X=np.ones((3, 2)))
>>> f, grad.shape
(6.0, (3, 2))
"""

from __future__ import annotations

import sys
import types

from .backends import BACKENDS
from .emit import hoist_numbers
from .module import codegen, generate, generate_second_order, load
from .plan import NOMINAL_DIM, Plan, inverse_cost, matmul_cost, plan_chain, plan_cost, solve_cost


class _CallableModule(types.ModuleType):
    """Makes ``rewrite.codegen(gradient, backend)`` call :func:`codegen` while ``rewrite.codegen``
    stays this package (``from rewrite.codegen import load`` and ``rewrite.codegen.load`` work)."""

    def __call__(self, gradient, backend: str = "numpy") -> str:
        return codegen(gradient, backend)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["BACKENDS", "NOMINAL_DIM", "Plan", "codegen", "generate", "generate_second_order", "hoist_numbers",
           "inverse_cost", "load", "matmul_cost", "plan_chain", "plan_cost", "solve_cost"]
