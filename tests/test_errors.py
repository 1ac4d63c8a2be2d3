"""Bad input gets a typed error with a position; the CLI exits with code 2 and no traceback."""

import subprocess
import sys

import pytest

import rewrite as rw
from rewrite.cli import main


@pytest.mark.parametrize("text,pos", [
    ("tr(X'*A*X", (1, 10)), ("a +", (1, 4)), ("(a))", (1, 4)), ("a ** b", (1, 4)),
    ("a b", (1, 3)), ("x\u2019", (1, 2)), ("", (1, 1)), ("tr()", (1, 4)),
])
def test_parse_errors_have_positions(text, pos):
    with pytest.raises(rw.ParseError) as e:
        rw.parse(text)
    assert e.value.position == pos


@pytest.mark.parametrize("text,shapes,fragment", [
    ("A*B", {"A": (2, 3), "B": (4, 5)}, "2×3"),
    ("A + B", {"A": (2, 3), "B": (3, 2)}, "3×2"),
    ("tr(A)", {"A": (2, 3)}, "square"),
    ("det(A)", {"A": ("m", "n")}, "square"),
    ("A .* B", {"A": (2, 3), "B": (2, 2)}, "same shape"),
    ("A / B", {"A": (2, 3), "B": (2, 2)}, "1×1"),
    ("norm2(A)", {"A": (2, 3)}, "vector"),
])
def test_shape_errors_name_both_shapes(text, shapes, fragment):
    with pytest.raises(rw.ShapeError) as e:
        rw.parse(text, shapes)
    assert fragment in str(e.value)
    assert e.value.position is not None


def test_unknown_function():
    with pytest.raises(rw.UnsupportedError) as e:
        rw.parse("foo(X)")
    assert e.value.position == (1, 1)


def test_matrix_power_needs_integer():
    with pytest.raises(rw.UnsupportedError):
        rw.parse("X^0.5", {"X": (2, 2)})


@pytest.mark.parametrize("wrt", ["Y", "X*2", ["X"], ""])
def test_bad_wrt(wrt):
    with pytest.raises(rw.WrtError):
        rw.gradient("tr(X)", wrt, {"X": (2, 2)})


def test_matrix_valued_objective():
    with pytest.raises(rw.ShapeError):
        rw.gradient("X*A", "X", {"X": (2, 2), "A": (2, 2)})


def test_unsupported_gradient_is_an_error_not_a_guess():
    # no rule differentiates kront(A, X): a typed error that names the construct
    with pytest.raises(rw.UnsupportedError, match="kront"):
        rw.gradient("sum(kront(A, X))", "X", {"A": (2, 2), "X": (2, 3)})


def test_a_reshaped_seed_is_written_with_kron():
    """vec(X)'*a has a gradient (a reshaped to X's shape), written in the language with kron."""
    import numpy as np

    from rewrite.numeric import gradient_error

    g = rw.gradient("vec(X)'*a", "X", {"X": (2, 3), "a": (6,)})
    assert g.term.shape == (2, 3)
    assert gradient_error(g, np.random.default_rng(0))[2] < 1e-8


def test_deep_nesting_is_a_clean_error():
    with pytest.raises(rw.ParseError):
        rw.parse("(" * 10_000 + "x" + ")" * 10_000)


@pytest.mark.parametrize("argv", [
    ["grad", "tr(X'*A*X", "--wrt", "X"],
    ["grad", "tr(A*X)", "--wrt", "Y"],
    ["grad", "tr(A)", "--wrt", "A", "--shape", "A=2,3"],
    ["grad", "foo(X)", "--wrt", "X"],
    ["grad", "tr(X)", "--wrt", "X", "--rules", "/nonexistent.rules"],
])
def test_cli_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()  # the error; for an expression's error, its line and a caret
    assert len(lines) in (1, 3) and lines[0].startswith("tracegrad: ")
    assert len(lines) == 1 or lines[2].strip() == "^"


def test_cli_subprocess_no_traceback():
    p = subprocess.run([sys.executable, "-m", "rewrite.cli", "grad", "tr(X", "--wrt", "X"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "1:" in p.stderr


def test_cli_json_output(capsys):
    import json

    assert main(["grad", "tr(X'*A*X)", "--wrt", "X", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"expr", "wrt", "gradient", "differential", "latex", "report"}
    assert set(out["report"]) == {"stop_reason", "iterations", "eclasses", "enodes", "seconds"}


def test_cli_takes_an_expression_that_starts_with_a_minus(capsys):
    """A negative log-likelihood starts with '-': the command line reads it as the expression,
    not as an unknown option, and error positions stay those of the text typed."""
    from rewrite.cli import main

    assert main(["grad", "-x'*A*x", "--wrt", "x", "--shape", "x=n", "--shape", "A=n,n"]) == 0
    assert capsys.readouterr().out.strip() == "-(A + A')*x"
    assert main(["grad", "-x'*A*(x", "--wrt", "x", "--shape", "x=n", "--shape", "A=n,n"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tracegrad: parse error: 1:") and "Traceback" not in err


def test_a_non_scalar_objective_names_the_undeclared_variables():
    """An undeclared name is taken for a matrix; when that makes the objective non-scalar the
    error names it and says how to declare it, instead of advising tr()/sum()."""
    with pytest.raises(rw.ShapeError) as info:
        rw.gradient("x'*A*x + lam*x'*x", "x", {"x": ("n",), "A": ("n", "n")})
    msg = str(info.value)
    assert "lam was not declared" in msg and "--shape lam=" in msg and "wrap it" not in msg
    with pytest.raises(rw.ShapeError, match="wrap it in tr"):
        rw.gradient("A*x", "x", {"x": (3,), "A": (2, 3)})


@pytest.mark.parametrize("argv, declare", [
    (["x'*A*x", "--wrt", "x"],
     "declaring --shape A=n,n --shape x=n (API: shapes={'A': ('n', 'n'), 'x': ('n',)})"),
    (["fro2(X) + lam*tr(X)", "--wrt", "X", "--shape", "X=3,3"],
     "declaring --shape lam= (API: shapes={'lam': ()})"),
    (["lam*fro2(X) + tr(A*X)", "--wrt", "X", "--shape", "X=3,2"], "declaring --shape A=2,3 --shape lam="),
    (["norm2sq(X*w - y) + lam*norm2sq(w)", "--wrt", "w"],
     "declaring --shape X=n,m --shape lam= --shape w=m --shape y=n"),
])
def test_the_error_gives_the_exact_declarations_that_make_the_objective_a_scalar(argv, declare, capsys):
    """The suggested declarations are the ones a user means (vectors and matrices before
    scalars, no size forced to 1), and with them the gradient is computed."""
    from rewrite.cli import main

    assert main(["grad", *argv]) == 2
    err = capsys.readouterr().err
    assert declare in err and err.count("\n") == 1, err
    flags = err.split("declaring ", 1)[1].split(" (API")[0].split()
    assert main(["grad", *argv, *flags]) == 0, flags
    assert capsys.readouterr().out.strip()


@pytest.mark.parametrize("text, position, hint", [
    ("sum(sigmod(X))", (1, 5), "did you mean sigmoid"),
    ("norm(X*w)", (1, 1), "norm in other tools is norm2"),
    ("sum(frobenius(X))", (1, 5), "fro2"),
    ("sum(foo(X))", (1, 5), "known functions: abs, "),
])
def test_an_unknown_function_gets_a_next_step(text, position, hint, capsys):
    with pytest.raises(rw.UnsupportedError) as info:
        rw.gradient(text, "X", {"X": (3, 2), "w": (2,)})
    assert info.value.position == position and hint in info.value.message
    assert "function " in info.value.message and "docs/rules.md" in info.value.message  # how to declare
    assert main(["grad", text, "--wrt", "X", "--shape", "X=3,2", "--shape", "w=2"]) == 2
    err = capsys.readouterr().err
    assert hint in err and "Traceback" not in err


def test_equivalent_is_an_alias_of_equiv(capsys):
    assert main(["equivalent", "tr(A*B)", "tr(B*A)", "--shape", "A=2,3", "--shape", "B=3,2"]) == 0
    assert capsys.readouterr().out.strip() == "true"
    assert main(["equivalent", "A*B", "B*A", "--shape", "A=2,2", "--shape", "B=2,2"]) == 0
    assert capsys.readouterr().out.strip() == "false"
