"""The cost model of generated code and the matrix-chain planner: how many multiply-adds a
product, a solve or an inverse takes, and which bracketing of a chain of factors (some of them
inverses that may be applied as solves) is cheapest.

>>> plan_chain([(10, 100), (100, 5), (5, 50)]).brackets("ABC")
'((A B) C)'
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: the size assumed for every symbolic dimension when planning a chain (only ratios matter)
NOMINAL_DIM = 1000


@dataclass(frozen=True)
class Plan:
    """How to compute factors ``i..j`` of a chain: a leaf (``how == "leaf"``), a product
    ``left @ right`` (``"mul"``), ``solve(A, right)`` where factor ``i`` is ``inv(A)``
    (``"solve"``), ``solve(A', left')'`` where factor ``j`` is ``inv(A)`` (``"rsolve"``), or a
    range already computed elsewhere (``"known"``)."""

    i: int
    j: int
    how: str
    cost: float
    left: Plan | None = None
    right: Plan | None = None

    def brackets(self, names: Sequence[str] | None = None) -> str:
        """The bracketing as text.

        >>> plan_chain([(10, 100), (100, 5), (5, 50)]).brackets()
        '((F0 F1) F2)'
        """
        names = names or [f"F{k}" for k in range(self.j + 1)]
        if self.how in ("leaf", "known") and self.left is None:
            return " ".join(names[self.i:self.j + 1]) if self.i != self.j else names[self.i]
        return f"({self.left.brackets(names)} {self.right.brackets(names)})"


def matmul_cost(m: int, n: int, p: int) -> int:
    """Multiply-adds of an (m×n)·(n×p) product.

    >>> matmul_cost(2, 3, 4)
    24
    """
    return m * n * p


def solve_cost(n: int, p: int) -> float:
    """Multiply-adds of ``solve(A, B)`` with A n×n and B n×p: an LU factorisation and 2p
    triangular solves.

    >>> solve_cost(3, 1)
    18.0
    """
    return n**3 / 3 + n * n * p


def inverse_cost(n: int) -> float:
    """Multiply-adds of forming ``inv(A)`` for an n×n matrix.

    >>> inverse_cost(3)
    27.0
    """
    return float(n**3)


def plan_chain(shapes: Sequence[tuple[int, int]], leaf_costs: Sequence[float] | None = None,
               solvable: Sequence[bool] | None = None,
               known: Callable[[int, int], bool] | None = None) -> Plan:
    """The cheapest way to compute the product of factors with the given concrete shapes.

    ``leaf_costs[k]`` is the cost of having factor k as a matrix (e.g. forming an inverse),
    ``solvable[k]`` marks factors ``inv(A)`` that may instead be applied as a solve, and
    ``known(i, j)`` says that the product of factors i..j is already available (cost 0).
    Classic O(k³) dynamic programming; the cost is in multiply-adds.

    >>> p = plan_chain([(10, 100), (100, 5), (5, 50)])
    >>> p.cost, p.brackets("ABC")
    (7500.0, '((A B) C)')
    >>> plan_chain([(4, 4), (4, 1)], leaf_costs=[64, 0], solvable=[True, False]).how
    'solve'
    """
    k = len(shapes)
    if k == 0:
        raise ValueError("empty chain")
    for a, b in itertools.pairwise(shapes):
        if a[1] != b[0]:
            raise ValueError(f"chain shapes do not agree: {a} then {b}")
    leaf_costs = list(leaf_costs) if leaf_costs is not None else [0.0] * k
    solvable = list(solvable) if solvable is not None else [False] * k
    best: dict[tuple[int, int], Plan] = {}
    for i in range(k):
        best[i, i] = Plan(i, i, "leaf", float(leaf_costs[i]))
    for length in range(2, k + 1):
        for i in range(k - length + 1):
            j = i + length - 1
            if known is not None and known(i, j):
                best[i, j] = Plan(i, j, "known", 0.0)
                continue
            cand: Plan | None = None
            rows, cols = shapes[i][0], shapes[j][1]
            for s in range(i, j):
                left, right = best[i, s], best[s + 1, j]
                c = left.cost + right.cost + matmul_cost(rows, shapes[s][1], cols)
                if cand is None or c < cand.cost:
                    cand = Plan(i, j, "mul", c, left, right)
            if solvable[i]:
                right = best[i + 1, j]
                c = right.cost + solve_cost(shapes[i][0], cols)
                if c < cand.cost:
                    cand = Plan(i, j, "solve", c, best[i, i], right)
            if solvable[j]:
                left = best[i, j - 1]
                c = left.cost + solve_cost(shapes[j][0], rows)
                if c < cand.cost:
                    cand = Plan(i, j, "rsolve", c, left, best[j, j])
            best[i, j] = cand
    return best[0, k - 1]


def plan_cost(p: Plan, shapes: Sequence[tuple[int, int]], leaf_costs: Sequence[float],
              known: Callable[[int, int], bool] | None = None) -> float:
    """The cost of computing the chain by plan ``p`` (same model as :func:`plan_chain`).

    >>> shapes = [(10, 100), (100, 5), (5, 50)]
    >>> p = plan_chain(shapes)
    >>> plan_cost(p, shapes, [0, 0, 0]) == p.cost
    True
    """
    if p.how == "known" or (p.i < p.j and known is not None and known(p.i, p.j)):
        return 0.0
    if p.how == "leaf":
        return float(leaf_costs[p.i])
    rows, cols = shapes[p.i][0], shapes[p.j][1]
    if p.how == "solve":
        return plan_cost(p.right, shapes, leaf_costs, known) + solve_cost(rows, cols)
    if p.how == "rsolve":
        return plan_cost(p.left, shapes, leaf_costs, known) + solve_cost(cols, rows)
    return (plan_cost(p.left, shapes, leaf_costs, known) + plan_cost(p.right, shapes, leaf_costs, known)
            + matmul_cost(rows, shapes[p.left.j][1], cols))


__all__ = ["NOMINAL_DIM", "Plan", "inverse_cost", "matmul_cost", "plan_chain", "plan_cost", "solve_cost"]
