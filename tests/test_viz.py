"""viz: the e-graph as networkx agrees with the Report; pictures and pages render."""

import json
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET

import networkx as nx
import pytest

import rewrite as rw
import viz
from rewrite.cli import main

pytest.importorskip("matplotlib")

CASES = [("tr(X'*A*X)", "X", {"X": (3, 2), "A": (3, 3)}),
         ("sum(log(1 + exp(-y .* (X*w))))", "w", {"X": (5, 3), "w": (3,), "y": (5,)}),
         ("logdet(X)", "X", {"X": (3, 3)})]


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


def test_view_caps_the_classes(result):
    G = viz.egraph_graph(result)
    part = viz.view(G, 10)
    assert viz.counts(part)[0] == min(10, viz.counts(G)[0])


def test_files(result, tmp_path):
    G = viz.view(viz.egraph_graph(result), 40)
    for ext in ("png", "svg", "dot", "graphml", "json", "html"):
        viz.write(G, tmp_path / f"g.{ext}")
    w, h = struct.unpack(">II", (tmp_path / "g.png").read_bytes()[16:24])
    assert w > 300 and h > 200
    assert ET.parse(tmp_path / "g.svg").getroot().tag.endswith("svg")
    dot = (tmp_path / "g.dot").read_text()
    assert dot.startswith("digraph") and dot.count("subgraph cluster_") == viz.counts(G)[0]
    assert dot.count("tooltip=") == viz.counts(G)[1] and "[input]" in dot
    H = nx.read_graphml(tmp_path / "g.graphml")
    assert H.number_of_nodes() == G.number_of_nodes()
    data = json.loads((tmp_path / "g.json").read_text())
    assert len(data["nodes"]) == G.number_of_nodes()
    page = (tmp_path / "g.html").read_text()
    assert page.count('"rule": "') == viz.counts(G)[1]
    assert "http://" not in page.replace("http://www.w3.org", "") and "<script src" not in page
    assert page.count('class="eclass') == viz.counts(G)[0]


def test_enodes_carry_the_rule_that_made_them(result):
    G = viz.egraph_graph(result)
    rules = [d["rule"] for _, d in G.nodes(data=True) if d["kind"] == "enode"]
    assert all(rules) and "input" in rules
    made = {r for r in rules if r != "input"}
    assert made and all(r.removesuffix("<-") in result.report.matches for r in made)
    assert G.graph["steps"][0].split()[:3] == ["1", "f", "="]


def test_history_plot(result, tmp_path):
    viz.history(result.report, tmp_path / "h.png")
    w, h = struct.unpack(">II", (tmp_path / "h.png").read_bytes()[16:24])
    assert (w, h) == (1800, 450)  # sizes, rules by matches, matches per rule and iteration
    plain = rw.gradient("tr(A*X)", "X", {"A": (2, 3), "X": (3, 2)})
    viz.history(plain.report, tmp_path / "p.png")
    w, h = struct.unpack(">II", (tmp_path / "p.png").read_bytes()[16:24])
    assert (w, h) == (1200, 450)  # no per-iteration record: sizes and rules by matches


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
    assert main(["viz", "tr(X'*A*X)", "--wrt", "X", "--shape", "X=3,2", "--shape", "A=3,3",
                 "-o", str(out), "--history"]) == 0
    assert out.exists() and (tmp_path / "e.history.png").exists()
    assert "e-classes" in capsys.readouterr().out
    assert main(["viz", "tr(A*X)", "--wrt", "X", "-o", str(tmp_path / "s.dot"), "--steps"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["1", "f", "=", "tr(A*X)"] and "e-classes" in lines[-1]
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
