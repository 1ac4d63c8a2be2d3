"""The first minutes of a new user: parse errors in words with a caret under the position,
hints for syntax from other tools, ``tracegrad functions``, ``--check`` domain options that say
which one would help, and short reprs of results."""

import subprocess
import sys

import pytest

import rewrite as rw
from rewrite.cli import main


def run(argv, capsys):
    status = main(argv)
    cap = capsys.readouterr()
    return status, cap.out, cap.err


def test_missing_paren_is_named_with_a_caret(capsys):
    status, _, err = run(["grad", "tr(X'*A*X", "--wrt", "X"], capsys)
    assert status == 2
    assert err.splitlines() == ["tracegrad: parse error: 1:10: missing ')' to close '(' at 1:3",
                                "  tr(X'*A*X",
                                "           ^"]


def test_parse_error_api_is_stable():
    with pytest.raises(rw.ParseError) as e:
        rw.parse("tr(X'*A*X")
    assert e.value.message == "missing ')' to close '(' at 1:3"
    assert e.value.position == (1, 10)
    assert e.value.text == "tr(X'*A*X"


@pytest.mark.parametrize("text,message", [
    ("X'')", "unexpected ')'; expected an operator or the end of the expression"),
    ("tr(X'*A*)", "unexpected ')'; expected an operand (a name, a number or '(')"),
    ("a +", "unexpected end of input; expected an operand"),
    ("X\\'", "unexpected \"'\"; expected an operand (a name, a number or '(')"),
])
def test_expected_tokens_in_words(text, message):
    with pytest.raises(rw.ParseError) as e:
        rw.parse(text)
    assert e.value.message == message
    assert "'''" not in e.value.message and "'\\\\'" not in e.value.message


@pytest.mark.parametrize("text,hint", [
    ("X.T @ A", "NumPy's X.T is X', '@' is '*'; try X'*A"),
    ("x^T A x", "x^T is x'; try x'*A*x"),
    ("A @ B", "'@' is '*'; try A*B"),
    ("np.trace(X)", "no 'np.' prefix: functions are called by name; try trace(X)"),
    ("X**2", "'**' is '^' (matrix power) or '.^' (elementwise); try X.^2"),
    ("x A", "a product needs '*' (juxtaposition is not multiplication); try x*A"),
    ("2X", "a product needs '*' (juxtaposition is not multiplication); try 2*X"),
    ("x^T*A*x", "the transpose is written x' (x^T is a power)"),
])
def test_foreign_syntax_hints(text, hint, capsys):
    status, out, err = run(["grad", text, "--wrt", "x" if "x" in text else "X"], capsys)
    assert status == 2 and out == ""
    assert "Traceback" not in err
    assert hint in err.splitlines()[0]
    assert err.splitlines()[2].strip() == "^"


def test_foreign_hints_never_change_valid_input():
    t = rw.parse("x^T", {"x": (), "T": ()})  # x to the power T, both declared scalars
    assert t.term.op == "epows"
    assert str(rw.simplify("X'*A")) == "X'*A"


def test_caret_window_on_a_long_line(capsys):
    text = "(" * 10000 + "X" + ")" * 10001
    status, _, err = run(["grad", text, "--wrt", "X"], capsys)
    lines = err.splitlines()
    assert status == 2 and len(lines) == 3 and max(map(len, lines[1:])) < 100


def test_json_errors_stay_one_line(capsys):
    status, _, err = run(["grad", "tr(X'*A*X", "--wrt", "X", "--format", "json"], capsys)
    assert status == 2 and err.count("\n") == 1 and "missing ')'" in err


def test_functions_lists_builtins_and_declared(capsys, tmp_path):
    status, out, err = run(["functions"], capsys)
    assert status == 0 and err == ""
    assert "  tr(A)" in out and "trace of a square matrix" in out
    assert "  kron(A, B)" in out
    assert "sigmoid(x)" in out and "f'(x) = (1 - sigmoid(x)) .* sigmoid(x)" in out
    assert "functions.rules:" in out
    rules = tmp_path / "cube.rules"
    rules.write_text("function cube(x) = x^3\n")
    status, out, _ = run(["functions", "--rules", str(rules)], capsys)
    assert status == 0 and "  cube(x)      f'(x) = 3 .* x .^ 2" in out and "cube.rules:1" in out


def test_functions_as_json(capsys):
    import json

    status, out, _ = run(["functions", "--format", "json"], capsys)
    data = json.loads(out)
    assert status == 0
    assert {"name": "tr", "call": "tr(A)", "meaning": "trace of a square matrix"} in data["builtin"]
    sigmoid = next(f for f in data["elementwise"] if f["name"] == "sigmoid")
    assert sigmoid["derivative"] == "(1 - sigmoid(x)) .* sigmoid(x)"
    assert sigmoid["source"].startswith("functions.rules:")


def test_every_builtin_has_help():
    from rewrite.parse import BUILTIN_CALLS, BUILTIN_HELP
    assert set(BUILTIN_HELP) == set(BUILTIN_CALLS)


@pytest.mark.parametrize("argv,hint,fixed", [
    (["grad", "sum(log(x))", "--wrt", "x", "--shape", "x=3"], "try --positive x",
     ["--positive", "x"]),
    (["grad", "logdet(S)", "--wrt", "S", "--shape", "S=3,3"], "try --spd S", ["--spd", "S"]),
    (["jacobian", "log(x)", "--wrt", "x", "--shape", "x=3"], "try --positive x",
     ["--positive", "x"]),
])
def test_check_says_which_domain_option_helps(argv, hint, fixed, capsys):
    status, _, err = run([*argv, "--check"], capsys)
    assert status == 2 and err.rstrip().endswith(hint) and "Traceback" not in err
    status, _, err = run([*argv, "--check", *fixed], capsys)
    assert status == 0 and "check: matches finite differences" in err


def test_short_reprs():
    g = rw.gradient("tr(X'*A*X)", "X", {"X": ("n", "k"), "A": ("n", "n")})
    assert repr(g).startswith("Gradient(\"(A + A')*X\", wrt=X, stop=goal, ")
    assert repr(g).endswith(" ms)") and "Report" not in repr(g)
    assert g.report.stop_reason == "goal"
    h = rw.hessian("x'*A*x", "x", {"x": ("n",), "A": ("n", "n")})
    assert repr(h).startswith("Hessian(\"A + A'\", wrt=x, stop=goal, ")
    v = rw.hvp("x'*A*x", "x", {"x": ("n",), "A": ("n", "n")})
    assert repr(v).startswith("HVP(") and "direction=V" in repr(v)


def test_subprocess_parse_error_has_caret_and_no_traceback():
    out = subprocess.run([sys.executable, "-m", "rewrite.cli", "grad", "X.T @ A", "--wrt", "X"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "try X'*A" in out.stderr and out.stderr.splitlines()[1] == "  X.T @ A"


def test_a_rule_file_error_shows_the_line_with_a_caret(capsys, tmp_path):
    bad = tmp_path / "bad.rules"
    bad.write_text("ruleset mine in close\nr1 : tr(A + ) = tr(A)\n")
    for argv in (["check-rules", str(bad)], ["grad", "tr(A*X)", "--wrt", "X", "--rules", str(bad)]):
        status, _, err = run(argv, capsys)
        assert status == 2
        assert err.splitlines()[1:] == ["  r1 : tr(A + ) = tr(A)", "              ^"]
        assert "bad.rules:2:13: r1: left-hand side: unexpected ')'" in err
