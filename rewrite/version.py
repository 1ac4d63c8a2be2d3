"""The package's version (its one source: ``pyproject.toml`` reads it from here at build time).

>>> VERSION.count(".") >= 1
True
"""

VERSION = "0.1.0"
