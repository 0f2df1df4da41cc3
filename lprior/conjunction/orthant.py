"""Gaussian orthant probabilities P(f_i > t_i for all i), f ~ N(0, C): exact in 2-D, GHK beyond.

Two dimensions: Φ₂(a, b; ρ) = Φ(a)Φ(b) + (1/2π) ∫₀^{asin ρ} exp(−(a² + b² − 2ab sin θ)/(2cos²θ)) dθ
(Sheppard's formula with r = sin θ, which removes the 1/√(1 − r²) end-point singularity), by
Gauss–Legendre quadrature, vectorised over pairs.  Any dimension: the GHK sequential-conditioning
estimator, unbiased for P with a standard error from the per-sample weights.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, logsumexp, ndtr, ndtri

from lprior.conjunction._checks import check_rank, check_shape

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(64)


def bvn_upper(a: jax.Array, b: jax.Array, rho: jax.Array) -> jax.Array:
  """P(X > a, Y > b) for standard normals with correlation rho (|rho| < 1); broadcasts."""
  h, k = -a, -b  # P(X > a, Y > b) = Φ₂(−a, −b; ρ)
  top = jnp.arcsin(rho)[..., None]
  theta = 0.5 * top * (jnp.asarray(_GL_NODES, top.dtype) + 1)
  s, c2 = jnp.sin(theta), jnp.cos(theta) ** 2
  hh, kk = h[..., None], k[..., None]
  integrand = jnp.exp(-(hh ** 2 + kk ** 2 - 2 * hh * kk * s) / (2 * c2))
  integral = 0.5 * top[..., 0] * jnp.sum(jnp.asarray(_GL_WEIGHTS, top.dtype) * integrand, -1)
  return jnp.clip(ndtr(h) * ndtr(k) + integral / (2 * jnp.pi), 0, 1)


def _ghk_cumulative_log_weights(u: jax.Array, chol: jax.Array, t: jax.Array) -> jax.Array:
  """(S, d) Σ_{j ≤ i} log P(f_j > t_j | f_{<j}) along one GHK path per row of u (S, d).

  f = L ε; given ε_{<i}, f_i > t_i ⇔ ε_i > a_i = (t_i − Σ_{j<i} L_ij ε_j)/L_ii, which has
  probability Φ(−a_i); ε_i is then drawn from N(0, 1) truncated to (a_i, ∞) by inversion.
  """
  d = t.shape[0]

  def step(eps, i):
    a = (t[i] - eps @ chol[i]) / chol[i, i]
    log_w = log_ndtr(-a)
    v = jnp.log(u[:, i]) + log_w  # log of a uniform draw on (0, Φ(−a))
    e = jnp.where(v > -700, -ndtri(jnp.exp(v)), a)
    return eps.at[:, i].set(jnp.maximum(e, a)), log_w

  _, log_w = jax.lax.scan(step, jnp.zeros_like(u), jnp.arange(d))
  return jnp.cumsum(log_w.T, axis=1)


def _log_mean_and_se(log_w: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(log mean w, standard error of that log) from per-sample log weights (S,)."""
  s = log_w.shape[0]
  log_mean = logsumexp(log_w) - jnp.log(s)
  rel = jnp.exp(log_w - log_mean)  # w / mean w
  return log_mean, jnp.std(rel, ddof=1) / jnp.sqrt(s)


@functools.partial(jax.jit, static_argnames=("num_samples",))
def ghk_log_prob(key: jax.Array, corr: jax.Array, t: jax.Array, num_samples: int = 4096
                 ) -> tuple[jax.Array, jax.Array]:
  """(log P(f > t), its standard error) for f ~ N(0, corr) (d,), by GHK in the given order."""
  check_rank(corr, 2, "corr")
  check_shape(t, (corr.shape[0],), "t")
  chol = jnp.linalg.cholesky(corr)
  u = jax.random.uniform(key, (num_samples, t.shape[0]), corr.dtype, minval=1e-300)
  return _log_mean_and_se(_ghk_cumulative_log_weights(u, chol, t)[:, -1])


@functools.partial(jax.jit, static_argnames=("num_samples",))
def ghk_conditional(key: jax.Array, corr: jax.Array, t: jax.Array, num_samples: int = 4096
                    ) -> tuple[jax.Array, jax.Array]:
  """(log P(f_d > t_d | f_{<d} > t_{<d}), standard error) for f ~ N(0, corr) (d,).

  A ratio of the GHK estimates of P(f > t) and P(f_{<d} > t_{<d}) from the same paths (whose
  first d − 1 factors are shared), so its error is far below that of either probability.
  """
  chol = jnp.linalg.cholesky(corr)
  u = jax.random.uniform(key, (num_samples, t.shape[0]), corr.dtype, minval=1e-300)
  cum = _ghk_cumulative_log_weights(u, chol, t)
  if t.shape[0] == 1:
    return cum[0, 0], jnp.zeros((), corr.dtype)
  num, den = cum[:, -1], cum[:, -2]
  log_num, log_den = logsumexp(num), logsumexp(den)
  # Delta method for log(mean a / mean b): residuals a/ā − b/b̄.
  r = jnp.exp(num - log_num) - jnp.exp(den - log_den)
  se = jnp.std(r * num.shape[0], ddof=1) / jnp.sqrt(num.shape[0])
  return log_num - log_den, se
