"""The package's layers, read from the source (ARCHITECTURE.md): every import — at module level or
inside a function — goes to the same or a lower layer, the import graph has no circle, no
``_private`` name is imported from another module, only ``rewrite/egraph/`` imports egglog, and
every module says its job in a docstring."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent

#: bottom to top; a module imports only modules of its own layer or a lower one
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("leaves", ("rewrite.errors", "rewrite.shapes", "rewrite.cache", "rewrite.report", "rewrite.version")),
    ("language", ("rewrite.terms", "rewrite.syntax", "rewrite.printing", "rewrite.parse",
                  "rewrite.functions", "rewrite.algebra", "rewrite.temporaries")),
    ("rules as data", ("rewrite.rulefile", "rewrite.stock")),
    ("terms in, values or text out", ("rewrite.numeric", "rewrite.sympy_interop",
                                      "rewrite.check_rules", "rewrite.codegen")),
    ("e-graph", ("rewrite.egraph",)),
    ("derivations", ("rewrite.steps", "rewrite.pipeline")),
    ("results", ("rewrite.expr", "rewrite.second_order", "rewrite.verify", "rewrite.engine")),
    ("faces", ("rewrite", "rewrite.cli", "rewrite.web", "viz")),
]
#: what viz may use of the package (besides the public API)
VIZ_USES = ("rewrite.egraph.provenance", "rewrite.printing", "rewrite.terms", "rewrite.steps")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    out = {}
    for pkg in ("rewrite", "viz"):
        for p in sorted((ROOT / pkg).rglob("*.py")):
            out[module_name(p)] = p
    return out


MODULES = modules()


def layer_of(mod: str) -> int:
    best, rank = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for pre in prefixes:
            if (mod == pre or mod.startswith(pre + ".")) and len(pre) > best:
                best, rank = len(pre), i
    if rank is None:
        raise AssertionError(f"module {mod} is in no layer: add it to LAYERS and ARCHITECTURE.md")
    return rank


def imports(mod: str, path: Path) -> list[tuple[str, str, int]]:
    """(imported module, imported name or '', line) for every import of ``mod``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    here = mod.split(".") if is_pkg else mod.split(".")[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, "", node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                sub = f"{target}.{a.name}"
                if sub in MODULES:  # from . import second_order: the submodule itself
                    out.append((sub, "", node.lineno))
                else:
                    out.append((target, a.name, node.lineno))
    return out


def internal(target: str) -> str | None:
    """The module of the package that ``target`` names (a module or a package), else None."""
    while target:
        if target in MODULES:
            return target
        target = target.rpartition(".")[0]
    return None


def graph() -> nx.DiGraph:
    g = nx.DiGraph()
    for mod, path in MODULES.items():
        g.add_node(mod)
        for target, _, line in imports(mod, path):
            dep = internal(target)
            if dep is not None and dep != mod and not mod.startswith(dep + "."):
                g.add_edge(mod, dep, line=line)
    return g


def test_every_module_is_in_a_layer():
    for mod in MODULES:
        layer_of(mod)


def upward(edges) -> list[str]:
    """The edges (importer, imported, data) that go to a higher layer, described."""
    return [f"{a}:{data['line']}: {a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
            for a, b, data in edges if layer_of(b) > layer_of(a)]


def test_no_import_of_a_higher_layer():
    bad = upward(graph().edges(data=True))
    assert not bad, "\n".join(bad)


def test_the_import_graph_has_no_circle():
    # a package's __init__ re-exports its modules: an edge into the package's own modules is
    # not a circle through the package
    g = graph()
    cycles = list(nx.simple_cycles(g))
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c + [c[0]]) for c in cycles[:10])


def test_no_private_name_is_imported_from_another_module():
    bad = []
    for mod, path in MODULES.items():
        for target, name, line in imports(mod, path):
            if name.startswith("_") and not name.startswith("__") and internal(target):
                bad.append(f"{path.relative_to(ROOT)}:{line}: from {target} import {name}")
    assert not bad, "\n".join(bad)


def test_only_the_egraph_package_imports_egglog():
    bad = []
    for mod, path in MODULES.items():
        for target, _, line in imports(mod, path):
            if (target == "egglog" or target.startswith("egglog.")) and not mod.startswith("rewrite.egraph"):
                bad.append(f"{path.relative_to(ROOT)}:{line}: imports {target}")
    assert not bad, "\n".join(bad)
    assert any(t.startswith("egglog") for m, p in MODULES.items() if m.startswith("rewrite.egraph")
               for t, _, _ in imports(m, p)), "the e-graph package no longer imports egglog?"


def test_viz_uses_only_the_egraph_provenance_printing_and_terms():
    bad = []
    for mod, path in MODULES.items():
        if not mod.startswith("viz"):
            continue
        for target, _, line in imports(mod, path):
            dep = internal(target)
            if dep and dep.startswith("rewrite") and dep != "rewrite" and not dep.startswith(VIZ_USES):
                bad.append(f"{path.relative_to(ROOT)}:{line}: imports {dep}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_every_module_says_its_job(mod):
    doc = ast.get_docstring(ast.parse(MODULES[mod].read_text(encoding="utf-8")))
    assert doc and len(doc.split()) >= 5, f"{mod} has no docstring saying what it is for"


def test_the_checks_can_fail():
    """The checkers themselves: an upward import and a circle are reported, function-level
    imports are read, relative imports resolve."""
    assert len(upward([("rewrite.terms", "rewrite.engine", {"line": 1})])) == 1
    assert not upward([("rewrite.engine", "rewrite.terms", {"line": 1})])
    assert list(nx.simple_cycles(nx.DiGraph([("a", "b"), ("b", "a")])))
    found = imports("rewrite.egraph.run", MODULES["rewrite.egraph.run"])
    assert ("rewrite.egraph.session", "Session", found[-1][2]) in found or any(
        t == "rewrite.egraph.session" for t, _, _ in found)
    tree_mod = "rewrite.engine"
    assert any(internal(t) == "rewrite.second_order" for t, _, _ in imports(tree_mod, MODULES[tree_mod]))
