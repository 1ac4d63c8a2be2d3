"""The checks by value (conftest: check_answer, check_derivative, check_gradient_text,
check_same_value) fail on wrong answers: a wrong value, a wrong layout of the right size, a
transposed or flattened shape, a wrong printed text. Without this, a check that cannot fail
would pass every test that uses it."""

import dataclasses

import pytest
from conftest import check_answer, check_derivative, check_gradient_text, check_same_value

import rewrite as rw

QUAD = {"X": ("n", "k"), "A": ("n", "n")}  # tr(X'*A*X): the Hessian is kron(eye(k), A' + A)


def _with_term(result, text: str, shapes: dict):
    return dataclasses.replace(result, term=rw.parse(text, shapes).term)


def test_check_answer_fails_on_wrong_gradients():
    g = rw.gradient("tr(X'*A*X)", "X", QUAD)
    check_answer(g)  # the right one passes
    with pytest.raises(AssertionError, match="relative error"):
        check_answer(_with_term(g, "2*(A + A')*X", QUAD))
    with pytest.raises(AssertionError, match="expected one of"):
        check_answer(g, "(A + A')*X + 0")
    v = rw.gradient("a'*x", "x", {"a": ("n",), "x": ("n",)})
    check_answer(v)
    with pytest.raises(AssertionError):  # a row where x is a column: the shape is wrong
        check_answer(_with_term(v, "a'", {"a": ("n",), "x": ("n",)}))


def test_check_derivative_fails_on_wrong_second_order_results():
    h = rw.hessian("tr(X'*A*X)", "X", QUAD)
    check_derivative(h, seeds=(0,))
    with pytest.raises(AssertionError, match="relative error"):  # the other vec layout, n ≠ k
        check_derivative(_with_term(h, "kron(A' + A, eye(k))", QUAD), seeds=(0,))
    with pytest.raises(AssertionError, match="relative error"):
        check_derivative(_with_term(h, "2*kron(eye(k), A' + A)", QUAD), seeds=(0,))
    hx = rw.hessian("x'*A*x", "x", {"x": ("n",), "A": ("n", "n")})
    with pytest.raises(AssertionError, match="not"):  # n²×1: the entries, not an n×n matrix
        check_derivative(_with_term(hx, "vec(A' + A)", {"A": ("n", "n")}), seeds=(0,))
    v = rw.hvp("tr(X'*A*X)", "X", QUAD)
    with_v = {**QUAD, "V": QUAD["X"]}
    with pytest.raises(AssertionError, match="relative error"):
        check_derivative(_with_term(v, "(A + A')*V + V", with_v), seeds=(0,))
    j = rw.jacobian("A*X*B", "X", {"A": ("m", "n"), "X": ("n", "p"), "B": ("p", "q")})
    jshapes = {"A": ("m", "n"), "B": ("p", "q")}
    check_derivative(j, seeds=(0,))
    with pytest.raises(AssertionError):  # the factors swapped: another size altogether
        check_derivative(_with_term(j, "kron(A, B')", jshapes), seeds=(0,))


def test_check_gradient_text_and_check_same_value_fail():
    shapes = {"A": (2, 3), "X": (3, 2)}
    check_gradient_text("tr(A*X)", "X", shapes, "A'")
    with pytest.raises(AssertionError):  # 2×3 where X is 3×2
        check_gradient_text("tr(A*X)", "X", shapes, "A")
    square = {"A": ("n", "n"), "X": ("n", "n")}
    with pytest.raises(AssertionError, match="relative error"):  # right shape, transposed
        check_gradient_text("tr(A*X)", "X", square, "A")
    with pytest.raises(AssertionError, match="differ"):
        check_same_value("tr(A)*2", "tr(A) + 1", {"A": ("n", "n")})
