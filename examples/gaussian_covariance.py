"""Maximum likelihood covariance of a zero-mean Gaussian, by gradient descent in Σ.

Average negative log-likelihood of samples x₁…x_N with sample covariance C = (1/N) Σᵢ xᵢxᵢᵀ
(constants dropped):   f(Σ) = 1/2 · log det Σ + 1/2 · tr(Σ⁻¹ C),   minimised by Σ = C.
Run: python examples/gaussian_covariance.py
"""

import numpy as np

import rewrite as rw

SHAPES = {"Sigma": ("n", "n"), "C": ("n", "n")}
g = rw.gradient("0.5*logdet(Sigma) + 0.5*tr(inv(Sigma)*C)", wrt="Sigma", shapes=SHAPES)
print("grad_Sigma f =", g)
print("df           =", g.differential)
nll, grad = g.objective.numpy(), g.numpy()

rng = np.random.default_rng(2)
n, N = 3, 500
L = np.array([[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [-0.3, 0.2, 0.7]])
samples = rng.normal(size=(N, n)) @ L.T
C = samples.T @ samples / N

# the generated gradient is (Σ⁻¹ - Σ⁻¹ C Σ⁻¹)/2 for symmetric Σ and C
Sigma = np.eye(n) + 0.1 * np.ones((n, n))
inv = np.linalg.inv(Sigma)
assert np.allclose(grad(Sigma=Sigma, C=C), 0.5 * (inv - inv @ C @ inv))

step = 0.25  # below 2/L, L ≈ 1/(2 λ_min(C)²) near the minimum
values = [nll(Sigma=Sigma, C=C)]
for _ in range(300):
    Sigma = Sigma - step * grad(Sigma=Sigma, C=C)
    Sigma = (Sigma + Sigma.T) / 2  # keep it exactly symmetric against rounding
    assert np.all(np.linalg.eigvalsh(Sigma) > 0), "Σ left the positive definite cone"
    values.append(nll(Sigma=Sigma, C=C))

err = np.linalg.norm(Sigma - C) / np.linalg.norm(C)
print(f"NLL {values[0]:.4f} -> {values[-1]:.4f}; relative distance to C: {err:.1e}")
assert np.all(np.diff(values) <= 1e-9), "NLL must not increase"
assert err < 1e-4
print("ok")
