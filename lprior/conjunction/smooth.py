"""Statements from a smooth latent space: Gaussian-threshold events along a latent path.

A "world" is a random function f on latent space: a Gaussian process (squared-exponential or
Matérn kernel) or a random one-hidden-layer tanh decoder f(z) = Σ_h v_h tanh(w_h·(z − c_h)/ℓ)/√H
with v ~ N(0, I) (Gaussian in v for fixed w, c; the centres c_h spread over the latent points).  Statement i, decoded at latent point z_i, is
true iff f(z_i) > t_i, with t_i = Φ⁻¹(1 − p_i) so that P(A_i) = p_i.  Corr(f(z_i), f(z_j)) decays
smoothly with |z_i − z_j|/ℓ: nearby statements are nearly equivalent, far ones nearly independent,
with no distance at which dependence stops.  1- and 2-way marginals are exact, P(all true) and
window probabilities come from GHK with standard errors.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr, ndtri

from lprior.conjunction import marginals as marg
from lprior.conjunction import orthant
from lprior.conjunction._checks import check_probabilities, check_rank, check_shape

KERNELS = ("se", "matern12", "matern32", "decoder")


@flax.struct.dataclass
class GaussianStatements:
  """A_i = {f_i > t_i} with f ~ N(0, corr): corr (n, n) unit diagonal, thresholds (n,)."""
  corr: jax.Array
  thresholds: jax.Array

  @property
  def n(self) -> int:
    return self.thresholds.shape[0]

  @property
  def p1(self) -> jax.Array:
    """(n,) P(A_i) = Φ(−t_i)."""
    return ndtr(-self.thresholds)


def latent_path(start: jax.Array, end: jax.Array, n: int) -> jax.Array:
  """(n, d) equally spaced points on the segment from start (d,) to end (d,), both included."""
  check_rank(start, 1, "start")
  check_shape(end, start.shape, "end")
  s = jnp.linspace(0.0, 1.0, n, dtype=start.dtype)[:, None]
  return (1 - s) * start + s * end


def kernel_corr(z: jax.Array, kind: str, lengthscale: float, *, key: jax.Array | None = None,
                num_features: int = 512, nugget: float = 1e-6) -> jax.Array:
  """(n, n) correlation of f at latent points z (n, d), shrunk by a nugget: (1 − ν)K + νI.

  se: exp(−r²/2ℓ²); matern12: exp(−r/ℓ) (rough, Markov along a line); matern32:
  (1 + √3 r/ℓ) e^{−√3 r/ℓ}; decoder: the random tanh decoder (needs key), w ~ N(0, I), centres
  c ~ U(the points' bounding box widened by 3ℓ); its correlation falls roughly linearly over the
  width of that box (ℓ sets how sharp each feature is, not the correlation length).
  """
  check_rank(z, 2, "z")
  if not lengthscale > 0:
    raise ValueError(f"lengthscale must be > 0, got {lengthscale}")
  r = jnp.sqrt(jnp.sum((z[:, None] - z[None]) ** 2, -1) + 1e-300)
  if kind == "se":
    k = jnp.exp(-0.5 * (r / lengthscale) ** 2)
  elif kind == "matern12":
    k = jnp.exp(-r / lengthscale)
  elif kind == "matern32":
    x = jnp.sqrt(3.0) * r / lengthscale
    k = (1 + x) * jnp.exp(-x)
  elif kind == "decoder":
    if key is None:
      raise ValueError("kind='decoder' needs a key for the decoder's random weights")
    kw, kc = jax.random.split(key)
    w = jax.random.normal(kw, (z.shape[1], num_features), z.dtype)
    lo, hi = jnp.min(z, 0) - 3 * lengthscale, jnp.max(z, 0) + 3 * lengthscale
    c = jax.random.uniform(kc, (num_features, z.shape[1]), z.dtype, lo, hi)
    phi = jnp.tanh(jnp.einsum("nhd,dh->nh", z[:, None, :] - c[None], w) / lengthscale)
    k = phi @ phi.T
    d = jnp.sqrt(jnp.diagonal(k))
    k = k / d[:, None] / d[None, :]
  else:
    raise ValueError(f"kind must be one of {KERNELS}, got {kind!r}")
  n = z.shape[0]
  k = jnp.where(jnp.eye(n, dtype=bool), 1.0, k)
  return (1 - nugget) * k + nugget * jnp.eye(n, dtype=z.dtype)


def statements(corr: jax.Array, p: jax.Array) -> GaussianStatements:
  """Statements with P(A_i) = p_i (n,) on a world with correlation corr (n, n)."""
  check_rank(corr, 2, "corr")
  check_shape(p, (corr.shape[0],), "p")
  check_probabilities(p, "p")
  return GaussianStatements(corr, ndtri(1 - p))


def pairwise(st: GaussianStatements) -> marg.KWay:
  """Exact 1- and 2-way marginals: P(A_i ∧ A_j) = P(f_i > t_i, f_j > t_j) (bivariate normal)."""
  t = st.thresholds
  p2 = orthant.bvn_upper(t[:, None], t[None, :], jnp.clip(st.corr, -1 + 1e-12, 1 - 1e-12))
  return marg.KWay((st.p1, jnp.where(jnp.eye(st.n, dtype=bool), st.p1[:, None], p2)))


def log_p_all(key: jax.Array, st: GaussianStatements, num_samples: int = 4096
              ) -> tuple[jax.Array, jax.Array]:
  """(log P(all true), standard error) by GHK along the statements' order."""
  return orthant.ghk_log_prob(key, st.corr, st.thresholds, num_samples)


def log_p_window(key: jax.Array, st: GaussianStatements, w: int, num_samples: int = 4096
                 ) -> tuple[jax.Array, jax.Array]:
  """The w-neighbour estimate (see `window.py`) with GHK window probabilities, and its SE.

  log P(A_1..A_{w+1}) + Σ_{i>w+1} log P(A_i | A_{i−w..i−1}); each conditional is a GHK ratio on
  its own window with its own random numbers, so the standard errors add in quadrature.
  """
  n = st.n
  if not 0 <= w < n:
    raise ValueError(f"w must be in [0, n − 1 = {n - 1}], got {w}")
  keys = jax.random.split(key, n - w)
  head = orthant.ghk_log_prob(keys[0], st.corr[:w + 1, :w + 1], st.thresholds[:w + 1],
                              num_samples)

  def conditional(k, i):
    c = jax.lax.dynamic_slice(st.corr, (i, i), (w + 1, w + 1))
    t = jax.lax.dynamic_slice(st.thresholds, (i,), (w + 1,))
    return orthant.ghk_conditional(k, c, t, num_samples)

  vals, ses = jax.vmap(conditional)(keys[1:], jnp.arange(1, n - w))
  return head[0] + jnp.sum(vals), jnp.sqrt(head[1] ** 2 + jnp.sum(ses ** 2))


def sample(key: jax.Array, st: GaussianStatements, num: int) -> jax.Array:
  """(num, n) bool: truth values of the statements in `num` independent worlds."""
  chol = jnp.linalg.cholesky(st.corr)
  f = jax.random.normal(key, (num, st.n), st.corr.dtype) @ chol.T
  return f > st.thresholds
