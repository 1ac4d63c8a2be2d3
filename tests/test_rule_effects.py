"""Each rule's effect, seen in a result: what simplify prints, what tidy alone leaves, what
``equivalent`` proves.

A rule that no result shows is either redundant or untested (tests/mutation.py deletes one rule
at a time and requires some check to notice). These tables name, for the rules that the
gradient cases do not already pin down, one input whose printed result needs that rule; every
entry is checked by value as well (the result equals the input at a random point), so a golden
text never stands alone.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import check_same_value

import rewrite as rw
from rewrite.numeric import gradient_error
from rewrite.printing import to_text
from rewrite.rulefile import SUBSUMING_PHASES
from rewrite.stock import stock_ruleset

MN = {"A": ("m", "n")}
AB = {"A": ("m", "n"), "B": ("m", "n")}
SQ = {"A": ("n", "n")}
C = {"c": ()}
KRON = {"A": ("m", "n"), "B": ("p", "q"), "c": ()}
T3 = {"A": ("m", "n"), "B": ("m", "n"), "C": ("m", "n"), "W": ("n", "m")}
FACTOR_L = {"A": ("n", "p"), "B": ("n", "p"), "C": ("m", "n"), "W": ("m", "p")}
FACTOR_R = {"A": ("m", "n"), "B": ("m", "n"), "C": ("n", "p"), "W": ("m", "p")}
RECIP = {"A": ("m", "n"), "W": ("n", "m"), "c": ()}

#: (rule, input, shapes, what simplify prints)
SIMPLIFY = [
    ("id-sum-t", "sum(A')", MN, "sum(A)"),
    ("id-tr-scale", "tr(c*A) + c*tr(A)", {"A": ("n", "n"), "c": ()}, "2*c*tr(A)"),
    ("kron-eye1-r", "kron(A, eye(1))", MN, "A"),
    ("kron-scalar-l", "kron(c, B)", KRON, "c*B"),
    ("kron-scalar-r", "kron(A, c)", KRON, "c*A"),
    ("kron-scale-r", "kron(A, c*B)", KRON, "c*kron(A, B)"),
    ("kron-t", "kron(A, B)'", KRON, "kron(A', B')"),
    ("kront-kront", "kront(A, B)*kront(C, D)",
     {"A": ("m", "n"), "B": ("p", "q"), "C": ("q", "r"), "D": ("n", "s")}, "kron(A*D, B*C)"),
    ("kront-scale-l", "kront(c*A, B)", KRON, "c*kront(A, B)"),
    ("kront-scale-r", "kront(A, c*B)", KRON, "c*kront(A, B)"),
    ("kront-vec-l", "kront(a, B)", {"a": ("m",), "B": ("p", "q")}, "kron(a, B)"),
    ("kront-vec-r", "kront(A, b)", {"A": ("m", "n"), "b": ("p",)}, "kron(A, b)"),
    ("ml-center-row", "(A - A*ones(n)*ones(n)' ./ sum(ones(n)))*ones(n)", MN, "0*ones(m)"),
    ("s-mpow-l", "A^4*A", SQ, "A^5"),
    ("s-mpow-r", "A*A^4", SQ, "A^5"),
    ("s-sigmoid-d", "exp(A) ./ (1 + exp(A))", MN, "sigmoid(A)"),
    ("tidy-det-scalar", "det(c)", C, "c"),
    ("tidy-diag-ones", "diag(ones(m))", {}, "eye(m)"),
    ("tidy-fold-add", "3 - 2", {}, "1"),
    ("tidy-inv-scalar", "inv(c)", C, "1 ./ c"),
    ("tidy-logdet-scalar", "logdet(c)", C, "log(c)"),
    ("tidy-mpow-neg", "A^-1", SQ, "inv(A)"),
    ("tidy-mpow-one", "A^1", SQ, "A"),
    ("tidy-sum-num", "sum(-2*A)", MN, "-2*sum(A)"),
    ("tidy-sum-scalar", "sum(c)", C, "c"),
    ("tidy-t-had", "(A .* B)'", AB, "A' .* B'"),
    ("tidy-t-hdiv", "(A ./ B)'", AB, "A' ./ B'"),
    ("tidy-t-ones", "(ones(m)*ones(n)')'", {}, "ones(n)*ones(m)'"),
    ("tidy-tr-num", "tr(3*A)", SQ, "3*tr(A)"),
    ("tidy-vec-scale", "vec(1.25*A)", MN, "1.25*vec(A)"),
    ("vec-hdiv", "vec(A) ./ vec(B)", AB, "vec(A ./ B)"),
    ("id-inv-inv", "sum(diag(inv(inv(X'*X + eye(p)))))", {"X": ("n", "p")}, "fro2(X) + tr(eye(p))"),
    ("s-zero-scalar", "fro2(0*b)", {"b": ("n",)}, "0"),
    ("tidy-diag-fill", "diag(ones(n)*ones(1)')", {}, "eye(n)"),
    ("id-t-scale", "sum(diag(diag(diag(c)) .* vec(kron(sum(a), sum(a)))))", {"a": ("n",), "c": ()},
     "c*sum(a)^2"),
    ("tidy-fold-mul", "-(c*d - 2)", {"c": (), "d": ()}, "2 - c*d"),
    ("t-had", "c*tr(inv(B) .* max(A, eye(n))')", {"A": ("n", "n"), "B": ("n", "n"), "c": ()},
     "c*tr((A + relu(eye(n) - A)) .* inv(B)')"),
    ("had-comm", "tr((A*B - c) .* -eye(n))", {"A": ("n", "n"), "B": ("n", "n"), "c": ()},
     "tr(c*eye(n) - eye(n) .* (A*B))"),
    ("id-sum-scale", "sum(M*(-fro2(N)))", {"M": ("m", "n"), "N": ("m", "n")}, "-fro2(N)*sum(M)"),
    ("t-t", "sum(c + A')", {"A": ("m", "n"), "c": ()}, "sum(c + A)"),
    ("id-kron-t", "kron(A, c)'*kron(A, c)", {"A": ("m", "n"), "c": ()}, "fro2(c)*A'*A"),
    ("id-kron-mixed", "logdet(kron(A, c)'*kron(A, c) + eye(n))", {"A": ("m", "n"), "c": ()},
     "logdet(fro2(c)*A'*A + eye(n))"),
    ("t-mul", "sum(B'*A')", {"A": ("m", "n"), "B": ("n", "p")}, "sum(A*B)"),
    ("id-had-assoc", "tr(W*(A .* B .* C)) - tr(W*(A .* (B .* C)))", T3, "0"),
    ("id-logdet-inv", "2*logdet(inv(A))", SQ, "-2*logdet(A)"),
    ("id-had-dist-l", "A .* (B + C) - A .* B", T3, "A .* C"),
    ("id-sum-add", "sum(A + B) - sum(A)", T3, "sum(B)"),
    ("s-add-assoc", "A - B + B", T3, "A"),
    ("s-factor-l", "C*A + C*B + W - (C*(A + B) + W)", FACTOR_L, "0*ones(m)*ones(p)'"),
    ("s-factor-r", "A*C + B*C + W - ((A + B)*C + W)", FACTOR_R, "0*ones(m)*ones(p)'"),
    ("s-recip-l", "tr(W*(c*((1 ./ c)*A))) - tr(W*A)", RECIP, "0"),
    ("s-recip-r", "tr(W*(c*A ./ c)) - tr(W*A)", RECIP, "0"),
    ("s-add-coef-r", "tr(W*(A - 2*A))", T3, "tr(-W*A)"),
    ("s-scale-had", "(c*(A .* B)) .* C", {"A": ("m", "n"), "B": ("m", "n"), "C": ("m", "n"), "c": ()},
     "c*(A .* B .* C)"),
] + [(f"tidy-t-fn[{f}]", f"{f}(A)'", MN, f"{f}(A')") for f in
     ("abs", "cos", "log", "sigmoid", "sign", "sin", "softplus", "sqrt", "step", "tanh")]

#: (rule, objective, variable, shapes, the gradient printed)
GRADIENTS = [
    ("s-scale-hadr", "norm2(vec(X .* X + 1))", "X", {"X": ("n", "p")},
     "2*(X .* (X.^2 + 1)) ./ norm2(vec(X.^2 + 1))"),
    ("tidy-one-r", "abs(1 ./ (x'*X'*X*x + 1))", "X", {"X": ("n", "p"), "x": ("p",)},
     "-2*X*x*(sign(1 ./ (x'*X'*X*x + 1)) ./ (x'*X'*X*x + 1)^2)*x'"),
    ("s-num-out", "logdet((1.5*(c*X*a'))'*(1.5*(c*X*a')) + eye(n))", "X",
     {"X": (), "c": ("m",), "a": ("n",)}, "4.5*sum(X*inv(2.25*X^2*a*c'*c*a' + eye(n))' .* (a*c'*c*a'))"),
    ("s-t-inv", "det(kron(ones(m)*ones(n)', a'*X*b)'*kron(ones(m)*ones(n)', a'*X*b) + eye(n))^2", "X",
     {"X": ("p", "q"), "a": ("p",), "b": ("q",)},
     "2*a*sum(2*(a'*X*b)*det((a'*X*b)^2*(ones(n)*ones(m)')*(ones(m)*ones(n)') + eye(n))^2"
     "*(inv((a'*X*b)^2*(ones(n)*ones(m)')*(ones(m)*ones(n)') + eye(n))' .* "
     "(ones(n)*ones(m)'*(ones(m)*ones(n)'))))*b'"),
    ("s-num-first", "fro2(tr(c*A)*(b - M*X*x))", "X",
     {"A": ("m", "m"), "c": (), "b": ("m",), "M": ("m", "n"), "X": ("n", "p"), "x": ("p",)},
     "-2*tr(c*A)^2*M'*(b - M*X*x)*x'"),
    # X a row; the names put the cancelling terms apart in the canonical order of the sum
    ("id-s-zero-l", "tr(W*(step(a*X*C)*(v*X*P - (v*X*P - u*X*Q))))", "X",
     {"X": (1, "n"), "W": ("p", "p"), "a": ("p",), "C": ("n", "n"), "u": ("n",), "v": ("n",),
      "P": ("n", "p"), "Q": ("n", "p")}, "u'*step(C'*X'*a')*W'*Q'"),
]

#: (rule, input, shapes, what tidy alone leaves: the form a derivation starts from, and the one
#: a simplification that changed the value falls back to)
TIDY = [
    ("tidy-diag-scalar", "diag(c)", C, "c"),
    ("tidy-epow-one", "A.^1", MN, "A"),
    ("tidy-one", "1*(A + B)", AB, "A + B"),
    ("tidy-fold-div", "3 ./ -2", {}, "-1.5"),
    ("tidy-had-col-l", "ones(m) .* a", {"a": ("m",)}, "a"),
    ("tidy-had-fill-l", "(c*(ones(m)*ones(n)')) .* A", {"A": ("m", "n"), "c": ()}, "c*A"),
    ("tidy-had-ones-l", "(ones(m)*ones(n)') .* A", MN, "A"),
    ("tidy-had-ones-r", "A .* (ones(m)*ones(n)')", MN, "A"),
    ("tidy-inv-inv", "inv(inv(A))", SQ, "A"),
    ("tidy-mul-eye-l", "eye(m)*A", MN, "A"),
    ("tidy-mul-eye-r", "A*eye(n)", MN, "A"),
    ("tidy-scale-eye-l", "c*eye(m)*A", {"A": ("m", "n"), "c": ()}, "c*A"),
    ("tidy-scale-eye-r", "A*(c*eye(n))", {"A": ("m", "n"), "c": ()}, "c*A"),
    ("tidy-t-eye", "eye(m)'", {}, "eye(m)"),
    ("tidy-t-scalar", "c'", C, "c"),
    ("tidy-tr-scalar", "tr(c)", C, "c"),
]

#: (rule, a, b, shapes): equivalent(a, b) is proved
PROVED = [
    ("vec-add-1", "vec(A) + 1", "vec(A + 1)", MN),
    ("vec-add-c", "vec(A) + c", "vec(A + c)", {"A": ("m", "n"), "c": ()}),
    ("vec-epows", "vec(A).^k", "vec(A.^k)", {"A": ("m", "n"), "k": ()}),
    ("vec-scale-c", "c*vec(A)", "vec(c*A)", {"A": ("m", "n"), "c": ()}),
    ("kron-id-l", "kron(eye(2), eye(3))*A", "A", {"A": (6, "n")}),
    ("ml-center-col", "ones(m)'*(A - ones(m)*(ones(m)'*A) ./ sum(ones(m)))", "0*ones(m)'*A", MN),
    ("tidy-fill-col", "ones(m)*ones(1)'*ones(n)'", "ones(m)*ones(n)'", {}),
    ("tr-diag", "tr(A*diag(v))", "diag(A)'*v", {"A": ("n", "n"), "v": ("n",)}),
]


def tidied(engine: rw.Engine, expr: str, shapes: dict) -> str:
    """``expr`` after tidy's rules alone (one round of the tidy phase, as a derivation tidies its
    objective; no identities removed beforehand, as a simplification round does), printed."""
    out = engine.pipeline.run_round(engine.term(expr, shapes), ("tidy",), SUBSUMING_PHASES, None)
    return to_text(out[0]) if out is not None else "unextractable"


def same_value(a: str, b: str, shapes: dict) -> None:
    """``a`` and ``b`` have the same value at a random point where every function of the tables
    is defined: square matrices symmetric positive definite, the others entrywise positive."""
    square = {v for v, sh in shapes.items() if len(sh) == 2 and sh[0] == sh[1]}
    check_same_value(a, b, shapes, spd=square, positive=set(shapes) - square)


@pytest.mark.parametrize("rule, expr, shapes, printed", SIMPLIFY, ids=[r[0] for r in SIMPLIFY])
def test_simplify_prints(rule, expr, shapes, printed):
    got = str(rw.simplify(expr, shapes))
    assert got == printed, f"{rule}: simplify({expr}) printed {got}"
    same_value(expr, got, shapes)


@pytest.mark.parametrize("rule, expr, wrt, shapes, printed", GRADIENTS,
                         ids=[r[0] for r in GRADIENTS])
def test_gradient_prints(rule, expr, wrt, shapes, printed):
    g = rw.gradient(expr, wrt, shapes)
    assert str(g) == printed, f"{rule}: the gradient of {expr} printed {g}"
    assert gradient_error(g, np.random.default_rng(0))[2] < 1e-6


@pytest.mark.parametrize("rule, expr, shapes, printed", TIDY, ids=[r[0] for r in TIDY])
def test_tidy_leaves(rule, expr, shapes, printed):
    got = tidied(rw.default_engine(), expr, shapes)
    assert got == printed, f"{rule}: tidy left {got} of {expr}"
    same_value(expr, got, shapes)


@pytest.mark.parametrize("rule, a, b, shapes", PROVED, ids=[r[0] for r in PROVED])
def test_equivalent_proves(rule, a, b, shapes):
    assert rw.equivalent(a, b, shapes).proved, f"{rule}: {a} = {b} not proved"
    same_value(a, b, shapes)


def test_every_named_rule_is_a_stock_rule():
    names = {r.name for r in stock_ruleset().rules}
    named = [r[0] for r in SIMPLIFY + GRADIENTS + TIDY + PROVED]
    assert not set(named) - names, set(named) - names
    assert len(named) == len(set(named)), "a rule is named twice"
