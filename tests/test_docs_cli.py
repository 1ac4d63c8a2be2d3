"""The documented examples run: every CLI example in docs/*.md and README.md, and the Python
examples (doctest blocks) in docs/*.md.

CLI examples are found in fenced code blocks:
* a line ``$ tracegrad ...`` is a command; the lines after it (up to the next ``$`` line or the
  end of the block) are its expected output, stdout then stderr, with ``...`` matching anything;
  a last line ``[exit N]`` gives the expected exit status (0 otherwise);
* in ```` ```bash ```` blocks, every ``&&``-separated part starting with ``tracegrad `` is a
  command that must exit with 0 (its output is not shown).
"""

import doctest
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from rewrite.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
FILES = [ROOT / "README.md", *DOCS]
FENCE = re.compile(r"^(```+|~~~+)\s*(\S*)")


@dataclass
class Example:
    file: str
    line: int
    command: str
    expected: str | None  # None: output not checked
    status: int


def fenced_blocks(text: str):
    """(info string, first line number, lines) of each fenced code block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i].strip())
        if not m:
            i += 1
            continue
        fence, info, start, body = m.group(1), m.group(2), i + 2, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1
        yield info, start, body


def examples_in(path: Path) -> list[Example]:
    out = []
    for info, start, body in fenced_blocks(path.read_text(encoding="utf-8")):
        j = 0
        while j < len(body):
            line = body[j].strip()
            if line.startswith("$ tracegrad "):
                k = j + 1
                while k < len(body) and not body[k].lstrip().startswith("$ "):
                    k += 1
                shown = body[j + 1:k]
                status = 0
                if shown and re.fullmatch(r"\[exit (\d+)\]", shown[-1].strip()):
                    status = int(shown.pop().strip()[6:-1])
                out.append(Example(path.name, start + j, line[2:], "\n".join(shown), status))
                j = k
                continue
            if info in ("bash", "sh", "shell") and "tracegrad " in line and not line.startswith("$"):
                for part in line.split("&&"):
                    if part.strip().startswith("tracegrad "):
                        out.append(Example(path.name, start + j, part.strip(), None, 0))
            j += 1
    return out


EXAMPLES = [e for f in FILES for e in examples_in(f)]


def run(command: str, capsys) -> tuple[int, str]:
    argv = shlex.split(command)
    assert argv[0] == "tracegrad"
    try:
        status = main(argv[1:])
    except SystemExit as exc:  # --help, --version, usage errors
        status = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return status, captured.out + captured.err


@pytest.mark.parametrize("ex", EXAMPLES, ids=[f"{e.file}:{e.line}" for e in EXAMPLES])
def test_documented_cli_example(ex: Example, capsys):
    status, output = run(ex.command, capsys)
    assert status == ex.status, f"{ex.file}:{ex.line}: {ex.command}\n{output}"
    if ex.expected is not None:
        checker = doctest.OutputChecker()
        want = ex.expected + "\n" if ex.expected else ""
        assert checker.check_output(want, output, doctest.ELLIPSIS), (
            f"{ex.file}:{ex.line}: {ex.command}\nexpected:\n{want}got:\n{output}")


def test_examples_were_found():
    files = {e.file for e in EXAMPLES}
    assert {"README.md", "cli.md"} <= files
    assert sum(e.file == "cli.md" for e in EXAMPLES) >= 10
    assert any(e.status != 0 for e in EXAMPLES), "error examples are documented too"


def test_every_subcommand_is_documented():
    """Each registered subcommand has a run example in docs/cli.md, or a marked section for it."""
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    documented = {shlex.split(e.command)[1] for e in EXAMPLES if e.file == "cli.md"}
    for name in COMMANDS:
        assert name in documented or f"<!-- section: {name}" in text, name


def test_parser_finds_commands_outputs_and_status(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("text\n```console\n$ tracegrad equiv a b\nout\n[exit 2]\n$ tracegrad x\n```\n"
                   "```bash\npip install . && tracegrad grad y --wrt y\n```\n"
                   "```text\ntracegrad grad EXPR\n```\n")
    got = examples_in(doc)
    assert [(e.line, e.command, e.expected, e.status) for e in got] == [
        (3, "tracegrad equiv a b", "out", 2), (6, "tracegrad x", "", 0),
        (9, "tracegrad grad y --wrt y", None, 0)]


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_python_examples_in_docs(path):
    result = doctest.testfile(str(path), module_relative=False, optionflags=doctest.ELLIPSIS,
                              verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} failing example(s) in {path.name}"


def test_the_readme_transcript_ends_with_the_summary_line_pytest_prints():
    """The README's first session shows the test run's last line in the form pytest prints it
    with the README's test command (its ``tracegrad`` lines run as examples above)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## A first session", 1)[1].split("\n## ", 1)[0]
    body = next(b for _, _, b in fenced_blocks(section))
    at = body.index("$ python -m pytest")
    assert re.fullmatch(r"\d+ passed(, \d+ (skipped|xfailed|warnings?))* in \d+\.\d\ds \(\d+:\d\d:\d\d\)",
                        body[-1]), body[-1]
    assert at < len(body) - 1
    import tomllib
    opts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    assert " -q" in f" {opts}" and "-rs" in opts  # -q: the summary is that bare line; -rs: skips say why
