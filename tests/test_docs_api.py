"""The examples in docs/api.md run as doctests, so the API reference stays true."""

import doctest
from pathlib import Path

API = Path(__file__).parent.parent / "docs" / "api.md"


def test_api_reference_examples_run():
    result = doctest.testfile(str(API), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 10
    assert result.failed == 0
