"""Least squares: the gradient of ||X w - y||² from tracegrad, used for gradient descent.

Run: python examples/least_squares.py
"""

import numpy as np

import rewrite as rw

SHAPES = {"X": ("m", "n"), "w": ("n",), "y": ("m",)}
f = rw.gradient("norm2sq(X*w - y)", wrt="w", shapes=SHAPES)
print("f(w)      =", f.objective)
print("grad_w f  =", f)

loss, grad = f.objective.numpy(), f.numpy()

rng = np.random.default_rng(0)
m, n = 50, 4
X = rng.normal(size=(m, n))
w_true = rng.normal(size=n)
y = X @ w_true + 0.01 * rng.normal(size=m)

# the generated gradient is the textbook one, 2 X'(X w - y)
w = np.zeros(n)
assert np.allclose(grad(X=X, w=w, y=y), 2 * X.T @ (X @ w - y))

step = 1.0 / (2 * np.linalg.norm(X, 2) ** 2)  # 1/L for L = 2 σ_max(X)²
losses = [loss(X=X, w=w, y=y)]
for _ in range(200):
    w = w - step * grad(X=X, w=w, y=y)
    losses.append(loss(X=X, w=w, y=y))

w_star = np.linalg.lstsq(X, y, rcond=None)[0]
print(f"loss {losses[0]:.3f} -> {losses[-1]:.6f}; |w - w*| = {np.linalg.norm(w - w_star):.2e}")
assert np.all(np.diff(losses) <= 1e-12), "loss must not increase"
assert np.linalg.norm(w - w_star) < 1e-6
print("ok")
