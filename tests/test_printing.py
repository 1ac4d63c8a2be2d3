"""Printed answers read one way only: where a matrix product meets ``.*`` or ``./`` (one
precedence level, left to right), the grouping is bracketed; printing then parsing keeps the
value and the shape, on the fuzz generator's objectives."""

from __future__ import annotations

import numpy as np
import pytest
from test_fuzz import ci_sample

import rewrite as rw
from rewrite.numeric import evaluate, instantiate_dims, random_point
from rewrite.printing import to_text

SH = {"A": (2, 3), "B": (3, 2), "C": (2, 2), "D": (2, 2), "c": ()}


@pytest.mark.parametrize("text, printed", [
    ("A*B .* C", "(A*B) .* C"),            # read as (A*B) .* C, never A*(B .* C)
    ("(C .* D)*A", "(C .* D)*A"),
    ("C .* (D*C)", "C .* (D*C)"),
    ("A*B ./ C", "(A*B) ./ C"),
    ("2*C .* D", "2*C .* D"),              # a scalar factor commutes with .*: no brackets
    ("c*C .* D", "c*C .* D"),
    ("(C .* D)*c", "c*(C .* D)"),          # numbers and scalars lead a product
])
def test_a_matrix_product_next_to_a_hadamard_product_is_bracketed(text, printed):
    t = rw.parse(text, SH).term
    assert to_text(t) == printed
    back = rw.parse(printed, SH).term
    env = random_point(t, np.random.default_rng(0), {})
    assert np.allclose(evaluate(t, env), evaluate(back, env))


def test_printing_round_trips_on_the_fuzz_objectives():
    """Print → parse is the identity on meaning (value and shape) for 300 generated objectives
    and their subterms that mix products with Hadamard products."""
    checked = mixed = 0
    for text, shapes in ci_sample()[:300]:
        t = rw.parse(text, shapes).term
        printed = to_text(t)
        back = rw.parse(printed, shapes).term
        assert back.shape == t.shape, (text, printed)
        rng = np.random.default_rng(1)
        dims = instantiate_dims(rw.parse(f"{text} + {printed}", shapes).term, rng)
        env = random_point(t, rng, dims)
        with np.errstate(all="ignore"):
            a, b = evaluate(t, env, dims=dims), evaluate(back, env, dims=dims)
        if np.all(np.isfinite(a)):
            assert np.allclose(a, b, rtol=1e-9, atol=1e-12), (text, printed)
            checked += 1
        mixed += (".*" in printed or "./" in printed) and "*" in printed.replace(".*", "")
    assert checked >= 250 and mixed >= 50, (checked, mixed)
