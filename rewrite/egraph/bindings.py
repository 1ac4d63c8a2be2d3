"""egglog's compiled e-graph, loaded once for the package (the one import of egglog).

The engine uses only egglog's low-level bindings (``EGraph``, ``parse_program``,
``run_program``, serialization), never its Python front end; :func:`egglog_bindings` loads them
without importing that front end, which costs ~0.2 s of every start.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
from pathlib import Path


def egglog_bindings():
    """egglog's compiled module (the e-graph itself), loaded without egglog's Python front end.

    ``import egglog.bindings`` first runs ``egglog/__init__``, which imports egglog's whole
    Python API (with black, for pretty-printing): ~0.2 s of every process's start, for nothing
    the engine uses. So the extension module is loaded on its own, under its usual name; should
    the egglog package be imported later, a one-shot import hook gives it its ``bindings``
    attribute as the normal import would have. If egglog is already imported, or its layout is
    not the expected one, this is the normal import.
    """
    if "egglog" not in sys.modules and "egglog.bindings" not in sys.modules:
        try:
            spec = importlib.util.find_spec("egglog")
            where = [Path(p) for p in (spec.submodule_search_locations or [])]
            path = next(d / f"bindings{suffix}" for d in where
                        for suffix in importlib.machinery.EXTENSION_SUFFIXES
                        if (d / f"bindings{suffix}").is_file())
            bspec = importlib.util.spec_from_file_location("egglog.bindings", path)
            module = importlib.util.module_from_spec(bspec)
            sys.modules["egglog.bindings"] = module
            bspec.loader.exec_module(module)
            sys.meta_path.insert(0, _BindingsAttribute())
            return module
        except Exception:  # pragma: no cover - another layout: the normal import below
            sys.modules.pop("egglog.bindings", None)
    import egglog.bindings

    return egglog.bindings


class _BindingsAttribute(importlib.abc.MetaPathFinder):
    """When the egglog package is imported after its bindings were loaded on their own, set its
    ``bindings`` attribute before its ``__init__`` runs (then leave the import system)."""

    def find_spec(self, name, path=None, target=None):
        if name != "egglog":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _WithBindings(spec.loader)
        return spec


class _WithBindings(importlib.abc.Loader):
    def __init__(self, loader) -> None:
        self._loader = loader

    def __getattr__(self, name: str):  # get_code, get_resource_reader, … of the real loader
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.bindings = sys.modules["egglog.bindings"]
        self._loader.exec_module(module)


eg = egglog_bindings()

# egglog logs a failed extraction before raising it; the engine turns the failure into a typed
# error (or a documented fallback), so the log line would only be noise on a user's stderr.
logging.getLogger("egglog.extract").setLevel(logging.CRITICAL)


def schedule(text: str):
    """A ``(run-schedule …)`` of ``run``, ``seq``, ``saturate`` and ``repeat`` as egglog's own
    command, built directly.

    Parsed text gives the extended scheduler's command, which runs the same schedule but costs
    ~15 µs more per call (the bindings try every other kind of command before it) and does not
    report a saturation's last, unchanged iteration; this one reports every iteration.

    >>> print(schedule("(run-schedule (repeat 2 (saturate (run h)) (seq (run a) (run b))))"))
    (run-schedule (seq (repeat 2 (seq (saturate (seq (run h))) (seq (run a) (run b))))))
    """
    tokens = text.replace("(", " ( ").replace(")", " ) ").split()
    pos = 0

    def read():
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok != "(":
            return tok
        out = []
        while tokens[pos] != ")":
            out.append(read())
        pos += 1
        return out

    def build(s):
        head, rest = s[0], s[1:]
        if head == "run" and len(rest) == 1:
            return eg.Run(_SPAN, eg.RunConfig(rest[0], None))
        if head == "seq":
            return eg.Sequence(_SPAN, [build(x) for x in rest])
        if head == "saturate":
            return eg.Saturate(_SPAN, eg.Sequence(_SPAN, [build(x) for x in rest]))
        if head == "repeat":
            return eg.Repeat(_SPAN, int(rest[0]), eg.Sequence(_SPAN, [build(x) for x in rest[1:]]))
        raise ValueError(f"not a schedule this builder knows: {s!r}")

    top = read()
    if top[0] != "run-schedule" or pos != len(tokens):
        raise ValueError(f"not one run-schedule command: {text!r}")
    return eg.RunSchedule(eg.Sequence(_SPAN, [build(x) for x in top[1:]]))


_SPAN = eg.EGraph().parse_program("(run r 1)")[0].schedule.span
