"""Generated NumPy / JAX / PyTorch code: every public case against numeric.evaluate and central
finite differences, shape checks, chain bracketing, solves, slogdet and stable functions."""

import itertools
import re
import subprocess
import sys
from functools import cache

import numpy as np
import pytest
from conftest import public_cases
from hypothesis import given
from hypothesis import strategies as st
from test_properties import matrix_expr
from test_public_cases import assumptions

import rewrite as rw
from rewrite.codegen import BACKENDS, codegen, load, matmul_cost, plan_chain
from rewrite.errors import UnsupportedError
from rewrite.numeric import evaluate, finite_difference, instantiate_dims, random_point, relative_error
from rewrite.terms import make

CASES = public_cases()
CASE_BY_ID = {c["id"]: c for c in CASES}


def backend_or_skip(backend):
    if backend == "jax":
        pytest.importorskip("jax")
    elif backend == "torch":
        pytest.importorskip("torch")


@cache
def case_gradient(case_id):
    c = CASE_BY_ID[case_id]
    return rw.gradient(c["expr"], c["wrt"], c["shapes"])


@cache
def case_module(case_id, backend):
    return load(codegen(case_gradient(case_id), backend), f"case_{backend}")


def to_numpy(a):
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=float)


def one_d_vectors(g, env):
    """The same point with every column vector passed 1-D and every scalar as a float."""
    return one_d_vectors_of(g.f, env)


def one_d_vectors_of(t, env):
    """``env`` for the variables of term ``t``, vectors 1-D and scalars as floats."""
    shapes = _var_shapes(t)
    out = {}
    for name, value in env.items():
        if shapes[name] == (1, 1):
            out[name] = float(value[0, 0])
        elif shapes[name][1] == 1:
            out[name] = value[:, 0].copy()
        else:
            out[name] = value
    return out


def _var_shapes(t):
    from rewrite.terms import var_shapes

    return var_shapes(t)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case_id", list(CASE_BY_ID))
def test_generated_code_matches_evaluate_and_finite_differences(case_id, backend):
    backend_or_skip(backend)
    c = CASE_BY_ID[case_id]
    g = case_gradient(case_id)
    mod = case_module(case_id, backend)
    spd, pos, signs = assumptions(c)
    for seed, flat in ((11, False), (12, True)):
        rng = np.random.default_rng(seed)
        dims = instantiate_dims(g.f, rng)
        env = random_point(g.f, rng, dims, spd=spd, positive=pos, signs=signs)
        f_ref = evaluate(g.f, env, g.registry, dims)[0, 0]
        fd = finite_difference(g.f, g.wrt, env, g.registry, dims)
        assert np.all(np.isfinite(fd)), "test point outside the domain"
        args = one_d_vectors(g, env) if flat else env
        before = {k: np.array(v, copy=True) for k, v in args.items()}
        f, grad = mod.f_and_grad(**args)
        grad = to_numpy(grad)
        np.testing.assert_array_equal(to_numpy(mod.gradient(**args)), grad)
        for k, v in args.items():
            np.testing.assert_array_equal(v, before[k], err_msg=f"generated code wrote into {k}")
        assert grad.shape == np.shape(args[g.wrt]), "gradient not in the shape the caller passed"
        np.testing.assert_allclose(float(f), f_ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(float(mod.objective(**args)), f_ref, rtol=1e-10, atol=1e-12)
        assert relative_error(grad.reshape(fd.shape), fd) < 1e-6
        np.testing.assert_allclose(grad.reshape(fd.shape), evaluate(g.term, env, g.registry, dims),
                                   rtol=1e-8, atol=1e-10)
        assert mod.check_gradient(**args) < 1e-6


EXTRA = [  # broadcasting, symbolic eye/ones, diag, vec, negative powers, scalar variables
    ("sum((X + 2).^2)", "X", {"X": ("m", "n")}),
    ("sum(X.^3) + sum(2 ./ (1 + X.^2))", "X", {"X": ("m", "n")}),
    ("tr(X*inv(X'*X + eye(n))*X')", "X", {"X": ("m", "n")}),
    ("norm2(x) + x'*ones(n)", "x", {"x": ("n",)}),
    ("sum(diag(x)*A*diag(x))", "x", {"x": ("n",), "A": ("n", "n")}),
    ("vec(X)'*vec(B)", "X", {"X": ("m", "n"), "B": ("m", "n")}),
    ("tr(X^-2)", "X", {"X": ("n", "n")}),
    ("c^2*tr(A*X) + exp(c)", "c", {"c": (), "A": ("n", "m"), "X": ("m", "n")}),
    ("sum(log(X) .* A) - c*sum(X)", "X", {"X": ("m", "n"), "A": ("m", "n"), "c": ()}),
    ("sum(sin(X)) + sum(cos(X).*tanh(X))", "X", {"X": ("m", "n")}),
    ("det(X)^2 + tr(X)*0.5", "X", {"X": ("n", "n")}),
    ("(a'*X*b)^2", "X", {"a": ("m",), "X": ("m", "n"), "b": ("n",)}),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("expr", "wrt", "shapes"), EXTRA, ids=[e[0] for e in EXTRA])
def test_more_constructs_on_non_square_shapes(expr, wrt, shapes, backend):
    backend_or_skip(backend)
    g = rw.gradient(expr, wrt, shapes)
    mod = load(codegen(g, backend))
    rng = np.random.default_rng(21)
    dims = instantiate_dims(g.f, rng, fixed={"m": 5, "n": 3})
    env = random_point(g.f, rng, dims, positive={"X"} if "log" in expr else set(),
                       spd={"X"} if "^-2" in expr else set())
    f, grad = mod.f_and_grad(**env)
    fd = finite_difference(g.f, wrt, env, g.registry, dims)
    np.testing.assert_allclose(float(f), evaluate(g.f, env, g.registry, dims)[0, 0], rtol=1e-10)
    assert to_numpy(grad).shape == env[wrt].shape
    assert relative_error(to_numpy(grad), fd) < 1e-6


def test_numpy_module_imports_only_numpy_and_runs_standalone(tmp_path):
    g = case_gradient("cookbook-2.5.4-eq127")
    src = codegen(g, "numpy")
    imports = {m for line in src.splitlines() for m in re.findall(r"^(?:import|from) (\w+)", line)}
    assert imports == {"numpy"}
    path = tmp_path / "grad_mod.py"
    path.write_text(src)
    script = ("import numpy as np, grad_mod\n"
              "rng = np.random.default_rng(0)\n"
              "M = rng.normal(size=(5, 5)); N = rng.normal(size=(3, 3))\n"
              "env = dict(A=N @ N.T + np.eye(3), B=M + M.T, C=M @ M.T + np.eye(5),"
              " X=rng.normal(size=(5, 3)))\n"
              "print(grad_mod.check_gradient(**env))\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(tmp_path), "PATH": ""})
    assert float(out.stdout) < 1e-6


def test_scalar_and_vector_conventions():
    g = rw.gradient("lam*norm2sq(x) + a'*x", "lam", {"lam": (), "x": ("n",), "a": ("n",)})
    mod = load(codegen(g))
    x, a = np.arange(3.0), np.ones(3)
    f, d = mod.f_and_grad(lam=2.0, x=x, a=a)
    assert isinstance(f, float) and isinstance(d, float)
    assert f == pytest.approx(2 * 5 + 3) and d == pytest.approx(5.0)
    _, d = mod.f_and_grad(lam=np.array(2.0), x=x[:, None], a=a)
    assert d.shape == ()
    _, d = mod.f_and_grad(lam=np.array([[2.0]]), x=x, a=a)
    assert d.shape == (1, 1)
    gx = rw.gradient("lam*norm2sq(x) + a'*x", "x", {"lam": (), "x": ("n",), "a": ("n",)})
    mx = load(gx.code("numpy"))
    assert mx.f_and_grad(lam=2.0, x=x, a=a)[1].shape == (3,)
    np.testing.assert_allclose(mx.f_and_grad(lam=2.0, x=x[:, None], a=a)[1], (4 * x + a)[:, None])


def test_shape_assertions_name_dimensions_consistently():
    g = rw.gradient("tr(X'*A*X)", "X", {"X": ("n", "k"), "A": ("n", "n")})
    mod = load(codegen(g))
    with pytest.raises(ValueError, match=r"X: dimension n is 4 \(from A\) but X has 5 rows"):
        mod.f_and_grad(A=np.eye(4), X=np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"A: expected a matrix of shape \(n, n\), got an array of shape"):
        mod.f_and_grad(A=np.ones((2, 2, 2)), X=np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"A: dimension n is 3 \(from A\) but A has 2 columns"):
        mod.f_and_grad(A=np.ones((3, 2)), X=np.ones((3, 2)))
    with pytest.raises(TypeError, match="missing X"):
        mod.f_and_grad(A=np.eye(2))
    with pytest.raises(TypeError, match="unexpected B"):
        mod.f_and_grad(A=np.eye(2), X=np.eye(2), B=1.0)
    fixed = load(codegen(rw.gradient("a'*X*b", "X", {"a": (3,), "X": (3, 5), "b": (5,)})))
    with pytest.raises(ValueError, match="b: expected a vector of length 5"):
        fixed.f_and_grad(a=np.ones(3), X=np.ones((3, 5)), b=np.ones(4))


def brute_force_cost(shapes):
    """Cheapest cost over every bracketing, by enumeration."""

    def best(i, j):
        if i == j:
            return 0
        return min(best(i, s) + best(s + 1, j) + matmul_cost(shapes[i][0], shapes[s][1], shapes[j][1])
                   for s in range(i, j))

    return best(0, len(shapes) - 1)


def all_costs(shapes):
    """Cost of every bracketing (for checking that the optimum is attained and unique enough)."""

    def trees(i, j):
        if i == j:
            yield 0
            return
        for s in range(i, j):
            for a, b in itertools.product(list(trees(i, s)), list(trees(s + 1, j))):
                yield a + b + matmul_cost(shapes[i][0], shapes[s][1], shapes[j][1])

    return sorted(set(trees(0, len(shapes) - 1)))


@pytest.mark.parametrize("seed", range(20))
def test_plan_chain_is_flop_optimal(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 7))
    dims = [int(d) for d in rng.integers(1, 60, size=k + 1)]
    shapes = list(itertools.pairwise(dims))
    plan = plan_chain(shapes)
    assert plan.cost == brute_force_cost(shapes)
    assert plan.cost == all_costs(shapes)[0]


def matmul_flops_of_generated(src, env, function="objective"):
    """Replay the generated function line by line, adding m*n*p for every '@'."""
    mod = load(src)
    body = src[src.index(f"def {function}("):].split("\n\n")[0].splitlines()
    ns = dict(vars(mod))
    ns["arrays"] = env
    total = 0
    for line in body[2:]:
        stmt = line.strip()
        if stmt.startswith("return"):
            break
        if " @ " in stmt:
            left, right = stmt.split(" = ", 1)[1].split(" @ ")
            a, b = eval(left, ns), eval(right.removesuffix("[0, 0]"), ns)
            total += a.shape[0] * a.shape[1] * b.shape[1]
        exec(stmt, ns)
    return total


def test_generated_chain_uses_the_optimal_bracketing():
    shapes = {"A": (40, 3), "B": (3, 50), "C": (50, 2), "X": (2, 30), "D": (30, 40)}
    g = rw.gradient("tr(A*B*C*X*D)", "X", shapes)
    src = codegen(g)
    rng = np.random.default_rng(0)
    env = {n: rng.normal(size=s) for n, s in shapes.items()}
    chain = [shapes[n] for n in "ABCXD"]
    optimal = plan_chain(chain).cost
    written_left_to_right = sum(matmul_cost(40, chain[k][0], chain[k][1]) for k in range(1, 5))
    assert optimal < written_left_to_right
    assert matmul_flops_of_generated(src, env) == optimal
    mod = load(src)
    assert mod.check_gradient(**env) < 1e-6


def test_inverse_times_matrix_is_a_solve():
    g = rw.gradient("a'*inv(X)*b", "X", {"a": (4,), "X": (4, 4), "b": (4,)})
    for backend, solve, inv in (("numpy", "np.linalg.solve(", "np.linalg.inv("),
                                ("jax", "jnp.linalg.solve(", "jnp.linalg.inv("),
                                ("torch", "torch.linalg.solve(", "torch.linalg.inv(")):
        src = codegen(g, backend)
        assert solve in src and inv not in src
    sym = rw.gradient("tr(A*inv(X)*B)", "X", {"A": ("m", "n"), "X": ("n", "n"), "B": ("n", "m")})
    src = codegen(sym)
    assert "np.linalg.solve(" in src and "np.linalg.inv(" not in src
    rng = np.random.default_rng(4)
    m = rng.normal(size=(5, 5))
    env = {"A": rng.normal(size=(2, 5)), "X": m @ m.T + np.eye(5), "B": rng.normal(size=(5, 2))}
    assert load(src).check_gradient(**env) < 1e-6


def test_an_inverse_needed_anyway_is_multiplied_not_solved():
    g = rw.gradient("0.5*logdet(S) + 0.5*tr(inv(S)*B)", "S", {"S": ("n", "n"), "B": ("n", "n")})
    src = codegen(g)
    body = src[src.index("def f_and_grad("):]
    # G = 0.5*inv(S)' - 0.5*inv(S)'*B'*inv(S)': one inverse, reused; f's inv(S)*B reused in G
    assert body.count("np.linalg.inv(") == 1 and "solve(" not in body
    assert body.count(" @ ") + body.count("_scaled_matmul(") == 2
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(2, 6, 6))
    env = {"S": a @ a.T + np.eye(6), "B": b @ b.T}
    assert load(src).check_gradient(**env) < 1e-6


@pytest.mark.parametrize("expr", ["sum(diag(X*A) .* diag(exp(X*A)))",
                                  "vec(X*A)'*vec(exp(X*A))",
                                  "sum(diag(X*A) .* diag(tanh(X*A) + X*A))"])
def test_a_temporary_is_not_overwritten_while_a_view_of_it_is_alive(expr):
    # diag(M) is np.diagonal(M), a view: exp(M) must not be computed into M's array while the
    # view is still to be read
    g = rw.gradient(expr, "X", {"X": (4, 4), "A": (4, 4)})
    mod = load(codegen(g))
    rng = np.random.default_rng(8)
    env = {"X": 0.3 * rng.normal(size=(4, 4)), "A": rng.normal(size=(4, 4))}
    f = evaluate(g.f, env, g.registry)[0, 0]
    np.testing.assert_allclose(mod.objective(**env), f, rtol=1e-12)
    got_f, grad = mod.f_and_grad(**env)
    np.testing.assert_allclose(got_f, f, rtol=1e-12)
    np.testing.assert_allclose(grad, evaluate(g.term, env, g.registry), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mod.gradient(**env), grad, rtol=1e-12)


def test_large_temporaries_are_overwritten_not_reallocated():
    import tracemalloc

    g = rw.gradient("fro2(U*V' - Y)", "U", {"U": ("m", "r"), "V": ("n", "r"), "Y": ("m", "n")})
    mod = load(codegen(g))
    rng = np.random.default_rng(6)
    m, n, r = 300, 400, 5
    env = {"U": rng.normal(size=(m, r)), "V": rng.normal(size=(n, r)), "Y": rng.normal(size=(m, n))}
    mod.f_and_grad(**env)
    tracemalloc.start()
    f, grad = mod.f_and_grad(**env)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # U*V', minus Y, squared and summed: one m×n array in all (was three)
    assert peak < 1.5 * m * n * 8
    resid = env["U"] @ env["V"].T - env["Y"]
    np.testing.assert_allclose(f, np.sum(resid**2), rtol=1e-12)
    np.testing.assert_allclose(grad, 2 * resid @ env["V"], rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_scalar_times_a_product_scales_the_smallest_operand(backend):
    backend_or_skip(backend)
    g = rw.gradient("fro2(U*V' - Y)", "U", {"U": ("m", "r"), "V": ("n", "r"), "Y": ("m", "n")})
    mod = load(codegen(g, backend))
    assert "_scaled_matmul(2.0, " in codegen(g, backend)
    rng = np.random.default_rng(7)
    # the scalar lands on a (left small), on b (right small), on the product (both large)
    for shape_a, shape_b in (((3, 40), (40, 30)), ((30, 40), (40, 3)), ((30, 4), (4, 30))):
        a, b = rng.normal(size=shape_a), rng.normal(size=shape_b)
        if backend == "torch":
            import torch

            got = mod._scaled_matmul(-1.5, torch.as_tensor(a), torch.as_tensor(b)).numpy()
        else:
            got = mod._scaled_matmul(-1.5, a, b)
        np.testing.assert_allclose(got, -1.5 * (a @ b), rtol=1e-13)


def test_common_subexpressions_are_computed_once():
    g = rw.gradient("logdet(X'*X)", "X", {"X": (5, 3)})
    src = codegen(g)
    body = src[src.index("def f_and_grad("):]
    assert body.count("x_X.T @ x_X") == 1
    g = case_gradient("ml-gp-marginal")
    body = codegen(g)[codegen(g).index("def f_and_grad("):]
    assert body.count("np.eye(5)") == 1
    assert body.count("np.linalg.inv(") <= 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_logdet_uses_slogdet_and_survives_overflowing_determinants(backend):
    backend_or_skip(backend)
    g = rw.gradient("logdet(X)", "X", {"X": ("n", "n")})
    src = codegen(g, backend)
    assert "slogdet" in src
    x = 300.0 * np.eye(200)  # det(X) = 300^200 overflows a float
    f, grad = load(src).f_and_grad(X=x)
    assert float(f) == pytest.approx(200 * np.log(300.0))
    np.testing.assert_allclose(to_numpy(grad), np.eye(200) / 300.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigmoid_and_softplus_are_stable(backend):
    backend_or_skip(backend)
    g = rw.gradient("sum(softplus(X)) + sum(sigmoid(X))", "X", {"X": ("m", "n")})
    mod = load(codegen(g, backend))
    x = np.array([[-1000.0, -30.0, 0.0], [30.0, 700.0, 1000.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is harmless
        f, grad = mod.f_and_grad(X=x)
    sig = 1.0 / (1.0 + np.exp(-np.clip(x, -500, 500)))
    sp = np.where(x > 0, x + np.log1p(np.exp(-np.abs(x))), np.log1p(np.exp(-np.abs(x))))
    np.testing.assert_allclose(float(f), sp.sum() + sig.sum(), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(grad), sig + sig * (1 - sig), rtol=1e-12, atol=1e-15)


def test_jax_module_is_jittable():
    jax = pytest.importorskip("jax")
    g = case_gradient("ml-logreg")
    mod = case_module("ml-logreg", "jax")
    rng = np.random.default_rng(5)
    env = {"X": rng.normal(size=(6, 3)), "w": rng.normal(size=3), "y": rng.choice([-1.0, 1.0], size=6)}
    f, grad = jax.jit(mod.f_and_grad)(**env)
    f0, g0 = mod.f_and_grad(**env)
    np.testing.assert_allclose(np.asarray(grad), np.asarray(g0), rtol=1e-12)
    assert float(f) == pytest.approx(float(f0))
    auto = jax.grad(lambda w: mod.objective(X=env["X"], w=w, y=env["y"]))(env["w"])
    np.testing.assert_allclose(np.asarray(auto), np.asarray(g0), rtol=1e-10)
    assert g.wrt == "w"


def test_torch_gradient_agrees_with_autograd():
    torch = pytest.importorskip("torch")
    mod = case_module("cookbook-2.5.4-eq127", "torch")
    rng = np.random.default_rng(6)
    m, n = rng.normal(size=(5, 5)), rng.normal(size=(3, 3))
    env = {"A": torch.tensor(n @ n.T + np.eye(3)), "B": torch.tensor(m + m.T),
           "C": torch.tensor(m @ m.T + np.eye(5)), "X": torch.tensor(rng.normal(size=(5, 3)),
                                                                     requires_grad=True)}
    (auto,) = torch.autograd.grad(mod.objective(**env), env["X"])
    _, grad = mod.f_and_grad(**env)
    np.testing.assert_allclose(grad.detach().numpy(), auto.numpy(), rtol=1e-9, atol=1e-12)


def test_declared_function_gets_a_helper():
    from rewrite.codegen import generate
    from rewrite.parse import Elaborator
    from rewrite.stock import default_registry

    reg = default_registry().copy()
    reg.declare("abs", "abs(x)")
    reg.declare("softsign", "x/(1 + abs(x))")

    def term(text):
        return Elaborator({"X": (3, 4)}, reg.names()).elaborate(text)

    f, grad = term("sum(softsign(X))"), term("1 ./ (1 + abs(X)).^2")
    src = generate(f, "X", grad, "numpy", reg)
    assert "def _fn_softsign(x):" in src and "np.abs(" in src
    x = np.random.default_rng(8).normal(size=(3, 4)) + 0.3
    fv, gv = load(src).f_and_grad(X=x)
    np.testing.assert_allclose(fv, np.sum(x / (1 + np.abs(x))), rtol=1e-12)
    np.testing.assert_allclose(fv, evaluate(f, {"X": x}, reg)[0, 0], rtol=1e-12)
    np.testing.assert_allclose(gv, finite_difference(f, "X", {"X": x}, reg), rtol=1e-6)


def test_bad_backend_and_non_gradient_inputs_are_typed_errors():
    g = rw.gradient("tr(A*X)", "X", {"A": (2, 3), "X": (3, 2)})
    with pytest.raises(UnsupportedError, match="unknown code generation backend"):
        codegen(g, "fortran")
    with pytest.raises(UnsupportedError, match="gradient result"):
        codegen(rw.parse("tr(A*X)", {"A": (2, 3), "X": (3, 2)}))
    assert rw.codegen(g, "numpy") == g.code("numpy")


def test_cli_prints_module(capsys):
    from rewrite.cli import main

    assert main(["grad", "tr(X'*A*X)", "--wrt", "X", "--shape", "X=n,k", "--shape", "A=n,n",
                 "--format", "numpy"]) == 0
    src = capsys.readouterr().out
    mod = load(src)
    rng = np.random.default_rng(2)
    assert mod.check_gradient(X=rng.normal(size=(4, 2)), A=rng.normal(size=(4, 4))) < 1e-6
    for backend in ("jax", "torch"):
        assert main(["grad", "tr(A*X)", "--wrt", "X", "--format", backend]) == 0
        assert f"({backend})" in capsys.readouterr().out


# -- second order -----------------------------------------------------------------------------------
# (kind, expression, wrt, shapes, SPD variables)
SECOND_ORDER = [
    ("hessian", "x'*A*x", "x", {"x": ("n",), "A": ("n", "n")}, set()),
    ("hessian", "sum(softplus(X*w)) - y'*X*w + 0.5*lam*w'*w", "w",
     {"X": ("m", "n"), "w": ("n",), "y": ("m",), "lam": ()}, set()),
    ("hessian", "tr(X'*A*X*B)", "X", {"X": ("n", "k"), "A": ("n", "n"), "B": ("k", "k")}, set()),
    ("hessian", "logdet(S) + tr(inv(S)*Y*Y')/2", "S", {"S": ("n", "n"), "Y": ("n", "k")}, {"S"}),
    ("hessian", "c^3 + c*sum(x .* x)", "c", {"c": (), "x": ("n",)}, set()),
    ("hvp", "logdet(S) + x'*inv(S)*x", "S", {"S": ("n", "n"), "x": ("n",)}, {"S"}),
    ("hvp", "sum(softplus(X*w)) - y'*X*w", "w", {"X": ("m", "n"), "w": ("n",), "y": ("m",)},
     set()),
    ("hvp", "fro2(A*X*B - C)", "X",
     {"A": ("m", "n"), "X": ("n", "p"), "B": ("p", "q"), "C": ("m", "q")}, set()),
    ("jacobian", "A*X'*B", "X", {"A": ("m", "p"), "X": ("n", "p"), "B": ("n", "q")}, set()),
    ("jacobian", "exp(A*x) .* x", "x", {"A": ("n", "n"), "x": ("n",)}, set()),
    ("jacobian", "inv(X)", "X", {"X": ("n", "n")}, {"X"}),
]


@cache
def second_order(kind, expr, wrt, shapes_key):
    return getattr(rw, kind)(expr, wrt, dict(shapes_key))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind,expr,wrt,shapes,spd", SECOND_ORDER,
                         ids=[f"{s[0]}:{s[1]}" for s in SECOND_ORDER])
def test_second_order_module_matches_evaluate_and_finite_differences(kind, expr, wrt, shapes, spd,
                                                                    backend):
    backend_or_skip(backend)
    d = second_order(kind, expr, wrt, tuple(sorted(shapes.items())))
    mod = load(d.code(backend), f"so_{backend}")
    rng = np.random.default_rng(7)
    holder = make("add", make("sum", d.term), make("sum", d.of))
    dims = instantiate_dims(holder, rng)
    env = random_point(holder, rng, dims, spd=spd)
    arrays = one_d_vectors_of(holder, env)
    want = evaluate(d.term, env, d.registry, dims)
    got = to_numpy(getattr(mod, kind)(**arrays))
    assert np.allclose(got.reshape(want.shape), want, rtol=1e-9, atol=1e-10), str(d)
    assert getattr(mod, f"check_{kind}")(**arrays) < 1e-6
    if kind == "jacobian":
        F = evaluate(d.of, env, d.registry, dims)
        assert np.allclose(to_numpy(mod.value(**arrays)).reshape(F.shape), F)
        return
    combined = mod.f_grad_hess if kind == "hessian" else mod.f_grad_hvp
    f, g, r = combined(**arrays)
    f_args = {n: arrays[n] for n in mod.INPUTS if n in _var_shapes(d.of)}
    assert float(f) == pytest.approx(float(evaluate(d.of, env, d.registry, dims)[0, 0]))
    assert float(mod.objective(**f_args)) == pytest.approx(float(f))  # the direction not needed
    G = evaluate(d.gradient, env, d.registry, dims)
    assert np.allclose(to_numpy(g).reshape(G.shape), G)
    assert np.shape(to_numpy(g)) == np.shape(arrays[wrt])  # as the variable was passed
    assert np.allclose(to_numpy(r).reshape(want.shape), want)


def test_hessian_module_scales_by_diagonals_instead_of_forming_them():
    d = rw.hessian("sum(softplus(X*w)) - y'*X*w", "w", {"X": ("m", "n"), "w": ("n",), "y": ("m",)})
    src = d.code("numpy")
    body = src[src.index("def hessian("):src.index("def f_grad_hess(")]
    # X*w, then X'*diag(s)*X as one symmetric product: no n×n diagonal is formed
    assert "np.diag(" not in body and body.count("@") == 1 and "_gram(x_X, " in body
    mod = load(src)
    rng = np.random.default_rng(0)
    X, w, y = rng.normal(size=(6, 3)), rng.normal(size=3), rng.normal(size=6)
    s = 1 / (1 + np.exp(-X @ w))
    assert np.allclose(mod.hessian(X=X, w=w, y=y), X.T @ np.diag(s * (1 - s)) @ X)
    # weights of both signs take the general path
    d = rw.hessian("x'*A'*diag(b)*A*x", "x", {"x": ("n",), "A": ("m", "n"), "b": ("m",)})
    mod = load(d.code("numpy"))
    A, b, x = rng.normal(size=(5, 3)), rng.normal(size=5), rng.normal(size=3)
    assert (b < 0).any() and (b > 0).any()
    assert np.allclose(mod.hessian(x=x, A=A, b=b), 2 * A.T @ np.diag(b) @ A)
    # the jax and torch modules scale rows instead
    d = rw.hessian("sum(softplus(X*w)) - y'*X*w", "w", {"X": ("m", "n"), "w": ("n",), "y": ("m",)})
    for backend, diag in (("jax", "jnp.diag("), ("torch", "torch.diag(")):
        src = d.code(backend)
        body = src[src.index("def hessian("):src.index("def f_grad_hess(")]
        assert diag not in body and body.count("@") + body.count("dot_general(") == 2, backend


def test_jax_contracts_transposed_operands_in_place():
    """XLA on CPU copies a transposed matrix before a plain @; the JAX module uses dot_general."""
    pytest.importorskip("jax")
    g = rw.gradient("fro2(A'*X*B' - C)", "X",
                    {"A": ("n", "m"), "X": ("n", "p"), "B": ("q", "p"), "C": ("m", "q")})
    src = g.code("jax")
    body = src[src.index("def f_and_grad("):src.index("def check_gradient")]
    assert ".T @" not in body and "@ x_B.T" not in body and "dot_general(" in body
    mod = load(src)
    rng = np.random.default_rng(0)
    A, X, B, C = (rng.normal(size=s) for s in ((4, 5), (4, 3), (2, 3), (5, 2)))
    f, grad = mod.f_and_grad(A=A, X=X, B=B, C=C)
    R = A.T @ X @ B.T - C
    assert np.isclose(float(f), np.sum(R * R))
    assert np.allclose(np.asarray(grad), 2 * A @ R @ B)


def test_second_order_cli_prints_module(capsys):
    from rewrite.cli import main

    assert main(["hessian", "x'*A*x", "--wrt", "x", "--shape", "x=n", "--shape", "A=n,n",
                 "--format", "numpy"]) == 0
    mod = load(capsys.readouterr().out)
    A = np.arange(9.0).reshape(3, 3)
    assert np.allclose(mod.hessian(x=np.ones(3), A=A), A + A.T)
    assert main(["hvp", "x'*A*x", "--wrt", "x", "--shape", "x=n", "--format", "torch"]) == 0
    assert "def f_grad_hvp(" in capsys.readouterr().out
    assert main(["jacobian", "A*x", "--wrt", "x", "--shape", "x=n", "--format", "jax"]) == 0
    assert "def check_jacobian(" in capsys.readouterr().out


#: X and the constants C{r}{c} that test_properties.matrix_expr draws for a 3×3 X
VIEW_SHAPES = {"X": (3, 3), **{f"C{r}{c}": (r, c) for r in (2, 3, 4) for c in (2, 3, 4)}}


@st.composite
def view_heavy_objective(draw):
    """A random objective using a random 3×3 matrix M twice, once through diag(), vec() or a
    product and once transformed, so that buffer reuse in generated code meets NumPy views."""
    m = draw(matrix_expr((3, 3), draw(st.integers(0, 2)), (3, 3)))
    h = draw(st.sampled_from(["exp({})", "tanh({})", "({} .* {})", "(0.5*{} + C33)", "({})'",
                              "sigmoid({})", "{}*{}"]))
    other = h.replace("{}", m)
    kind = draw(st.sampled_from(["diag", "vec", "sum"]))
    first, second = draw(st.permutations([m, other]))
    if kind == "diag":
        return f"sum(diag({first}) .* diag({second}))"
    if kind == "vec":
        return f"vec({first})'*vec({second})"
    return f"sum({first} .* {second})"


@given(view_heavy_objective())
def test_generated_numpy_code_with_views_agrees_with_the_interpreter(expr):
    try:
        g = rw.gradient(expr, "X", VIEW_SHAPES)
    except rw.TracegradError:
        return
    mod = load(codegen(g))
    rng = np.random.default_rng(9)
    env = {k: (0.3 if k == "X" else 0.5) * rng.normal(size=shape)
           for k, shape in _var_shapes(g.f).items()}
    before = {k: v.copy() for k, v in env.items()}
    f = evaluate(g.f, env, g.registry)[0, 0]
    grad = evaluate(g.term, env, g.registry)
    np.testing.assert_allclose(mod.objective(**env), f, rtol=1e-10, atol=1e-12)
    got_f, got_g = mod.f_and_grad(**env)
    np.testing.assert_allclose(got_f, f, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_g, grad, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(mod.gradient(**env), grad, rtol=1e-8, atol=1e-10)
    for k, v in env.items():
        np.testing.assert_array_equal(v, before[k])
