"""LaTeX output: exact strings for a set of expressions, Jupyter hooks, well-formedness."""

import re

import pytest
from conftest import public_cases

import rewrite as rw
from rewrite.printing import gradient_latex, latex_name, to_latex

SHAPES = {"X": ("m", "n"), "B": ("m", "n"), "A": ("m", "m"), "Sigma": ("n", "n"), "x": ("n",),
          "y": ("m",), "w": ("n",), "c": (), "lam": (), "x1": ("n",), "W_out": ("m", "n")}

CASES = [
    ("X'", r"X^{\top}"),
    ("(X + B)'*A", r"\left(X + B\right)^{\top} A"),
    ("X .* B", r"X \odot B"),
    ("X ./ B", r"X \oslash B"),
    ("tr(A)", r"\operatorname{tr}\left(A\right)"),
    ("inv(A)", r"A^{-1}"),
    ("inv(Sigma)'", r"\Sigma^{-\top}"),
    ("logdet(Sigma)", r"\log\det\left(\Sigma\right)"),
    ("det(A)", r"\det\left(A\right)"),
    ("1/3*X", r"\frac{1}{3} X"),
    ("X/c", r"\frac{1}{c} X"),
    ("1/tr(A)", r"\frac{1}{\operatorname{tr}\left(A\right)}"),
    ("0.5*lam*w", r"0.5 \mathrm{lam} w"),
    ("exp(X) - log(B)", r"\exp\left(X\right) - \log\left(B\right)"),
    ("sigmoid(X)", r"\operatorname{sigmoid}\left(X\right)"),
    ("A^3 + A^(-2)", r"A^{3} + A^{-2}"),
    ("X.^2", r"X^{\circ 2}"),
    ("tr(A)^(1/2)", r"\sqrt{\operatorname{tr}\left(A\right)}"),
    ("norm2(x) + fro2(X) + norm2sq(y)",
     r"\left\lVert x \right\rVert_{2} + \left\lVert X \right\rVert_{F}^{2} + "
     r"\left\lVert y \right\rVert_{2}^{2}"),
    ("eye(m) + 1", r"I_{m} + 1"),
    ("X*ones(n) + c*y", r"X \mathbf{1}_{n} + c y"),
    ("diag(x) + diag(diag(Sigma))",
     r"\operatorname{diag}\left(x\right) + \operatorname{diag}\left(\operatorname{diag}\left(\Sigma"
     r"\right)\right)"),
    ("-2*X + B", r"B - 2 X"),
    ("x1'*W_out'*y", r"x_{1}^{\top} W_{\mathrm{out}}^{\top} y"),
    ("sum(log(1 + exp(-y .* (X*w))))",
     r"\operatorname{sum}\left(\log\left(1 + \exp\left(-y \odot \left(X w\right)\right)\right)\right)"),
]


@pytest.mark.parametrize("text, latex", CASES, ids=[t for t, _ in CASES])
def test_latex_exact(text, latex):
    assert to_latex(rw.parse(text, SHAPES).term) == latex
    assert rw.parse(text, SHAPES).latex() == latex


@pytest.mark.parametrize("name, latex", [
    ("X", "X"), ("Sigma", r"\Sigma"), ("lambda", r"\lambda"), ("x12", "x_{12}"), ("X_2", "X_{2}"),
    ("W_out", r"W_{\mathrm{out}}"), ("beta_hat", r"\beta_{\mathrm{hat}}"), ("lam", r"\mathrm{lam}"),
])
def test_latex_names(name, latex):
    assert latex_name(name) == latex


def test_expr_repr_latex_is_inline_math():
    e = rw.parse("tr(X'*A*X)", SHAPES)
    assert e._repr_latex_() == r"$\operatorname{tr}\left(X^{\top} A X\right)$"


def test_gradient_repr_latex_shows_f_df_and_g():
    g = rw.gradient("tr(X'*A*X)", wrt="X", shapes=SHAPES)
    block = g._repr_latex_()
    assert block.startswith(r"$$\begin{aligned}") and block.endswith(r"\end{aligned}$$")
    lines = block.strip("$").splitlines()
    assert lines[1] == r"f &= \operatorname{tr}\left(X^{\top} A X\right) \\"
    assert lines[2] == r"\mathrm{d}f &= \operatorname{tr}\left(G^{\top} \, \mathrm{d}X\right) \\"
    assert lines[3] == r"G = \frac{\partial f}{\partial X} &= " + g.latex()
    assert g.latex() == to_latex(g.term)


def test_gradient_latex_names_the_variable():
    g = rw.gradient("logdet(Sigma)", wrt="Sigma", shapes=SHAPES)
    assert r"\frac{\partial f}{\partial \Sigma} &= \Sigma^{-\top}" in gradient_latex(g.f, g.term, "Sigma")


def _balanced(s: str) -> bool:
    depth = 0
    for ch in re.sub(r"\\[{}]", "", s):
        depth += ch == "{"
        depth -= ch == "}"
        if depth < 0:
            return False
    return depth == 0 and s.count(r"\left") == s.count(r"\right")


@pytest.mark.parametrize("case", public_cases(), ids=[c["id"] for c in public_cases()])
def test_latex_of_public_cases_is_well_formed(case):
    f = rw.parse(case["expr"], case["shapes"])
    ref = rw.parse(case["gradient"], case["shapes"])
    for e in (f, ref):
        s = e.latex()
        assert _balanced(s), s
        assert not re.search(r"\.\*|\./|\.\^|'|\binv\(|\btr\(", s), s
