"""The e-graph backend: pooled e-graphs are reused through push/pop without carrying anything
from one session into the next."""

from rewrite.backend import Session
from rewrite.engine import default_engine
from rewrite.parse import parse
from rewrite.report import Limits


def test_pooled_sessions_never_bind_a_name_twice():
    """Every inserted term gets a handle ($t<n>; its shared subterms $s<n>_<k>) never used
    before on that e-graph. egglog can evaluate a let whose names were bound in an earlier,
    popped session against stale bindings: the term in the e-graph then silently differs from
    the one inserted (a gradient 'simplified' to a different value)."""
    program = default_engine().program
    sh = {"X": (2, 2), "A": (2, 2)}
    t = parse("(X + A)*(X + A) + X'*(X + A)", sh)
    handles, graphs = [], set()
    for _ in range(3):
        with Session(program, Limits()) as s:
            handles += [s.add(t), s.add(t)]
            assert s.extract(handles[-2]) == t
            graphs.add(id(s.eg))
    assert len(graphs) == 1  # one pooled e-graph, reused
    assert len(set(handles)) == len(handles)
