"""Positions for drawing: e-classes as boxes in layers (breadth first from the root), their
e-nodes side by side inside.

>>> import networkx as nx
>>> G = nx.MultiDiGraph(root="c")
>>> G.add_node(("class", "c"), kind="eclass"); G.add_node(("node", "n"), kind="enode")
>>> G.add_edge(("class", "c"), ("node", "n"), kind="member")
0
>>> boxes, points = layout(G)
>>> boxes[("class", "c")][2] > 0, ("node", "n") in points
(True, True)
"""

from __future__ import annotations

NODE_W, NODE_H, GAP, LAYER_H = 1.0, 0.6, 0.5, 1.8


def _layers(G) -> list[list]:
    classes = [n for n, d in G.nodes(data=True) if d["kind"] == "eclass"]
    root = G.graph.get("root")
    start = ("class", root) if root and ("class", root) in G else (classes[0] if classes else None)
    depth = {}
    if start is not None:
        depth[start] = 0
        frontier = [start]
        while frontier:
            nxt = []
            for c in frontier:
                for _, en in G.out_edges(c):
                    for _, ch in G.out_edges(en):
                        if ch not in depth:
                            depth[ch] = depth[c] + 1
                            nxt.append(ch)
            frontier = nxt
    last = max(depth.values(), default=-1) + 1
    for c in classes:  # classes not reachable from the root go to a last layer
        depth.setdefault(c, last)
    layers: dict[int, list] = {}
    for c in sorted(classes, key=lambda c: (depth[c], str(c[1]))):
        layers.setdefault(depth[c], []).append(c)
    return [layers[k] for k in sorted(layers)]


def layout(G) -> tuple[dict, dict]:
    """(boxes: class → (x, y, width, height), points: e-node → (x, y))."""
    boxes, points = {}, {}
    for li, layer in enumerate(_layers(G)):
        x = 0.0
        y = -li * LAYER_H
        for c in layer:
            members = sorted((en for _, en in G.out_edges(c)), key=str)
            w = max(1, len(members)) * NODE_W + 0.2
            boxes[c] = (x, y, w, NODE_H + 0.2)
            for j, en in enumerate(members):
                points[en] = (x + 0.1 + (j + 0.5) * NODE_W, y + 0.1 + NODE_H / 2)
            x += w + GAP
    return boxes, points
