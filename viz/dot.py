"""The e-graph in Graphviz DOT, as egg and egglog draw e-graphs: one cluster per e-class
(labelled with its id, shape and the term it extracts to), one box per e-node (its operator or
leaf, its id and the rule that created it), edges from an e-node to its child classes. The
extracted term is red; on a failed derivation the construct it stuck on is orange.

:func:`render` lays the DOT out with the system's ``dot`` (PNG, SVG); the HTML page lays out
the same DOT in the browser with Graphviz compiled to WebAssembly (:mod:`viz.html`).

>>> import networkx as nx
>>> G = nx.MultiDiGraph(root="c0", extracted="A")
>>> G.add_node(("class", "c0"), kind="eclass", id="c0", rows="2", cols="3", term="A",
...            extracted=True, stuck=False)
>>> G.add_node(("node", "n0"), kind="enode", id="n0", op="var", label="var(A)", symbol="A",
...            rule="input", extracted=True, stuck=False, subsumed=False, children="")
>>> _ = G.add_edge(("class", "c0"), ("node", "n0"), kind="member")
>>> node = to_dot(G).splitlines()[-3]
>>> 'tooltip="n0: var(A), made by input"' in node, '#2b7a3b">input</FONT>' in node
(True, True)
"""

from __future__ import annotations

import html
import shutil
import subprocess
import textwrap
from pathlib import Path

import networkx as nx

HIGHLIGHT, PLAIN, SUBSUMED, STUCK, RULE = "#d62728", "#1f77b4", "#aaaaaa", "#ff7f0e", "#2b7a3b"
#: a class's term is cut to this many characters on the drawing (the tooltip has it whole)
TERM_CHARS = 34
#: font sizes in points: a class's term; e-node ids, rules and child numbers (the smallest
#: text drawn: at 96 dpi, 12 px in a PNG and in an SVG at its natural size)
TERM_PT, SMALL_PT = 10, 9


def shorten(text: str, n: int = TERM_CHARS) -> str:
    """``text`` cut to ``n`` characters with an ellipsis.

    >>> shorten("tr(X'*A*X)", 6)
    'tr(X…'
    """
    return text if len(text) <= n else text[:n - 2] + "…"


def _q(s: str) -> str:
    """A DOT double-quoted string."""
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _h(s: str) -> str:
    """Text inside an HTML-like label."""
    return html.escape(str(s), quote=True)


def shape_text(d: dict) -> str:
    return f"{d['rows']}×{d['cols']}"


def members(G, cls) -> list:
    """The e-nodes of a class, in id order (the extracted one first)."""
    return sorted((en for _, en in G.out_edges(cls)), key=lambda n: int(n[1][1:]))


def title(G: nx.MultiDiGraph, terms: bool = True) -> str:
    """The caption: what is drawn, the extracted term or the error and where it stuck (unless
    ``terms`` is false: the HTML page shows those apart), the colours."""
    classes = sum(1 for _, d in G.nodes(data=True) if d["kind"] == "eclass")
    total = G.graph.get("total", classes)
    what = "the extracted term's e-classes and their neighbours" \
        if G.graph.get("focus") == "term" else "e-classes nearest the root"
    lines = [f"e-graph: {classes} of {total} e-classes drawn"
             + (f" ({what})" if classes < total else "")]
    if G.graph.get("error") and terms:
        lines += textwrap.wrap(f"derivation failed: {G.graph['error']}", 110)
        lines.append(f"the root's term now: {shorten(G.graph.get('extracted', ''), 100)}")
        for line in (G.graph.get("stuck_text") or "").splitlines():
            lines += textwrap.wrap(line, 110, subsequent_indent="    ")
    if G.graph.get("error"):
        lines.append("red: the root's extracted term; orange: where it stuck (the classes no rule "
                     "got further from, and the construct the error names)")
    else:
        if terms:
            lines.append(f"extracted: {shorten(G.graph.get('extracted', ''), 110)}")
        lines.append("red: the extracted term")
    lines.append("box: e-node (operator or leaf, id, rule that made it); "
                 "frame: e-class (id, shape, term)")
    return "\n".join(lines)


def to_dot(G: nx.MultiDiGraph, caption: bool = True) -> str:
    """Graphviz DOT of a graph from :func:`viz.graph.egraph_graph` (or a view of it): a
    cluster ``cluster_cN`` per class, a box per e-node, ids as DOT ``id`` attributes (so that
    they become the SVG elements' ids); ``caption``: the :func:`title` above the drawing."""
    label = f", labelloc=t, labeljust=l, label={_q(title(G) + chr(10))}" if caption else ""
    out = ["digraph egraph {",
           "  graph [compound=true, newrank=true, rankdir=TB, fontname=\"Helvetica\", "
           f"fontsize=12, nodesep=0.2, ranksep=0.35{label.replace(chr(92) + 'n', chr(92) + 'l')}];",
           "  node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=\"Helvetica\","
           " fontsize=12, margin=\"0.06,0.02\", height=0.3, color=\"#555555\"];",
           "  edge [color=\"#999999\", arrowsize=0.6];"]
    anchor: dict = {}
    for c, d in G.nodes(data=True):
        if d["kind"] != "eclass":
            continue
        en = members(G, c)
        anchor[c] = en[0][1] if en else None
        colour = STUCK if d.get("stuck") else (HIGHLIGHT if d["extracted"] else "#888888")
        fill = "#fff3e6" if d.get("stuck") else ("#fff5f5" if d["extracted"] else "#f6f6f6")
        label = _class_label(d)
        out.append(f"  subgraph cluster_{d['id']} {{")
        out.append(f"    id={_q(d['id'])}; label={label}; "
                   f"tooltip={_q(d['id'] + ' ' + shape_text(d) + ': ' + d.get('term', ''))}; "
                   f"style=\"rounded,filled\"; fillcolor={_q(fill)}; color={_q(colour)}; "
                   f"penwidth={2.5 if d['extracted'] or d.get('stuck') else 1};")
        if not en:  # an empty class still gets a point, so that the cluster is drawn
            out.append(f"    {d['id']}_empty [shape=point, style=invis];")
        for n in en:
            out.append("    " + _enode(G.nodes[n]))
        out.append("  }")
    stubs: set[str] = set()
    for u, v, k in G.edges(data=True):
        if k["kind"] != "child":
            continue
        e, c = G.nodes[u], G.nodes[v]
        hl = e["extracted"] and c["extracted"]
        attrs = [f"id={_q('-'.join((u[1], v[1], str(k['index']))))}"]
        if anchor.get(v) and G.nodes[v]["id"] != e["eclass"]:
            attrs.append(f"lhead=cluster_{c['id']}")
        if hl:
            attrs.append(f'color="{HIGHLIGHT}", penwidth=2')
        target = anchor.get(v) or f"{c['id']}_empty"
        out.append(f"  {u[1]}{_port(e, k['index'])} -> {target} [{', '.join(attrs)}];")
    # children the view leaves out: a grey stub per class, so that the ids stay traceable
    for n, d in G.nodes(data=True):
        if d["kind"] != "enode":
            continue
        for i, ch in enumerate(d["children"].split()):
            if ("class", ch) in G:
                continue
            if ch not in stubs:
                stubs.add(ch)
                out.append(f"  stub_{ch} [id={_q('stub-' + ch)}, shape=plaintext, style=\"\", "
                           f"label={_q(ch + ' …')}, fontcolor=\"#888888\", fontsize=10, "
                           f"tooltip={_q(ch + ': not drawn (--all or a larger --max-classes)')}];")
            out.append(f"  {n[1]}{_port(d, i)} -> stub_{ch} [id={_q('-'.join((n[1], ch, str(i))))}, style=dashed, "
                       f"color=\"#bbbbbb\"];")
    out.append("}")
    return "\n".join(out) + "\n"


def _class_label(d: dict) -> str:
    """An e-class's frame label: its id (bold), shape and "stuck" on a failure's frontier, then
    its term, in table cells (so that the lines keep some space between them)."""
    head = f"<B>{_h(d['id'])}</B>  {_h(shape_text(d))}"
    if d.get("stuck"):
        head += f'  <FONT COLOR="{STUCK}"><B>stuck</B></FONT>'
    return (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1"><TR><TD>{head}'
            f'</TD></TR><TR><TD><FONT POINT-SIZE="{TERM_PT}" COLOR="#333333">'
            f'{_h(shorten(d.get("term", "")))}</FONT></TD></TR></TABLE>>')


def _port(e: dict, index: int) -> str:
    """The tail port of an e-node's edge to its child ``index`` (a numbered cell at the box's
    bottom, when the e-node has more than one child)."""
    return f":p{index}:s" if len(e["children"].split()) > 1 else ""


def _enode(e: dict) -> str:
    rule = e.get("rule") or "?"
    kids = len(e["children"].split())
    ports = ""
    if kids > 1:  # numbered cells the edges to the children leave from, in argument order
        cells = "".join(f'<TD PORT="p{i}"><FONT POINT-SIZE="{SMALL_PT}" COLOR="#777777">{i}'
                        f'</FONT></TD>' for i in range(kids))
        ports = (f'<TR><TD COLSPAN="2"><TABLE BORDER="0" CELLBORDER="0" CELLSPACING="4" '
                 f'CELLPADDING="0"><TR>{cells}</TR></TABLE></TD></TR>')
    label = (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="1" CELLPADDING="1">'
             f'<TR><TD><B>{_h(e["symbol"])}</B></TD><TD><FONT POINT-SIZE="{SMALL_PT}" '
             f'COLOR="#777777">{_h(e["id"])}</FONT></TD></TR>'
             f'<TR><TD COLSPAN="2"><FONT POINT-SIZE="{SMALL_PT}" COLOR="{RULE}">{_h(rule)}</FONT>'
             f'</TD></TR>{ports}</TABLE>>')
    attrs = [f"id={_q(e['id'])}", f"label={label}",
             f"tooltip={_q(e['id'] + ': ' + e['label'] + ', made by ' + rule)}"]
    if e.get("stuck"):
        attrs.append(f'color="{STUCK}", fillcolor="#ffe0bf", penwidth=2.5')
    elif e["extracted"]:
        attrs.append(f'color="{HIGHLIGHT}", fontcolor="{HIGHLIGHT}", penwidth=2')
    elif e["subsumed"]:
        attrs.append(f'color="{SUBSUMED}", fontcolor="#888888", style="rounded,dashed,filled"')
    return f"{e['id']} [{', '.join(attrs)}];"


def dot_binary() -> str | None:
    """The path of Graphviz's ``dot``, or None when it is not installed."""
    return shutil.which("dot")


def render(dot: str, path: str | Path, fmt: str) -> None:
    """Lay ``dot`` out with the system's Graphviz into ``path`` (``fmt``: png or svg)."""
    exe = dot_binary()
    if exe is None:
        raise FileNotFoundError("Graphviz's dot is not installed")
    args = [exe, f"-T{fmt}", "-o", str(path)] + (["-Gdpi=96"] if fmt == "png" else [])
    subprocess.run(args, input=dot, text=True, check=True, capture_output=True, timeout=300)
