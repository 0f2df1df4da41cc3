"""A Gaussian start for the tempered path: SMC from the Laplace approximation, not the prior.

In flat whitened coordinates x (base N(μ, s²I)), with x* the mode of E(x) + ‖x − μ‖²/(2s²) and
(λ_i, v_i) eigenpairs of s²∇²E(x*), the change of variables x = x* + s L z, z ~ N(0, I), with
L = (I + s²H)^{−½} = I + Σ_i ((1 + λ_i)^{−½} − 1) v_i v_iᵀ, turns log Z into

  log ∫ N(z; 0, I) e^{−E'(z)} dz,   E'(z) = E(x) + ‖x − μ‖²/(2s²) − ‖z‖²/2 + ½ Σ_i log(1 + λ_i),

which is exact for any invertible L (so clipping λ or keeping only the top k pairs costs
efficiency, never correctness) and constant, = −log Z, when E is quadratic and every pair is
kept: the tempered SMC then starts at the answer and corrects only what is not Gaussian.
For d ≤ exact_max_dim the dense Hessian gives L = C^{−T} from the Cholesky factor C Cᵀ = I + s²H
(any L with L Lᵀ = (I + s²H)^{−1} serves; Cholesky is ~7× cheaper than the eigendecomposition,
which is kept for a mode Newton did not reach or a Hessian that is not positive definite), kept
as a dense matrix so that L z is one product; above it the top `lanczos_rank` Ritz pairs (the
complement keeps the prior's scale).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from lprior import lanczos as lz
from lprior.logz.laplace import LaplaceConfig, hvp_at, newton_mode

Vec = jax.Array
MIN_EIG = -0.5  # eigenvalues of s²H below this (non-convex directions) are clipped to it


class Reference(NamedTuple):
  mode: Vec  # (d,) x*
  vecs: jax.Array  # (d, k) orthonormal v_i
  shrink: Vec  # (k,) (1 + λ_i)^{−½} − 1
  half_logdet: jax.Array  # ½ Σ log(1 + λ_i) = −log det L
  newton_converged: jax.Array
  num_grad: jax.Array  # value-and-gradient evaluations (an HVP counted as 2) spent fitting it
  lmat: jax.Array | None = None  # (d, d) L itself (dense fit; then vecs and shrink are empty)
  lmat_inv: jax.Array | None = None  # (d, d) L⁻¹ (dense fit)


def fit(key: jax.Array, energy: Callable[[Vec], jax.Array], mu: Vec, s, cfg: LaplaceConfig,
        start: Vec | None = None) -> Reference:
  """The Laplace reference at the mode found by `newton_mode` from `start` (default μ)."""
  d = mu.shape[0]
  dense = d <= cfg.exact_max_dim
  nt = newton_mode(energy, mu, s, cfg, dense, start)
  if dense:
    H = jax.hessian(energy)(nt.x)
    lmat, lmat_inv, half_logdet = _dense_l(s**2 * 0.5 * (H + H.T), nt.converged)
    empty = jnp.zeros((d, 0), mu.dtype)
    return Reference(nt.x, empty, empty[0], half_logdet, nt.converged, nt.n_grad + 2 * d,
                     lmat, lmat_inv)
  k = min(cfg.lanczos_rank, d)
  m = min(d, 2 * k + 10 if cfg.lanczos_iters is None else max(cfg.lanczos_iters, k))
  hvp = hvp_at(energy, nt.x)
  vals, vecs = lz.eigenpairs(lambda v: s**2 * hvp(v), jax.random.normal(key, (d,), mu.dtype),
                             m, jax.random.fold_in(key, 1))
  lam = _clip(vals[:k])
  return Reference(nt.x, vecs[:, :k], jax.lax.rsqrt(1.0 + lam) - 1.0,
                   0.5 * jnp.sum(jnp.log1p(lam)), nt.converged, nt.n_grad + 2 * m)


def _clip(lam: Vec) -> Vec:
  """Eigenvalues of s²H with non-finite ones set to 0 and non-convex ones raised to MIN_EIG."""
  return jnp.maximum(jnp.where(jnp.isfinite(lam), lam, 0.0), MIN_EIG)


def _dense_l(B: jax.Array, converged) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(L, L⁻¹, ½ log det(I + B)) for B = s²H (d, d): L = C^{−T} from C Cᵀ = I + B where that
  factor exists at a converged mode, else L = V diag((1 + λ)^{−½}) Vᵀ with λ clipped at MIN_EIG."""
  eye = jnp.eye(B.shape[0], dtype=B.dtype)
  C = jnp.linalg.cholesky(eye + B)

  def by_cholesky(_):
    c_inv = jax.scipy.linalg.solve_triangular(C, eye, lower=True)
    return c_inv.T, C.T, jnp.sum(jnp.log(jnp.diagonal(C)))

  def by_eigh(_):
    lam, V = jnp.linalg.eigh(B)
    lam = _clip(lam)
    return ((V * jax.lax.rsqrt(1.0 + lam)) @ V.T, (V * jnp.sqrt(1.0 + lam)) @ V.T,
            0.5 * jnp.sum(jnp.log1p(lam)))
  return jax.lax.cond(jnp.all(jnp.isfinite(C)) & converged, by_cholesky, by_eigh, None)


def _apply_l(ref: Reference, v: Vec) -> Vec:
  """L v: the dense L, or v + V diag(shrink) Vᵀ v."""
  if ref.lmat is not None:
    return ref.lmat @ v
  return v + ref.vecs @ (ref.shrink * (ref.vecs.T @ v))


def to_z(ref: Reference, s, x: Vec) -> Vec:
  """z = L⁻¹(x − x*)/s: the dense L⁻¹, or I + V diag((1 + λ)^{½} − 1) Vᵀ."""
  v = (x - ref.mode) / s
  if ref.lmat_inv is not None:
    return ref.lmat_inv @ v
  return v + ref.vecs @ ((1.0 / (1.0 + ref.shrink) - 1.0) * (ref.vecs.T @ v))


def log_density(ref: Reference, s, x: Vec) -> jax.Array:
  """log of the reference's density of x, less −(d/2) log(2πs²): −‖z‖²/2 + ½ Σ log(1 + λ_i)."""
  z = to_z(ref, s, x)
  return -0.5 * jnp.dot(z, z) + ref.half_logdet


def to_x(ref: Reference, s, z: Vec) -> Vec:
  """x = x* + s L z."""
  return ref.mode + s * _apply_l(ref, z)


def grad_mean(ref: Reference, mu: Vec, s, grad_z: Vec) -> Vec:
  """∇_μ log Z = E_p[(x − μ)/s²] = (x* − μ)/s² + L E_p[z]/s, from E_p[z] (the z-run's ∇ log Z)."""
  return (ref.mode - mu) / s**2 + _apply_l(ref, grad_z) / s


def energy_z(ref: Reference, energy: Callable[[Vec], jax.Array], mu: Vec, s
             ) -> Callable[[Vec], jax.Array]:
  """E'(z) of the module docstring: the energy under the base N(0, I) in z."""
  def e(z):
    x = to_x(ref, s, z)
    r = x - mu
    return energy(x) + 0.5 * jnp.dot(r, r) / s**2 - 0.5 * jnp.dot(z, z) + ref.half_logdet
  return e
