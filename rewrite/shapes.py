"""Dimensions and their unification.

A dimension is an ``int`` (concrete) or a ``str`` (a symbolic name such as ``"n"``).  While an
expression is elaborated, unknown dimensions are :class:`DimVar` placeholders unified by use.

>>> u = Unifier()
>>> a, b = u.fresh(), u.fresh()
>>> u.unify(a, b) and u.unify(b, 3)
True
>>> u.resolve(a)
3
>>> u.unify(a, "n")
False
"""

from __future__ import annotations

import threading
from itertools import count

Dim = int | str
Shape = tuple[Dim, Dim]


class DimVar:
    """An unknown dimension; identity is the object.

    Its ``id`` (an order for printing and sorting) survives pickling, and variables made later
    in the process get larger ones.

    >>> import pickle
    >>> v = DimVar()
    >>> w = pickle.loads(pickle.dumps(v))
    >>> w.id == v.id and w is not v and DimVar().id > w.id
    True
    """

    __slots__ = ("id",)
    _ids = count(1)
    _restoring = threading.Lock()

    def __init__(self) -> None:
        self.id = next(DimVar._ids)

    def __repr__(self) -> str:
        return f"?{self.id}"

    def __reduce__(self):
        return _restore_dimvar, (self.id,)


def _restore_dimvar(id_: int) -> DimVar:
    v = object.__new__(DimVar)
    v.id = id_
    with DimVar._restoring:
        nxt = next(DimVar._ids)
        DimVar._ids = count(max(nxt, id_ + 1))
    return v


class Unifier:
    """Union-find over dimension variables; ints and names are rigid constants.

    In *rule mode* (``flexible_names=True``) dimension names are variables too, one per name.
    """

    def __init__(self, flexible_names: bool = False) -> None:
        self.parent: dict[DimVar, object] = {}
        self.flexible_names = flexible_names
        self.named: dict[str, DimVar] = {}

    def fresh(self) -> DimVar:
        v = DimVar()
        self.parent[v] = v
        return v

    def dim(self, d: object) -> object:
        """The dimension a literal or name in the text stands for."""
        if isinstance(d, str) and self.flexible_names:
            if d not in self.named:
                self.named[d] = self.fresh()
            return self.named[d]
        return d

    def find(self, d: object) -> object:
        if not isinstance(d, DimVar):
            return d
        root = d
        while isinstance(root, DimVar) and self.parent[root] is not root:
            root = self.parent[root]
        while isinstance(d, DimVar) and self.parent[d] is not d:
            nxt = self.parent[d]
            self.parent[d] = root
            d = nxt
        return root

    def unify(self, a: object, b: object) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra is rb or (not isinstance(ra, DimVar) and not isinstance(rb, DimVar) and ra == rb):
            return True
        if isinstance(ra, DimVar):
            self.parent[ra] = rb
            return True
        if isinstance(rb, DimVar):
            self.parent[rb] = ra
            return True
        return False

    def is_one(self, d: object) -> bool:
        return self.find(d) == 1

    def resolve(self, d: object) -> object:
        return self.find(d)


def fmt_dim(d: object) -> str:
    """Text of one dimension.

    >>> fmt_dim(3), fmt_dim('n')
    ('3', 'n')
    """
    return str(d) if not isinstance(d, DimVar) else "?"


def fmt_shape(shape: tuple) -> str:
    """Shapes print as ``m×n``.

    >>> fmt_shape((3, "n"))
    '3×n'
    """
    return f"{fmt_dim(shape[0])}×{fmt_dim(shape[1])}"
