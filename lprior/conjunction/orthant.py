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


@jax.jit
def bvn_upper(a: jax.Array, b: jax.Array, rho: jax.Array) -> jax.Array:
  """P(X > a, Y > b) for standard normals with correlation rho (|rho| < 1); broadcasts.

  An infinite threshold is an event that always (−∞) or never (+∞) happens.
  """
  a, b, rho = jnp.broadcast_arrays(a, b, rho)
  finite = jnp.isfinite(a) & jnp.isfinite(b)
  h, k = jnp.where(finite, -a, 0), jnp.where(finite, -b, 0)  # P(X > a, Y > b) = Φ₂(−a, −b; ρ)
  top = jnp.arcsin(rho)[..., None]
  theta = 0.5 * top * (jnp.asarray(_GL_NODES, top.dtype) + 1)
  s, c2 = jnp.sin(theta), jnp.cos(theta) ** 2
  hh, kk = h[..., None], k[..., None]
  integrand = jnp.exp(-(hh ** 2 + kk ** 2 - 2 * hh * kk * s) / (2 * c2))
  integral = 0.5 * top[..., 0] * jnp.sum(jnp.asarray(_GL_WEIGHTS, top.dtype) * integrand, -1)
  out = jnp.clip(ndtr(h) * ndtr(k) + integral / (2 * jnp.pi), 0, 1)
  out = jnp.where(a == -jnp.inf, ndtr(-b), jnp.where(b == -jnp.inf, ndtr(-a), out))
  return jnp.where((a == jnp.inf) | (b == jnp.inf), 0.0, out)


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


def ghk_window_terms(key: jax.Array, corr: jax.Array, t: jax.Array, w: jax.Array | int,
                     max_w: int, num_samples: int = 4096) -> tuple[jax.Array, jax.Array]:
  """log P(f_j > t_j | f_i > t_i for j − w ≤ i < j), j = 0 … n − 1, with standard errors.

  By GHK on the window ending at j, with its own random numbers: the ratio of the path weights
  after all and after all but the last factor (shared factors make its error far below that of
  either probability).  Windows have the static size max_w + 2 > w + 1, their first
  max_w + 1 − w entries made certain (threshold −∞, uncorrelated), so one compilation serves
  every w ≤ max_w.  The terms sum to the w-neighbour chain estimate.  Returns ((n,), (n,)).
  """
  n = t.shape[0]
  size = max_w + 2
  # size − 1 certain, uncorrelated statements in front, so every window is in range.
  corr_p = jax.scipy.linalg.block_diag(jnp.eye(size - 1, dtype=corr.dtype), corr)
  t_p = jnp.pad(t, (size - 1, 0), constant_values=-jnp.inf)
  live = jnp.arange(size) >= size - 1 - w  # (size,) entries inside the window

  def term(k, j):
    c = jax.lax.dynamic_slice(corr_p, (j, j), (size, size))
    c = jnp.where(live[:, None] & live[None, :], c, jnp.eye(size, dtype=c.dtype))
    tj = jnp.where(live, jax.lax.dynamic_slice(t_p, (j,), (size,)), -jnp.inf)
    u = jax.random.uniform(k, (num_samples, size), corr.dtype, minval=1e-300)
    cum = _ghk_cumulative_log_weights(u, jnp.linalg.cholesky(c), tj)
    num, den = cum[:, -1], cum[:, -2]
    log_num, log_den = logsumexp(num), logsumexp(den)
    # Delta method for log(mean a / mean b): per-path residuals a/ā − b/b̄.
    r = (jnp.exp(num - log_num) - jnp.exp(den - log_den)) * num_samples
    return log_num - log_den, jnp.std(r, ddof=1) / jnp.sqrt(num_samples)

  return jax.vmap(term)(jax.random.split(key, n), jnp.arange(n))
