"""``python -m rewrite.cli``: the ``tracegrad`` command."""

import sys

from .main import main

sys.exit(main())
