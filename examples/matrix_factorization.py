"""Low-rank matrix factorisation M ≈ U Vᵀ, written with sympy MatrixSymbols.

The objective is a sympy expression; tracegrad returns both gradients, shown as text, as
LaTeX and converted back to sympy, and the numpy callables drive alternating gradient steps.
Run: python examples/matrix_factorization.py
"""

import numpy as np
import sympy

import rewrite as rw

m, n, k = sympy.symbols("m n k", integer=True, positive=True)
M = sympy.MatrixSymbol("M", m, n)
U = sympy.MatrixSymbol("U", m, k)
V = sympy.MatrixSymbol("V", n, k)
R = M - U * V.T
f = sympy.Trace(R.T * R)  # ||M - U Vᵀ||_F²

gU = rw.gradient(f, wrt="U")
gV = rw.gradient(f, wrt="V")
print("grad_U f =", gU, "   LaTeX:", gU.latex())
print("grad_V f =", gV, "   sympy:", gV.to_sympy())
loss, grad_u, grad_v = gU.objective.numpy(), gU.numpy(), gV.numpy()

rng = np.random.default_rng(3)
rows, cols, rank = 8, 6, 2
M_val = rng.normal(size=(rows, rank)) @ rng.normal(size=(rank, cols))
U_val = 0.1 * rng.normal(size=(rows, rank))
V_val = 0.1 * rng.normal(size=(cols, rank))

# hand-written gradients: -2 (M - U Vᵀ) V and -2 (M - U Vᵀ)ᵀ U
Rv = M_val - U_val @ V_val.T
assert np.allclose(grad_u(M=M_val, U=U_val, V=V_val), -2 * Rv @ V_val)
assert np.allclose(grad_v(M=M_val, U=U_val, V=V_val), -2 * Rv.T @ U_val)

first = loss(M=M_val, U=U_val, V=V_val)
for _ in range(400):
    U_val = U_val - 0.02 * grad_u(M=M_val, U=U_val, V=V_val)
    V_val = V_val - 0.02 * grad_v(M=M_val, U=U_val, V=V_val)
last = loss(M=M_val, U=U_val, V=V_val)
print(f"||M - U V'||² {first:.2f} -> {last:.2e}")
assert last < 1e-6 * first
print("ok")
