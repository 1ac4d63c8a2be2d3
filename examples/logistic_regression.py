"""L2-regularised logistic regression with labels y ∈ {-1, +1}, trained by gradient descent.

The objective is written with softplus; tracegrad derives the sigmoid form of the gradient.
Run: python examples/logistic_regression.py
"""

import numpy as np

import rewrite as rw

SHAPES = {"X": ("m", "n"), "w": ("n",), "y": ("m",), "lam": ()}
g = rw.gradient("sum(softplus(-y .* (X*w))) + 0.5*lam*norm2sq(w)", wrt="w", shapes=SHAPES)
print("grad_w f =", g)
loss, grad = g.objective.numpy(), g.numpy()

rng = np.random.default_rng(1)
m, n, lam = 200, 3, 0.1
X = rng.normal(size=(m, n))
w_true = np.array([2.0, -1.0, 0.5])
y = np.where(X @ w_true + 0.3 * rng.normal(size=m) > 0, 1.0, -1.0)

# compare with the hand-written gradient  -X'(y ⊙ σ(-y ⊙ Xw)) + λ w
w = rng.normal(size=n)
sigma = 1 / (1 + np.exp(y * (X @ w)))
assert np.allclose(grad(X=X, w=w, y=y, lam=lam), -X.T @ (y * sigma) + lam * w)

w = np.zeros(n)
step = 4.0 / (np.linalg.norm(X, 2) ** 2 + 4 * lam)  # 1/L: σ' ≤ 1/4
losses = [loss(X=X, w=w, y=y, lam=lam)]
g0 = np.linalg.norm(grad(X=X, w=w, y=y, lam=lam))
for _ in range(1000):
    w = w - step * grad(X=X, w=w, y=y, lam=lam)
    losses.append(loss(X=X, w=w, y=y, lam=lam))

accuracy = np.mean(np.sign(X @ w) == y)
gnorm = np.linalg.norm(grad(X=X, w=w, y=y, lam=lam))
print(f"loss {losses[0]:.2f} -> {losses[-1]:.4f}, accuracy {accuracy:.2f}, |grad| {g0:.1e} -> {gnorm:.1e}")
assert np.all(np.diff(losses) <= 1e-9), "loss must not increase"
assert accuracy > 0.85
assert gnorm < 1e-4 * g0
print("ok")
