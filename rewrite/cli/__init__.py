"""The ``tracegrad`` command line, on top of the library: :mod:`~rewrite.cli.main` (the parser
and the subcommands), :mod:`~rewrite.cli.options` (what they share), and the ``batch`` and
second-order subcommands in modules of their own.

>>> main(["grad", "tr(A*X)", "--wrt", "X", "--shape", "A=2,3", "--shape", "X=3,2"])
A'
0
"""

from .main import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]
