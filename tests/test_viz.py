"""viz: the e-graph as networkx agrees with the Report; pictures and pages render."""

import html
import json
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from fractions import Fraction
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
HIGHLIGHT, PLAIN = "#d62728", "#1f77b4"  # the extracted term's colour, other e-nodes'


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
    its leaves, the variables by name."""
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
            assert d["symbol"] == viz.graph.SYMBOLS.get(d["op"], d["label"])


def test_view_caps_the_classes(result):
    G = viz.egraph_graph(result)
    part = viz.view(G, 10)
    assert viz.counts(part)[0] == min(10, viz.counts(G)[0])
    # the part starts at the root and keeps every e-node of each class it keeps
    assert ("class", G.graph["root"]) in part
    for c, d in part.nodes(data=True):
        if d["kind"] == "eclass":
            assert part.out_degree(c) == G.out_degree(c) == d["size"]


def _enodes(G, extracted=None):
    return [d for _, d in G.nodes(data=True) if d["kind"] == "enode"
            and (extracted is None or d["extracted"] == extracted)]


def _eclasses(G, extracted=None):
    return [d for _, d in G.nodes(data=True) if d["kind"] == "eclass"
            and (extracted is None or d["extracted"] == extracted)]


def test_files(result, tmp_path):
    G = viz.view(viz.egraph_graph(result), 40)
    classes, enodes = viz.counts(G)
    marked_classes, marked_nodes = len(_eclasses(G, True)), len(_enodes(G, True))
    assert 0 < marked_classes < classes and 0 < marked_nodes < enodes
    for ext in ("png", "svg", "dot", "graphml", "json", "html"):
        viz.write(G, tmp_path / f"g.{ext}")
    # PNG: drawn, with the extracted term in the highlight colour and the rest in the plain one
    w, h = struct.unpack(">II", (tmp_path / "g.png").read_bytes()[16:24])
    assert w > 300 and h > 200
    import matplotlib.image

    rgb = np.round(matplotlib.image.imread(tmp_path / "g.png")[..., :3] * 255).astype(int)
    for colour in (HIGHLIGHT, PLAIN):
        want = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
        assert (np.abs(rgb - want).sum(axis=-1) <= 6).sum() > 20, f"no {colour} in the PNG"
    # SVG: one text per e-node, its symbol (matplotlib keeps each text as a comment), and the
    # title naming the classes drawn and the extracted term
    svg = (tmp_path / "g.svg").read_text()
    assert ET.parse(tmp_path / "g.svg").getroot().tag.endswith("svg")
    texts = re.findall(r"<!-- (.*?) -->", svg)
    title = html.unescape(texts[-1])
    part = "part of " if G.graph.get("truncated") else ""
    assert title == f"e-graph ({part}{classes} e-classes); extracted: {G.graph['extracted']}"
    assert Counter(html.unescape(t) for t in texts[:-1]) == Counter(d["symbol"] for d in _enodes(G))
    assert HIGHLIGHT in svg and PLAIN in svg
    # DOT: a cluster per class (its id and shape), a box per e-node labelled with its symbol;
    # the extracted classes and e-nodes in the highlight colour
    dot = (tmp_path / "g.dot").read_text()
    assert dot.startswith("digraph") and dot.count("subgraph cluster_") == classes
    assert dot.count("tooltip=") == enodes and "[input]" in dot
    for d in _eclasses(G):
        assert f'label="{d["id"]} {d["rows"]}×{d["cols"]}"' in dot
    assert len(re.findall(rf'subgraph cluster_\w+ {{ label="[^"]*"; color="{HIGHLIGHT}";', dot)) \
        == marked_classes
    assert dot.count(f'color="{HIGHLIGHT}", tooltip=') == marked_nodes
    boxes = Counter(re.findall(r'\[label="((?:[^"\\]|\\.)*)", color=', dot))
    assert boxes == Counter(d["symbol"].replace("\\", "\\\\").replace('"', '\\"') for d in _enodes(G))
    assert sum(1 for line in dot.splitlines() if " -> " in line) == sum(
        1 for *_, k in G.edges(data="kind") if k == "child")
    # GraphML: every node with its attributes, every edge, the extracted term
    H = nx.read_graphml(tmp_path / "g.graphml")
    assert H.number_of_nodes() == G.number_of_nodes()
    assert H.number_of_edges() == G.number_of_edges()
    assert H.graph["extracted"] == G.graph["extracted"] and H.graph["root"] == G.graph["root"]
    for n, d in G.nodes(data=True):
        got = H.nodes[f"{n[0]}:{n[1]}"]
        keys = ("kind", "id", "extracted") + (("op", "label", "eclass", "rule") if d["kind"] == "enode"
                                              else ("rows", "cols", "size"))
        assert {k: got[k] for k in keys} == {k: d[k] for k in keys}, n
    # JSON: node-link data with the same nodes, links and graph attributes
    data = json.loads((tmp_path / "g.json").read_text())
    assert {"directed", "multigraph", "graph", "nodes", "links"} <= set(data)
    assert len(data["nodes"]) == G.number_of_nodes() and len(data["links"]) == G.number_of_edges()
    assert data["graph"]["extracted"] == G.graph["extracted"]
    assert data["graph"]["root"] == G.graph["root"]
    assert Counter((x["kind"], x["extracted"]) for x in data["nodes"]) == Counter(
        (d["kind"], d["extracted"]) for _, d in G.nodes(data=True))
    assert Counter(x["label"] for x in data["nodes"] if x["kind"] == "enode") == Counter(
        d["label"] for d in _enodes(G))
    assert Counter(x["kind"] for x in data["links"]) == Counter(k for *_, k in G.edges(data="kind"))
    # HTML: the classes and e-nodes, the extracted ones marked, the data behind the clicks
    page = (tmp_path / "g.html").read_text()
    assert page.count('"rule": "') == enodes
    assert "http://" not in page.replace("http://www.w3.org", "") and "<script src" not in page
    assert page.count('class="eclass') == classes
    assert page.count('class="eclass hl"') == marked_classes
    assert page.count('class="enode hl"') == marked_nodes
    assert f"<code>{html.escape(G.graph['extracted'])}</code>" in page
    payload = json.loads(re.search(r'id="egraph-data">(.*?)</script>', page, re.S).group(1)
                         .replace("<\\/", "</"))
    assert set(payload["classes"]) == {d["id"] for d in _eclasses(G)}
    for d in _eclasses(G):
        shown = payload["classes"][d["id"]]
        assert shown["shape"] == f"{d['rows']}×{d['cols']}" and len(shown["nodes"]) == d["size"]


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


def test_without_egraph_is_a_clear_error():
    g = rw.gradient("tr(A*X)", "X", {"A": (2, 3), "X": (3, 2)})
    with pytest.raises(ValueError, match="keep_egraph"):
        viz.egraph_graph(g)


def test_cli(tmp_path, capsys):
    out = tmp_path / "e.svg"
    shapes = {"X": (3, 2), "A": (3, 3)}
    assert main(["viz", "tr(X'*A*X)", "--wrt", "X", "--shape", "X=3,2", "--shape", "A=3,3",
                 "-o", str(out), "--history"]) == 0
    assert out.exists() and (tmp_path / "e.history.png").exists()
    line = capsys.readouterr().out.strip()
    m = re.fullmatch(rf"{re.escape(str(out))}: (\d+) of (\d+) e-classes; gradient (.+)", line)
    assert m, line
    drawn, total, gradient = int(m.group(1)), int(m.group(2)), m.group(3)
    same = rw.gradient("tr(X'*A*X)", "X", shapes, keep_egraph=True)
    assert total == same.report.eclasses and drawn == min(60, total)  # --max-classes 60
    check_gradient_text("tr(X'*A*X)", "X", shapes, gradient)  # the gradient printed, by value
    title = _svg_texts(out)[-1]
    assert title.startswith("e-graph (") and f"{drawn} e-classes); extracted: " in title
    w, h = struct.unpack(">II", (tmp_path / "e.history.png").read_bytes()[16:24])
    assert (w, h) == (1800, 450)  # the CLI records the per-iteration matches
    assert main(["viz", "tr(A*X)", "--wrt", "X", "-o", str(tmp_path / "s.dot"), "--steps"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["1", "f", "=", "tr(A*X)"] and "e-classes" in lines[-1]
    drawn = int(re.search(r": (\d+) of \d+ e-classes", lines[-1]).group(1))
    assert (tmp_path / "s.dot").read_text().count("subgraph cluster_") == drawn
    assert main(["viz", "tr(X)", "--wrt", "X", "-o", str(tmp_path / "e.pdf")]) == 2
    assert "suffix" in capsys.readouterr().err


def _browser():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_browser() is None, reason="no headless browser installed")
def test_html_page_in_a_headless_browser(result, tmp_path):
    G = viz.view(viz.egraph_graph(result), 40)
    page = tmp_path / "g.html"
    viz.write(G, page)
    dom = subprocess.run([_browser(), "--headless", "--no-sandbox", "--disable-gpu",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=60).stdout
    # the script ran (it fills the counter) and every e-class is in the DOM
    assert f'<span id="count">{viz.counts(G)[0]}</span>' in dom
    assert dom.count('class="eclass') == viz.counts(G)[0]
    # the derivation is listed, one line per step (or two when the rules wrap)
    assert '<details open="" id="steps">' in dom
    assert f"Derivation ({len(G.graph['steps'])} lines)" in dom
