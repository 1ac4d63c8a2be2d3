"""An e-graph as a networkx graph: e-classes and e-nodes as nodes, edges to child e-classes.

Every class and e-node gets a short id (``c0`` is the root class, then breadth first; ``n0``,
``n1``, … in the order of their classes) that the pictures, the HTML page's panel and the JSON
all use. A class carries its shape and the term it extracts to; an e-node its operator, its
leaf name or number and the rule that created it.

>>> import rewrite as rw
>>> g = rw.gradient("tr(A*X)", "X", {"A": (2, 3), "X": (3, 2)}, keep_egraph=True)
>>> G = egraph_graph(g)
>>> classes = [n for n, d in G.nodes(data=True) if d["kind"] == "eclass"]
>>> len(classes) == g.report.eclasses
True
>>> G.graph["root"], G.nodes[("class", "c0")]["term"] == G.graph["extracted"]
('c0', True)
"""

from __future__ import annotations

import re
from collections import deque

import networkx as nx

import rewrite as rw
from rewrite.egraph.provenance import INPUT, PENDING, SORT, frontier, infer_shapes, label_attr, locate
from rewrite.printing import to_text
from rewrite.steps import format_steps, from_trail
from rewrite.terms import Term

SYMBOLS = {"add": "+", "mul": "*", "scale": "*", "had": ".*", "hdiv": "./", "t": "(·)'",
           "mpow": "^", "epow": ".^", "epows": ".^"}
#: operators whose label holds their attribute: the label is what the drawing shows
LEAVES = ("var", "pvar", "num", "fn")
#: a class term deeper than this is cut with "…" (terms that share subterms grow fast)
TERM_DEPTH = 8


def symbol(op: str, label: str) -> str:
    """What a drawing shows for an e-node: the operator's symbol, a leaf's name or number.

    >>> symbol("mul", "mul"), symbol("var", "var(X)"), symbol("num", "num(1/2)"), symbol("eye", "eye(3)")
    ('*', 'X', '1/2', 'eye(3)')
    """
    if op in LEAVES:
        m = re.fullmatch(r"\w+\((.*)\)", label)
        return m.group(1) if m else label
    return SYMBOLS.get(op, label)


def _session(source):
    s = getattr(source, "session", None)
    if s is None:
        if isinstance(source, rw.TracegradError):
            raise ValueError(f"this error carries no e-graph (it was raised before one was made, "
                             f"or without keep_egraph=True): {source}")
        raise ValueError("this result has no e-graph: compute it with keep_egraph=True "
                         "(rw.gradient(..., keep_egraph=True))")
    return s


def extracted_classes(data: dict, term: Term) -> dict[str, str]:
    """E-class → e-node of ``term`` found in the serialized e-graph (bottom-up matching)."""
    return {data["nodes"][nid]["eclass"]: nid for nid in locate(data, term).values()}


def _number(cid: str) -> tuple:
    tail = cid.rsplit("-", 1)[-1]
    return (0, int(tail), cid) if tail.isdigit() else (1, 0, cid)


def _dim(s):
    return int(s) if isinstance(s, str) and s.isdigit() else s


def _shown(dim) -> str:
    return "?" if dim is None else str(dim)


def _best_nodes(data: dict) -> dict[str, str]:
    """Class → its cheapest e-node by total cost (the nodes' costs, children counted once per
    use), not subsumed where the class has another choice."""
    best: dict[str, tuple[float, str]] = {}
    for allow_subsumed in (False, True):
        changed = True
        while changed:
            changed = False
            for nid, n in data["nodes"].items():
                if n["subsumed"] and not allow_subsumed:
                    continue
                if n["eclass"] in best and allow_subsumed and n["subsumed"]:
                    continue
                if any(c not in best for c in n["children"]):
                    continue
                cost = n["cost"] + sum(best[c][0] for c in n["children"])
                old = best.get(n["eclass"])
                if old is None or cost < old[0] - 1e-9:
                    best[n["eclass"]] = (cost, nid)
                    changed = True
    return {c: nid for c, (_, nid) in best.items()}


def _show_dx(t: Term) -> Term:
    """d(X) of a variable as the variable ``dX``, as the derivation steps print it."""
    if t.op == "d" and t.args and t.args[0].op == "var":
        return Term("var", (), f"d{t.args[0].attr}", t.shape)
    if not t.args:
        return t
    return Term(t.op, tuple(_show_dx(a) for a in t.args), t.attr, t.shape)


def _class_terms(data: dict, fixed: dict[str, Term]) -> dict[str, str]:
    """Class → the text of the term it extracts to: ``fixed`` (the extracted term's subterms)
    where given, else the cheapest e-nodes, cut with "…" below :data:`TERM_DEPTH`."""
    best = _best_nodes(data)
    memo: dict[tuple[str, int], Term] = {}

    def build(cid: str, depth: int) -> Term:
        c = data["classes"][cid]
        shape = (_dim(c["rows"]) if c["rows"] is not None else 1,
                 _dim(c["cols"]) if c["cols"] is not None else 1)
        if cid in fixed:
            return fixed[cid]
        if depth <= 0 or cid not in best:
            return Term("var", (), "…", shape)
        key = (cid, depth)
        if key not in memo:
            n = data["nodes"][best[cid]]
            args = tuple(build(ch, depth - 1) for ch in n["children"])
            memo[key] = Term(n["op"], args, label_attr(n["op"], n["label"]), shape)
        return memo[key]

    out = {}
    for cid in data["classes"]:
        try:
            out[cid] = to_text(_show_dx(build(cid, TERM_DEPTH)))
        except Exception:  # noqa: BLE001 - a label is only a help; never fail a picture on it
            n = data["nodes"].get(best.get(cid, ""), {})
            out[cid] = n.get("label", "?")
    return out


def _order(data: dict, root: str | None, chosen: dict[str, str]) -> tuple[list[str], list[str]]:
    """Classes (root first, then breadth first, then the rest) and e-nodes (by class, the
    extracted one first) in the order of their short ids."""
    members: dict[str, list[str]] = {}
    for nid, n in data["nodes"].items():
        members.setdefault(n["eclass"], []).append(nid)
    for cid, ns in members.items():
        ns.sort(key=lambda nid: (nid != chosen.get(cid), data["nodes"][nid]["cost"],
                                 data["nodes"][nid]["label"], nid))
    order: list[str] = []
    seen: set[str] = set()
    if root is not None:
        seen.add(root)
        queue = deque([root])
        while queue:
            c = queue.popleft()
            order.append(c)
            for nid in members.get(c, []):
                for ch in data["nodes"][nid]["children"]:
                    if ch not in seen:
                        seen.add(ch)
                        queue.append(ch)
    order += sorted((c for c in data["classes"] if c not in seen), key=_number)
    nodes = [nid for c in order for nid in members.get(c, [])]
    return order, nodes


def egraph_graph(source) -> nx.MultiDiGraph:
    """The e-graph of a result computed with ``keep_egraph=True``, or of a
    :class:`rewrite.TracegradError` raised by such a run (the e-graph where it stopped).

    Nodes ``("class", "c3")`` (kind ``eclass``: id, egglog, sort, rows, cols, size, term,
    extracted, stuck) and ``("node", "n7")`` (kind ``enode``: id, egglog, op, label, symbol,
    cost, subsumed, extracted, stuck, eclass, children, rule); edges ``member`` from a class to
    its e-nodes and ``child`` (with ``index``) from an e-node to a child class. ``term`` is the
    text of the term the class extracts to; ``children`` the child classes' ids, space
    separated (also those a partial view leaves out); ``rule`` names the rule that created the
    e-node (``"input"`` for the terms inserted; ``name<-`` is an equation used right to left).
    The graph's attributes: the extracted term (``extracted``), its root class (``root``),
    the derivation's steps when recorded (``steps``: lines of
    :func:`rewrite.steps.format_steps`) and, for an error, ``error`` (``"kind: message"``)
    and ``stuck`` (the class of the construct the error names, else the first class of the
    stuck frontier: :func:`rewrite.egraph.provenance.frontier`), ``frontier`` (a dict per
    frontier class: ``class``, ``shape``, ``term`` and ``nodes``, its pending e-nodes as
    ``term`` with the rules closest to matching, ``near`` and ``generic``: see
    :func:`near_rules`) and ``stuck_text`` (the frontier in words, :func:`stuck_text`); a
    frontier class and its pending e-nodes are marked ``stuck``.
    ``history`` and ``phases``: the saturation's iterations and phases (:func:`saturation_history`),
    with, per iteration, the e-nodes that appeared and the classes that merged in it;
    ``inserted``: the e-nodes of the terms inserted (None when not recorded).
    """
    s = _session(source)
    failed = isinstance(source, rw.TracegradError)
    data = s.serialize()
    infer_shapes(data)
    root_term = None
    if getattr(s, "root", None):
        try:
            root_term = s.extract(s.root)
        except rw.TracegradError:
            root_term = None
    where = locate(data, root_term) if root_term is not None else {}
    chosen = {data["nodes"][nid]["eclass"]: nid for nid in where.values()}
    fixed = {data["nodes"][nid]["eclass"]: t for t, nid in where.items()}
    root = _top_class(data, chosen) if chosen else None
    order, node_order = _order(data, root, chosen)
    cshort = {c: f"c{i}" for i, c in enumerate(order)}
    nshort = {nid: f"n{i}" for i, nid in enumerate(node_order)}
    terms = _class_terms(data, fixed)
    stuck_class = _stuck_class(source, data, terms, chosen) if failed else None
    edge = frontier(data) if failed else []
    edge.sort(key=lambda c: order.index(c))
    # the frontier's pending e-nodes: what the derivation could not rewrite any further
    pending = {nid for nid, n in data["nodes"].items()
               if n["eclass"] in edge and n["op"] in PENDING}
    members: dict[str, int] = {}
    for n in data["nodes"].values():
        members[n["eclass"]] = members.get(n["eclass"], 0) + 1
    G = nx.MultiDiGraph(root=None)
    for cid in order:
        c = data["classes"][cid]
        G.add_node(("class", cshort[cid]), kind="eclass", id=cshort[cid], egglog=cid, sort=SORT,
                   rows=_shown(c["rows"]), cols=_shown(c["cols"]), size=members.get(cid, 0),
                   term=terms.get(cid, ""), extracted=cid in chosen,
                   stuck=cid == stuck_class or cid in edge)
    for nid in node_order:
        n = data["nodes"][nid]
        # the stuck e-node: the extracted one whose child is the stuck class (d(kront(A, X)))
        stuck = nid in pending or (stuck_class is not None and chosen.get(n["eclass"]) == nid
                                   and stuck_class in n["children"])
        G.add_node(("node", nshort[nid]), kind="enode", id=nshort[nid], egglog=nid, op=n["op"],
                   label=n["label"], symbol=symbol(n["op"], n["label"]), cost=n["cost"],
                   subsumed=n["subsumed"], eclass=cshort[n["eclass"]],
                   children=" ".join(cshort[ch] for ch in n["children"]),
                   rule=n.get("rule") or "", extracted=chosen.get(n["eclass"]) == nid,
                   stuck=stuck)
        G.add_edge(("class", cshort[n["eclass"]]), ("node", nshort[nid]), kind="member")
        for i, ch in enumerate(n["children"]):
            G.add_edge(("node", nshort[nid]), ("class", cshort[ch]), kind="child", index=i)
    G.graph["root"] = cshort[root] if root is not None else None
    G.graph["extracted"] = to_text(root_term) if root_term is not None else ""
    steps = getattr(source, "steps", None)
    if failed and getattr(s, "trail", None):
        steps = from_trail(s.trail, "df", "df")
    if steps:
        G.graph["steps"] = format_steps(steps).splitlines()
    growth = getattr(s, "growth", None)
    born, merges = growth.final(data) if growth is not None else ({}, [])
    made: dict[int, tuple[list[str], list[str]]] = {}  # step -> (e-nodes, classes), short ids
    for nid in node_order:
        if nid in born:
            made.setdefault(born[nid], ([], []))[0].append(nshort[nid])
    for k, cid in merges:
        kept = made.setdefault(k, ([], []))[1]
        if cshort[cid] not in kept:
            kept.append(cshort[cid])
    G.graph["inserted"] = made.pop(INPUT, ([], []))[0] if growth is not None else None
    G.graph["history"], G.graph["phases"] = saturation_history(source, s, made)
    if failed:
        G.graph["error"] = f"{source.kind}: {source.message}"
        rules = getattr(getattr(getattr(s, "p", None), "rs", None), "rules", None) or []
        by_class: dict[str, list[dict]] = {}
        for n in data["nodes"].values():
            by_class.setdefault(n["eclass"], []).append(n)
        G.graph["frontier"] = [_describe(data, by_class, c, cshort, terms, rules) for c in edge]
        first = stuck_class if stuck_class is not None else (edge[0] if edge else None)
        G.graph["stuck"] = cshort[first] if first is not None else None
        reason = str(getattr(getattr(source, "report", None), "stop_reason", "") or "")
        G.graph["stuck_text"] = stuck_text(G.graph["frontier"],
                                           reason if reason not in ("", "saturated") else None)
    return G


def saturation_history(source, s, made: dict | None = None) -> tuple[list[dict], list[dict]]:
    """The run's iterations and phases from its report (a failed derivation's may be partial;
    else the session's own records), as plain data: per iteration ``phase``, ``iteration``,
    ``enodes``, ``eclasses`` and ``matches`` (when recorded: None, ``{}`` otherwise),
    ``drawn``: whether it ran on the e-graph drawn (later phases, such as simplification, start
    a new e-graph from the extracted term; None when it cannot be told), ``appeared`` and
    ``merged``: how many e-nodes appeared and classes merged in it (None: not recorded), and
    ``new_nodes`` and ``merged_classes``: the e-nodes of the e-graph drawn that appeared in it
    and its classes that a merge in it made, by short id (``made``: the session's history
    index → both; None when not recorded or not drawn); per phase ``phase``,
    ``stop_reason`` and ``iterations``."""
    rep = getattr(source, "report", None)
    hist = list(getattr(rep, "history", None) or getattr(s, "history", None) or [])
    phases = list(getattr(rep, "phases", None) or getattr(s, "phases", None) or [])
    own = list(getattr(s, "history", None) or [])
    mine = {id(h): i for i, h in enumerate(own)}
    known = any(id(h) in mine for h in hist)
    out = []
    for h in hist:
        drawn = id(h) in mine if known else (h in own if own else None)
        at = mine.get(id(h)) if known else None
        recorded = made is not None and at is not None and h.get("appeared") is not None
        nodes, classes = (made or {}).get(at, ([], [])) if recorded else (None, None)
        out.append({"phase": str(h.get("phase", "")), "iteration": int(h.get("iteration", 0)),
                    "enodes": h.get("enodes"), "eclasses": h.get("eclasses"),
                    "matches": dict(h["matches"]) if "matches" in h else None, "drawn": drawn,
                    "seconds": round(float(h.get("seconds", 0.0)), 6),
                    "appeared": h.get("appeared"), "merged": h.get("merged"),
                    "new_nodes": None if nodes is None else list(nodes),
                    "merged_classes": None if classes is None else list(classes)})
    return out, [{"phase": str(p.get("phase", "")), "stop_reason": str(p.get("stop_reason", "")),
                  "iterations": int(p.get("iterations", 0))} for p in phases]


def _stuck_class(err, data: dict, terms: dict[str, str], chosen: dict[str, str]) -> str | None:
    """The class of the construct an error names (``... (in kront(A, X)) ...``): among the
    extracted term's classes first, then any class that extracts to that text."""
    m = re.search(r"\(in (.+?)\);", err.message) or re.search(r"\(in (.+)\)", err.message)
    if not m:
        return None
    text = m.group(1)
    for pool in (list(chosen), list(data["classes"])):
        hits = [c for c in pool if terms.get(c) == text]
        if hits:
            return hits[0]
    return None


#: at most this many rules are named per stuck e-node, and stuck terms described in words
NEAR_RULES, STUCK_LINES = 4, 8


def near_rules(rules, op: str, child_ops: set[str]) -> tuple[list[str], list[str]]:
    """The rules closest to matching an e-node ``op(E, …)`` whose first child class holds the
    operators ``child_ops``, each as ``name: lhs if conditions``: those with the same head
    operator and the same operator in the first argument (so a condition or a deeper argument
    failed), and the generic ones, whose first argument is a pattern variable (so a condition
    failed, or a run stopped on a limit before they had their turn); at most
    :data:`NEAR_RULES` in all."""
    exact, loose = [], []
    for r in rules:
        lhs = getattr(r, "lhs", None)
        if lhs is None or lhs.op != op:
            continue
        first = lhs.args[0].op if lhs.args else None
        if first is not None and first != "pvar" and first not in child_ops:
            continue
        conds = ", ".join(" ".join(map(str, c.args)) if c.kind == "cmp"
                          else f"{c.kind}({', '.join(map(str, c.args))})" for c in r.conditions)
        text = f"{r.name}: {(r.lhs_text or str(lhs)).strip()}" + (f" if {conds}" if conds else "")
        (loose if first in (None, "pvar") else exact).append(text)
    exact = exact[:NEAR_RULES]
    return exact, loose[:NEAR_RULES - len(exact)]


def _describe(data: dict, by_class: dict[str, list[dict]], cid: str, cshort: dict,
              terms: dict, rules) -> dict:
    """A stuck class: its id, shape, term, pending e-nodes as text (children by their terms)
    and, for each, the rules closest to matching it (``by_class``: class → its e-nodes)."""
    c = data["classes"][cid]
    out = {"class": cshort[cid], "shape": f"{_shown(c['rows'])}×{_shown(c['cols'])}",
           "term": terms.get(cid, ""), "nodes": []}
    for n in by_class.get(cid, []):
        if n["op"] not in PENDING:
            continue
        text = f"{n['op']}({', '.join(terms.get(ch, '?') for ch in n['children'])})"
        first = n["children"][0] if n["children"] else None
        ops = {m["op"] for m in by_class.get(first, [])}
        exact, generic = near_rules(rules, n["op"], ops)
        out["nodes"].append({"term": text, "near": exact, "generic": generic,
                             "child_ops": sorted(ops - PENDING)})
    out["nodes"].sort(key=lambda x: (len(x["term"]), x["term"]))
    return out


def stuck_text(edge: list[dict], limit: str | None = None) -> str:
    """The stuck frontier in words, a line per pending term: its class, the term, the rules
    closest to matching it (or that no rule has its head and argument on the left); with
    ``limit``, the stop reason of a run that ended on a limit rather than on saturation."""
    lines = []
    for f in edge:
        for n in f["nodes"]:
            what = n["term"].split("(", 1)[0]
            inner = "/".join(n["child_ops"]) or "…"
            if n["near"]:
                tail = f"closest rules: {'; '.join(n['near'] + n['generic'])}"
            else:
                tail = f"no rule has {what}({inner}(…)" + (", …" if what != "d" else "") \
                    + ") on its left-hand side" \
                    + (f"; rules with that head that did not apply: {'; '.join(n['generic'])}"
                       if n["generic"] else "")
            lines.append(f"stuck at {f['class']} ({f['shape']}): {n['term']} — {tail}")
    if len(lines) > STUCK_LINES:
        lines[STUCK_LINES:] = [f"… and {len(lines) - STUCK_LINES} more stuck terms (the HTML page "
                               "and the JSON list them all)"]
    if lines and limit:
        lines.append(f"(the run stopped on {limit}: the rules named may only have lacked time)")
    return "\n".join(lines)


def _top_class(data: dict, chosen: dict[str, str]) -> str | None:
    """The class of the extracted term's root: a chosen class no chosen e-node points to."""
    pointed = {ch for nid in chosen.values() for ch in data["nodes"][nid]["children"]}
    tops = [c for c in chosen if c not in pointed]
    return tops[0] if tops else None


def counts(G: nx.MultiDiGraph) -> tuple[int, int]:
    """(e-classes, e-nodes) of a graph from :func:`egraph_graph`."""
    kinds = [d["kind"] for _, d in G.nodes(data=True)]
    return kinds.count("eclass"), kinds.count("enode")


def _key(c) -> int:
    return int(c[1][1:])


def focus(G: nx.MultiDiGraph) -> list:
    """The extracted term's classes (root first), then their immediate neighbours: the
    children of their e-nodes and the classes with an e-node pointing into them."""
    term = sorted((c for c, d in G.nodes(data=True) if d["kind"] == "eclass" and d["extracted"]),
                  key=_key)
    inside = set(term)
    near: set = set()
    for c in term:
        for _, en in G.out_edges(c):
            near.update(ch for _, ch in G.out_edges(en))
        for en, _ in G.in_edges(c):
            near.update(p for p, _ in G.in_edges(en))
    return term + sorted(near - inside, key=_key)


def view(G: nx.MultiDiGraph, max_classes: int = 60, whole: bool = False) -> nx.MultiDiGraph:
    """The part to draw: by default the extracted term's classes and their immediate
    neighbours (:func:`focus`); with ``whole`` (or when nothing was extracted) every class,
    nearest the root first; a failure's stuck classes before any of them. At most
    ``max_classes`` classes (``0``: no cap), each with all
    its e-nodes. The graph's ``total`` holds the e-graph's class count, ``truncated`` whether
    classes were left out."""
    classes = sorted((c for c, d in G.nodes(data=True) if d["kind"] == "eclass"), key=_key)
    picked = classes if whole or not G.graph.get("root") else focus(G)
    stuck = [c for c in classes if G.nodes[c].get("stuck")]  # a failure's frontier: always kept
    picked = stuck + [c for c in picked if c not in stuck]
    if max_classes and max_classes > 0:
        picked = picked[:max_classes]
    nodes = set(picked)
    for c in picked:
        nodes.update(en for _, en in G.out_edges(c))
    H = G.subgraph(nodes).copy()
    H.graph.update(G.graph, truncated=len(picked) < len(classes), total=len(classes),
                   focus="all" if whole else "term")
    return H
