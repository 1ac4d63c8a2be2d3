"""Benchmarks a user can run: derivation latency, SymPy comparison, generated code vs autodiff.

Run ``python -m benchmarks.run --help`` (or ``python benchmarks/run.py``) from the repository root.
Results (JSON and PNG plots) go to ``benchmarks/results/``; ``BENCHMARKS.md`` is regenerated from
them. Speed is measured here, never by timed unit tests.
"""
