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
