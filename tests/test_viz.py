"""viz: the e-graph as networkx agrees with the Report; the pictures (laid out by Graphviz), the
DOT, JSON and GraphML carry the ids, shapes, terms and rules, the extracted term is what is
highlighted, a failed derivation is still drawn, and the HTML page lays itself out in a browser."""

import doctest
import html
import itertools
import json
import os
import re
import shlex
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import networkx as nx
import numpy as np
import pytest
from conftest import check_answer, check_gradient_text, check_numerically

import rewrite as rw
import viz
from rewrite.cli import main
from rewrite.terms import Term, make

pytest.importorskip("matplotlib", reason="viz draws with matplotlib: pip install -e '.[viz]'")

CASES = [("tr(X'*A*X)", "X", {"X": (3, 2), "A": (3, 3)}),
         ("sum(log(1 + exp(-y .* (X*w))))", "w", {"X": (5, 3), "w": (3,), "y": (5,)}),
         ("logdet(X)", "X", {"X": (3, 3)})]
SPD = {"logdet(X)": {"X"}}  # variables drawn positive definite for the numeric checks
HIGHLIGHT, STUCK = "#d62728", "#ff7f0e"  # the extracted term's colour, the stuck construct's
FAIL = ("sum(kront(A, X))", "X", {"A": (2, 2), "X": (2, 2)})  # no rule differentiates kront
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (apt-get install graphviz)")


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def result(request):
    expr, wrt, shapes = request.param
    return rw.gradient(expr, wrt, shapes, keep_egraph=True, steps=True)


def test_graph_agrees_with_the_report(result):
    G = viz.egraph_graph(result)
    assert viz.counts(G) == (result.report.eclasses, result.report.enodes)
    for n, d in G.nodes(data=True):
        if d["kind"] == "enode":
            classes = [v for _, v, k in G.out_edges(n, data="kind") if k == "child"]
            assert all(G.nodes[c]["kind"] == "eclass" for c in classes)
            (owner,) = [u for u, _, k in G.in_edges(n, data="kind") if k == "member"]
            assert G.nodes[owner]["id"] == d["eclass"]


def _dim(s: str):
    return int(s) if s.isdigit() else s


def marked_term(G, cls: str, seen: set) -> Term:
    """The term spelled by the e-nodes marked extracted, from class ``cls`` down (each marked
    class has exactly one marked e-node); ``seen`` collects the classes visited."""
    seen.add(cls)
    (node,) = [en for _, en in G.out_edges(("class", cls)) if G.nodes[en]["extracted"]]
    d, c = G.nodes[node], G.nodes[("class", cls)]
    kids = sorted((e["index"], v) for _, v, e in G.out_edges(node, data=True) if e["kind"] == "child")
    args = tuple(marked_term(G, G.nodes[v]["id"], seen) for _, v in kids)
    shape = (_dim(c["rows"]), _dim(c["cols"]))
    inside = re.fullmatch(r"\w+\((.*)\)", d["label"])
    if d["op"] == "var":
        return Term("var", (), inside.group(1), shape)
    if d["op"] == "num":
        attr = Fraction(inside.group(1))
    elif d["op"] in ("eye", "ones", "fill"):
        attr = tuple(_dim(x.strip()) for x in inside.group(1).split(","))
    else:
        attr = inside.group(1) if inside else None
    t = make(d["op"], *args, attr=attr)
    assert t.shape == shape, f"{d['label']} in class {cls} of shape {shape} makes {t.shape}"
    return t


def test_extracted_term_is_present_and_connected(result):
    G = viz.egraph_graph(result)
    chosen = [n for n, d in G.nodes(data=True) if d["kind"] == "enode" and d["extracted"]]
    assert chosen and G.graph["root"]
    # every child class of a chosen e-node has a chosen e-node: the whole term is in the graph
    for n in chosen:
        for _, c, k in G.out_edges(n, data="kind"):
            if k == "child":
                assert G.nodes[c]["extracted"]
    assert str(rw.parse(G.graph["extracted"]))  # the extracted term is valid input
    # the marked e-nodes, read from the root class down, spell the extracted term, and the
    # classes marked are exactly those it passes through
    seen: set = set()
    term = marked_term(G, G.graph["root"], seen)
    assert str(rw.Expr(term)) == G.graph["extracted"]
    marked = {d["id"] for _, d in G.nodes(data=True) if d["kind"] == "eclass" and d["extracted"]}
    assert marked == seen
    assert len(chosen) == len(seen)
    # ... and it is the gradient: by value, against finite differences of the objective
    probe = SimpleNamespace(f=result.f, term=term, registry=result.registry, wrt=result.wrt)
    expr = str(rw.Expr(result.f))
    for seed in (0, 1):
        check_numerically(probe, np.random.default_rng(seed), spd=SPD.get(expr, ()))
    check_answer(result, spd=SPD.get(expr, ()))


def test_labels_name_the_operators_and_leaves(result):
    """The e-nodes' labels: the operators of the derivation (d, grad, the objective's own) and
    its leaves, the variables by name; what a drawing shows is the symbol or the leaf itself."""
    G = viz.egraph_graph(result)
    labels = Counter(d["label"] for _, d in G.nodes(data=True) if d["kind"] == "enode")
    names = sorted(result.objective.variables)
    assert {f"var({v})" for v in names} <= set(labels)
    assert labels["grad"] == 1 and labels["d"] >= 1
    f = result.f
    top = f.op if f.op != "fn" else f"fn({f.attr})"
    assert top in labels  # the objective's outermost operator (tr, sum, logdet)
    for n, d in G.nodes(data=True):
        if d["kind"] == "enode":
            kids = [k for _, _, k in G.out_edges(n, data="kind") if k == "child"]
            assert (d["label"].startswith(("var(", "num(", "eye(", "ones(", "fill("))) == (not kids)
            assert d["symbol"] == viz.graph.symbol(d["op"], d["label"])
            if d["op"] == "var":
                assert d["symbol"] in names or d["symbol"] == result.wrt
            assert d["children"].split() == [G.nodes[c]["id"] for c in _children(G, n)]


def _children(G, node):
    return [v for _, v, e in sorted(G.out_edges(node, data=True), key=lambda x: x[2].get("index", 0))
            if e["kind"] == "child"]


def test_short_ids_and_class_terms(result):
    """Classes are c0 (the root), c1, … breadth first; e-nodes n0, n1, … by class; a class's
    term is what it extracts to (the extracted term's own subterms on the extracted path)."""
    G = viz.egraph_graph(result)
    classes = [d for _, d in G.nodes(data=True) if d["kind"] == "eclass"]
    nodes = [d for _, d in G.nodes(data=True) if d["kind"] == "enode"]
    assert sorted(int(d["id"][1:]) for d in classes) == list(range(len(classes)))
    assert sorted(int(d["id"][1:]) for d in nodes) == list(range(len(nodes)))
    assert all(d["id"].startswith("c") for d in classes) and all(d["id"].startswith("n") for d in nodes)
    assert G.graph["root"] == "c0" and G.nodes[("class", "c0")]["term"] == G.graph["extracted"]
    # the shape of every class is known, and every extracted class's term parses back to a term
    # of that shape
    shapes = {v: (str(r), str(c)) for v, (r, c) in result.objective.shapes.items()} \
        if hasattr(result.objective, "shapes") else {}
    for d in classes:
        assert d["rows"] != "?" and d["cols"] != "?", d
        if d["extracted"]:
            assert "…" not in d["term"] and "dX" not in d["term"]
    for d in nodes:
        if d["op"] == "var":
            c = G.nodes[("class", d["eclass"])]
            assert c["term"] == d["symbol"]
            if d["symbol"] in shapes:
                assert (c["rows"], c["cols"]) == shapes[d["symbol"]]


def test_view_focuses_on_the_extracted_term(result):
    """By default the extracted term's classes and their neighbours (children of their
    e-nodes, classes pointing into them), capped; --all: every class, nearest the root first."""
    G = viz.egraph_graph(result)
    term = {c for c, d in G.nodes(data=True) if d["kind"] == "eclass" and d["extracted"]}
    near = set()
    for c in term:
        for en in G.successors(c):
            near.update(G.successors(en))
        for en in G.predecessors(c):
            near.update(G.predecessors(en))
    part = viz.view(G, 0)
    drawn = {c for c, d in part.nodes(data=True) if d["kind"] == "eclass"}
    assert drawn == term | near and part.graph["focus"] == "term"
    assert part.graph["total"] == viz.counts(G)[0]
    assert viz.counts(viz.view(G, 0, whole=True)) == viz.counts(G)
    capped = viz.view(G, 10)
    kept = {c for c, d in capped.nodes(data=True) if d["kind"] == "eclass"}
    assert len(kept) == min(10, len(drawn)) and ("class", "c0") in kept
    assert kept <= term or term <= kept  # the extracted term's classes come first
    for c, d in capped.nodes(data=True):
        if d["kind"] == "eclass":
            assert capped.out_degree(c) == G.out_degree(c) == d["size"]  # all its e-nodes
    assert viz.counts(viz.view(G, 7, whole=True))[0] == 7


def _enodes(G, extracted=None):
    return [d for _, d in G.nodes(data=True) if d["kind"] == "enode"
            and (extracted is None or d["extracted"] == extracted)]


def _eclasses(G, extracted=None):
    return [d for _, d in G.nodes(data=True) if d["kind"] == "eclass"
            and (extracted is None or d["extracted"] == extracted)]


def _marked_edges(G) -> set[str]:
    """The child edges of the extracted term, by the ids the DOT and SVG give them."""
    return {f"{u[1]}-{v[1]}-{e['index']}" for u, v, e in G.edges(data=True)
            if e["kind"] == "child" and G.nodes[u]["extracted"] and G.nodes[v]["extracted"]}


SVG = "{http://www.w3.org/2000/svg}"


def svg_groups(svg_text: str) -> dict[str, dict]:
    """Graphviz SVG: element id → its class (cluster, node, edge), outline colour and texts."""
    out = {}
    for g in ET.fromstring(svg_text).iter(f"{SVG}g"):
        kind = (g.get("class") or "").split(" ")[0]  # the page adds "sel" to the clicked one
        if kind not in ("cluster", "node", "edge"):
            continue
        shape = next((x for x in g if x.tag in (f"{SVG}path", f"{SVG}polygon")), None)
        # a node or cluster's outline is its first path/polygon, inside an <a> when tooltipped
        if shape is None:
            shape = next((x for x in g.iter() if x.tag in (f"{SVG}path", f"{SVG}polygon")), None)
        texts = [(t.text or "").replace("\xa0", " ").strip() for t in g.iter(f"{SVG}text")]
        out[g.get("id")] = {"kind": kind, "stroke": shape.get("stroke") if shape is not None else None,
                            "texts": [t for t in texts if t]}
    return out


def check_svg(G, svg_text: str) -> None:
    """Every class drawn with its id, shape and (shortened) term, every e-node with its symbol,
    id and rule; the highlighted outlines are exactly the extracted term's classes, e-nodes and
    edges."""
    groups = svg_groups(svg_text)
    for d in _eclasses(G):
        texts = groups[d["id"]]["texts"]
        assert groups[d["id"]]["kind"] == "cluster"
        assert d["id"] in texts and viz.dot.shape_text(d) in texts, (d["id"], texts)
        assert viz.dot.shorten(d["term"]) in texts, (d["term"], texts)
    for d in _enodes(G):
        texts = groups[d["id"]]["texts"]
        assert [d["symbol"], d["id"], d["rule"]] == texts[:3], (d, texts)
    red = {i for i, g in groups.items() if g["stroke"] == HIGHLIGHT}
    want = {d["id"] for d in _eclasses(G, True) if not d["stuck"]} | \
        {d["id"] for d in _enodes(G, True) if not d["stuck"]} | _marked_edges(G)
    assert red == want


@needs_dot
def test_files(result, tmp_path):
    G = viz.view(viz.egraph_graph(result), 40)
    classes, enodes = viz.counts(G)
    marked_classes, marked_nodes = len(_eclasses(G, True)), len(_enodes(G, True))
    assert 0 < marked_classes < classes and 0 < marked_nodes < enodes
    for ext in ("png", "svg", "dot", "graphml", "json", "html"):
        viz.write(G, tmp_path / f"g.{ext}")
    # PNG: drawn by dot, the extracted term in the highlight colour
    w, h = struct.unpack(">II", (tmp_path / "g.png").read_bytes()[16:24])
    assert w > 300 and h > 200
    import matplotlib.image

    rgb = np.round(matplotlib.image.imread(tmp_path / "g.png")[..., :3] * 255).astype(int)
    want = [int(HIGHLIGHT[i:i + 2], 16) for i in (1, 3, 5)]
    assert (np.abs(rgb - want).sum(axis=-1) <= 6).sum() > 200, "no highlight in the PNG"
    # SVG: the labels (ids, shapes, terms, rules) and the highlight, element by element; the
    # caption names what is drawn and the extracted term
    svg = (tmp_path / "g.svg").read_text()
    check_svg(G, svg)
    assert "Generated by graphviz" in svg
    assert f"extracted: {G.graph['extracted']}"[:60] in html.unescape(svg)
    # DOT: a cluster per class with its id, shape and term (whole in the tooltip), a box per
    # e-node with its id and rule, an edge per child (to the child's cluster)
    dot = (tmp_path / "g.dot").read_text()
    assert dot.startswith("digraph") and dot.count("subgraph cluster_") == classes
    for d in _eclasses(G):
        assert f"subgraph cluster_{d['id']} {{" in dot
        assert f'tooltip="{d["id"]} {d["rows"]}×{d["cols"]}: ' \
               f'{d["term"].replace(chr(34), chr(92) + chr(34))}"' in dot
    for d in _enodes(G):
        line = next(x for x in dot.splitlines() if x.strip().startswith(f'{d["id"]} [id="{d["id"]}"'))
        assert f'{html.escape(d["rule"])}</FONT>' in line and f'made by {d["rule"]}' in line
        assert (f'color="{HIGHLIGHT}"' in line) == d["extracted"]
    assert sum(1 for line in dot.splitlines() if " -> " in line and "stub_" not in line) == sum(
        1 for *_, k in G.edges(data="kind") if k == "child")
    # GraphML: every node with its attributes under its short id, every edge
    H = nx.read_graphml(tmp_path / "g.graphml")
    assert H.number_of_nodes() == G.number_of_nodes()
    assert H.number_of_edges() == G.number_of_edges()
    assert H.graph["extracted"] == G.graph["extracted"] and H.graph["root"] == G.graph["root"]
    for n, d in G.nodes(data=True):
        got = H.nodes[n[1]]
        keys = ("kind", "id", "extracted") + (("op", "label", "eclass", "rule", "children")
                                              if d["kind"] == "enode" else ("rows", "cols", "size", "term"))
        assert {k: got[k] for k in keys} == {k: d[k] for k in keys}, n
    # JSON: node-link data under the drawing's ids; the highlighted nodes are the extracted term
    data = json.loads((tmp_path / "g.json").read_text())
    assert {"directed", "multigraph", "graph", "nodes", "links"} <= set(data)
    assert len(data["nodes"]) == G.number_of_nodes() and len(data["links"]) == G.number_of_edges()
    assert data["graph"]["extracted"] == G.graph["extracted"] and data["graph"]["root"] == "c0"
    by_id = {x["id"]: x for x in data["nodes"]}
    assert {i for i, x in by_id.items() if x["extracted"]} == \
        {d["id"] for d in _eclasses(G, True) + _enodes(G, True)}
    for d in _eclasses(G):
        assert by_id[d["id"]]["term"] == d["term"] and by_id[d["id"]]["rows"] == d["rows"]
    assert Counter(x["rule"] for x in data["nodes"] if x["kind"] == "enode") == Counter(
        d["rule"] for d in _enodes(G))
    # HTML: one file (the vendored Graphviz inlined, nothing fetched), the DOT and the data
    # behind the panel under the same ids
    page = (tmp_path / "g.html").read_text()
    assert "<script src" not in page and "http://" not in page.replace("http://www.w3.org", "")
    assert "const Graphviz = " in page and 'type="module"' in page
    dot_in_page = re.search(r'id="egraph-dot">(.*?)</script>', page, re.S).group(1)
    assert dot_in_page.replace("<\\/", "</") == viz.to_dot(G, caption=False)
    payload = json.loads(re.search(r'id="egraph-data">(.*?)</script>', page, re.S).group(1)
                         .replace("<\\/", "</"))
    assert set(payload["classes"]) == {d["id"] for d in _eclasses(G)}
    assert payload["root"] == "c0" and payload["steps"] == G.graph["steps"]
    for d in _eclasses(G):
        shown = payload["classes"][d["id"]]
        assert shown["shape"] == f"{d['rows']}×{d['cols']}" and shown["term"] == d["term"]
        assert [n["id"] for n in shown["nodes"]] == [e[1] for e in viz.dot.members(G, ("class", d["id"]))]
        for n in shown["nodes"]:
            e = G.nodes[("node", n["id"])]
            assert (n["rule"], n["extracted"], n["children"]) == (e["rule"], e["extracted"],
                                                                 e["children"].split())


def test_dot_falls_back_to_matplotlib(tmp_path, capsys, monkeypatch):
    """Without Graphviz's dot, PNG/SVG are drawn by matplotlib, with a note on stderr."""
    monkeypatch.setattr(viz.render, "dot_binary", lambda: None)
    g = rw.gradient("tr(A*X)", "X", {"A": (2, 3), "X": (3, 2)}, keep_egraph=True)
    G = viz.view(viz.egraph_graph(g), 12)
    assert viz.draw(G, tmp_path / "g.png") == "matplotlib"
    assert "dot was not found" in capsys.readouterr().err
    w, h = struct.unpack(">II", (tmp_path / "g.png").read_bytes()[16:24])
    assert w > 300 and h > 200
    viz.draw(G, tmp_path / "g.svg")
    texts = [html.unescape(t) for t in re.findall(r"<!-- (.*?) -->", (tmp_path / "g.svg").read_text())]
    lines = "\n".join(texts).splitlines()
    for d in _eclasses(G):  # each class box: id, shape, term, then its e-nodes with their rules
        assert f"{d['id']} {d['rows']}×{d['cols']}: {viz.dot.shorten(d['term'], 24)}" in lines
        for en in viz.dot.members(G, ("class", d["id"])):
            e = G.nodes[en]
            assert f"{e['id']} {e['symbol']}  [{e['rule']}]" in lines


def test_enodes_carry_the_rule_that_made_them(result):
    G = viz.egraph_graph(result)
    rules = [d["rule"] for _, d in G.nodes(data=True) if d["kind"] == "enode"]
    assert all(rules) and "input" in rules
    made = {r for r in rules if r != "input"}
    assert made and all(r.removesuffix("<-") in result.report.matches for r in made)
    assert G.graph["steps"][0].split()[:3] == ["1", "f", "="]


def _svg_texts(path) -> list[str]:
    return [html.unescape(t) for t in re.findall(r"<!-- (.*?) -->", path.read_text())]


def test_history_plot(result, tmp_path):
    viz.history(result.report, tmp_path / "h.png")
    w, h = struct.unpack(">II", (tmp_path / "h.png").read_bytes()[16:24])
    assert (w, h) == (1800, 450)  # sizes, rules by matches, matches per rule and iteration
    plain = rw.gradient("tr(A*X)", "X", {"A": (2, 3), "X": (3, 2)})
    viz.history(plain.report, tmp_path / "p.png")
    w, h = struct.unpack(">II", (tmp_path / "p.png").read_bytes()[16:24])
    assert (w, h) == (1200, 450)  # no per-iteration record: sizes and rules by matches
    # what the panels say (the same plot as SVG keeps its texts): the stop reason and
    # iterations, a curve per phase, the most used rules in both rule panels
    rep = result.report
    viz.history(rep, tmp_path / "h.svg")
    texts = _svg_texts(tmp_path / "h.svg")
    assert f"saturation ({rep.stop_reason}, {rep.iterations} iterations)" in texts
    assert {f"{p['phase']} e-nodes" for p in rep.phases} <= set(texts)
    top = sorted(((n, m) for n, m in rep.matches.items() if m), key=lambda kv: -kv[1])[:15]
    assert top and all(texts.count(name) == 2 for name, _ in top)
    assert "matches per rule and iteration" in texts
    viz.history(plain.report, tmp_path / "p.svg")
    assert "matches per rule and iteration" not in _svg_texts(tmp_path / "p.svg")


def test_history_records_every_iteration(result):
    hist = result.report.history
    assert len(hist) == sum(p["iterations"] for p in result.report.phases)  # simplify too
    assert all(h["eclasses"] > 0 and h["enodes"] >= h["eclasses"] for h in hist)
    # the per-iteration matches add up to the report's per-rule totals
    total: dict = {}
    for h in hist:
        for rule, n in h["matches"].items():
            total[rule] = total.get(rule, 0) + n
    assert total == {r: n for r, n in result.report.matches.items() if n}


def _snapshots(monkeypatch) -> tuple[dict, dict]:
    """Snapshots of every traced session's e-graph taken beside the engine's own records: at the
    start of each phase and after each iteration, keyed by (session, history index)."""
    import rewrite.pipeline
    from rewrite.egraph.provenance import serialize
    from rewrite.egraph.session import Session

    start, after = {}, {}
    run_phase, eclasses = rewrite.pipeline.run_phase, Session.eclasses

    def phase(s, *args, **kwargs):
        start[(id(s), len(s.history))] = serialize(s.eg, s.codec, False)
        return run_phase(s, *args, **kwargs)

    def counted(s):  # called once per traced iteration, right after it
        after[(id(s), len(s.history))] = serialize(s.eg, s.codec, False)
        return eclasses(s)

    monkeypatch.setattr(rewrite.pipeline, "run_phase", phase)
    monkeypatch.setattr(Session, "eclasses", counted)
    return start, after


def test_iterations_record_what_appeared_and_merged(monkeypatch):
    """Per iteration of the drawn e-graph, the e-nodes that appeared in it are exactly the drawn
    e-nodes present after it and absent from the snapshot before it; with the inserted terms,
    they cover every e-node once; each merge listed joined classes distinct before it."""
    from rewrite.egraph.provenance import grow

    start, after = _snapshots(monkeypatch)
    g = rw.gradient("tr(X'*A*X)", "X", {"X": (3, 2), "A": (3, 3)}, keep_egraph=True, steps=True)
    s = g.session
    final = s.serialize()
    G = viz.egraph_graph(g)
    short = {d["egglog"]: d["id"] for _, d in G.nodes(data=True)}
    enodes = [d["id"] for _, d in G.nodes(data=True) if d["kind"] == "enode"]
    hist = G.graph["history"]
    own = [i for i, h in enumerate(hist) if h["drawn"]]
    assert own == list(range(len(s.history))) and len(own) >= 10
    seen = list(G.graph["inserted"])
    for i in own:
        h, k = hist[i], (id(s), i)
        before = start.get(k) or after[(id(s), i - 1)]
        was = set(grow(before, final)["nodes"].values())
        now = set(grow(after[k], final)["nodes"].values())
        assert set(h["new_nodes"]) == {short[n] for n in now - was}, (h["phase"], h["iteration"])
        step = grow(before, after[k])
        assert h["appeared"] == len(step["appeared"]) and not step["lost"]
        if k not in start and h["merged"] == 0:  # no input, no merge: the e-node count's growth
            assert h["appeared"] == h["enodes"] - hist[i - 1]["enodes"]
        # a merge: classes distinct before the iteration, one class after it (and in the drawing)
        joined = {short[grow(after[k], final)["classes"][step["classes"][cs[0]]]]
                  for cs in step["merged"]}
        assert set(h["merged_classes"]) == joined and len(step["merged"]) == h["merged"]
        for cs in step["merged"]:
            assert len(set(cs)) >= 2 and all(c in {n["eclass"] for n in before["nodes"].values()}
                                             for c in cs)
        seen += h["new_nodes"]
    assert sorted(seen) == sorted(enodes)  # every e-node once: inserted, or made by one iteration
    assert sum(hist[i]["merged"] for i in own) >= 1 and any(hist[i]["merged_classes"] for i in own)
    assert len(G.graph["inserted"]) == 9  # tr(X'*A*X) and grad(d(·), d(X)) on it
    # the later e-graphs (simplification) are not drawn, so not recorded either (no snapshots)
    undrawn = [h for h in hist if not h["drawn"]]
    assert undrawn and all(h["new_nodes"] is None and h["appeared"] is None for h in undrawn)


def test_iterations_before_a_reset_are_not_drawn():
    """When tidying changes the objective the e-graph is restarted from the tidied term: the
    tidy iterations' records are of the e-graph forgotten (nothing drawn), the rest cover it."""
    g = rw.gradient("tr((X')''*A*X)", "X", {"X": (3, 2), "A": (3, 3)}, keep_egraph=True, steps=True)
    G = viz.egraph_graph(g)
    hist = [h for h in G.graph["history"] if h["drawn"]]
    tidy = [h for h in hist if h["phase"] == "tidy"]
    assert tidy and sum(h["merged"] for h in tidy) >= 1  # X'' merged with X, then forgotten
    assert all(h["new_nodes"] == [] and h["merged_classes"] == [] for h in tidy)
    made = G.graph["inserted"] + [n for h in hist for n in h["new_nodes"]]
    assert sorted(made) == sorted(d["id"] for _, d in G.nodes(data=True) if d["kind"] == "enode")


def test_iterations_over_the_size_bound_are_not_recorded(monkeypatch):
    """Above the size bound the iterations say they were not recorded; the gradient is the same."""
    import rewrite.egraph.session as session

    monkeypatch.setattr(session, "TRAIL_MAX_ENODES", 20)
    g = rw.gradient("tr(X'*A*X)", "X", {"X": (3, 2), "A": (3, 3)}, keep_egraph=True, steps=True)
    hist = viz.egraph_graph(g).graph["history"]
    small = [h for h in hist if h["drawn"] and h["enodes"] <= 20]
    large = [h for h in hist if h["drawn"] and h["enodes"] > 20]
    assert small and large and all(h["new_nodes"] is not None for h in small)
    assert all(h["appeared"] is None and h["new_nodes"] is None for h in large)
    assert g.term == rw.gradient("tr(X'*A*X)", "X", {"X": (3, 2), "A": (3, 3)}).term


def test_without_egraph_is_a_clear_error():
    g = rw.gradient("tr(A*X)", "X", {"A": (2, 3), "X": (3, 2)})
    with pytest.raises(ValueError, match="keep_egraph"):
        viz.egraph_graph(g)


@pytest.fixture(scope="module")
def failure():
    expr, wrt, shapes = FAIL
    with pytest.raises(rw.UnsupportedError) as info:
        rw.gradient(expr, wrt, shapes, keep_egraph=True, steps=True)
    return info.value


def test_failure_graph(failure):
    """A failed derivation's error carries its e-graph: the root class highlighted with what
    it holds now, the construct the error names marked stuck, the steps so far."""
    assert failure.session is not None
    G = viz.egraph_graph(failure)
    assert viz.counts(G) == (failure.report.eclasses, failure.report.enodes)
    assert G.graph["error"].startswith("unsupported: no rule differentiates kront")
    assert G.graph["extracted"] == "grad(sum(d(kront(A, X))), d(X))"
    root = G.nodes[("class", G.graph["root"])]
    assert root["extracted"] and root["term"] == "grad(sum(d(kront(A, X))), dX)"
    # stuck: the frontier (d(kront(A, X)): no rule rewrote it) with its d e-node, and the
    # construct the error names
    stuck = [d for _, d in G.nodes(data=True) if d["stuck"]]
    assert {(d["kind"], d.get("term") or d["op"]) for d in stuck} == {
        ("eclass", "kront(A, X)"), ("eclass", "d(kront(A, X))"), ("enode", "d")}
    assert G.nodes[("class", G.graph["stuck"])]["term"] == "kront(A, X)"  # what the error names
    (edge,) = G.graph["frontier"]
    assert G.nodes[("class", edge["class"])]["term"] == edge["nodes"][0]["term"] == "d(kront(A, X))"
    assert edge["nodes"][0]["near"] == [] and edge["nodes"][0]["generic"] == ["d-const: d(C) if const(C)"]
    assert G.graph["stuck_text"] == (
        f"stuck at {edge['class']} (4×4): d(kront(A, X)) — no rule has d(kront(…)) on its "
        "left-hand side; rules with that head that did not apply: d-const: d(C) if const(C)")
    assert G.graph["steps"][0].split()[:3] == ["1", "df", "="]
    with pytest.raises(ValueError, match="no e-graph"):
        viz.egraph_graph(rw.UnsupportedError("no session"))


def test_failure_view_cli(tmp_path, capsys):
    """tracegrad viz on a derivation that fails: the picture is written anyway, the error is
    on stderr, the exit code is 2."""
    expr, wrt, shapes = FAIL
    base = ["viz", expr, "--wrt", wrt] + [a for v, s in shapes.items()
                                          for a in ("--shape", f"{v}={s[0]},{s[1]}")]
    for ext in ("json", "html") + (("svg",) if shutil.which("dot") else ()):
        out = tmp_path / f"f.{ext}"
        assert main(base + ["-o", str(out)]) == 2
        got = capsys.readouterr()
        assert "unsupported error: no rule differentiates kront(·, ·) (in kront(A, X))" in got.err
        assert got.out.startswith(f"{out}: ") and "derivation failed" in got.out
        assert got.out.splitlines()[1].startswith("stuck at c") and "d(kront(A, X))" in got.out
        assert out.exists()
    data = json.loads((tmp_path / "f.json").read_text())
    by_id = {x["id"]: x for x in data["nodes"]}
    assert data["graph"]["error"].startswith("unsupported: ")
    stuck = data["graph"]["stuck"]
    assert by_id[stuck]["term"] == "kront(A, X)" and by_id[stuck]["stuck"]
    edge = data["graph"]["frontier"][0]["class"]
    assert by_id[edge]["term"] == "d(kront(A, X))" and by_id[edge]["stuck"]
    assert by_id[data["graph"]["root"]]["extracted"]
    page = (tmp_path / "f.html").read_text()
    assert "The derivation failed" in page and "no rule differentiates kront" in page
    if shutil.which("dot"):
        svg = (tmp_path / "f.svg").read_text()
        groups = svg_groups(svg)
        assert groups[stuck]["stroke"] == STUCK and groups[stuck]["texts"][1:3] == ["4×4", "stuck"]
        assert groups[edge]["stroke"] == STUCK and "stuck" in groups[edge]["texts"]
        assert groups[data["graph"]["root"]]["stroke"] == HIGHLIGHT
        assert "derivation failed: unsupported: no rule differentiates" in html.unescape(svg)
    # grad failing the same way points at viz
    assert main(["grad"] + base[1:]) == 2
    assert "tracegrad viz with the same arguments" in capsys.readouterr().err
    # errors before there is an e-graph are plain errors: nothing is written
    assert main(["viz", "tr(X", "--wrt", "X", "-o", str(tmp_path / "p.json")]) == 2
    assert "parse error" in capsys.readouterr().err and not (tmp_path / "p.json").exists()


def test_cli(tmp_path, capsys):
    shapes = {"X": (3, 2), "A": (3, 3)}
    same = rw.gradient("tr(X'*A*X)", "X", shapes, keep_egraph=True)
    G = viz.egraph_graph(same)
    for opts, part in ((["--history"], viz.view(G)), (["--all", "--max-classes", "0"], G)):
        out = tmp_path / "e.json"
        assert main(["viz", "tr(X'*A*X)", "--wrt", "X", "--shape", "X=3,2", "--shape", "A=3,3",
                     "-o", str(out), *opts]) == 0
        line = capsys.readouterr().out.strip()
        m = re.fullmatch(rf"{re.escape(str(out))}: (\d+) of (\d+) e-classes; gradient (.+)", line)
        assert m, line
        drawn, total, gradient = int(m.group(1)), int(m.group(2)), m.group(3)
        assert total == same.report.eclasses and drawn == viz.counts(part)[0]
        check_gradient_text("tr(X'*A*X)", "X", shapes, gradient)  # the gradient printed, by value
        data = json.loads(out.read_text())
        assert {x["id"] for x in data["nodes"] if x["kind"] == "eclass"} == \
            {d["id"] for d in _eclasses(part)}
    w, h = struct.unpack(">II", (tmp_path / "e.history.png").read_bytes()[16:24])
    assert (w, h) == (1800, 450)  # the CLI records the per-iteration matches
    assert main(["viz", "tr(A*X)", "--wrt", "X", "-o", str(tmp_path / "s.dot"), "--steps"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["1", "f", "=", "tr(A*X)"] and "e-classes" in lines[-1]
    drawn = int(re.search(r": (\d+) of \d+ e-classes", lines[-1]).group(1))
    assert (tmp_path / "s.dot").read_text().count("subgraph cluster_") == drawn
    assert main(["viz", "tr(X)", "--wrt", "X", "-o", str(tmp_path / "e.pdf")]) == 2
    assert "suffix" in capsys.readouterr().err


# -- three inputs drawn: a public case, an MLP and a failure; pictures checked for legibility --

ROOT = Path(__file__).resolve().parent.parent
#: name → (expression, variable, shapes, rule files); the last one stops without the canonical
#: form (a rule file gives kront a differential but no adjoint: docs/debugging.md)
INPUTS = {"public": ("tr(X'*A*X)", "X", {"X": (3, 2), "A": (3, 3)}, []),
          "mlp": ("sum(tanh(W2*tanh(W1*x)))", "W1", {"W1": (4, 3), "W2": (2, 4), "x": (3,)}, []),
          "stuck": ("sum(kront(A, X))", "X", {"A": (2, 3), "X": (4, 5)},
                    [str(ROOT / "docs" / "examples" / "kront-d.rules")])}
#: the smallest text allowed: px in the browser at the page's opening zoom, and in a PNG or an
#: SVG at its natural size (96 px per inch: a point is 4/3 px)
MIN_PX = 10
# TRACEGRAD_UPDATE_SCREENSHOT=1 also refreshes the pictures of docs/debugging.md


def artifacts() -> Path:
    """Where screenshots go: ``TRACEGRAD_ARTIFACTS``, else tests/artifacts/ (git-ignored)."""
    out = Path(os.environ.get("TRACEGRAD_ARTIFACTS") or Path(__file__).parent / "artifacts")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module", params=list(INPUTS))
def drawn(request):
    """(name, the default view of the input's e-graph, the result or error it came from)."""
    expr, wrt, shapes, rules = INPUTS[request.param]
    try:
        source = rw.gradient(expr, wrt, shapes, keep_egraph=True, steps=True, rules=rules)
    except rw.CanonicalFormError as e:
        assert request.param == "stuck", e
        source = e
    assert (request.param == "stuck") == isinstance(source, rw.TracegradError)
    return request.param, viz.view(viz.egraph_graph(source)), source


def text_boxes(layout: dict) -> list[tuple[str, float, float, float, float, float]]:
    """(text, x0, y0, x1, y1, point size) of every text Graphviz placed (``dot -Tjson``): the
    caption, the classes' and e-nodes' labels, the stubs; from the advance width and the em box
    (the baseline 0.22 em above its bottom)."""
    out = []
    objects = [layout] + layout.get("objects", []) + layout.get("edges", [])
    for obj in objects:
        for key in ("_ldraw_", "_tldraw_", "_hldraw_"):
            size = 14.0
            for op in obj.get(key, []):
                if op["op"] == "F":
                    size = op["size"]
                elif op["op"] == "T" and op["text"].strip():
                    x, y, w = op["pt"][0], op["pt"][1], op["width"]
                    x0 = {"l": x, "c": x - w / 2, "r": x - w}[op["align"]]
                    out.append((op["text"], x0, y - 0.22 * size, x0 + w, y + 0.78 * size, size))
    return out


def overlapping(boxes) -> list[tuple[str, str]]:
    """The pairs of boxes (text, x0, y0, x1, y1, …) whose interiors intersect."""
    out = []
    ordered = sorted(boxes, key=lambda b: b[1])
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            if b[1] >= a[3]:
                break
            if min(a[3], b[3]) - max(a[1], b[1]) > 1e-6 and min(a[4], b[4]) - max(a[2], b[2]) > 1e-6:
                out.append((a[0], b[0]))
    return out


def test_overlap_check_sees_overlaps():
    assert overlapping([("a", 0, 0, 10, 10), ("b", 9, 9, 20, 20), ("c", 10, 0, 12, 9)]) == [("a", "b")]
    layout = {"objects": [{"_ldraw_": [{"op": "F", "size": 10.0}, {"op": "T", "pt": [5, 0], "align": "c",
                                                                     "width": 10.0, "text": "x"}]}]}
    assert text_boxes(layout) == [("x", 0.0, -2.2, 10.0, pytest.approx(7.8), 10.0)]


@needs_dot
def test_png_and_svg_labels_are_legible(drawn, tmp_path):
    """At natural size (PNG at 96 dpi, SVG in points) no two labels of the layout intersect and
    the smallest text is at least MIN_PX; the PNG and SVG are the layout's size (not shrunk)."""
    name, G, _ = drawn
    dot = viz.to_dot(G)
    layout = json.loads(subprocess.run(["dot", "-Tjson"], input=dot, text=True, check=True,
                                       capture_output=True, timeout=300).stdout)
    boxes = text_boxes(layout)
    over = overlapping(boxes)
    smallest = min(b[5] for b in boxes) * 96 / 72
    print(f"\n{name}: {len(boxes)} labels in the layout, smallest {smallest:.1f} px at 96 dpi, "
          f"{len(over)} overlapping pairs")
    assert len(boxes) > 3 * viz.counts(G)[0]  # every class and e-node has its texts
    assert over == [] and smallest >= MIN_PX
    x0, y0, x1, y1 = map(float, layout["bb"].split(","))
    viz.write(G, tmp_path / f"{name}.png")
    viz.write(G, tmp_path / f"{name}.svg")
    w, h = struct.unpack(">II", (tmp_path / f"{name}.png").read_bytes()[16:24])
    pad = 8  # Graphviz pads a drawing by 4 points on each side
    assert abs(w - (x1 - x0 + pad) * 96 / 72) < 3 and abs(h - (y1 - y0 + pad) * 96 / 72) < 3, \
        (w, h, layout["bb"])
    svg = ET.fromstring((tmp_path / f"{name}.svg").read_text())
    assert abs(float(svg.get("width").removesuffix("pt")) - (x1 - x0 + pad)) < 2
    sizes = [float(t.get("font-size")) for t in svg.iter(f"{SVG}text") if (t.text or "").strip()]
    assert min(sizes) * 96 / 72 >= MIN_PX
    shutil.copy(tmp_path / f"{name}.png", artifacts() / f"viz-{name}-dot.png")
    if name == "stuck" and os.environ.get("TRACEGRAD_UPDATE_SCREENSHOT"):
        shutil.copy(tmp_path / f"{name}.png", ROOT / "docs" / "images" / "debugging-stuck-dot.png")


# the texts of the page's drawing: screen boxes from the glyphs' ink (canvas metrics of the font
# the browser uses), and each text's size in px at the current zoom
MEASURE = r"""() => {
  const svg = document.querySelector('#view svg');
  const ctx = document.createElement('canvas').getContext('2d');
  const boxes = [...svg.querySelectorAll('text')].filter(t => t.textContent.trim()).map(t => {
    const r = t.getBoundingClientRect(), cs = getComputedStyle(t), m0 = t.getScreenCTM();
    ctx.font = cs.fontStyle + ' ' + cs.fontWeight + ' ' + cs.fontSize + ' ' + cs.fontFamily;
    const m = ctx.measureText(t.textContent), k = m0.a;
    const base = m0.f + k * parseFloat(t.getAttribute('y'));
    return {text: t.textContent.trim(), px: parseFloat(t.getAttribute('font-size')) * k,
            x0: r.x + Math.max(0, -m.actualBoundingBoxLeft) * k, x1: r.x + m.actualBoundingBoxRight * k,
            y0: base - m.actualBoundingBoxAscent * k, y1: base + m.actualBoundingBoxDescent * k};
  });
  const over = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    if (Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0) > 0.01 &&
        Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0) > 0.01) over.push([a.text, b.text]);
  }
  return {count: boxes.length, smallest: Math.min(...boxes.map(b => b.px)), over};
}"""

# a class whose label is on screen (inside the drawing's area): its id and its label's centre
VISIBLE_CLASS = r"""(prefer) => {
  const area = document.getElementById('view').getBoundingClientRect();
  const inside = g => { const t = g.querySelector('text'); if (!t) return null;
    const r = t.getBoundingClientRect();
    return r.left >= area.left && r.right <= area.right && r.top >= area.top && r.bottom <= area.bottom
      ? [g.id, r.left + r.width / 2, r.top + r.height / 2] : null; };
  const all = [...document.querySelectorAll('#view g.cluster')];
  const first = all.filter(g => g.id === prefer).concat(all).map(inside).find(x => x);
  return first || null;
}"""


@pytest.fixture(scope="module")
def chromium():
    """Headless Chromium driven by Playwright; the tests skip (with the reason) without them."""
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install playwright)")
    exe = _browser()
    if exe is None:
        pytest.skip("no Chromium to drive (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        except Exception as e:  # noqa: BLE001 - a browser that does not start is a skip
            pytest.skip(f"Chromium could not be launched by Playwright: {e}")
        yield browser
        browser.close()


def _browser() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


def open_page(chromium, path: Path, size=(1400, 900)):
    """The page at ``path`` in a fresh tab of ``size``, once its script has laid the graph out."""
    page = chromium.new_page(viewport={"width": size[0], "height": size[1]})
    page.goto(path.as_uri())
    page.wait_for_function("document.body.dataset.rendered || document.body.dataset.error",
                           timeout=90_000)
    assert page.evaluate("document.body.dataset.error") is None, page.inner_text("#status")
    return page


def test_page_in_chromium(drawn, chromium, tmp_path):
    """The page of each input, as it opens: no two labels overlap, every text is at least
    MIN_PX; clicking an e-class lists its e-nodes with the rules that made them; a failure's
    panel names the stuck term and the rules closest to matching it."""
    name, G, source = drawn
    path = tmp_path / f"{name}.html"
    viz.write(G, path)
    page = open_page(chromium, path)
    m = page.evaluate(MEASURE)
    print(f"\n{name}: {m['count']} labels on the page, smallest {m['smallest']:.1f} px, "
          f"{len(m['over'])} overlapping pairs")
    assert m["count"] > 3 * viz.counts(G)[0]
    assert m["over"] == [] and m["smallest"] >= MIN_PX
    if name == "stuck":
        stuck = page.inner_text("#stuck")
        assert "adj(kront(A, dX), " in stuck and "adj-zero: adj(a, W, d(X)) if free(a)" in stuck
        assert page.inner_text("#info h3").startswith(G.graph["stuck"] + " ")  # opens there
        assert G.nodes[("class", G.graph["stuck"])]["term"].startswith("adj(kront(A, dX), ")
    page.screenshot(path=str(artifacts() / f"viz-{name}-page.png"))
    if name == "stuck" and os.environ.get("TRACEGRAD_UPDATE_SCREENSHOT"):  # docs/debugging.md
        page.screenshot(path=str(ROOT / "docs" / "images" / "debugging-stuck.png"))
    # click a class on screen other than the one shown: the panel lists its e-nodes and rules
    shown = page.inner_text("#info h3").split()[0]
    hit = page.evaluate(VISIBLE_CLASS, "c1" if shown != "c1" else "c2")
    assert hit, "no e-class label on screen"
    cls, x, y = hit
    page.mouse.click(x, y)
    assert page.inner_text("#info h3").split()[0] == cls
    rows = page.locator("#info table tr").all_inner_texts()[1:]
    want = [(G.nodes[e]["id"], G.nodes[e]["rule"]) for e in viz.dot.members(G, ("class", cls))]
    assert [tuple(r.split("\t")[i] for i in (0, 2)) for r in rows] == want
    assert page.locator(f"#view g.cluster.sel#{cls}").count() == 1
    page.close()


def test_html_page_in_a_headless_browser(result, chromium, tmp_path):
    """The page lays the graph out with the vendored Graphviz: an SVG group per e-node and
    e-class under the drawing's ids, the same labels and highlight as the SVG of dot, fitting
    the window; the panel opens on the root class and lists the steps."""
    G = viz.view(viz.egraph_graph(result), 40)
    path = tmp_path / "g.html"
    viz.write(G, path)
    page = open_page(chromium, path)
    dom = page.content()
    classes, enodes = viz.counts(G)
    assert f'data-rendered="{enodes}"' in dom and f'data-clusters="{classes}"' in dom, \
        page.inner_text("#status")
    svg = re.search(r'<div id="view">.*?(<svg.*?</svg>)\s*</div>', dom, re.S).group(1)
    assert re.match(r'<svg viewBox="[-\d. ]+"', svg) and "width=" not in svg[:200]
    groups = svg_groups(svg.replace("&nbsp;", " "))
    assert {i for i, g in groups.items() if g["kind"] == "node" and not i.startswith("stub-")} \
        == {d["id"] for d in _enodes(G)}
    check_svg(G, svg.replace("&nbsp;", " "))
    info = re.search(r'<div id="info">(.*?)</div>', dom, re.S).group(1)
    root = G.nodes[("class", "c0")]
    assert info.startswith(f'<h3>c0 <span class="shape">{root["rows"]}×{root["cols"]}</span>')
    assert html.escape(root["term"], quote=False) in info
    for en in viz.dot.members(G, ("class", "c0")):
        assert f"<td>{en[1]}</td>" in info and html.escape(G.nodes[en]["rule"]) in info
    assert f"Derivation ({len(G.graph['steps'])} lines)" in dom
    page.close()


def test_failure_page_in_a_headless_browser(failure, chromium, tmp_path):
    G = viz.view(viz.egraph_graph(failure))
    path = tmp_path / "f.html"
    viz.write(G, path)
    page = open_page(chromium, path)
    dom = page.content()
    assert f'data-rendered="{viz.counts(G)[1]}"' in dom
    # the panel opens on the stuck class; the stuck section names its term
    info = re.search(r'<div id="info">(.*?)</div>', dom, re.S).group(1)
    assert info.startswith(f"<h3>{G.graph['stuck']} ") and "stuck</span>" in info
    assert "d(kront(A, X))" in page.inner_text("#stuck") and 'id="error"' in dom
    assert "no rule has its head and first argument on the left" in page.inner_text("#stuck")
    page.close()


def shown_viz_examples(path: Path) -> list[tuple[list[str], str, int]]:
    """The ``tracegrad viz`` commands shown (not run: they write files) in a page's ``text``
    blocks: (arguments, the output shown after them, the exit status shown or 0)."""
    out = []
    blocks = re.findall(r"^```text\n(.*?)^```", path.read_text(encoding="utf-8"), re.S | re.M)
    for block in blocks:
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("tracegrad viz "):
                rest = list(itertools.takewhile(lambda x: not x.startswith("tracegrad "), lines[i + 1:]))
                status = int(rest.pop()[6:-1]) if rest and rest[-1].startswith("[exit ") else 0
                out.append((shlex.split(line)[1:], "\n".join(rest), status))
    return out


@pytest.mark.parametrize("page", ["debugging.md", "cli.md"])
def test_shown_viz_examples(page, tmp_path, capsys, monkeypatch):
    """What docs/debugging.md and docs/cli.md show `tracegrad viz` print is what it prints (the
    file written into a temporary directory); the stuck line names the frontier."""
    examples = shown_viz_examples(ROOT / "docs" / page)
    assert examples
    monkeypatch.chdir(ROOT)  # the rule files are named from the repository root
    for argv, shown, status in examples:
        at = argv.index("-o") + 1
        name = argv[at]
        argv[at] = str(tmp_path / name)
        assert main(argv) == status
        got = capsys.readouterr()
        output = (got.out + got.err).replace(str(tmp_path / name), name)
        assert doctest.OutputChecker().check_output(shown + "\n", output, doctest.ELLIPSIS), \
            f"{page}: {' '.join(argv)}\nshown:\n{shown}\ngot:\n{output}"
        assert (tmp_path / name).exists()


def test_iterations_panel_steps_through_the_saturation(chromium, tmp_path):
    """The page's Iterations panel lists the report's iterations by phase with their counts and
    rules; next/prev select one (its row highlighted, its rules listed, exactly the drawn e-nodes
    that appeared in it outlined, the drawn classes a merge in it made marked); a failure's page
    lists its (partial) report's iterations too."""
    g = rw.gradient("tr(X'*A*X)", "X", {"X": (3, 2), "A": (3, 3)}, keep_egraph=True, steps=True)
    G = viz.egraph_graph(g)
    hist = g.report.history
    assert [(h["phase"], h["iteration"], h["enodes"]) for h in G.graph["history"]] == \
        [(h["phase"], h["iteration"], h["enodes"]) for h in hist]
    assert [p["phase"] for p in G.graph["phases"]] == [p["phase"] for p in g.report.phases]
    assert json.dumps(viz.to_json(G))  # the history is plain data
    path = tmp_path / "it.html"
    viz.write(viz.view(G), path)
    page = open_page(chromium, path)
    rows = page.locator("#iter-table tr.it")
    assert rows.count() == len(hist) >= 2
    heads = page.locator("#iter-table tr.run").all_inner_texts()
    first = next(p for p in g.report.phases if p["iterations"])  # tidy, when it had work
    assert heads[0].startswith(f"{first['phase']} — saturated, ")
    assert any(h.startswith("expand") for h in heads) and any(h.startswith("collect") for h in heads)
    assert page.locator("#iter-table tr.isel").count() == 0
    selected = lambda: page.locator("#iter-table tr.isel").get_attribute("data-i")  # noqa: E731
    page.click("#iter-next")
    assert selected() == "0" and page.inner_text("#iter-pos") == f"1 of {len(hist)}"
    # step to the first iteration where a drawn e-node appeared: its rules are listed, exactly
    # the drawn e-nodes that appeared in it outlined
    H = viz.view(G)
    drawn_nodes = {d["id"] for _, d in H.nodes(data=True) if d["kind"] == "enode"}
    drawn_classes = {d["id"] for _, d in H.nodes(data=True) if d["kind"] == "eclass"}
    rec = G.graph["history"]
    first = next(i for i, h in enumerate(rec) if set(h["new_nodes"] or ()) & drawn_nodes)
    for _ in range(first):
        page.click("#iter-next")
    assert selected() == str(first)
    listed = page.locator("#iter-rules li").all_inner_texts()
    assert listed == [f"{r} × {n}" for r, n in sorted(hist[first]["matches"].items(),
                                                      key=lambda kv: -kv[1])]
    outlined = "[...document.querySelectorAll('#view g.node.made')].map(g => g.id)"
    merged = "[...document.querySelectorAll('#view g.cluster.merged')].map(g => g.id)"
    made = set(rec[first]["new_nodes"]) & drawn_nodes
    assert set(page.evaluate(outlined)) == made and len(made) <= rec[first]["appeared"]
    n, m = rec[first]["appeared"], rec[first]["merged"]
    assert page.inner_text("#iter-made").startswith(
        f"{n} e-node{'s' * (n != 1)} appeared, {m} class{'es' * (m != 1)} merged "
        f"({len(made | set(rec[first]['merged_classes']) & drawn_classes)} drawn)")
    outline = "getComputedStyle(document.querySelector('#view g.node.made path')).stroke"
    assert page.evaluate(outline) == "rgb(148, 103, 189)"  # outlined in purple
    # every drawn iteration, clicked: the outlined e-nodes and marked classes are its records
    for i, h in enumerate(rec):
        if h["drawn"]:
            page.locator(f'#iter-table tr.it[data-i="{i}"]').click()
            assert set(page.evaluate(outlined)) == set(h["new_nodes"]) & drawn_nodes
            assert set(page.evaluate(merged)) == set(h["merged_classes"]) & drawn_classes
    joined = next(i for i, h in enumerate(rec) if set(h["merged_classes"] or ()) & drawn_classes)
    page.locator(f'#iter-table tr.it[data-i="{joined}"]').click()
    assert page.evaluate(merged) and f"{rec[joined]['merged']} class" in page.inner_text("#iter-made")
    frame = "getComputedStyle(document.querySelector('#view g.cluster.merged path')).strokeDasharray"
    assert page.evaluate(frame) == "10px, 5px"  # the merged class framed dashed
    page.locator(f'#iter-table tr.it[data-i="{first}"]').click()
    page.click("#iter-next")
    assert selected() == str(first + 1)
    page.click("#iter-prev")
    assert selected() == str(first)
    # clicking a row selects it; a later phase on a new e-graph outlines nothing
    later = next(i for i, h in enumerate(G.graph["history"]) if h["drawn"] is False and h["matches"])
    page.locator(f'#iter-table tr.it[data-i="{later}"]').click()
    assert selected() == str(later) and page.locator("#view g.node.made").count() == 0
    assert "not drawn" in page.inner_text("#iter-sel")
    page.close()
    # a failed derivation: its report's iterations, up to where it stopped
    expr, wrt, shapes = FAIL
    with pytest.raises(rw.UnsupportedError) as info:
        rw.gradient(expr, wrt, shapes, keep_egraph=True, steps=True)
    path = tmp_path / "f.html"
    viz.write(viz.view(viz.egraph_graph(info.value)), path)
    page = open_page(chromium, path)
    assert page.locator("#iter-table tr.it").count() == len(info.value.report.history) >= 2
    page.click("#iter-prev")  # from no selection: the last iteration
    assert selected() == str(len(info.value.report.history) - 1)
    page.close()
