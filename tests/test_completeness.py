"""Complete by construction: every operator of the language has a differential rule, every
position in which a differential can sit has an adjoint rule, and inputs of every kind that
once ended without a gradient (a trace or diagonal taken directly of an elementwise
expression, scalars spread over matrices, row vectors, 1×1 matrices) now differentiate and
match finite differences."""

import numpy as np
import pytest
from conftest import check_answer

import rewrite as rw
from rewrite.numeric import gradient_error
from rewrite.stock import stock_ruleset
from rewrite.terms import OPS

#: leaves: constant unless they are the variable itself (d(X) stays, d-const covers the rest)
LEAVES = {"var", "num", "eye", "ones", "fill"}
#: internal to rules (differentials, collectors)
INTERNAL = {"pvar", "d", "grad", "adj", "jac"}
#: accepted on input (Jacobians print it) but with no differential rule: a gradient through it
#: is an UnsupportedError naming it (tested below)
NOT_DIFFERENTIABLE = {"kront"}
#: the argument positions of each operator that the differential of a well-typed input can
#: occupy (d-hdiv never leaves a differential in a denominator; f(E), inv(E), det(E), E^k,
#: softmax(E), logsumexp(E) and the norms are expanded by their differential rules, so a
#: differential is never inside them)
LINEAR_POSITIONS = {"add": (0, 1), "mul": (0, 1), "scale": (0, 1), "had": (0, 1), "hdiv": (0,),
                    "t": (0,), "tr": (0,), "sum": (0,), "diag": (0,), "diagv": (0,), "vec": (0,),
                    "kron": (0, 1)}


def _differentiated_ops(rs) -> set[str]:
    out = set()
    for r in rs.rules:
        if rs.phases[r.ruleset] == "expand" and r.lhs.op == "d" and r.lhs.args[0].op != "pvar":
            out.add(r.lhs.args[0].op)
    return out


def _adjoint_positions(rs) -> set[tuple[str, int]]:
    out = set()
    for r in rs.rules:
        if r.lhs.op != "adj" or r.lhs.args[0].op == "pvar":
            continue
        free = {c.args[0] for c in r.conditions if c.kind in ("free", "const")}
        e = r.lhs.args[0]
        for i, a in enumerate(e.args):
            if a.op == "pvar" and a.attr not in free:
                out.add((e.op, i))
    return out


def test_every_operator_has_a_differential_rule():
    rs = stock_ruleset()
    covered = _differentiated_ops(rs)
    missing = sorted(set(OPS) - LEAVES - INTERNAL - NOT_DIFFERENTIABLE - covered)
    assert not missing, f"operators without a differential rule: {missing}"
    # every declared elementwise function is covered by the d-fn template
    fns = {r.lhs.args[0].attr for r in rs.rules if r.lhs.op == "d" and r.lhs.args[0].op == "fn"}
    assert set(rs.functions.names()) <= fns


def test_every_linear_position_has_an_adjoint_rule():
    have = _adjoint_positions(stock_ruleset())
    missing = sorted((op, i) for op, ps in LINEAR_POSITIONS.items() for i in ps
                     if (op, i) not in have)
    assert not missing, f"linear positions without an adjoint rule: {missing}"


def test_the_tables_above_name_every_operator():
    """A new operator must be placed in one of the tables, or these tests would not see it."""
    nonlinear = {"det", "logdet", "inv", "mpow", "epow", "epows", "fn", "norm2", "fro2", "softmax",
                 "logsumexp"}
    named = LEAVES | INTERNAL | NOT_DIFFERENTIABLE | set(LINEAR_POSITIONS) | nonlinear
    assert set(OPS) <= named, sorted(set(OPS) - named)


def test_a_construct_without_a_rule_is_an_unsupported_error_naming_it():
    with pytest.raises(rw.UnsupportedError, match=r"kront\(·, ·\)"):
        rw.gradient("sum(kront(A, X))", "X", {"A": (2, 2), "X": (2, 3)})


def test_a_user_rule_file_completes_a_missing_differential(tmp_path):
    """The error's advice works: a declared function differentiates through every position."""
    f = tmp_path / "softsign.rules"
    f.write_text("function softsign(x) = x/(1 + abs(x)); d/dx = 1/(1 + abs(x))^2\n")
    g = rw.gradient("tr(softsign(X) .* A)", "X", {"X": (3, 3), "A": (3, 3)}, rules=[f])
    assert gradient_error(g, np.random.default_rng(0))[2] < 1e-6


CASES = [
    ("tr(A .* X)", "X", {"X": (3, 3), "A": (3, 3)}),
    ("tr(exp(X))", "X", {"X": (3, 3)}),
    ("tr(X .* X)", "X", {"X": (3, 3)}),
    ("tr(X ./ C)", "X", {"X": (3, 3), "C": (3, 3)}),
    ("tr(G'*X ./ C)", "X", {"X": (4, 3), "C": (3, 3), "G": (4, 3)}),
    ("sum(diag(exp(X)))", "X", {"X": (3, 3)}),
    ("sum(diag(A ./ B))", "A", {"A": (3, 3), "B": (3, 3)}),
    ("tr(t*softplus(V))", "V", {"V": (3, 3), "t": ()}),
    ("exp(tr(softplus(H)))", "H", {"H": (3, 3)}),
    ("tr(log(U .* U + 1) + k*eye(4))", "U", {"U": (4, 4), "k": ()}),
    ("tr(sigmoid(C^(-1)))", "C", {"C": (3, 3)}),
    ("sum(diag(tanh(Y*Y)))", "Y", {"Y": (3, 3)}),
    ("sum(vec(X) .* v)", "X", {"X": (3, 2), "v": (6,)}),
    ("norm2(vec(X))", "X", {"X": (3, 2)}),
    ("vec(A)'*vec(X*B)", "X", {"A": (3, 4), "X": (3, 2), "B": (2, 4)}),
    ("vec(X*B)'*vec(A)", "X", {"A": (3, 4), "X": (3, 2), "B": (2, 4)}),
    ("norm2sq(vec(A*X) - y)", "X", {"A": (4, 3), "X": (3, 2), "y": (8,)}),
    ("sum(exp(vec(X)) .* vec(A))", "X", {"X": (3, 2), "A": (3, 2)}),
    ("fro2(t*(t - ones(4)*ones(5)')*(cos(X) .* t))", "X", {"X": (5, 3), "t": ()}),
    ("sum((t - ones(4)*ones(5)')*X)", "X", {"X": (5, 3), "t": ()}),
    ("sum(X ./ t + t ./ (X .* X + 1))", "X", {"X": (2, 3), "t": ()}),
    ("sum(t .* X - X*t)", "t", {"X": (2, 3), "t": ()}),
    ("sum(r*X)", "r", {"X": (3, 2), "r": (1, 3)}),
    ("r*A*r'", "r", {"A": (4, 4), "r": (1, 4)}),
    ("tr(X)*sum(A*X)", "X", {"X": (3, 3), "A": (2, 3)}),
    ("tr(inv(inv(X))*A)", "X", {"X": (3, 3), "A": (3, 3)}),
    ("sum(X''' .* A)", "X", {"X": (2, 3), "A": (3, 2)}),
    ("det(X .* X + eye(3))", "X", {"X": (3, 3)}),
    ("sum(diag(diag(x) * (x .* x)))", "x", {"x": (4,)}),
    ("sum(exp(X) .* (ones(2)*ones(3)'))", "X", {"X": (2, 3)}),
    ("sum(sin(X).^2)", "X", {"X": (2, 3)}),
    ("x*x*A*x", "x", {"x": (), "A": ()}),
    ("tr(G*X ./ C)", "X", {"G": (3, 4), "X": (4, 3), "C": (3, 3)}),
    ("sum(diag(r)*A)", "r", {"r": (1, 3), "A": (3, 2)}),
    ("norm2(r*A)", "r", {"r": (1, 3), "A": (3, 4)}),
    ("norm2(r) + tr(diag(r*X))", "X", {"r": (1, 3), "X": (3, 4)}),
    ("sum(kron(A, X))", "X", {"A": (2, 3), "X": (2, 4)}),
    ("fro2(kron(X, B) - C)", "X", {"B": (2, 3), "X": (3, 2), "C": (6, 6)}),
    ("tr(kron(X, X'))", "X", {"X": (2, 3)}),
    ("kron(t, fro2(X))", "X", {"t": (), "X": (2, 3)}),
]


#: constructs whose gradient has a short textbook form, printed as that form
COMPACT = [
    ("vec(A)'*vec(X*B)", "X", {"A": (3, 4), "X": (3, 2), "B": (2, 4)}, "A*B'"),
    ("vec(X*B)'*vec(A)", "X", {"A": (3, 4), "X": (3, 2), "B": (2, 4)}, "A*B'"),
    ("vec(X)'*vec(X)", "X", {"X": (3, 2)}, "2*X"),
    ("fro2(vec(A*X))", "X", {"A": (4, 3), "X": (3, 2)}, "2*A'*A*X"),
    ("sum(exp(vec(X)))", "X", {"X": (3, 2)}, "exp(X)"),
    ("norm2(vec(X))", "X", {"X": (3, 2)}, "X ./ norm2(vec(X))"),
    # a scaled inner product: vec(c*X) is kept as is (a scaling pulled out of vec leaves the
    # gradient in vec layout, reshaped back with Kronecker factors)
    ("vec(A)'*vec(c*X)", "X", {"A": (3, 2), "X": (3, 2), "c": ()}, "c*A"),
    # the KL divergence of N(mu, diag(exp(s))) from N(0, I), up to a constant: tr(diag(v)) is
    # sum(v) (tr-diagm), not the trace of diag(v) read back through diag(eye(n))
    ("0.5*(tr(diag(exp(s))) + mu'*mu - sum(s))", "s", {"s": (4,), "mu": (4,)}, "-0.5 + 0.5*exp(s)"),
    # half a trace written as the sum of a diagonal: sum(diag(E)) is tr(E) (sum-diagv), not
    # collected through diag as diag(0.5*ones(3))
    ("sum(diag(X*B))/2", "X", {"X": (3, 2), "B": (2, 3)}, "0.5*B'"),
    # a scaled, masked least-squares penalty: the scalars of nested scalings meet as c^2
    ("fro2(c*(M .* X))", "X", {"M": (3, 2), "X": (3, 2), "c": ()}, "2*c^2*(M.^2 .* X)"),
]

#: sum_i x_i*f(x_i) over the entries of a 3×2 X, one case per elementwise function of the
#: operator table: its differential holds f(vec(X)) as well as f'(vec(X)), and each is collected
#: as a function of X only through that function's copy of vec-fn-in (rules/linear.rules).
#: (expr, wrt, shapes, golden, variables drawn positive)
VEC_FUNCTIONS = [(f"vec(X)'*{f}(vec(X))", "X", {"X": (3, 2)}, golden,
                  {"X"} if f in ("log", "sqrt") else set()) for f, golden in {
    "exp": "exp(X) + exp(X) .* X",
    "log": "log(X) + 1",
    "sin": "cos(X) .* X + sin(X)",
    "cos": "cos(X) - sin(X) .* X",
    "tanh": "(1 - tanh(X).^2) .* X + tanh(X)",
    "sigmoid": "(1 - sigmoid(X)) .* sigmoid(X) .* X + sigmoid(X)",
    "softplus": "sigmoid(X) .* X + softplus(X)",
    "sqrt": "0.5*X.^(0.5) + sqrt(X)",
    "abs": "abs(X) + sign(X) .* X",
    "sign": "sign(X)",
    "step": "step(X)",
    "relu": "relu(X) + step(X) .* X",
}.items()]


@pytest.mark.parametrize("expr, wrt, shapes, golden", COMPACT, ids=[c[0] for c in COMPACT])
def test_compact_answers(expr, wrt, shapes, golden):
    check_answer(rw.gradient(expr, wrt, shapes), golden)


@pytest.mark.parametrize("expr, wrt, shapes, golden, positive", VEC_FUNCTIONS,
                         ids=[c[0] for c in VEC_FUNCTIONS])
def test_elementwise_function_of_vec(expr, wrt, shapes, golden, positive):
    check_answer(rw.gradient(expr, wrt, shapes), golden, positive=positive)


def test_every_elementwise_function_of_vec_is_checked():
    """One case per copy of the template rule vec-fn-in, that is per elementwise function."""
    copies = {r.name[len("vec-fn-in["):-1] for r in stock_ruleset().rules
              if r.name.startswith("vec-fn-in[")}
    assert copies == {c[0].split("'*")[1].split("(")[0] for c in VEC_FUNCTIONS}


@pytest.mark.parametrize("expr, wrt, shapes", CASES, ids=[c[0] for c in CASES])
def test_gradient_matches_finite_differences(expr, wrt, shapes):
    g = rw.gradient(expr, wrt, shapes)
    grad, fd, err = gradient_error(g, np.random.default_rng(0))
    assert grad.shape == fd.shape, (str(g), grad.shape, fd.shape)
    assert np.all(np.isfinite(fd)), "the random point lies outside the expression's domain"
    assert err < 1e-6, f"{expr}: {g} (relative error {err:.2e})"
    # the printed answer means the same, with the same shape
    again = rw.Engine().term(str(g), shapes)
    assert again.shape == g.term.shape, (str(g), again.shape, g.term.shape)
