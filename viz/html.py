"""A self-contained interactive page: inline SVG and script, nothing fetched at view time.

Pan by dragging, zoom with the wheel, click an e-class to list its e-nodes (each with the rule
that created it); the extracted term's classes and e-nodes are drawn in red. The derivation's
steps, when the result recorded them, are listed beside the drawing.
"""

from __future__ import annotations

import html
import json

from .layout import layout

SCALE = 90.0

SCRIPT = """
(function () {
  const svg = document.getElementById('egraph');
  const vb = svg.viewBox.baseVal;
  let drag = null;
  svg.addEventListener('wheel', function (e) {
    e.preventDefault();
    const k = e.deltaY > 0 ? 1.15 : 1 / 1.15;
    const r = svg.getBoundingClientRect();
    const mx = vb.x + (e.clientX - r.left) / r.width * vb.width;
    const my = vb.y + (e.clientY - r.top) / r.height * vb.height;
    vb.x = mx - (mx - vb.x) * k; vb.y = my - (my - vb.y) * k;
    vb.width *= k; vb.height *= k;
  }, {passive: false});
  svg.addEventListener('mousedown', function (e) { drag = [e.clientX, e.clientY]; });
  window.addEventListener('mouseup', function () { drag = null; });
  window.addEventListener('mousemove', function (e) {
    if (!drag) return;
    const r = svg.getBoundingClientRect();
    vb.x -= (e.clientX - drag[0]) / r.width * vb.width;
    vb.y -= (e.clientY - drag[1]) / r.height * vb.height;
    drag = [e.clientX, e.clientY];
  });
  const data = JSON.parse(document.getElementById('egraph-data').textContent);
  const panel = document.getElementById('info');
  document.querySelectorAll('g.eclass').forEach(function (g) {
    g.addEventListener('click', function (e) {
      e.stopPropagation();
      const c = data.classes[g.dataset.id];
      const rows = c.nodes.map(function (n) {
        return '<li' + (n.extracted ? ' class="hl"' : '') + '>' + n.label +
          (n.children.length ? ' &rarr; ' + n.children.join(', ') : '') +
          (n.rule ? ' <span class="rule">[' + n.rule + ']</span>' : '') + '</li>';
      }).join('');
      panel.innerHTML = '<h3>' + g.dataset.id + ' (' + c.shape + ')</h3><ul>' + rows + '</ul>';
    });
  });
  document.getElementById('count').textContent = Object.keys(data.classes).length;
})();
"""


def to_html(G, title: str = "tracegrad e-graph") -> str:
    boxes, points = layout(G)
    data: dict = {"classes": {}}
    parts: list[str] = []
    for c, (x, y, w, h) in boxes.items():
        d = G.nodes[c]
        nodes = []
        for _, en in sorted(G.out_edges(c), key=str):
            e = G.nodes[en]
            kids = [G.nodes[v]["id"] for _, v, k in G.out_edges(en, data="kind") if k == "child"]
            nodes.append({"label": html.escape(e["label"]), "extracted": e["extracted"],
                          "children": kids, "rule": html.escape(e.get("rule", ""))})
        data["classes"][d["id"]] = {"shape": f"{d['rows']}×{d['cols']}", "nodes": nodes}
        cls = "eclass hl" if d["extracted"] else "eclass"
        X, Y = x * SCALE, -(y + h) * SCALE
        parts.append(f'<g class="{cls}" data-id="{html.escape(d["id"])}"><rect x="{X:.1f}" '
                     f'y="{Y:.1f}" width="{w * SCALE:.1f}" height="{h * SCALE:.1f}" rx="6"/>')
        for _, en in sorted(G.out_edges(c), key=str):
            e = G.nodes[en]
            px, py = points[en]
            parts.append(f'<text class="{"enode hl" if e["extracted"] else "enode"}" '
                         f'x="{px * SCALE:.1f}" y="{-py * SCALE + 4:.1f}">'
                         f'{html.escape(e["symbol"])}</text>')
        parts.append("</g>")
    for u, v, d in G.edges(data=True):
        if d["kind"] != "child" or u not in points or v not in boxes:
            continue
        (x0, y0), (bx, by, bw, bh) = points[u], boxes[v]
        hl = G.nodes[u]["extracted"] and G.nodes[v]["extracted"]
        parts.insert(0, f'<line class="{"edge hl" if hl else "edge"}" x1="{x0 * SCALE:.1f}" '
                        f'y1="{-y0 * SCALE:.1f}" x2="{(bx + bw / 2) * SCALE:.1f}" '
                        f'y2="{-(by + bh) * SCALE:.1f}"/>')
    xs = [x for x, *_ in boxes.values()] + [x + w for x, _, w, _ in boxes.values()]
    ys = [-(y + h) for _, y, _, h in boxes.values()] + [-y for _, y, _, _ in boxes.values()]
    x0, x1 = (min(xs), max(xs)) if xs else (0, 1)
    y0, y1 = (min(ys), max(ys)) if ys else (0, 1)
    vb = f"{(x0 - 0.5) * SCALE:.1f} {(y0 - 0.5) * SCALE:.1f} {(x1 - x0 + 1) * SCALE:.1f} " \
         f"{(y1 - y0 + 1) * SCALE:.1f}"
    payload = json.dumps(data).replace("</", "<\\/")
    lines = G.graph.get("steps") or []
    steps = (f'<details open id="steps"><summary>Derivation ({len(lines)} lines)</summary>'
             f'<pre>{html.escape(chr(10).join(lines))}</pre></details>') if lines else ""
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 0; display: flex; height: 100vh; }}
#view {{ flex: 1; }} svg {{ width: 100%; height: 100%; cursor: grab; }}
#panel {{ width: 320px; overflow: auto; padding: 8px; border-left: 1px solid #ccc; }}
rect {{ fill: #f7f7f7; stroke: #999; }} .hl rect {{ stroke: #d62728; stroke-width: 3; }}
text.enode {{ font-size: 14px; text-anchor: middle; fill: #1f77b4; }}
text.enode.hl, li.hl {{ fill: #d62728; color: #d62728; font-weight: bold; }}
line.edge {{ stroke: #aaa; }} line.edge.hl {{ stroke: #d62728; stroke-width: 2; }}
.rule {{ color: #777; font-size: 12px; }} pre {{ font-size: 11px; white-space: pre-wrap; }}
</style></head>
<body><div id="view"><svg id="egraph" viewBox="{vb}">{''.join(parts)}</svg></div>
<div id="panel"><p><span id="count"></span> e-classes. Extracted:
<code>{html.escape(G.graph.get('extracted', ''))}</code></p>
<p>Click an e-class to list its e-nodes; drag to pan, wheel to zoom.</p>
<div id="info"></div>{steps}</div>
<script type="application/json" id="egraph-data">{payload}</script>
<script>{SCRIPT}</script>
</body></html>
"""
