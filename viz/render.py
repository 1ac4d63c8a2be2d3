"""Renderers: DOT, PNG/SVG (matplotlib), GraphML, node-link JSON, the saturation history.

Every renderer takes the graph from :func:`viz.graph.egraph_graph` (or a :func:`viz.graph.view`
of it) and a path; the extracted term's e-nodes and classes are highlighted.
"""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx

from .layout import layout

HIGHLIGHT, PLAIN, SUBSUMED = "#d62728", "#1f77b4", "#bbbbbb"


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(G: nx.MultiDiGraph) -> str:
    """Graphviz DOT: one cluster per e-class, edges from e-nodes to child clusters."""
    lines = ["digraph egraph {", "  compound=true; node [shape=box, fontsize=10];"]
    for c, d in G.nodes(data=True):
        if d["kind"] != "eclass":
            continue
        cid = d["id"].replace("-", "_")
        color = HIGHLIGHT if d["extracted"] else "gray"
        lines.append(f'  subgraph cluster_{cid} {{ label="{d["id"]} {d["rows"]}×{d["cols"]}"; '
                     f'color="{color}";')
        for _, en in G.out_edges(c):
            e = G.nodes[en]
            col = HIGHLIGHT if e["extracted"] else (SUBSUMED if e["subsumed"] else "black")
            tip = e["label"] + (f' [{e["rule"]}]' if e.get("rule") else "")
            lines.append(f'    "{en[1]}" [label="{_esc(e["symbol"])}", color="{col}", '
                         f'tooltip="{_esc(tip)}"];')
        lines.append("  }")
    for u, v, d in G.edges(data=True):
        if d["kind"] == "child":
            lines.append(f'  "{u[1]}" -> "{_anchor(G, v)}" [lhead=cluster_'
                         f'{G.nodes[v]["id"].replace("-", "_")}, label="{d["index"]}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _anchor(G, cls) -> str:
    members = sorted(en for _, en in G.out_edges(cls))
    return members[0][1] if members else cls[1]


def draw(G: nx.MultiDiGraph, path: str | Path, title: str = "") -> None:
    """PNG or SVG (by suffix): classes as boxes around their e-nodes, extracted term in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    boxes, points = layout(G)
    xs = [x + w for x, _, w, _ in boxes.values()] or [1]
    ys = [y for _, y, _, _ in boxes.values()] or [0]
    width = min(40.0, max(6.0, max(xs) * 0.9))
    height = min(40.0, max(4.0, (max(ys) - min(ys) + 2) * 0.9))
    fig, ax = plt.subplots(figsize=(width, height))
    for c, (x, y, w, h) in boxes.items():
        d = G.nodes[c]
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02",
                                    fill=False, lw=2 if d["extracted"] else 0.8,
                                    ec=HIGHLIGHT if d["extracted"] else "gray"))
    for u, v, d in G.edges(data=True):
        if d["kind"] != "child" or u not in points or v not in boxes:
            continue
        (x0, y0), (bx, by, bw, bh) = points[u], boxes[v]
        hl = G.nodes[u]["extracted"] and G.nodes[v]["extracted"]
        ax.annotate("", xy=(bx + bw / 2, by + bh), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="->", lw=1.2 if hl else 0.4,
                                    color=HIGHLIGHT if hl else "#999999"))
    for en, (x, y) in points.items():
        e = G.nodes[en]
        color = HIGHLIGHT if e["extracted"] else (SUBSUMED if e["subsumed"] else PLAIN)
        ax.text(x, y, e["symbol"], ha="center", va="center", fontsize=12, color=color,
                fontweight="bold" if e["extracted"] else "normal")
    ax.set_xlim(-0.5, max(xs) + 0.5)
    ax.set_ylim(min(ys) - 0.5, max(ys) + 1.5)
    ax.axis("off")
    ax.set_title(title or f"e-graph ({'part of ' if G.graph.get('truncated') else ''}"
                 f"{sum(1 for _, d in G.nodes(data=True) if d['kind'] == 'eclass')} e-classes); "
                 f"extracted: {G.graph.get('extracted', '')}", fontsize=10)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def to_graphml(G: nx.MultiDiGraph, path: str | Path) -> None:
    H = nx.MultiDiGraph()
    for n, d in G.nodes(data=True):
        H.add_node(f"{n[0]}:{n[1]}", **{k: v for k, v in d.items() if v is not None})
    for u, v, d in G.edges(data=True):
        H.add_edge(f"{u[0]}:{u[1]}", f"{v[0]}:{v[1]}", **d)
    H.graph.update({k: v for k, v in G.graph.items() if isinstance(v, (str, int, float, bool))})
    nx.write_graphml(H, path)


def to_json(G: nx.MultiDiGraph) -> dict:
    """Node-link data with string node ids (``class:M-3``, ``node:function-2-Mul``)."""
    H = nx.MultiDiGraph()
    for n, d in G.nodes(data=True):
        H.add_node(f"{n[0]}:{n[1]}", **d)
    for u, v, d in G.edges(data=True):
        H.add_edge(f"{u[0]}:{u[1]}", f"{v[0]}:{v[1]}", **d)
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
