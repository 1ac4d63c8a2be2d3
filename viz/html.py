"""A self-contained interactive page: the e-graph laid out in the browser by Graphviz compiled to
WebAssembly (vendored in ``viz/vendor/``, inlined into the page; nothing is fetched at view time).

The page fills the window: drag to pan, wheel to zoom, "fit" and "root" buttons. Clicking an
e-class (or an e-node) shows in the side panel its id, shape, the term it extracts to and its
e-nodes with their rules and child classes (links that jump there), all with the ids printed on
the drawing. The derivation's steps, and a failed derivation's error, are listed too, with its
stuck frontier: the e-classes where it stopped, their terms and the rules closest to matching.
An "Iterations" section steps through the saturation (prev/next, or click a row): per phase and
iteration the e-classes and e-nodes after it and the rules that matched; while it is selected,
the drawn e-nodes that appeared in it are outlined and the drawn classes a merge in it made
are marked (recorded per iteration: :func:`rewrite.egraph.provenance.grow`).
"""

from __future__ import annotations

import html
import json
import re
from functools import cache
from pathlib import Path

from .dot import members, shape_text, title, to_dot

VENDOR = Path(__file__).parent / "vendor"


@cache
def graphviz_module() -> str:
    """The vendored Graphviz module, its closing ``export {…}`` turned into a local
    ``const Graphviz`` so that the page's own script can follow it in one inline module."""
    code = (VENDOR / "graphviz.js").read_text(encoding="utf-8")
    m = re.search(r"export\s*\{([^}]*)\}\s*;?\s*$", code)
    if not m:
        raise RuntimeError("viz/vendor/graphviz.js has no closing export list: re-vendor it "
                           "with viz/vendor/update.sh")
    names = dict(reversed(p.strip().split(" as ")) for p in m.group(1).split(","))
    return code[:m.start()] + f"\nconst Graphviz = {names['Graphviz']};\n"


def vendored_version() -> str:
    """The vendored package and Graphviz version (``viz/vendor/VERSION``)."""
    info = (VENDOR / "VERSION").read_text(encoding="utf-8").splitlines()
    return "; ".join(line for line in info[:2])


SCRIPT = r"""
const data = JSON.parse(document.getElementById('egraph-data').textContent);
const view = document.getElementById('view');
const status = document.getElementById('status');
let svg = null, vb = null;
let readable = 1.1;  // the zoom (px per SVG unit) at which the smallest text is MIN_PX tall
const MIN_PX = 11;
function esc(s) {
  return String(s).replace(/[&<>"]/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
}
function setBox(x, y, w, h) { vb = [x, y, w, h]; svg.setAttribute('viewBox', vb.join(' ')); }
let whole = null;
function fit() { setBox(...whole); }
function box(el) {  // an element's box in the SVG's own coordinates (Graphviz translates g.graph)
  const b = el.getBBox(), m = svg.querySelector('g.graph').transform.baseVal.consolidate();
  const t = m ? m.matrix : {a: 1, d: 1, e: 0, f: 0};
  return {x: b.x * t.a + t.e, y: b.y * t.d + t.f, width: b.width * t.a, height: b.height * t.d};
}
function focusOn(id, scale) {  // the element near the top, in the middle, at this scale
  const g = document.getElementById(id);
  if (!g) return;
  const b = box(g), r = svg.getBoundingClientRect();
  const w = r.width / scale, h = r.height / scale;
  setBox(b.x + b.width / 2 - w / 2, b.y - 30, w, h);
}
function link(id) {
  return data.classes[id] ? '<a href="#" class="go" data-id="' + id + '">' + id + '</a>'
                          : '<span class="off" title="not drawn">' + id + '</span>';
}
function show(id, nodeId) {
  const c = data.classes[id];
  if (!c) return;
  document.querySelectorAll('g.cluster.sel, g.node.sel').forEach(g => g.classList.remove('sel'));
  const g = document.getElementById(id);
  if (g) g.classList.add('sel');
  if (nodeId && document.getElementById(nodeId)) document.getElementById(nodeId).classList.add('sel');
  const rows = c.nodes.map(n =>
    '<tr class="' + (n.extracted ? 'hl' : '') + (n.stuck ? ' stuck' : '') + (n.id === nodeId ? ' cur' : '') +
    (n.subsumed ? ' sub' : '') + '"><td>' + n.id + '</td><td><b>' + esc(n.symbol) + '</b></td><td class="rule">' +
    esc(n.rule || '?') + '</td><td>' + n.children.map(link).join(', ') + '</td></tr>').join('');
  document.getElementById('info').innerHTML =
    '<h3>' + id + ' <span class="shape">' + esc(c.shape) + '</span>' +
    (c.extracted ? ' <span class="tag hl">extracted</span>' : '') +
    (c.stuck ? ' <span class="tag stuck">stuck</span>' : '') + '</h3>' +
    '<p class="term"><code>' + esc(c.term) + '</code></p>' +
    '<table><tr><th>e-node</th><th>op</th><th>rule</th><th>children</th></tr>' + rows + '</table>' +
    (c.parents.length ? '<p>used by: ' + c.parents.map(link).join(', ') + '</p>' : '');
  document.querySelectorAll('#info a.go').forEach(a => a.addEventListener('click', e => {
    e.preventDefault(); show(a.dataset.id); focusOn(a.dataset.id, readable);
  }));
}
function wire() {
  svg.querySelectorAll('g.cluster').forEach(g => g.addEventListener('click', e => {
    e.stopPropagation(); show(g.id);
  }));
  svg.querySelectorAll('g.node').forEach(g => g.addEventListener('click', e => {
    const n = data.nodes[g.id];
    if (n) { e.stopPropagation(); show(n.eclass, g.id); }
  }));
  svg.addEventListener('wheel', e => {
    e.preventDefault();
    const k = e.deltaY > 0 ? 1.15 : 1 / 1.15, r = svg.getBoundingClientRect();
    const s = Math.max(vb[2] / r.width, vb[3] / r.height);
    const mx = vb[0] + (e.clientX - r.left) * s, my = vb[1] + (e.clientY - r.top) * s;
    setBox(mx - (mx - vb[0]) * k, my - (my - vb[1]) * k, vb[2] * k, vb[3] * k);
  }, {passive: false});
  let drag = null;
  svg.addEventListener('mousedown', e => { drag = [e.clientX, e.clientY]; svg.classList.add('drag'); });
  window.addEventListener('mouseup', () => { drag = null; svg.classList.remove('drag'); });
  window.addEventListener('mousemove', e => {
    if (!drag) return;
    const r = svg.getBoundingClientRect(), s = Math.max(vb[2] / r.width, vb[3] / r.height);
    setBox(vb[0] - (e.clientX - drag[0]) * s, vb[1] - (e.clientY - drag[1]) * s, vb[2], vb[3]);
    drag = [e.clientX, e.clientY];
  });
  document.querySelectorAll('#stuck a.go').forEach(a => a.addEventListener('click', e => {
    e.preventDefault(); show(a.dataset.id); focusOn(a.dataset.id, readable);
  }));
  document.getElementById('fit').addEventListener('click', fit);
  document.getElementById('root').addEventListener('click', () => data.root && focusOn(data.root, readable));
}
// the Iterations panel: select an iteration (prev/next, or click its row); its rules are listed,
// the drawn e-nodes that appeared in it outlined and the drawn classes a merge in it made marked
const iters = data.history || [];
let curIter = -1, made = [], merged = [];
function markMade() {
  if (!svg) return;
  svg.querySelectorAll('g.node.made').forEach(g => g.classList.remove('made'));
  svg.querySelectorAll('g.cluster.merged').forEach(g => g.classList.remove('merged'));
  made.forEach(id => { const g = document.getElementById(id); if (g) g.classList.add('made'); });
  merged.forEach(id => { const g = document.getElementById(id); if (g) g.classList.add('merged'); });
}
function plural(n, one, many) { return n + ' ' + (n === 1 ? one : many); }
function pickIter(i) {
  if (!iters.length) return;
  curIter = Math.max(0, Math.min(iters.length - 1, i));
  const h = iters[curIter];
  document.querySelectorAll('#iter-table tr.isel').forEach(r => r.classList.remove('isel'));
  const row = document.querySelector('#iter-table tr.it[data-i="' + curIter + '"]');
  if (row) { row.classList.add('isel'); row.scrollIntoView({block: 'nearest'}); }
  document.getElementById('iter-pos').textContent = (curIter + 1) + ' of ' + iters.length;
  const m = h.matches, rules = m ? Object.entries(m).sort((a, b) => b[1] - a[1]) : [];
  const recorded = h.drawn !== false && h.new_nodes != null;
  made = recorded ? h.new_nodes.filter(id => data.nodes[id]) : [];
  merged = recorded ? (h.merged_classes || []).filter(id => data.classes[id]) : [];
  let text = '<b>' + esc(h.phase) + ', iteration ' + h.iteration + '</b>: ' +
    (h.eclasses ?? '?') + ' e-classes, ' + (h.enodes ?? '?') + ' e-nodes after it.';
  text += m === null || m === undefined ? '<p class="off">the rules\' matches were not recorded.</p>'
    : rules.length ? '<ul id="iter-rules">' + rules.map(([r, n]) =>
        '<li><code class="rule">' + esc(r) + '</code> × ' + n + '</li>').join('') + '</ul>'
    : '<p id="iter-rules" class="off">no rule matched: nothing changed in it.</p>';
  if (h.drawn === false)
    text += '<p class="caption">This iteration ran on a later e-graph (restarted from the ' +
      'extracted term), which is not drawn: no e-node to outline.</p>';
  else if (!recorded)
    text += '<p class="caption off" id="iter-made">The e-nodes that appeared and the classes ' +
      'that merged in it were not recorded (the e-graph was too large).</p>';
  else {
    const mk = (id, cid) => '<a href="#" class="mk" data-id="' + cid + '" data-node="' + id + '">' + id + '</a>';
    text += '<p class="caption" id="iter-made">' + plural(h.appeared, 'e-node', 'e-nodes') +
      ' appeared, ' + plural(h.merged, 'class', 'classes') + ' merged (' +
      (made.length + merged.length) + ' drawn)' + (h.appeared + h.merged > 0 &&
        !h.new_nodes.length && !(h.merged_classes || []).length ? ': none is in the e-graph ' +
        'drawn (restarted after this phase, or its e-nodes became congruent to older ones)' : '') +
      (made.length ? '. <span class="made-key"></span> Outlined: ' +
        made.map(id => mk(id, data.nodes[id].eclass)).join(', ') : '') +
      (merged.length ? '. <span class="merged-key"></span> Merged into: ' +
        merged.map(id => mk(id, id)).join(', ') : '') + '.</p>';
  }
  const sel = document.getElementById('iter-sel');
  sel.innerHTML = text;
  sel.querySelectorAll('a.mk').forEach(a => a.addEventListener('click', e => {
    e.preventDefault(); show(a.dataset.id, a.dataset.node); if (svg) focusOn(a.dataset.node, readable);
  }));
  markMade();
}
if (iters.length) {
  document.getElementById('iter-next').addEventListener('click', () => pickIter(curIter + 1));
  document.getElementById('iter-prev').addEventListener('click',
    () => pickIter(curIter < 0 ? iters.length - 1 : curIter - 1));
  document.querySelectorAll('#iter-table tr.it').forEach(r =>
    r.addEventListener('click', () => pickIter(Number(r.dataset.i))));
}
try {
  const gv = await Graphviz.load();
  const dot = document.getElementById('egraph-dot').textContent.replace(/<\\\//g, '</');
  view.innerHTML = gv.dot(dot);
  svg = view.querySelector('svg');
  svg.removeAttribute('width'); svg.removeAttribute('height');
  const [x, y, w, h] = svg.getAttribute('viewBox').split(/\s+/).map(Number);
  whole = [x, y, w, h];
  setBox(x, y, w, h);
  wire();
  // open at a zoom where every label is legible: the whole drawing when it fits so, else the
  // stuck class (or the root) at that zoom
  const sizes = [...svg.querySelectorAll('text')].map(t => parseFloat(t.getAttribute('font-size')))
    .filter(x => x > 0);
  readable = MIN_PX / Math.min(...sizes, 14);
  const r = svg.getBoundingClientRect();
  const start = data.stuck || data.root;
  if (start && Math.min(r.width / w, r.height / h) < readable) focusOn(start, readable);
  const nodes = svg.querySelectorAll('g.node[id^="n"]').length;
  const clusters = svg.querySelectorAll('g.cluster').length;
  status.textContent = 'laid out by Graphviz ' + gv.version() + ' (WebAssembly): ' + clusters +
    ' e-classes, ' + nodes + ' e-nodes. Drag to pan, wheel to zoom, click an e-class.';
  document.body.dataset.rendered = nodes;
  document.body.dataset.clusters = clusters;
  show(data.stuck || data.root || Object.keys(data.classes)[0]);
  markMade();
} catch (err) {
  status.textContent = 'the layout failed: ' + err;
  status.className = 'error';
  document.body.dataset.error = String(err);
}
"""

STYLE = """
html, body { margin: 0; height: 100%; font-family: sans-serif; }
body { display: flex; }
#main { flex: 1; display: flex; flex-direction: column; min-width: 0; }
#bar { padding: 4px 8px; border-bottom: 1px solid #ccc; font-size: 13px; }
#bar button { font-size: 12px; }
#view { flex: 1; overflow: hidden; min-height: 0; }
#view svg { width: 100%; height: 100%; cursor: grab; display: block; }
#view svg.drag { cursor: grabbing; }
#panel { width: 400px; overflow: auto; padding: 8px 12px; border-left: 1px solid #ccc; font-size: 13px; }
g.cluster, g.node { cursor: pointer; }
g.cluster.sel > path, g.cluster.sel > polygon { stroke: #1f77b4; stroke-width: 5; }
g.node.sel > path, g.node.sel > polygon { stroke: #1f77b4; stroke-width: 4; }
table { border-collapse: collapse; width: 100%; }
td, th { border-bottom: 1px solid #eee; padding: 2px 4px; text-align: left; vertical-align: top; }
tr.hl td { color: #d62728; } tr.stuck td { background: #ffe0bf; } tr.cur td { background: #e8f0fb; }
tr.sub td { color: #999; }
.rule { color: #2b7a3b; } .shape { color: #555; font-weight: normal; }
.tag { font-size: 11px; padding: 1px 4px; border-radius: 3px; }
.tag.hl { background: #fde2e2; color: #d62728; } .tag.stuck { background: #ffe0bf; color: #b35900; }
.term code { white-space: pre-wrap; word-break: break-all; }
.off { color: #999; }
.error, #error { color: #b00020; }
#error { background: #fde2e2; padding: 6px; border-radius: 4px; }
#stuck { background: #fff3e6; padding: 6px; border-radius: 4px; margin-top: 6px; }
#stuck ul { margin: 4px 0; padding-left: 18px; } .pending { margin: 2px 0 6px; }
.pending code { word-break: break-all; } .near { color: #555; }
pre { font-size: 11px; white-space: pre-wrap; }
#iterations { margin-top: 8px; } .iter-bar { margin: 4px 0; }
#iter-list { max-height: 260px; overflow: auto; border: 1px solid #eee; }
#iter-table tr.run th { background: #f4f4f4; } #iter-table tr.it { cursor: pointer; }
#iter-table tr.it:hover td { background: #f3f7fc; }
#iter-table tr.isel td { background: #dbe9f8; font-weight: bold; }
.up { color: #2b7a3b; } .down { color: #b00020; } .same { color: #999; }
#iter-sel { background: #f6f1fb; padding: 6px; border-radius: 4px; margin-top: 6px; }
#iter-sel:empty { display: none; } #iter-rules { margin: 4px 0; padding-left: 18px; }
.made-key { display: inline-block; width: 10px; height: 10px; border: 3px solid #9467bd; }
.merged-key { display: inline-block; width: 10px; height: 10px; border: 3px dashed #9467bd; }
g.cluster.merged > path, g.cluster.merged > polygon, g.cluster.merged > g > a > path:first-of-type,
g.cluster.merged > g > a > polygon:first-of-type { stroke: #9467bd; stroke-width: 5;
  stroke-dasharray: 10 5; }
g.node.sel > g > a > path:first-of-type, g.node.sel > g > a > polygon:first-of-type {
  stroke: #1f77b4; stroke-width: 4; }
g.node.made > path, g.node.made > polygon, g.node.made > g > a > path:first-of-type,
g.node.made > g > a > polygon:first-of-type { stroke: #9467bd; stroke-width: 5; fill: #f3ebfa; }
"""


def page_data(G) -> dict:
    """What the panel shows, by the drawing's ids: classes (shape, term, e-nodes with their
    rules and child classes, the classes using them) and e-nodes (their class)."""
    classes, nodes = {}, {}
    for c, d in G.nodes(data=True):
        if d["kind"] != "eclass":
            continue
        rows = []
        for en in members(G, c):
            e = G.nodes[en]
            rows.append({"id": e["id"], "label": e["label"], "symbol": e["symbol"],
                         "rule": e.get("rule", ""), "children": e["children"].split(),
                         "extracted": e["extracted"], "stuck": bool(e.get("stuck")),
                         "subsumed": e["subsumed"]})
            nodes[e["id"]] = {"eclass": d["id"]}
        parents = sorted({G.nodes[u]["eclass"] for u, _ in G.in_edges(c)
                          if G.nodes[u]["kind"] == "enode"}, key=lambda s: int(s[1:]))
        classes[d["id"]] = {"shape": shape_text(d), "term": d.get("term", ""),
                            "extracted": d["extracted"], "stuck": bool(d.get("stuck")),
                            "nodes": rows, "parents": parents}
    return {"classes": classes, "nodes": nodes, "root": G.graph.get("root"),
            "stuck": G.graph.get("stuck"), "extracted": G.graph.get("extracted", ""),
            "error": G.graph.get("error"), "steps": G.graph.get("steps") or [],
            "frontier": G.graph.get("frontier") or [], "history": G.graph.get("history") or [],
            "phases": G.graph.get("phases") or []}


def _stuck_item(n: dict) -> str:
    """One pending term of a stuck class, with the rules closest to matching it."""
    rules = n["near"] + n["generic"]
    what = ("closest rules: " if n["near"] else
            "no rule has its head and first argument on the left; rules with its head that "
            "did not apply: " if rules else "no rule has its head and first argument on the left")
    return (f'<div class="pending"><code>{html.escape(n["term"])}</code><br>'
            f'<span class="near">{html.escape(what)}</span>'
            + "".join(f'<br><code class="rule">{html.escape(r)}</code>' for r in rules)
            + "</div>")


def _runs(history: list[dict], phases: list[dict]) -> list[tuple[str, list[int]]]:
    """The iterations (indices into ``history``) grouped by phase run, each with its heading:
    the phase, why it stopped and its iterations (a new run starts where the phase changes or
    its iteration count starts again)."""
    runs: list[list[int]] = []
    for i, h in enumerate(history):
        prev = history[i - 1] if i else None
        if prev is None or prev["phase"] != h["phase"] or h["iteration"] <= prev["iteration"]:
            runs.append([])
        runs[-1].append(i)
    phases = [p for p in phases if p["iterations"]]  # a phase run with none left no history
    out = []
    for k, run in enumerate(runs):
        name = history[run[0]]["phase"]
        rec = phases[k] if k < len(phases) and phases[k]["phase"] == name else None
        head = name + (f" — {rec['stop_reason']}, {rec['iterations']} iterations" if rec
                       else f" — {len(run)} iterations recorded")
        if history[run[0]].get("drawn") is False:
            head += " (on a later e-graph, not drawn)"
        out.append((head, run))
    return out


def _delta(history: list[dict], i: int, key: str) -> str:
    """An iteration's count with its change from the one before it on the same e-graph."""
    now = history[i].get(key)
    if now is None:
        return "?"
    prev = history[i - 1] if i else None
    if (prev is None or prev.get(key) is None or prev.get("drawn") != history[i].get("drawn")
            or prev.get("seconds", 0) > history[i].get("seconds", 0)):  # a new e-graph began
        return str(now)
    d = now - prev[key]
    return f'{now} <span class="{"up" if d > 0 else "down" if d < 0 else "same"}">' \
           f'({"+" if d > 0 else "±" if d == 0 else ""}{d})</span>'


def _iterations(history: list[dict], phases: list[dict]) -> str:
    """The Iterations panel: per phase run, per iteration the e-classes and e-nodes after it
    (and their change) and the rules that matched in it; the script selects a row."""
    if not history:
        return ""
    rows = []
    for head, run in _runs(history, phases):
        rows.append(f'<tr class="run"><th colspan="4">{html.escape(head)}</th></tr>')
        for i in run:
            h = history[i]
            m = h.get("matches")
            rules = ("?" if m is None else ", ".join(
                f"{html.escape(r)}&nbsp;×{n}" for r, n in sorted(m.items(), key=lambda kv: -kv[1]))
                or '<span class="off">none</span>')
            rows.append(f'<tr class="it" data-i="{i}"><td>{h["iteration"]}</td>'
                        f'<td>{_delta(history, i, "eclasses")}</td>'
                        f'<td>{_delta(history, i, "enodes")}</td><td class="rule">{rules}</td></tr>')
    return (f'<details open id="iterations"><summary>Iterations ({len(history)})</summary>'
            f'<div class="iter-bar"><button id="iter-prev">◀ prev</button> '
            f'<button id="iter-next">next ▶</button> <span id="iter-pos">none selected</span></div>'
            f'<div id="iter-list"><table id="iter-table"><tr><th>#</th><th>e-classes</th>'
            f'<th>e-nodes</th><th>rules matched</th></tr>{"".join(rows)}</table></div>'
            f'<div id="iter-sel"></div></details>')


def _inline(text: str) -> str:
    """Text safe inside a <script> element."""
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def to_html(G, page_title: str = "tracegrad e-graph") -> str:
    data = page_data(G)
    lines = data["steps"]
    steps = (f'<details open id="steps"><summary>Derivation ({len(lines)} lines)</summary>'
             f'<pre>{html.escape(chr(10).join(lines))}</pre></details>') if lines else ""
    error = (f'<p id="error"><b>The derivation failed</b> — the drawing shows the e-graph where '
             f'it stopped (the stuck construct in orange):<br>{html.escape(data["error"])}</p>'
             if data["error"] else "")
    stuck = ""
    if data["frontier"]:
        items = "".join(
            f'<li><a href="#" class="go" data-id="{f["class"]}">{f["class"]}</a> '
            f'<span class="shape">{html.escape(f["shape"])}</span>: '
            + "".join(_stuck_item(n) for n in f["nodes"]) + "</li>" for f in data["frontier"])
        stuck = (f'<div id="stuck"><b>Stuck</b> — the e-classes no rule got any further from, '
                 f'the terms in them and the rules closest to matching:<ul>{items}</ul></div>')
    head = (f'<p><span id="count">{len(data["classes"])}</span> e-classes drawn. '
            + ("Root's term now" if data["error"] else "Extracted")
            + f': <code>{html.escape(data["extracted"])}</code></p>')
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(page_title)}</title>
<style>{STYLE}</style></head>
<body><div id="main"><div id="bar"><button id="fit">fit</button> <button id="root">root</button>
<span id="status">laying out…</span></div><div id="view"></div></div>
<div id="panel">{error}{stuck}{head}
<p class="caption">{html.escape(title(G, terms=False)).replace(chr(10), '<br>')}</p>
<div id="info"></div>{_iterations(data["history"], data["phases"])}{steps}
<p class="off">Layout: {html.escape(vendored_version())}, vendored in viz/vendor/.</p></div>
<script type="application/json" id="egraph-data">{_inline(json.dumps(data))}</script>
<script type="text/plain" id="egraph-dot">{_inline(to_dot(G, caption=False))}</script>
<script type="module">{_inline(graphviz_module())}
{SCRIPT}</script>
</body></html>
"""
