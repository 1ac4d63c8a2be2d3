"""The package's version, read from its installed metadata (``pyproject.toml`` is its one source).

>>> VERSION.count(".") >= 1
True
"""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("tracegrad")
except PackageNotFoundError:  # pragma: no cover - run from a source tree that was not installed
    VERSION = "0+unknown"
