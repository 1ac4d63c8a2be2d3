"""Reading an e-graph back: its serialization as plain data (classes with shapes, e-nodes with
labels, children and the rule that created each), where a term's subterms sit in it and how it
grew from one snapshot to the next (the e-nodes each iteration added, the classes it merged) —
what the derivation steps and the pictures of :mod:`viz` are made of.
"""

from __future__ import annotations

import json
import re
from collections import deque
from fractions import Fraction

from ..printing import fmt_number
from ..terms import CTOR_TO_OP, Term, post_order, result_shape
from .encode import DimCodec
from .schema import PROV, SORT

__all__ = ["INPUT", "PENDING", "SORT", "Growth", "frontier", "grow", "infer_shapes", "label_attr",
           "locate", "made_by", "node_index", "serialize", "subterms"]

#: the derivation's own constructs: a class still holding only these (over classes that are
#: done) is where differentiation or collection has not finished
PENDING = frozenset({"grad", "adj", "d", "jac"})


def serialize(egraph, codec: DimCodec, provenance: bool) -> dict:
    """The e-graph as plain data (the one place that reads egglog's serialization).

    ``{"classes": {id: {"rows", "cols"}}, "nodes": {id: {"op", "label", "children",
    "eclass", "cost", "subsumed", "rule"}}}``: only term classes (sort ``M``); literal
    children (names, numbers, dimensions) are folded into the node's ``label``; ``rule``
    names the rule that created the e-node (``"input"`` for inserted terms) with a
    ``provenance`` program, and is ``None`` otherwise.
    """
    data = json.loads(egraph.serialize([]).to_json())
    raw = data["nodes"]
    shapes: dict[str, dict] = {}
    leaf_value: dict[str, int] = {}  # an i64 class → its value (its childless node's op)
    for n in raw.values():
        if not n["children"] and n["eclass"] not in leaf_value:
            try:
                leaf_value[n["eclass"]] = int(n["op"])
            except ValueError:
                pass
    for n in raw.values():  # rows/cols function rows: children [class], output i64
        if n["op"] in ("rows", "cols") and n["children"]:
            child_cls = raw[n["children"][0]]["eclass"] if n["children"][0] in raw else None
            out = leaf_value.get(n.get("eclass", ""))
            if child_cls is not None and out is not None:
                shapes.setdefault(child_cls, {})[n["op"]] = codec.decode(out)
    prov: dict[tuple, str] = {}  # (constructor, argument classes) -> rule name
    if provenance:
        literal = {n["eclass"]: n["op"] for n in raw.values() if not n["children"]}
        for n in raw.values():
            if n["op"].startswith(PROV) and n["eclass"] in literal:
                key = (n["op"][len(PROV):], tuple(raw[c]["eclass"] for c in n["children"]))
                prov[key] = primitive_text(literal[n["eclass"]])
    nodes, classes = {}, {}
    for nid, n in raw.items():
        if n["op"] not in CTOR_TO_OP or not n["eclass"].startswith(f"{SORT}-"):
            continue
        lits = [primitive_text(raw[c]["op"]) for c in n["children"] if not is_term(raw.get(c))]
        if n["op"] in ("Eye", "Ones", "Fill"):
            lits = [str(codec.decode(int(x))) if str(x).lstrip("-").isdigit() else x
                    for x in lits]
        label = CTOR_TO_OP[n["op"]] + (f"({', '.join(map(str, lits))})" if lits else "")
        nodes[nid] = {"op": CTOR_TO_OP[n["op"]], "label": label,
                      "children": [raw[c]["eclass"] for c in n["children"]
                                   if is_term(raw.get(c))],
                      "eclass": n["eclass"], "cost": float(n.get("cost", 1.0)),
                      "subsumed": bool(n.get("subsumed", False)),
                      "rule": prov.get((n["op"], tuple(raw[c]["eclass"]
                                                       for c in n["children"])))}
        sh = shapes.get(n["eclass"], {})
        classes[n["eclass"]] = {"rows": sh.get("rows"), "cols": sh.get("cols")}
    return {"classes": classes, "nodes": nodes}


def node_index(data: dict) -> dict[tuple, str]:
    """(label, child classes) → e-node id, for the nodes of ``data`` (see :func:`locate`)."""
    by_key: dict[tuple, str] = {}
    for nid, n in data["nodes"].items():
        by_key.setdefault((n["label"], tuple(n["children"])), nid)
    return by_key


def locate(data: dict, term: Term, index: dict[tuple, str] | None = None) -> dict[Term, str]:
    """Subterm of ``term`` → id of the e-node that spells it in ``data`` (from
    :func:`serialize`), matched bottom-up; subterms not found are left out.
    ``index`` is :func:`node_index` of ``data``, when the caller has it already.

    A 1×1 factor read back as ``scale`` may be a ``Scale`` or a ``Mul`` node (either order).
    """
    by_key = index if index is not None else node_index(data)
    found: dict[Term, str] = {}
    cls: dict[Term, str | None] = {}

    def label(t: Term) -> str:
        if t.op == "var":
            return f"var({t.attr})"
        if t.op == "num":
            return f"num({fmt_number(t.attr) if t.attr.denominator == 1 else t.attr})"
        if t.op == "fn":
            return f"fn({t.attr})"
        if isinstance(t.attr, tuple):
            return f"{t.op}({', '.join(map(str, t.attr))})"
        return t.op

    for t in post_order(term):
        kids = tuple(cls.get(a) for a in t.args)
        cls[t] = None
        if any(k is None for k in kids):
            continue
        keys = [(label(t), kids)]
        if t.op == "scale":
            keys += [("mul", kids), ("mul", kids[::-1])]
        for key in keys:
            nid = by_key.get(key)
            if nid is not None:
                found[t] = nid
                cls[t] = data["nodes"][nid]["eclass"]
                break
    return found


def made_by(data: dict, term: Term, prev: Term | None,
            index: dict[tuple, str] | None = None) -> list[str]:
    """The rules that created the e-nodes spelling ``term`` that ``prev`` does not use,
    outermost first (``"input"`` and unknown provenance left out)."""
    index = index if index is not None else node_index(data)
    old = set() if prev is None else set(locate(data, prev, index).values())
    where = locate(data, term, index)
    out: list[str] = []
    for t in subterms(term):
        nid = where.get(t)
        if nid is None or nid in old:
            continue
        rule = data["nodes"][nid].get("rule")
        if rule and rule != "input" and rule not in out:
            out.append(rule)
    return out


def grow(old: dict, new: dict) -> dict:
    """How the e-graph ``new`` grew from ``old``: two :func:`serialize` snapshots of one e-graph,
    ``new`` taken later (an e-graph only grows: e-nodes are added, classes merged).

    An e-node is keyed by its label (constructor and leaf payload) and its child classes. Each
    old class is mapped to its new class through its e-nodes whose children are mapped already
    (leaves first): the old e-node's key with its children mapped is an e-node of ``new``, its
    image. Returns ``nodes`` (old e-node → its image), ``classes`` (old class → new class),
    ``appeared`` (the e-nodes of ``new`` that are no old e-node's image), ``merged`` (per new
    class that two or more old classes map to, those old classes) and ``lost`` (old e-nodes
    with no image: rows removed, or a reset e-graph; none in a growing one).

    >>> node = lambda label, c, *kids: {"label": label, "eclass": c, "children": list(kids)}
    >>> old = {"nodes": {"x": node("var(X)", "a"), "y": node("var(Y)", "b"),
    ...                  "m": node("mul", "c", "a", "b"), "n": node("mul", "d", "b", "a")}}
    >>> new = {"nodes": {"x2": node("var(X)", "A"), "y2": node("var(Y)", "B"),
    ...                  "m2": node("mul", "C", "A", "B"), "n2": node("mul", "C", "B", "A"),
    ...                  "t": node("t", "T", "C")}}
    >>> g = grow(old, new)  # commutativity merged c and d, and t(C) was added
    >>> g["classes"] == {"a": "A", "b": "B", "c": "C", "d": "C"}, g["appeared"], g["merged"]
    (True, ['t'], [['c', 'd']])
    >>> grow(new, {"nodes": {k: v for k, v in new["nodes"].items() if k != "t"}})["lost"]
    ['t']
    """
    index = {(n["label"], tuple(n["children"])): nid for nid, n in new["nodes"].items()}
    nodes, classes = {}, {}
    need: dict[str, int] = {}  # old e-node -> how many of its distinct child classes are unmapped
    waiting: dict[str, list[str]] = {}  # old class -> the old e-nodes waiting for it
    ready = deque()
    for nid, n in old["nodes"].items():
        kids = set(n["children"])
        need[nid] = len(kids)
        for c in kids:
            waiting.setdefault(c, []).append(nid)
        if not kids:
            ready.append(nid)
    while ready:
        nid = ready.popleft()
        n = old["nodes"][nid]
        hit = index.get((n["label"], tuple(classes[c] for c in n["children"])))
        if hit is None:
            continue
        nodes[nid] = hit
        target = new["nodes"][hit]["eclass"]
        c = n["eclass"]
        if c in classes:
            if classes[c] != target:
                raise ValueError(f"not a later state of the same e-graph: class {c} maps to "
                                 f"{classes[c]} and {target}")
            continue
        classes[c] = target
        for parent in waiting.get(c, ()):
            need[parent] -= 1
            if need[parent] == 0:
                ready.append(parent)
    images = set(nodes.values())
    by_new: dict[str, list[str]] = {}
    for c, target in classes.items():
        by_new.setdefault(target, []).append(c)
    return {"nodes": nodes, "classes": classes,
            "appeared": [nid for nid in new["nodes"] if nid not in images],
            "merged": [sorted(cs) for cs in by_new.values() if len(cs) > 1],
            "lost": [nid for nid in old["nodes"] if nid not in nodes]}


#: the birth of an e-node inserted (or added outside a phase's iterations), in :class:`Growth`
INPUT = -1


class Growth:
    """Exactly which e-nodes appeared and which classes merged in each iteration of a session
    (provenance programs), from a :func:`serialize` snapshot after each iteration compared by
    :func:`grow` with the one before; only while the e-graph has at most ``limit`` e-nodes
    (above, recording stops for the session: the iterations say "not recorded").

    ``born`` maps each e-node of the last snapshot to the step (an index the caller chooses,
    such as the iteration's place in the session's history) that made it, or :data:`INPUT`;
    ``merges`` holds ``(step, class)`` for each merge, its class in the last snapshot.

    >>> node = lambda label, c, *kids: {"label": label, "eclass": c, "children": list(kids)}
    >>> g = Growth(limit=100)
    >>> g.begin({"nodes": {"x": node("var(X)", "a")}}, 1)
    >>> g.record(0, {"nodes": {"x": node("var(X)", "a"), "t": node("t", "b", "a")}}, 2)
    {'appeared': 1, 'merged': 0}
    >>> g.record(1, {"nodes": {"x": node("var(X)", "a"), "t": node("t", "a", "a")}}, 2)
    {'appeared': 0, 'merged': 1}
    >>> g.final({"nodes": {"x9": node("var(X)", "z"), "t9": node("t", "z", "z")}})
    ({'x9': -1, 't9': 0}, [(1, 'z')])
    >>> g.record(2, None, 1000)  # over the limit: not recorded from here on
    {'appeared': None, 'merged': None}
    >>> g = Growth(limit=100)
    >>> g.begin({"nodes": {"x": node("var(X)", "a"), "y": node("var(Y)", "b")}}, 2)
    >>> g.record(0, {"nodes": {"x": node("var(X)", "a"), "y": node("var(Y)", "a")}}, 2)
    {'appeared': 0, 'merged': 1}
    >>> g.begin({"nodes": {"x": node("var(X)", "a")}}, 1)  # reset: var(Y) is gone
    >>> g.born, g.merges
    ({'x': -1}, [])
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.last: dict | None = None
        self.born: dict[str, int] = {}
        self.merges: list[tuple[int, str]] = []
        self.stopped = False

    def _carry(self, data: dict) -> dict | None:
        """Move the records from the last snapshot onto ``data``; returns the :func:`grow`
        (None, and recording stops, if ``data`` cannot be a later state)."""
        try:
            g = grow(self.last or {"nodes": {}}, data)
        except ValueError:
            self.stopped = True
            return None
        born: dict[str, int] = {}
        for old, new in g["nodes"].items():  # an e-node is as old as its oldest preimage
            b = self.born[old]
            born[new] = b if new not in born else min(born[new], b)
        self.born = born
        self.merges = [(k, g["classes"][c]) for k, c in self.merges if c in g["classes"]]
        self.last = data
        return g

    def begin(self, data, n_nodes: int) -> None:
        """Before a phase's first iteration (``n_nodes`` e-nodes): what is new since the last
        snapshot is input. ``data`` is the snapshot, or a function that takes it (called only
        within the limit)."""
        if self.stopped or n_nodes > self.limit:
            self.stopped = True
            return
        g = self._carry(data() if callable(data) else data)
        if g is None:
            return
        if g["lost"]:  # not a later state (a reset e-graph): start again, all of it input
            self.born, self.merges = dict.fromkeys(self.last["nodes"], INPUT), []
            return
        for nid in g["appeared"]:
            self.born[nid] = INPUT

    def record(self, step: int, data, n_nodes: int) -> dict:
        """After an iteration (``data`` as for :meth:`begin`): how many e-nodes appeared and
        classes merged in it (None when not recorded)."""
        if self.stopped or self.last is None or n_nodes > self.limit:
            self.stopped = True
            return {"appeared": None, "merged": None}
        g = self._carry(data() if callable(data) else data)
        if g is None or g["lost"]:  # rows removed: what was made can no longer be told
            self.stopped = True
            return {"appeared": None, "merged": None}
        for nid in g["appeared"]:
            self.born[nid] = step
        for cs in g["merged"]:
            self.merges.append((step, g["classes"][cs[0]]))
        return {"appeared": len(g["appeared"]), "merged": len(g["merged"])}

    def final(self, data: dict) -> tuple[dict[str, int], list[tuple[int, str]]]:
        """The records on ``data``, a snapshot of the e-graph now (such as the one drawn): each
        of its e-nodes' step (those added since the last snapshot are left out) and the merges
        with their classes in ``data``."""
        if self.last is None:
            return {}, []
        try:
            g = grow(self.last, data)
        except ValueError:
            return {}, []
        born: dict[str, int] = {}
        for old, new in g["nodes"].items():
            born[new] = min(born.get(new, self.born[old]), self.born[old])
        return born, [(k, g["classes"][c]) for k, c in self.merges if c in g["classes"]]


def subterms(t: Term) -> list[Term]:
    """Distinct subterms, outermost first (breadth first)."""
    out, seen, queue = [], {t}, deque([t])
    while queue:
        n = queue.popleft()
        out.append(n)
        for a in n.args:
            if a not in seen:
                seen.add(a)
                queue.append(a)
    return out


def is_term(n) -> bool:
    """Whether a serialized node is a term e-node (of sort ``M``)."""
    return n is not None and n["eclass"].startswith(f"{SORT}-")


def primitive_text(op: str):
    """A serialized primitive: ``"X"`` → X, ``42`` → 42, a rational as p or p/q."""
    if op.startswith('"') and op.endswith('"'):
        return op[1:-1]
    m = re.search(r"numer: (-?\d+), denom: (\d+)", op)
    if m:
        return m.group(1) if m.group(2) == "1" else f"{m.group(1)}/{m.group(2)}"
    return op


def _fixpoint(data: dict, ok, start: set[str] | None = None) -> set[str]:
    """``start`` and the classes with an e-node ``n`` for which ``ok(n, done)`` holds, ``done``
    being the classes found so far (least fixpoint)."""
    done: set[str] = set(start or ())
    changed = True
    while changed:
        changed = False
        for n in data["nodes"].values():
            if n["eclass"] not in done and ok(n, done):
                done.add(n["eclass"])
                changed = True
    return done


def frontier(data: dict) -> list[str]:
    """The classes where a derivation stopped (the stuck frontier), from :func:`serialize`.

    A class is *free* when it holds a term without :data:`PENDING` constructs, *linear* when
    it holds one whose only pending construct is a differential ``d(X)`` of a variable (a
    differential expression, what ``adj`` consumes), and *pending* otherwise. The frontier is
    the pending classes none of whose e-nodes has a pending child: where differentiation
    (``d``) or collection (``adj``, ``grad``, ``jac``) did not get any further. Empty when no
    class is pending.

    >>> node = lambda op, c, *kids: {"op": op, "eclass": c, "children": list(kids)}
    >>> data = {"classes": dict.fromkeys(["x", "dx", "k", "dk", "g"], {}), "nodes": {
    ...     1: node("var", "x"), 2: node("d", "dx", "x"), 3: node("kront", "k", "x", "x"),
    ...     4: node("d", "dk", "k"), 5: node("grad", "g", "dk", "dx")}}
    >>> frontier(data)  # d(kront(X, X)): no rule took it further; grad waits on it
    ['dk']
    """
    nodes = data["nodes"]
    free = _fixpoint(data, lambda n, done: n["op"] not in PENDING
                     and all(c in done for c in n["children"]))
    variables = {n["eclass"] for n in nodes.values() if n["op"] == "var"}
    dvar = {n["eclass"] for n in nodes.values()
            if n["op"] == "d" and len(n["children"]) == 1 and n["children"][0] in variables}
    linear = _fixpoint(data, lambda n, done: n["op"] not in PENDING
                       and all(c in done for c in n["children"]), free | dvar)
    pending = set(data["classes"]) - linear
    blocked = {n["eclass"] for n in nodes.values()
               if any(c in pending and c != n["eclass"] for c in n["children"])}
    return sorted(pending - blocked, key=lambda c: (len(c), c))


def infer_shapes(data: dict) -> None:
    """Fill in, in place, the shape of classes of :func:`serialize`'s data that the e-graph's
    shape analysis left unknown, from an e-node whose children's shapes are known (typed by
    the operator table), until nothing changes."""
    classes = data["classes"]
    changed = True
    while changed:
        changed = False
        for n in data["nodes"].values():
            c = classes[n["eclass"]]
            if c["rows"] is not None and c["cols"] is not None:
                continue
            kids = [classes.get(ch) for ch in n["children"]]
            if any(k is None or k["rows"] is None or k["cols"] is None for k in kids):
                continue
            args = tuple(Term("var", (), "_", (k["rows"], k["cols"])) for k in kids)
            try:
                rows, cols = result_shape(n["op"], args, label_attr(n["op"], n["label"]))
            except Exception:  # noqa: BLE001 - an operator the table cannot type: stays unknown
                continue
            if rows is not None and cols is not None:
                classes[n["eclass"]] = {**c, "rows": rows, "cols": cols}
                changed = True


def label_attr(op: str, label: str):
    """The attribute a label such as ``num(1/2)`` or ``eye(3)`` spells."""
    inside = re.fullmatch(r"\w+\((.*)\)", label)
    if not inside:
        return None
    text = inside.group(1)
    if op == "num":
        try:
            return Fraction(text)
        except ValueError:
            return text
    if op in ("eye", "ones", "fill"):
        return tuple(int(x) if x.strip().isdigit() else x.strip() for x in text.split(","))
    return text
