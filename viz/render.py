"""Renderers: PNG/SVG (laid out by Graphviz's dot, or matplotlib when dot is missing), DOT,
GraphML, node-link JSON, the HTML page, the saturation history.

Every renderer takes the graph from :func:`viz.graph.egraph_graph` (or a :func:`viz.graph.view`
of it) and a path; the extracted term's e-nodes and classes are highlighted, and every renderer
uses the same short ids (``c3``, ``n7``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import networkx as nx

from .dot import HIGHLIGHT, PLAIN, STUCK, SUBSUMED, dot_binary, members, render, shape_text, shorten, to_dot
from .dot import title as caption

__all__ = ["HIGHLIGHT", "PLAIN", "draw", "draw_matplotlib", "history", "to_dot", "to_graphml",
           "to_json", "write"]


def draw(G: nx.MultiDiGraph, path: str | Path) -> str:
    """PNG or SVG (by suffix) laid out by Graphviz's ``dot``; without ``dot``, a simpler
    matplotlib drawing and a note on stderr. Returns the engine used (``dot``, ``matplotlib``)."""
    p = Path(path)
    if dot_binary() is not None:
        render(to_dot(G), p, p.suffix.lower().lstrip("."))
        return "dot"
    print("note: Graphviz's dot was not found, so the e-graph is drawn with matplotlib's simpler "
          "layout (install Graphviz, e.g. apt-get install graphviz, for the full drawing)",
          file=sys.stderr)
    draw_matplotlib(G, p)
    return "matplotlib"


def draw_matplotlib(G: nx.MultiDiGraph, path: str | Path) -> None:
    """The fallback drawing: one box per class (id, shape, term, then its e-nodes with their
    ids and rules) placed in networkx's multipartite layout by distance from the root, arrows
    to child classes; the extracted term in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = [c for c, d in G.nodes(data=True) if d["kind"] == "eclass"]
    C = nx.DiGraph()
    C.add_nodes_from(classes)
    for u, v, k in G.edges(data="kind"):
        if k == "child":
            C.add_edge(("class", G.nodes[u]["eclass"]), v)
    root = ("class", G.graph["root"]) if G.graph.get("root") and ("class", G.graph["root"]) in C \
        else (classes[0] if classes else None)
    layer = {}
    if root is not None:
        for i, nodes in enumerate(nx.bfs_layers(C, [root])):
            layer.update({n: i for n in nodes})
    last = max(layer.values(), default=-1) + 1
    for c in classes:
        C.nodes[c]["layer"] = layer.get(c, last)
    pos = nx.multipartite_layout(C, subset_key="layer", align="horizontal", scale=1) \
        if classes else {}
    width = max((sum(1 for c in classes if C.nodes[c]["layer"] == i) for i in range(last + 1)),
                default=1)
    fig, ax = plt.subplots(figsize=(min(60, max(8, 3.2 * width)), min(60, max(5, 1.9 * (last + 1)))))
    for u, v in C.edges():
        if u == v:
            continue
        hl = G.nodes[u]["extracted"] and G.nodes[v]["extracted"]
        ax.annotate("", xy=pos[v], xytext=pos[u],
                    arrowprops=dict(arrowstyle="->", lw=1.4 if hl else 0.5,
                                    color=HIGHLIGHT if hl else "#999999", shrinkA=18, shrinkB=18))
    for c in classes:
        d = G.nodes[c]
        x, y = pos[c]
        colour = STUCK if d.get("stuck") else (HIGHLIGHT if d["extracted"] else "gray")
        lines = [f"{d['id']} {shape_text(d)}: {shorten(d.get('term', ''), 24)}"]
        for en in members(G, c):
            e = G.nodes[en]
            lines.append(f"{e['id']} {e['symbol']}  [{e.get('rule') or '?'}]")
        ax.text(x, y, "\n".join(lines), ha="center", va="center", fontsize=7,
                color=HIGHLIGHT if d["extracted"] else (SUBSUMED if not d["size"] else PLAIN),
                bbox=dict(boxstyle="round,pad=0.3", fc="white", ec=colour,
                          lw=2 if d["extracted"] else 0.8))
    ax.axis("off")
    ax.margins(0.08)
    ax.set_title(caption(G), fontsize=9, loc="left")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def to_graphml(G: nx.MultiDiGraph, path: str | Path) -> None:
    """GraphML with the short ids as node ids; the steps as one text attribute."""
    H = nx.MultiDiGraph()
    for n, d in G.nodes(data=True):
        H.add_node(n[1], **{k: v for k, v in d.items() if v is not None})
    for u, v, d in G.edges(data=True):
        H.add_edge(u[1], v[1], **d)
    H.graph.update({k: v for k, v in G.graph.items() if isinstance(v, (str, int, float, bool))})
    if G.graph.get("steps"):
        H.graph["steps"] = "\n".join(G.graph["steps"])
    nx.write_graphml(H, path)


def to_json(G: nx.MultiDiGraph) -> dict:
    """Node-link data with the short ids as node ids (``c3``, ``n7``, as on the drawing)."""
    H = nx.MultiDiGraph()
    for n, d in G.nodes(data=True):
        H.add_node(n[1], **d)
    for u, v, d in G.edges(data=True):
        H.add_edge(u[1], v[1], **d)
    H.graph.update(G.graph)
    return nx.node_link_data(H, edges="links")


def history(report, path: str | Path, top: int = 15) -> None:
    """The saturation history: e-nodes (and e-classes, when recorded) per iteration by phase;
    the ``top`` rules by matches; and, when recorded (results computed with ``keep_egraph`` or
    ``steps``), the matches of those rules in each iteration as a heat map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = report.history
    per_iter = any("matches" in h for h in hist)
    fig, axes = plt.subplots(1, 3 if per_iter else 2, figsize=(18 if per_iter else 12, 4.5))
    a, b = axes[0], axes[1]
    colour = {p: f"C{i}" for i, p in enumerate(dict.fromkeys(h["phase"] for h in hist))}
    runs: list[list[tuple[int, dict]]] = []  # consecutive iterations of one phase (one e-graph)
    for k, h in enumerate(hist):
        if runs and runs[-1][-1][1]["phase"] == h["phase"] and runs[-1][-1][0] == k - 1 \
                and h["iteration"] > runs[-1][-1][1]["iteration"]:
            runs[-1].append((k, h))
        else:
            runs.append([(k, h)])
    labelled: set[str] = set()
    for pts in runs:
        phase = pts[0][1]["phase"]
        first = phase not in labelled
        labelled.add(phase)
        a.plot([k for k, _ in pts], [h["enodes"] for _, h in pts], marker="o", ms=3,
               label=f"{phase} e-nodes" if first else None, color=colour[phase])
        if all("eclasses" in h for _, h in pts):
            a.plot([k for k, _ in pts], [h["eclasses"] for _, h in pts], ls="--", marker="x",
                   ms=3, label=f"{phase} e-classes" if first else None, color=colour[phase])
    a.set_xlabel("iteration (all phases)")
    a.set_ylabel("size")
    a.legend(fontsize=7)
    a.set_title(f"saturation ({report.stop_reason}, {report.iterations} iterations)")
    ranked = sorted(((n, m) for n, m in report.matches.items() if m), key=lambda kv: -kv[1])[:top]
    b.barh([n for n, _ in ranked][::-1], [m for _, m in ranked][::-1], color="C0")
    b.set_xlabel("matches")
    b.set_title("rules by matches")
    if per_iter:
        names = [n for n, _ in ranked]
        grid = [[h.get("matches", {}).get(n, 0) for h in hist] for n in names]
        c = axes[2]
        im = c.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
        c.set_yticks(range(len(names)), names, fontsize=7)
        c.set_xlabel("iteration (all phases)")
        c.set_title("matches per rule and iteration")
        fig.colorbar(im, ax=c)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(G: nx.MultiDiGraph, path: str | Path) -> None:
    """Dispatch on the suffix: .png .svg .dot .graphml .json .html."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".png", ".svg"):
        draw(G, p)
    elif suffix == ".dot":
        p.write_text(to_dot(G), encoding="utf-8")
    elif suffix == ".graphml":
        to_graphml(G, p)
    elif suffix == ".json":
        p.write_text(json.dumps(to_json(G), default=str), encoding="utf-8")
    elif suffix == ".html":
        from .html import to_html

        p.write_text(to_html(G), encoding="utf-8")
    else:
        raise ValueError(f"unknown picture format {suffix!r} (png, svg, dot, graphml, json, html)")
