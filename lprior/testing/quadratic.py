"""The closed-form quadratic case of DESIGN §1.

E(θ) = λ C(θ),  C(θ) = ½ (θ−c)ᵀ M (θ−c),  M = diag(s) + BᵀB  (s ≥ 0, B: k×d),
base N(μ, σ² I).  Then

  log Z = −½ log det(I + σ²λM) − ½ (μ−c)ᵀ λM (I + σ²λM)⁻¹ (μ−c),

the conditional p(θ | μ) ∝ N(θ; μ, σ²) e^{−E(θ)} is Gaussian with precision I/σ² + λM, and
∇_μ log Z = (m − μ)/σ² with m its mean.  The diagonal-plus-low-rank M keeps every formula
O(d k²), so d = 10⁴ or 10⁵ is cheap; exact samples use Matheron's rule.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Quadratic(NamedTuple):
  """C(θ) = ½ (θ−c)ᵀ (diag(s) + BᵀB) (θ−c) on flat vectors θ ∈ R^d."""
  s: jax.Array  # (d,) ≥ 0
  B: jax.Array  # (k, d)
  c: jax.Array  # (d,)

  @property
  def dim(self) -> int:
    return self.s.shape[0]

  def consistency(self, theta: jax.Array, center: jax.Array | None = None) -> jax.Array:
    """C(θ) for a flat θ of shape (d,); `center` overrides c."""
    r = theta - (self.c if center is None else center)
    return 0.5 * (jnp.sum(self.s * r * r) + jnp.sum((self.B @ r) ** 2))

  def matvec(self, v: jax.Array) -> jax.Array:
    """M v."""
    return self.s * v + self.B.T @ (self.B @ v)

  def dense(self) -> jax.Array:
    """M as a dense (d, d) matrix (small d only)."""
    return jnp.diag(self.s) + self.B.T @ self.B

  # -- closed forms ------------------------------------------------------------------------

  def rescaled(self, sigma: jax.Array) -> "Quadratic":
    """The same C in u = θ/σ (σ: (d,) per-coordinate base scales): M ↦ SMS, c ↦ c/σ, so a base
    N(μ, diag σ²) becomes N(μ/σ, I) (log Z unchanged; means and samples map back as θ = σu)."""
    return Quadratic(self.s * sigma**2, self.B * sigma, self.c / sigma)

  def dense_log_z(self, mean, lam, sigma) -> jax.Array:
    """log Z for a base N(mean, diag σ²), σ scalar or (d,), by dense linear algebra (small d):
    −½ log det(I + λ SMS) − ½ (μ−c)ᵀ λM (I + S²λM)⁻¹ (μ−c), S = diag σ."""
    sig = jnp.broadcast_to(jnp.asarray(sigma, self.s.dtype), (self.dim,))
    M = lam * self.dense()
    eye = jnp.eye(self.dim, dtype=M.dtype)
    r = mean - self.c
    logdet = jnp.linalg.slogdet(eye + sig[:, None] * M * sig[None, :])[1]
    return -0.5 * logdet - 0.5 * r @ M @ jnp.linalg.solve(eye + sig[:, None] ** 2 * M, r)

  def _prior_diag(self, lam, sigma):
    """Diagonal part of the conditional: variances v = 1/(1/σ² + λ s) (the D-only posterior)."""
    return 1.0 / (1.0 / sigma**2 + lam * self.s)

  def _lowrank_gain(self, lam, sigma):
    """S = B V Bᵀ + I/λ (k×k) with V = diag(v), and its Cholesky factor."""
    v = self._prior_diag(lam, sigma)
    k = self.B.shape[0]
    S = (self.B * v) @ self.B.T + jnp.eye(k, dtype=v.dtype) / lam
    return v, S, jnp.linalg.cholesky(S)

  def log_z(self, mean: jax.Array, lam, sigma, center: jax.Array | None = None) -> jax.Array:
    """log E_{θ ~ N(mean, σ²)} exp(−λ C(θ)), exactly."""
    lam, sigma = jnp.asarray(lam, self.s.dtype), jnp.asarray(sigma, self.s.dtype)
    r = mean - (self.c if center is None else center)
    g = 1.0 + sigma**2 * lam * self.s  # diag of G = I + σ²λD
    # log det(I + σ²λM) = log det G + log det(I_k + σ²λ B G⁻¹ Bᵀ)
    k = self.B.shape[0]
    inner = jnp.eye(k, dtype=g.dtype) + sigma**2 * lam * (self.B / g) @ self.B.T
    logdet = jnp.sum(jnp.log(g)) + jnp.linalg.slogdet(inner)[1]
    # (μ−c)ᵀ λM A⁻¹ (μ−c) = (‖r‖² − rᵀA⁻¹r)/σ²,  A = G + σ²λBᵀB (Woodbury).
    Ginv_r = r / g
    Br = self.B @ Ginv_r
    W = jnp.eye(k, dtype=g.dtype) / (sigma**2 * lam) + (self.B / g) @ self.B.T
    rAr = jnp.dot(r, Ginv_r) - jnp.dot(Br, jnp.linalg.solve(W, Br))
    quad = (jnp.dot(r, r) - rAr) / sigma**2
    return -0.5 * logdet - 0.5 * quad

  def conditional_mean(self, mean, lam, sigma, center=None) -> jax.Array:
    """E[θ] under p(θ) ∝ N(θ; mean, σ²) exp(−λC(θ))."""
    c = self.c if center is None else center
    v, S, L = self._lowrank_gain(lam, sigma)
    m0 = v * (mean / sigma**2 + lam * self.s * c)
    resid = self.B @ (c - m0)
    return m0 + v * (self.B.T @ jax.scipy.linalg.cho_solve((L, True), resid))

  def grad_log_z(self, mean, lam, sigma, center=None) -> jax.Array:
    """∇_mean log Z = (E[θ] − mean)/σ²."""
    return (self.conditional_mean(mean, lam, sigma, center) - mean) / sigma**2

  def sample_conditional(self, key, mean, lam, sigma, num: int, center=None) -> jax.Array:
    """`num` exact draws (num, d) from p(θ) ∝ N(θ; mean, σ²) exp(−λC(θ)) (Matheron's rule)."""
    c = self.c if center is None else center
    v, S, L = self._lowrank_gain(lam, sigma)
    m0 = v * (mean / sigma**2 + lam * self.s * c)
    k1, k2 = jax.random.split(key)
    theta0 = m0 + jnp.sqrt(v) * jax.random.normal(k1, (num, self.dim), v.dtype)
    eps = jax.random.normal(k2, (num, self.B.shape[0]), v.dtype) / jnp.sqrt(lam)
    resid = (self.B @ c)[None] + eps - theta0 @ self.B.T  # (num, k)
    return theta0 + (jax.scipy.linalg.cho_solve((L, True), resid.T).T @ self.B) * v


def make(key: jax.Array, dim: int, *, rank: int = 16, diag: float = 0.0, diag_spread: float = 0.0,
         lowrank_scale: float = 1.0, center_scale: float = 0.1, dtype=jnp.float32) -> Quadratic:
  """A random quadratic: s_i = diag·exp(U(−spread, spread)), B ~ N(0, scale²/d) (so BᵀB has
  eigenvalues of order scale²), c ~ N(0, center_scale²)."""
  ks, kb, kc = jax.random.split(key, 3)
  s = diag * jnp.exp(jax.random.uniform(ks, (dim,), dtype, -diag_spread, diag_spread))
  B = lowrank_scale * jax.random.normal(kb, (rank, dim), dtype) / jnp.sqrt(dim)
  c = center_scale * jax.random.normal(kc, (dim,), dtype)
  return Quadratic(s.astype(dtype), B, c)


def ascent_path(P: Quadratic, lam, theta1: jax.Array, theta2: jax.Array, num_steps: int,
                lr: float = 1e-2) -> list[jax.Array]:
  """θ₁ ← θ₁ + lr ∇[−‖θ₁‖²/2 − ‖θ₂ − θ₁‖²/2 − log Z(θ₁)] (the chained posterior's θ₁ step with
  θ₀ = 0, θ₂ fixed, σ = 1 and the exact ∇ log Z): the path training would take."""
  path = []
  for _ in range(num_steps):
    theta1 = theta1 + lr * (-theta1 + (theta2 - theta1) - P.grad_log_z(theta1, lam, 1.0))
    path.append(theta1)
  return path
