"""The rule-authoring tutorial (docs/rules.md) runs and says what its files hold.

Its ```python blocks are run here as one doctest session (in order, sharing names); its
``$ tracegrad`` examples are run with the other documented CLI examples (tests/test_docs_cli.py),
which this module checks it finds.  Commands and paths are relative to the repository root.
"""

import doctest
import os
import re
from pathlib import Path

import pytest
from test_docs_cli import examples_in, fenced_blocks

import rewrite as rw

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "rules.md"
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.rules"))


@pytest.fixture
def at_root():
    old = os.getcwd()
    os.chdir(ROOT)
    yield
    os.chdir(old)


def python_blocks() -> list[tuple[int, str]]:
    return [(start, "\n".join(body)) for info, start, body in fenced_blocks(DOC.read_text())
            if info == "python"]


def test_python_blocks_run_as_one_session(at_root):
    blocks = python_blocks()
    assert len(blocks) >= 6
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS, verbose=False)
    globs: dict = {}
    examples = 0
    for start, text in blocks:
        test = parser.get_doctest(text, globs, f"rules.md:{start}", str(DOC), start - 1)
        assert test.examples, f"rules.md:{start}: a python block without >>> examples"
        examples += len(test.examples)
        runner.run(test, clear_globs=False)
        globs = test.globs  # DocTest copies its globals: carry them to the next block
    failed, attempted = runner.summarize(verbose=False)
    assert failed == 0 and attempted == examples >= 20


def test_the_tutorial_covers_the_four_steps():
    text = DOC.read_text()
    for heading in ("## 1. Add a function", "## 2. Add an identity and see it fire",
                    "## 3. Catch a wrong rule with check-rules"):
        assert heading in text
    for api in ("rules=[", "rw.Engine(", "report.fired()", "rw.check_rules(", "ruleset exp-algebra in"):
        assert api in text, api


def test_the_cli_examples_are_found_and_include_a_failing_check():
    found = examples_in(DOC)
    assert sum("--rules docs/examples/" in e.command for e in found) >= 3
    assert any(e.command.startswith("tracegrad check-rules") and e.status == 1 for e in found)
    assert any("--verbose" in e.command and e.status == 0 for e in found)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_files_are_shown_verbatim(path):
    """Each file under docs/examples is shown in full in the tutorial (the rule-file tutorial, or
    the debugging walkthrough for the files it uses) and named there."""
    text = next(d.read_text() for d in (DOC, ROOT / "docs" / "debugging.md")
                if f"docs/examples/{path.name}" in d.read_text())
    shown = ["\n".join(body) for info, _, body in fenced_blocks(text) if info == "text"]
    assert path.read_text().rstrip("\n") in shown
    assert f"docs/examples/{path.name}" in text


def test_example_files_check_as_the_tutorial_says():
    assert {p.name for p in EXAMPLES} == {"softsign.rules", "exp_algebra.rules", "wrong.rules",
                                          "kront-d.rules", "kront.rules"}
    d = ROOT / "docs" / "examples"
    good = rw.check_rules([d / "softsign.rules", d / "exp_algebra.rules"])
    assert good.ok and not good.unverified and "d-fn[softsign]" in good.sound
    bad = rw.check_rules([d / "wrong.rules"])
    assert [u.rule for u in bad.unsound] == ["exp-product"]
    assert re.search(r"wrong\.rules:3$", bad.unsound[0].where)
    walkthrough = rw.check_rules([d / "kront.rules"])  # docs/debugging.md (the fixed file)
    assert walkthrough.ok and {"d-kront", "adj-kront-r"} <= set(walkthrough.sound)
