"""See the e-graph of a derivation (or of one that failed): networkx graph, pictures (PNG/SVG
laid out by Graphviz), DOT, GraphML, JSON, an interactive HTML page, and the saturation history.

>>> import rewrite as rw, viz
>>> g = rw.gradient("tr(X'*A*X)", "X", {"X": (3, 2), "A": (3, 3)}, keep_egraph=True)
>>> G = viz.egraph_graph(g)
>>> viz.counts(G) == (g.report.eclasses, g.report.enodes)
True
"""

from .graph import counts, egraph_graph, extracted_classes, focus, view
from .render import draw, history, to_dot, to_graphml, to_json, write

__all__ = ["counts", "draw", "egraph_graph", "extracted_classes", "focus", "history", "to_dot",
           "to_graphml", "to_json", "view", "write"]
