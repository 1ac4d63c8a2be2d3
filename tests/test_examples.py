"""Every script in examples/ runs to completion: exit code 0, its own assertions hold, last line 'ok'."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script):
    proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stdout.strip().splitlines()
    assert lines and lines[-1] == "ok", proc.stdout
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_checks_its_results(script):
    """Each example checks its own results with assertions and says what it shows."""
    source = script.read_text()
    assert source.count("assert ") >= 2
    assert source.lstrip().startswith('"""')  # a docstring saying what it shows and how to run it
