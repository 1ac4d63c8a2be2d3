"""An e-graph as a networkx graph: e-classes and e-nodes as nodes, edges to child e-classes.

>>> import rewrite as rw
>>> g = rw.gradient("tr(A*X)", "X", {"A": (2, 3), "X": (3, 2)}, keep_egraph=True)
>>> G = egraph_graph(g)
>>> classes = [n for n, d in G.nodes(data=True) if d["kind"] == "eclass"]
>>> len(classes) == g.report.eclasses
True
"""

from __future__ import annotations

import networkx as nx

from rewrite.egraph.provenance import SORT, locate
from rewrite.printing import to_text
from rewrite.terms import Term

SYMBOLS = {"add": "+", "mul": "*", "scale": "*", "had": ".*", "hdiv": "./", "t": "'",
           "mpow": "^", "epow": ".^", "epows": ".^"}


def _session(result):
    s = getattr(result, "session", None)
    if s is None:
        raise ValueError("this result has no e-graph: compute it with keep_egraph=True "
                         "(rw.gradient(..., keep_egraph=True))")
    return s


def extracted_classes(data: dict, term: Term) -> dict[str, str]:
    """E-class → e-node of ``term`` found in the serialized e-graph (bottom-up matching)."""
    return {data["nodes"][nid]["eclass"]: nid for nid in locate(data, term).values()}


def egraph_graph(result) -> nx.MultiDiGraph:
    """The e-graph of a result computed with ``keep_egraph=True``.

    Nodes ``("class", id)`` (kind ``eclass``: sort, rows, cols, size, extracted) and ``("node", id)``
    (kind ``enode``: op, label, symbol, cost, subsumed, extracted, eclass, rule); edges
    ``member`` from a class to its e-nodes and ``child`` (with ``index``) from an e-node to a
    child class. ``rule`` names the rule that created the e-node (``"input"`` for the terms
    inserted; ``name<-`` is an equation used right to left). The graph's attributes hold the
    extracted term (``extracted``), its root class (``root``) and, when the result recorded
    them, the derivation's steps (``steps``: lines of :func:`rewrite.steps.format_steps`).
    """
    s = _session(result)
    data = s.serialize()
    root_term = s.extract(s.root) if getattr(s, "root", None) else None
    chosen = extracted_classes(data, root_term) if root_term is not None else {}
    G = nx.MultiDiGraph(root=None)
    members: dict[str, int] = {}
    for n in data["nodes"].values():
        members[n["eclass"]] = members.get(n["eclass"], 0) + 1
    for cid, c in data["classes"].items():
        G.add_node(("class", cid), kind="eclass", id=cid, sort=SORT, rows=str(c["rows"]),
                   cols=str(c["cols"]),
                   size=members.get(cid, 0), extracted=cid in chosen)
    for nid, n in data["nodes"].items():
        G.add_node(("node", nid), kind="enode", id=nid, op=n["op"], label=n["label"],
                   symbol=SYMBOLS.get(n["op"], n["label"]), cost=n["cost"],
                   subsumed=n["subsumed"], eclass=n["eclass"], rule=n.get("rule") or "",
                   extracted=chosen.get(n["eclass"]) == nid)
        G.add_edge(("class", n["eclass"]), ("node", nid), kind="member")
        for i, ch in enumerate(n["children"]):
            G.add_edge(("node", nid), ("class", ch), kind="child", index=i)
    if root_term is not None:
        G.graph["root"] = _top_class(data, chosen)
    G.graph["extracted"] = to_text(root_term) if root_term is not None else ""
    steps = getattr(result, "steps", None)
    if steps:
        from rewrite.steps import format_steps

        G.graph["steps"] = format_steps(steps).splitlines()
    return G


def _top_class(data: dict, chosen: dict[str, str]) -> str | None:
    """The class of the extracted term's root: a chosen class no chosen e-node points to."""
    pointed = {ch for nid in chosen.values() for ch in data["nodes"][nid]["children"]}
    tops = [c for c in chosen if c not in pointed]
    return tops[0] if tops else None


def counts(G: nx.MultiDiGraph) -> tuple[int, int]:
    """(e-classes, e-nodes) of a graph from :func:`egraph_graph`."""
    kinds = [d["kind"] for _, d in G.nodes(data=True)]
    return kinds.count("eclass"), kinds.count("enode")


def view(G: nx.MultiDiGraph, max_classes: int = 60) -> nx.MultiDiGraph:
    """A readable part: classes within reach of the extracted term's root (breadth first), at
    most ``max_classes`` of them, with their e-nodes; the whole graph when it is small."""
    if counts(G)[0] <= max_classes:
        return G
    root = G.graph.get("root")
    start = [("class", root)] if root else [n for n, d in G.nodes(data=True)
                                            if d["kind"] == "eclass"][:1]
    keep, frontier = set(start), list(start)
    while frontier and len(keep) < max_classes:
        nxt = []
        for c in frontier:
            for _, en in G.out_edges(c):
                for _, ch in G.out_edges(en):
                    if ch not in keep and len(keep) < max_classes:
                        keep.add(ch)
                        nxt.append(ch)
        frontier = nxt
    nodes = set(keep)
    for c in keep:
        nodes.update(en for _, en in G.out_edges(c))
    H = G.subgraph(nodes).copy()
    H.graph.update(G.graph, truncated=True)
    return H
