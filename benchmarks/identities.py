"""Part e: textbook identities that ``rewrite.equivalent`` should prove, and near misses it must not.

:data:`IDENTITIES` lists matrix identities from the textbooks (the Matrix Cookbook by section,
Magnus & Neudecker, definitions of the language's operators), each with explicit shapes —
non-square wherever the identity allows — and a citation; :data:`NEAR_MISSES` lists plausible but
false ones. For each, the benchmark records the engine's three-valued answer (proved, refuted,
unknown), the wall-clock time of the ``equivalent`` call (``time.perf_counter`` around it, the
rule program compiled once before; no result cache exists, and the process runs with the
stock-rules cache off, ``TRACEGRAD_CACHE=0``) and SymPy's verdict in the same run:
``sympy.simplify(lhs - rhs) == 0`` on the ``MatrixSymbol`` expressions that
:func:`rewrite.sympy_interop.to_sympy` builds (symbolic dimensions), with SymPy's cache cleared
before and a per-entry timeout. A construct without a SymPy counterpart (``vec``, ``kron``) counts
as not proved by SymPy (status *unsupported*). A near miss proved by either side would be a false
claim; the summary counts them.

Run it on its own (a fresh process, the table printed; ``--out DIR`` also writes
``DIR/e_identities.json``)::

    python -m benchmarks.identities [--out DIR] [--timeout SECONDS]

or as part e of the suite (``python -m benchmarks.run --part e``), which writes
``benchmarks/results/e_identities.json`` and the section of ``BENCHMARKS.md``.

>>> len(IDENTITIES) >= 70 and len(NEAR_MISSES) >= 25
True
>>> summarise([{"kind": "identity", "engine": "proved", "sympy": "unsupported", "ms": 2.0},
...            {"kind": "near miss", "engine": "refuted", "sympy": "not proved", "ms": 4.0}])["proved"]
1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python benchmarks/identities.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from .common import format_table, median  # noqa: E402

CB = "Matrix Cookbook"
#: shapes used again and again: square n×n matrices
SQ = {"A": ("n", "n"), "B": ("n", "n"), "C": ("n", "n"), "D": ("n", "n")}
#: rectangular chains A: m×n, B: n×p, C: p×q, D: q×m (so that A*B*C*D is square)
CHAIN = {"A": ("m", "n"), "B": ("n", "p"), "C": ("p", "q"), "D": ("q", "m")}
MN = {"A": ("m", "n"), "B": ("m", "n"), "C": ("m", "n")}
VEC = {"x": ("n",), "y": ("n",)}


def _i(name: str, lhs: str, rhs: str, shapes: dict, citation: str, domain: str = "", note: str = "") -> dict:
    row = {"name": name, "lhs": lhs, "rhs": rhs, "shapes": shapes, "citation": citation}
    if domain:
        row["domain"] = domain
    if note:
        row["note"] = note
    return row


#: true identities: lhs = rhs for every value of the declared shapes (on ``domain`` when given:
#: where both sides are defined, e.g. logdet on matrices of positive determinant)
IDENTITIES: list[dict] = [
    # ---- transposes
    _i("t-t", "A''", "A", {"A": ("m", "n")}, f"{CB} §1.1, (A^T)^T = A"),
    _i("t-add", "(A + B)'", "A' + B'", MN, f"{CB} §1.1, (A + B)^T = A^T + B^T"),
    _i("t-sub", "(A - B)'", "A' - B'", MN, f"{CB} §1.1, (A + B)^T = A^T + B^T"),
    _i("t-mul", "(A*B)'", "B'*A'", CHAIN, f"{CB} §1.1, (AB)^T = B^T A^T"),
    _i("t-mul3", "(A*B*C)'", "C'*B'*A'", CHAIN, f"{CB} §1.1, (ABC...)^T = ...C^T B^T A^T"),
    _i("t-scale", "(c*A)'", "c*A'", {"c": (), "A": ("m", "n")}, "transpose of a scaling"),
    _i("t-had", "(A .* B)'", "A' .* B'", MN, "transpose of a Hadamard product"),
    _i("t-fn", "exp(A)'", "exp(A')", {"A": ("m", "n")}, "an elementwise function commutes with transposing"),
    _i("t-mpow", "(A^3)'", "A'^3", SQ, f"{CB} §1.1, (AB)^T = B^T A^T, applied to A^k"),
    _i("t-outer", "(x*y')'", "y*x'", {"x": ("m",), "y": ("n",)}, f"{CB} §1.1, (AB)^T = B^T A^T"),
    # ---- inverses
    _i("inv-inv", "inv(inv(A))", "A", SQ, f"{CB} §1.1, (A^-1)^-1 = A"),
    _i("inv-mul", "inv(A*B)", "inv(B)*inv(A)", SQ, f"{CB} §1.1, (AB)^-1 = B^-1 A^-1"),
    _i("inv-mul3", "inv(A*B*C)", "inv(C)*inv(B)*inv(A)", SQ, f"{CB} §1.1, (ABC...)^-1 = ...C^-1 B^-1 A^-1"),
    _i("inv-t", "inv(A')", "inv(A)'", SQ, f"{CB} §1.1, (A^T)^-1 = (A^-1)^T"),
    _i("inv-t-mul", "inv(A*B)'", "inv(A')*inv(B')", SQ, f"{CB} §1.1, (AB)^-1 = B^-1 A^-1 and (A^T)^-1 = (A^-1)^T"),
    _i("inv-scale", "inv(c*A)", "(1/c)*inv(A)", {"c": (), "A": ("n", "n")}, "(cA)^-1 = c^-1 A^-1"),
    _i("inv-right", "A*inv(A)", "eye(n)", SQ, "definition of the inverse, A A^-1 = I"),
    _i("inv-left", "inv(A)*A", "eye(n)", SQ, "definition of the inverse, A^-1 A = I"),
    _i("inv-sum-t", "inv(A + B)'", "inv(A' + B')", SQ, f"{CB} §1.1, (A^T)^-1 = (A^-1)^T and (A + B)^T"),
    _i("inv-mpow", "inv(A^2)", "inv(A)^2", SQ, "(A^k)^-1 = (A^-1)^k"),
    _i("inv-solve", "A\\(A*B)", "B", {"A": ("n", "n"), "B": ("n", "p")}, "definition of the inverse, A^-1 A = I"),
    # ---- products and sums
    _i("mul-assoc", "(A*B)*C", "A*(B*C)", CHAIN, "associativity of the matrix product"),
    _i("distrib-l", "A*(B + C)", "A*B + A*C", {"A": ("m", "n"), "B": ("n", "p"), "C": ("n", "p")},
       "distributivity of the matrix product"),
    _i("distrib-r", "(A + B)*C", "A*C + B*C", {"A": ("m", "n"), "B": ("m", "n"), "C": ("n", "p")},
       "distributivity of the matrix product"),
    _i("add-self", "A + A", "2*A", {"A": ("m", "n")}, "a + a = 2a"),
    _i("scale-mul", "(c*A)*(d*B)", "(c*d)*(A*B)", {"c": (), "d": (), "A": ("m", "n"), "B": ("n", "p")},
       "scalars commute with matrix products"),
    # ---- traces
    _i("tr-add", "tr(A + B)", "tr(A) + tr(B)", SQ, f"{CB} §1.2, Tr(A + B) = Tr(A) + Tr(B)"),
    _i("tr-sub", "tr(A - B)", "tr(A) - tr(B)", SQ, f"{CB} §1.2, linearity of the trace"),
    _i("tr-scale", "tr(c*A)", "c*tr(A)", {"c": (), "A": ("n", "n")}, f"{CB} §1.2, linearity of the trace"),
    _i("tr-t", "tr(A')", "tr(A)", SQ, f"{CB} §1.2, Tr(A) = Tr(A^T)"),
    _i("tr-cyclic", "tr(A*B)", "tr(B*A)", {"A": ("m", "n"), "B": ("n", "m")}, f"{CB} §1.2, Tr(AB) = Tr(BA)"),
    _i("tr-cyclic3", "tr(A*B*C)", "tr(B*C*A)", {"A": ("m", "n"), "B": ("n", "p"), "C": ("p", "m")},
       f"{CB} §1.2, Tr(ABC) = Tr(BCA) = Tr(CAB)"),
    _i("tr-cyclic3b", "tr(A*B*C)", "tr(C*A*B)", {"A": ("m", "n"), "B": ("n", "p"), "C": ("p", "m")},
       f"{CB} §1.2, Tr(ABC) = Tr(BCA) = Tr(CAB)"),
    _i("tr-cyclic4", "tr(A*B*C*D)", "tr(C*D*A*B)", CHAIN, "trace cyclicity"),
    _i("tr-t-prod", "tr(A'*B)", "tr(B'*A)", MN, "trace of a transpose and cyclicity"),
    _i("tr-t-prod2", "tr(A*B')", "tr(B*A')", MN, "trace of a transpose and cyclicity"),
    _i("tr-t-cyclic", "tr(A'*B'*C')", "tr(C*B*A)", {"A": ("n", "m"), "B": ("p", "n"), "C": ("m", "p")},
       "trace of a transpose, (ABC)^T = C^T B^T A^T"),
    _i("tr-dot", "x'*x", "tr(x*x')", VEC, f"{CB} §1.2, a^T a = Tr(a a^T)"),
    _i("tr-quad", "x'*A*x", "tr(A*x*x')", {"x": ("n",), "A": ("n", "n")}, "trace cyclicity (quadratic form)"),
    _i("tr-outer", "tr(x*y')", "y'*x", VEC, "trace cyclicity"),
    _i("tr-inv-t", "tr(inv(A'))", "tr(inv(A))", SQ, f"{CB} §1.1-1.2, Tr(A^T) = Tr(A), (A^T)^-1 = (A^-1)^T"),
    _i("tr-had", "tr(A'*(B .* C))", "tr((A .* B)'*C)", MN,
       "Tr(A^T (B ∘ C)) = Tr((A ∘ B)^T C) (Hadamard and trace)"),
    _i("tr-sandwich", "tr(inv(A)*B*A)", "tr(B)", SQ, "trace cyclicity, Tr(A^-1 B A) = Tr(B)"),
    # ---- determinants
    _i("det-t", "det(A')", "det(A)", SQ, f"{CB} §1.3, det(A^T) = det(A)"),
    _i("det-mul", "det(A*B)", "det(A)*det(B)", SQ, f"{CB} §1.3, det(AB) = det(A) det(B)"),
    _i("det-mul3", "det(A*B*C)", "det(A)*det(B)*det(C)", SQ, f"{CB} §1.3, det(AB) = det(A) det(B)"),
    _i("det-comm", "det(A*B)", "det(B*A)", SQ, f"{CB} §1.3, det(AB) = det(A) det(B)"),
    _i("det-inv", "det(inv(A))", "1/det(A)", SQ, f"{CB} §1.3, det(A^-1) = 1/det(A)"),
    _i("det-inv-t", "det(inv(A'))", "1/det(A)", SQ, f"{CB} §1.3, det(A^T) = det(A), det(A^-1) = 1/det(A)"),
    _i("det-mpow", "det(A^3)", "det(A)^3", SQ, f"{CB} §1.3, det(A^n) = det(A)^n"),
    _i("det-scale", "det(2*A)", "8*det(A)", {"A": (3, 3)}, f"{CB} §1.3, det(cA) = c^n det(A) (n = 3)",
       note="c^n with n a dimension cannot be written in a rule: an exponent is a number variable"),
    _i("det-eye", "det(eye(n))", "1", {}, "det(I) = 1"),
    _i("det-lemma", "det(eye(n) + x*y')", "1 + y'*x", VEC, f"{CB} §1.3, det(I + u v^T) = 1 + u^T v"),
    _i("det-sandwich", "det(inv(A)*B*A)", "det(B)", SQ, f"{CB} §1.3, det(AB) = det(A) det(B) (similarity)"),
    # ---- log-determinants (on matrices of positive determinant, e.g. SPD)
    _i("logdet-t", "logdet(A')", "logdet(A)", SQ, f"{CB} §1.3, det(A^T) = det(A)"),
    _i("logdet-mul", "logdet(A*B)", "logdet(A) + logdet(B)", SQ, f"{CB} §1.3, det(AB) = det(A) det(B), "
       "logarithm", domain="A, B SPD (positive determinant)"),
    _i("logdet-inv", "logdet(inv(A))", "-logdet(A)", SQ, f"{CB} §1.3, det(A^-1) = 1/det(A), logarithm",
       domain="A SPD (positive determinant)"),
    _i("logdet-mpow", "logdet(A^2)", "2*logdet(A)", SQ, f"{CB} §1.3, det(A^n) = det(A)^n, logarithm",
       domain="A SPD (positive determinant)"),
    _i("logdet-det", "log(det(A))", "logdet(A)", SQ, "definition of logdet",
       domain="A SPD (positive determinant)"),
    # ---- Kronecker products and vec
    _i("kron-t", "kron(A, B)'", "kron(A', B')", {"A": ("m", "n"), "B": ("p", "q")},
       f"{CB} §10.2.1, (A ⊗ B)^T = A^T ⊗ B^T"),
    _i("kron-mixed", "kron(A, B)*kron(C, D)", "kron(A*C, B*D)",
       {"A": ("m", "n"), "B": ("p", "q"), "C": ("n", "r"), "D": ("q", "s")},
       f"{CB} §10.2.1, (A ⊗ B)(C ⊗ D) = AC ⊗ BD"),
    _i("kron-inv", "inv(kron(A, B))", "kron(inv(A), inv(B))", {"A": ("n", "n"), "B": ("p", "p")},
       f"{CB} §10.2.1, (A ⊗ B)^-1 = A^-1 ⊗ B^-1"),
    _i("kron-tr", "tr(kron(A, B))", "tr(A)*tr(B)", {"A": ("n", "n"), "B": ("p", "p")},
       f"{CB} §10.2.1, Tr(A ⊗ B) = Tr(A) Tr(B)"),
    _i("kron-scale", "kron(c*A, B)", "c*kron(A, B)", {"c": (), "A": ("m", "n"), "B": ("p", "q")},
       f"{CB} §10.2.1, A ⊗ (cB) = c(A ⊗ B)"),
    _i("kron-add-l", "kron(A + B, C)", "kron(A, C) + kron(B, C)",
       {"A": ("m", "n"), "B": ("m", "n"), "C": ("p", "q")}, f"{CB} §10.2.1, (A + B) ⊗ C = A ⊗ C + B ⊗ C"),
    _i("kron-add-r", "kron(A, B + C)", "kron(A, B) + kron(A, C)",
       {"A": ("m", "n"), "B": ("p", "q"), "C": ("p", "q")}, f"{CB} §10.2.1, A ⊗ (B + C) = A ⊗ B + A ⊗ C"),
    _i("kron-assoc", "kron(kron(A, B), C)", "kron(A, kron(B, C))",
       {"A": ("m", "n"), "B": ("p", "q"), "C": ("r", "s")}, f"{CB} §10.2.1, A ⊗ (B ⊗ C) = (A ⊗ B) ⊗ C"),
    _i("kron-vec", "kron(x, y)", "vec(y*x')", {"x": ("m",), "y": ("n",)},
       f"{CB} §10.2.2, vec(a b^T) = b ⊗ a"),
    _i("vec-axb", "vec(A*X*B)", "kron(B', A)*vec(X)", {"A": ("m", "n"), "X": ("n", "p"), "B": ("p", "q")},
       f"{CB} §10.2.2, vec(AXB) = (B^T ⊗ A) vec(X)"),
    _i("vec-ax", "vec(A*X)", "kron(eye(p), A)*vec(X)", {"A": ("m", "n"), "X": ("n", "p")},
       f"{CB} §10.2.2, vec(AXB) = (B^T ⊗ A) vec(X) with B = I"),
    _i("vec-xb", "vec(X*B)", "kron(B', eye(n))*vec(X)", {"X": ("n", "p"), "B": ("p", "q")},
       f"{CB} §10.2.2, vec(AXB) = (B^T ⊗ A) vec(X) with A = I"),
    _i("vec-dot", "vec(A)'*vec(B)", "tr(A'*B)", MN, f"{CB} §10.2.2, Tr(A^T B) = vec(A)^T vec(B)"),
    _i("vec-add", "vec(A + B)", "vec(A) + vec(B)", MN, "linearity of vec"),
    _i("vec-had", "vec(A .* B)", "vec(A) .* vec(B)", MN, "vec of a Hadamard product"),
    # ---- norms as traces
    _i("fro2-tr", "fro2(M)", "tr(M'*M)", {"M": ("m", "n")}, f"{CB} §10.4, ||A||_F^2 = Tr(A A^H)"),
    _i("fro2-tr2", "fro2(M)", "tr(M*M')", {"M": ("m", "n")}, f"{CB} §10.4, ||A||_F^2 = Tr(A A^H)"),
    _i("fro2-t", "fro2(M')", "fro2(M)", {"M": ("m", "n")}, f"{CB} §10.4, ||A^T||_F = ||A||_F"),
    _i("fro2-vec", "fro2(M)", "norm2sq(vec(M))", {"M": ("m", "n")}, f"{CB} §10.4, ||A||_F = ||vec(A)||_2"),
    _i("fro2-had", "fro2(M)", "sum(M .* M)", {"M": ("m", "n")}, f"{CB} §10.4, ||A||_F^2 = Σ_ij A_ij^2"),
    _i("fro2-scale", "fro2(c*M)", "c^2*fro2(M)", {"c": (), "M": ("m", "n")}, "homogeneity of the norm"),
    _i("norm2sq-dot", "norm2sq(x)", "x'*x", {"x": ("n",)}, f"{CB} §10.4, ||x||_2^2 = x^T x"),
    _i("norm2sq-tr", "norm2sq(x)", "tr(x*x')", {"x": ("n",)}, f"{CB} §1.2, a^T a = Tr(a a^T)"),
    _i("norm2-sq", "norm2(x)^2", "norm2sq(x)", {"x": ("n",)}, "definition of the Euclidean norm"),
    # ---- diag and Hadamard products
    _i("diag-had", "diag(a)*b", "a .* b", {"a": ("n",), "b": ("n",)}, "diag(a) b = a ∘ b"),
    _i("diag-diag", "diag(a)*diag(b)", "diag(a .* b)", {"a": ("n",), "b": ("n",)},
       "diag(a) diag(b) = diag(a ∘ b)"),
    _i("diag-t", "diag(a)'", "diag(a)", {"a": ("n",)}, "a diagonal matrix is symmetric"),
    _i("diag-diagv", "diag(diag(a))", "a", {"a": ("n",)}, "the diagonal of diag(a) is a"),
    _i("tr-diagm", "tr(diag(a))", "sum(a)", {"a": ("n",)}, "Tr(diag(a)) = Σ a_i"),
    _i("sum-diagv", "sum(diag(A))", "tr(A)", SQ, f"{CB} §1.2, Tr(A) = Σ A_ii"),
    _i("had-comm", "A .* B", "B .* A", MN, "commutativity of the Hadamard product"),
    _i("had-assoc", "(A .* B) .* C", "A .* (B .* C)", MN, "associativity of the Hadamard product"),
    _i("had-distrib", "A .* (B + C)", "A .* B + A .* C", MN, "distributivity of the Hadamard product"),
    _i("sum-had", "sum(A .* B)", "tr(A'*B)", MN, "Σ_ij A_ij B_ij = Tr(A^T B)"),
    _i("had-ones", "A .* (ones(m)*ones(n)')", "A", {"A": ("m", "n")}, "the all-ones matrix is the Hadamard unit"),
    # ---- powers
    _i("mpow-2", "A^2", "A*A", SQ, "definition of the matrix power"),
    _i("mpow-3", "A^3", "A*A*A", SQ, "definition of the matrix power"),
    _i("mpow-add", "A^2*A^3", "A^5", SQ, "A^j A^k = A^(j+k)"),
    _i("epow-2", "A.^2", "A .* A", {"A": ("m", "n")}, "definition of the elementwise power",
       note="a rule A.^2 => A .* A ties with A.^2 in extraction, so simplify() would print X .* X for X.^2 "
            "(and A .* A => A.^2 makes exp(X) .* exp(X) tie with a user rule's exp(2*X)); left out"),
    # ---- elementwise functions
    _i("exp-add", "exp(A + B)", "exp(A) .* exp(B)", MN, "exp(a + b) = exp(a) exp(b), entrywise"),
    _i("log-exp", "log(exp(A))", "A", {"A": ("m", "n")}, "log(exp(a)) = a"),
    _i("exp-log", "exp(log(A))", "A", {"A": ("m", "n")}, "exp(log(a)) = a", domain="A > 0 entrywise"),
    _i("log-had", "log(A .* B)", "log(A) + log(B)", MN, "log(ab) = log(a) + log(b), entrywise",
       domain="A, B > 0 entrywise"),
    _i("sqrt-sq", "sqrt(A) .* sqrt(A)", "A", {"A": ("m", "n")}, "sqrt(a)^2 = a", domain="A >= 0 entrywise"),
    _i("sigmoid-def", "sigmoid(A)", "1 ./ (1 + exp(-A))", {"A": ("m", "n")}, "definition of the logistic sigmoid"),
    _i("sigmoid-neg", "sigmoid(-A)", "1 - sigmoid(A)", {"A": ("m", "n")}, "σ(-a) = 1 - σ(a)"),
    _i("softplus-def", "softplus(A)", "log(1 + exp(A))", {"A": ("m", "n")}, "definition of softplus"),
    _i("relu-step", "relu(A)", "A .* step(A)", {"A": ("m", "n")}, "relu(a) = a step(a) (step(0) = 0)"),
    _i("max-def", "max(A, B)", "A + relu(B - A)", MN, "max(a, b) = a + max(b - a, 0)"),
    # ---- sums
    _i("sum-ones", "sum(X)", "ones(m)'*X*ones(n)", {"X": ("m", "n")}, "Σ_ij X_ij = 1^T X 1"),
    _i("sum-t", "sum(X')", "sum(X)", {"X": ("m", "n")}, "Σ_ij X_ji = Σ_ij X_ij"),
    _i("sum-add", "sum(A + B)", "sum(A) + sum(B)", MN, "linearity of the sum"),
    _i("sum-scale", "sum(c*A)", "c*sum(A)", {"c": (), "A": ("m", "n")}, "linearity of the sum"),
    _i("sum-vec", "sum(vec(A))", "sum(A)", {"A": ("m", "n")}, "vec keeps the entries"),
    _i("sum-outer", "sum(x*y')", "sum(x)*sum(y)", {"x": ("m",), "y": ("n",)}, "Σ_ij x_i y_j = (Σ x_i)(Σ y_j)"),
    _i("sum-rows", "sum(X, 2)", "X*ones(n)", {"X": ("m", "n")}, "row sums, X 1"),
    # ---- softmax and logsumexp
    _i("lse-def", "logsumexp(x)", "log(sum(exp(x)))", {"x": ("n",)}, "definition of logsumexp"),
    _i("softmax-def", "softmax(x)", "exp(x) ./ sum(exp(x))", {"x": ("n",)}, "definition of softmax"),
    _i("softmax-sum", "sum(softmax(x))", "1", {"x": ("n",)}, "softmax sums to one"),
    _i("softmax-shift", "softmax(x + c)", "softmax(x)", {"x": ("n",), "c": ()}, "softmax is shift invariant"),
    _i("lse-shift", "logsumexp(x + c)", "logsumexp(x) + c", {"x": ("n",), "c": ()},
       "logsumexp(x + c) = logsumexp(x) + c"),
    _i("log-softmax", "log(softmax(x))", "x - logsumexp(x)", {"x": ("n",)},
       "log softmax(x) = x - logsumexp(x)"),
]

#: plausible but false: each must come out refuted or unknown, never proved
NEAR_MISSES: list[dict] = [
    _i("t-mul-order", "(A*B)'", "A'*B'", SQ, "(AB)^T is B^T A^T, not A^T B^T"),
    _i("tr-noncyclic", "tr(A*B*C)", "tr(A*C*B)", SQ, "only cyclic permutations keep the trace"),
    _i("tr-reverse", "tr(A*B*C*D)", "tr(D*C*B*A)", SQ, "reversing is not a cyclic permutation"),
    _i("det-add", "det(A + B)", "det(A) + det(B)", SQ, "det is not additive"),
    _i("inv-add", "inv(A + B)", "inv(A) + inv(B)", SQ, "the inverse is not additive"),
    _i("inv-mul-order", "inv(A*B)", "inv(A)*inv(B)", SQ, "(AB)^-1 is B^-1 A^-1"),
    _i("det-scale-lin", "det(2*A)", "2*det(A)", {"A": (3, 3)}, "det(cA) is c^n det(A)"),
    _i("kron-t-swap", "kron(A, B)'", "kron(B', A')", SQ, "(A ⊗ B)^T is A^T ⊗ B^T"),
    _i("kron-comm", "kron(A, B)", "kron(B, A)", SQ, "the Kronecker product does not commute"),
    _i("kron-mixed-swap", "kron(A, B)*kron(C, D)", "kron(A*D, B*C)", SQ, "(A ⊗ B)(C ⊗ D) is AC ⊗ BD"),
    _i("vec-axb-order", "vec(A*X*B)", "kron(A, B')*vec(X)", {"A": ("n", "n"), "X": ("n", "n"), "B": ("n", "n")},
       "vec(AXB) is (B^T ⊗ A) vec(X)"),
    _i("vec-t", "vec(A')", "vec(A)", SQ, "vec(A^T) is a permutation of vec(A)"),
    _i("mul-comm", "A*B", "B*A", SQ, "the matrix product does not commute"),
    _i("had-is-mul", "A .* B", "A*B", SQ, "the Hadamard product is not the matrix product"),
    _i("fro2-not-tr", "fro2(M)", "tr(M*M)", {"M": ("n", "n")}, "||M||_F^2 is Tr(M^T M)"),
    _i("tr-product", "tr(A*B)", "tr(A)*tr(B)", SQ, "the trace is not multiplicative"),
    _i("tr-had-product", "tr(A .* B)", "tr(A)*tr(B)", SQ, "the trace is not multiplicative"),
    _i("tr-inv", "tr(inv(A))", "1/tr(A)", SQ, "Tr(A^-1) is not 1/Tr(A)"),
    _i("inv-t-drop", "inv(A')", "inv(A)", SQ, "(A^T)^-1 is (A^-1)^T"),
    _i("sum-tr", "sum(A)", "tr(A)", SQ, "the sum counts every entry"),
    _i("square-binomial", "(A + B)^2", "A^2 + 2*A*B + B^2", SQ, "(A + B)^2 = A^2 + AB + BA + B^2"),
    _i("epow-mpow", "A.^2", "A^2", SQ, "the elementwise square is not the matrix square"),
    _i("bilinear-swap", "x'*A*y", "y'*A*x", {"x": ("n",), "y": ("n",), "A": ("n", "n")},
       "x^T A y = y^T A^T x"),
    _i("exp-add-sum", "exp(A + B)", "exp(A) + exp(B)", MN, "exp(a + b) = exp(a) exp(b)"),
    _i("exp-mul", "exp(A*B)", "exp(A)*exp(B)", SQ, "an entrywise exp of a product"),
    _i("log-add", "log(A + B)", "log(A) .* log(B)", MN, "log(ab) = log(a) + log(b)"),
    _i("norm2sq-add", "norm2sq(x + y)", "norm2sq(x) + norm2sq(y)", VEC, "the cross term 2 x^T y is missing"),
    _i("sum-had-product", "sum(A .* B)", "sum(A)*sum(B)", MN, "Σ a_ij b_ij is not (Σ a_ij)(Σ b_ij)"),
    _i("diag-mul", "diag(A*B)", "diag(A) .* diag(B)", SQ, "the diagonal of a product"),
    _i("sigmoid-odd", "sigmoid(-A)", "-sigmoid(A)", {"A": ("m", "n")}, "σ(-a) is 1 - σ(a)"),
    _i("relu-add", "relu(A + B)", "relu(A) + relu(B)", MN, "relu is not additive"),
    _i("softmax-add", "softmax(x + y)", "softmax(x) .* softmax(y)", VEC, "softmax of a sum"),
    _i("lse-add", "logsumexp(x + y)", "logsumexp(x) + logsumexp(y)", VEC, "logsumexp is not additive"),
    _i("logdet-add", "logdet(A + B)", "logdet(A) + logdet(B)", SQ, "det is not additive"),
    _i("det-inv-drop", "det(inv(A))", "det(A)", SQ, "det(A^-1) is 1/det(A)"),
    _i("det-lemma-order", "det(eye(n) + x*y')", "1 + x'*x", VEC, "det(I + u v^T) is 1 + v^T u"),
    _i("sum-mul", "sum(A*B)", "sum(A)*sum(B)", {"A": ("m", "n"), "B": ("n", "p")},
       "Σ_ij (AB)_ij is 1^T A B 1, not (1^T A 1)(1^T B 1)"),
    _i("softmax-shift-vec", "softmax(x + y)", "softmax(x)", VEC, "only a constant shift leaves softmax"),
    _i("softmax-scale", "softmax(2*x)", "softmax(x)", {"x": ("n",)}, "softmax is not scale invariant"),
    _i("lse-scale", "logsumexp(2*x)", "2*logsumexp(x)", {"x": ("n",)}, "logsumexp is not homogeneous"),
    _i("exp-had", "exp(A .* B)", "exp(A) .* exp(B)", MN, "exp(ab) is not exp(a) exp(b)"),
    _i("sigmoid-even", "sigmoid(-A)", "sigmoid(A)", {"A": ("m", "n")}, "σ(-a) is 1 - σ(a)"),
    _i("kron-add-swap", "kron(A + B, C)", "kron(A, C) + kron(C, B)", SQ, "(A + B) ⊗ C = A ⊗ C + B ⊗ C"),
    _i("vec-ax-order", "vec(A*X)", "kron(A, eye(n))*vec(X)", {"A": ("n", "n"), "X": ("n", "n")},
       "vec(AX) is (I ⊗ A) vec(X)"),
    _i("sandwich-no-trace", "inv(A)*B*A", "B", SQ, "a similarity keeps the trace, not the matrix"),
    _i("mpow-add-wrong", "A^2*A^3", "A^6", SQ, "A^j A^k is A^(j+k)"),
    _i("det-mpow-wrong", "det(A^3)", "3*det(A)", SQ, "det(A^n) is det(A)^n"),
    _i("logdet-mpow-wrong", "logdet(A^2)", "logdet(A)^2", SQ, "logdet(A^n) is n logdet(A)"),
    _i("diag-diag-matrix", "diag(diag(A))", "A", SQ, "diag(diag(A)) keeps only the diagonal"),
    _i("tr-diag-norm", "tr(diag(a))", "norm2sq(a)", {"a": ("n",)}, "Tr(diag(a)) is Σ a_i"),
    _i("exp-log-sum", "exp(log(A) + B)", "A + exp(B)", MN, "exp(log(a) + b) is a exp(b)"),
    _i("sqrt-of-square", "sqrt(A .* A)", "A", {"A": ("m", "n")}, "sqrt(a^2) is |a|"),
    _i("abs-drop", "abs(A)", "A", {"A": ("m", "n")}, "|a| is a only for a >= 0"),
    _i("sum-mul-comm", "sum(A*B)", "sum(B*A)", SQ, "1^T AB 1 is not 1^T BA 1"),
    _i("lse-shift-drop", "logsumexp(x + c)", "logsumexp(x)", {"x": ("n",), "c": ()},
       "logsumexp(x + c) is logsumexp(x) + c"),
    _i("det-lemma-general", "det(A + x*y')", "det(A)*(1 + y'*x)", {"A": ("n", "n"), "x": ("n",), "y": ("n",)},
       f"{CB} §1.3: det(A + u v^T) is det(A)(1 + v^T A^-1 u)"),
]

#: the table's columns (key, header)
TABLE_COLUMNS = [("kind", "kind"), ("name", "name"), ("identity", "identity"), ("engine", "engine"),
                 ("ms", "engine ms"), ("sympy", "sympy"), ("sympy_ms", "sympy ms"), ("citation", "citation")]


def sympy_verdict(lhs_term, rhs_term, timeout: float) -> tuple[str, float | None, str]:
    """SymPy's verdict on lhs = rhs: ``proved`` when ``sympy.simplify(lhs - rhs)`` is zero (a zero
    scalar or a ``ZeroMatrix``), ``not proved`` otherwise, ``unsupported`` when a side has no
    SymPy counterpart, ``timeout`` or ``error``; with the time of the ``simplify`` call and a note."""
    import sympy
    from sympy.core.cache import clear_cache

    from rewrite.errors import TracegradError
    from rewrite.sympy_interop import to_sympy

    from .vs_sympy import SympyTimeout, alarm

    try:
        a, b = to_sympy(lhs_term), to_sympy(rhs_term)
    except TracegradError as ex:
        return "unsupported", None, ex.message[:100]
    clear_cache()
    t0 = time.perf_counter()
    try:
        with alarm(timeout):
            diff = sympy.simplify(a - b)
            zero = diff == 0 or isinstance(diff, sympy.ZeroMatrix) or bool(
                getattr(diff, "is_ZeroMatrix", False))
    except SympyTimeout:
        return "timeout", 1000 * timeout, ""
    except Exception as ex:  # SymPy raising is one of the outcomes measured
        return "error", 1000 * (time.perf_counter() - t0), f"{type(ex).__name__}: {ex}"[:100]
    ms = 1000 * (time.perf_counter() - t0)
    return ("proved" if zero else "not proved"), ms, "" if zero else str(diff)[:100]


def run(timeout: float = 10.0, log=print, identities: list[dict] | None = None,
        near_misses: list[dict] | None = None) -> dict:
    """Every identity and near miss: the engine's answer and time, SymPy's verdict and time."""
    import rewrite as rw

    eng = rw.default_engine()
    rw.equivalent("tr(A*B)", "tr(B*A)", {"A": (2, 3), "B": (3, 2)})  # compile the rule program, untimed
    rows = []
    todo = [("identity", r) for r in (IDENTITIES if identities is None else identities)]
    todo += [("near miss", r) for r in (NEAR_MISSES if near_misses is None else near_misses)]
    for kind, case in todo:
        row = {"kind": kind, "name": case["name"], "identity": f"{case['lhs']} = {case['rhs']}",
               "citation": case["citation"], "shapes": case["shapes"]}
        for key in ("domain", "note"):
            if case.get(key):
                row[key] = case[key]
        t0 = time.perf_counter()
        try:
            v = rw.equivalent(case["lhs"], case["rhs"], case["shapes"])
        except rw.TracegradError as e:
            row.update(engine=f"error ({e.kind})", ms=1000 * (time.perf_counter() - t0))
        else:
            row["ms"] = 1000 * (time.perf_counter() - t0)
            row["engine"] = "proved" if v.proved else "refuted" if v.refuted else "unknown"
            if v.report is not None:
                row["enodes"] = v.report.enodes
        ta, tb = eng._pair(case["lhs"], case["rhs"], case["shapes"])
        row["sympy"], row["sympy_ms"], row["sympy_note"] = sympy_verdict(ta, tb, timeout)
        rows.append(row)
    data = {"rows": rows, "timeout_s": timeout, "summary": summarise(rows)}
    log(format_table(rows, TABLE_COLUMNS))
    log("")
    log(format_summary(data["summary"]))
    return data


def summarise(rows: list[dict]) -> dict:
    """Counts and shares: identities proved (engine, SymPy), near misses falsely proved, times."""
    ids = [r for r in rows if r["kind"] == "identity"]
    near = [r for r in rows if r["kind"] == "near miss"]
    return {
        "identities": len(ids),
        "proved": sum(r["engine"] == "proved" for r in ids),
        "proved_share": sum(r["engine"] == "proved" for r in ids) / len(ids) if ids else None,
        "unproved": [r["name"] for r in ids if r["engine"] != "proved"],
        "refuted_identities": [r["name"] for r in ids if r["engine"] == "refuted"],
        "sympy_proved": sum(r["sympy"] == "proved" for r in ids),
        "sympy_unsupported": sum(r["sympy"] == "unsupported" for r in ids),
        "sympy_failed": sum(r["sympy"] in ("error", "timeout") for r in ids),
        "near_misses": len(near),
        "near_refuted": sum(r["engine"] == "refuted" for r in near),
        "near_unknown": sum(r["engine"] == "unknown" for r in near),
        "false_claims": [r["name"] for r in near if r["engine"] == "proved"],
        "sympy_false_claims": [r["name"] for r in near if r["sympy"] == "proved"],
        "median_ms": median([r["ms"] for r in rows if r.get("ms") is not None]) if rows else None,
        "median_ms_identities": median([r["ms"] for r in ids if r.get("ms") is not None]) if ids else None,
        "max_ms": max((r["ms"] for r in rows if r.get("ms") is not None), default=None),
    }


def _count(names: list[str]) -> str:
    return f"{len(names)} ({', '.join(names)})" if names else "0"


def format_summary(s: dict) -> str:
    def pct(x):
        return "-" if x is None else f"{100 * x:.1f} %"

    def ms(x):
        return "-" if x is None else f"{x:.3g} ms"

    return (f"identities: engine proves {s['proved']}/{s['identities']} ({pct(s['proved_share'])}), SymPy "
            f"{s['sympy_proved']}/{s['identities']} ({s['sympy_unsupported']} with no SymPy counterpart, "
            f"{s.get('sympy_failed', 0)} where SymPy raised or timed out); "
            f"unproved by the engine: {', '.join(s['unproved']) or 'none'}\n"
            f"near misses: {s['near_misses']}, engine refutes {s['near_refuted']}, unknown {s['near_unknown']}, "
            f"FALSE CLAIMS: engine {_count(s['false_claims'])}, SymPy {_count(s['sympy_false_claims'])}\n"
            f"time per equivalent call: median {ms(s['median_ms'])} (identities {ms(s['median_ms_identities'])}), "
            f"max {ms(s['max_ms'])}")


def worker(payload: dict) -> None:
    """:func:`run` in this (fresh) process: its printout as ``{"log": line}`` objects, then
    ``{"result": data}``."""
    import os

    from .common import apply_threads, emit

    setup = apply_threads(payload["threads"])
    data = run(timeout=payload["timeout"], log=lambda line="": emit({"log": str(line)}))
    data["threads"] = setup
    data["stock_rules_cache"] = os.environ.get("TRACEGRAD_CACHE", "default (on)")
    emit({"result": data})


def run_isolated(timeout: float = 10.0, threads: int = 1, limit: float = 3600.0, log=print) -> dict:
    """:func:`run` in a fresh process (one math-library thread, the stock-rules cache off)."""
    from .common import run_worker

    payload = {"timeout": timeout, "threads": threads}
    got, err = run_worker("benchmarks.identities", "worker", payload, limit, threads=threads)
    for r in got:
        if "log" in r:
            log(r["log"])
    data = next((r["result"] for r in got if "result" in r), None)
    if data is None:
        raise RuntimeError(f"part e's process ended without a result: {err or 'no output'}")
    if err:
        data["error"] = err
    return data


def main(argv: list[str] | None = None) -> int:
    from .common import CACHES, save_json, stamp

    p = argparse.ArgumentParser(prog="python -m benchmarks.identities", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="also write DIR/e_identities.json")
    p.add_argument("--timeout", type=float, default=10.0, help="SymPy's time limit per entry, seconds")
    args = p.parse_args(argv)
    commit = stamp()["commit"]
    t0 = time.perf_counter()
    data = run_isolated(timeout=args.timeout)
    if args.out is not None:
        data.update(stamp(), commit=commit, caches=CACHES, wall_seconds=round(time.perf_counter() - t0, 1))
        save_json(args.out / "e_identities.json", data)
        print(f"wrote {args.out / 'e_identities.json'}")
    return 0 if not data["summary"]["false_claims"] else 1


if __name__ == "__main__":
    sys.exit(main())
