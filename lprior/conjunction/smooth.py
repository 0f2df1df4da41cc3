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

import functools

import flax.struct
import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr, ndtri

from lprior.conjunction import marginals as marg
from lprior.conjunction import orthant
from lprior.conjunction._checks import check_probabilities, check_rank, check_shape
from lprior.posterior._checks import is_concrete

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


@functools.partial(jax.jit, static_argnums=(2,))
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
  if is_concrete(lengthscale) and not lengthscale > 0:
    raise ValueError(f"lengthscale must be > 0, got {lengthscale}")
  if kind not in KERNELS:
    raise ValueError(f"kind must be one of {KERNELS}, got {kind!r}")
  if kind == "decoder" and key is None:
    raise ValueError("kind='decoder' needs a key for the decoder's random weights")
  return _kernel_corr(z, kind, lengthscale, key, num_features, nugget)


@functools.partial(jax.jit, static_argnames=("kind", "num_features"))
def _kernel_corr(z, kind, lengthscale, key, num_features, nugget):
  r = jnp.sqrt(jnp.sum((z[:, None] - z[None]) ** 2, -1) + 1e-300)
  if kind == "se":
    k = jnp.exp(-0.5 * (r / lengthscale) ** 2)
  elif kind == "matern12":
    k = jnp.exp(-r / lengthscale)
  elif kind == "matern32":
    x = jnp.sqrt(3.0) * r / lengthscale
    k = (1 + x) * jnp.exp(-x)
  else:  # decoder
    kw, kc = jax.random.split(key)
    w = jax.random.normal(kw, (z.shape[1], num_features), z.dtype)
    lo, hi = jnp.min(z, 0) - 3 * lengthscale, jnp.max(z, 0) + 3 * lengthscale
    c = jax.random.uniform(kc, (num_features, z.shape[1]), z.dtype, lo, hi)
    phi = jnp.tanh(jnp.einsum("nhd,dh->nh", z[:, None, :] - c[None], w) / lengthscale)
    k = phi @ phi.T
    d = jnp.sqrt(jnp.diagonal(k))
    k = k / d[:, None] / d[None, :]
  n = z.shape[0]
  k = jnp.where(jnp.eye(n, dtype=bool), 1.0, k)
  return (1 - nugget) * k + nugget * jnp.eye(n, dtype=z.dtype)


def statements(corr: jax.Array, p: jax.Array) -> GaussianStatements:
  """Statements with P(A_i) = p_i (n,) on a world with correlation corr (n, n)."""
  check_rank(corr, 2, "corr")
  check_shape(p, (corr.shape[0],), "p")
  check_probabilities(p, "p")
  return GaussianStatements(corr, _thresholds(p))


@jax.jit
def _thresholds(p: jax.Array) -> jax.Array:
  return ndtri(1 - p)


@jax.jit
def pairwise(st: GaussianStatements) -> marg.KWay:
  """Exact 1- and 2-way marginals: P(A_i ∧ A_j) = P(f_i > t_i, f_j > t_j) (bivariate normal)."""
  t = st.thresholds
  p2 = orthant.bvn_upper(t[:, None], t[None, :], jnp.clip(st.corr, -1 + 1e-12, 1 - 1e-12))
  return marg.KWay((st.p1, jnp.where(jnp.eye(st.n, dtype=bool), st.p1[:, None], p2)))


def pad(st: GaussianStatements, size: int) -> GaussianStatements:
  """The statements plus size − n always-true ones (threshold −∞, independent of the rest).

  They change no conjunction, window term, bound or 2-way estimate (all exact for independent
  certain events), so statements of every n can share one compiled shape.
  """
  if size < st.n:
    raise ValueError(f"cannot pad {st.n} statements to {size}")
  extra = size - st.n
  corr = jnp.pad(st.corr, ((0, extra), (0, extra)))
  corr = corr + jnp.diag(jnp.concatenate([jnp.zeros((st.n,)), jnp.ones((extra,))])
                         ).astype(corr.dtype)
  return GaussianStatements(corr, jnp.pad(st.thresholds, (0, extra), constant_values=-jnp.inf))


def log_p_all(key: jax.Array, st: GaussianStatements, num_samples: int = 4096
              ) -> tuple[jax.Array, jax.Array]:
  """(log P(all true), standard error) by GHK along the statements' order."""
  return orthant.ghk_log_prob(key, st.corr, st.thresholds, num_samples)


def log_p_window(key: jax.Array, st: GaussianStatements, w: int, num_samples: int = 4096,
                 max_w: int | None = None) -> tuple[jax.Array, jax.Array]:
  """The w-neighbour estimate (see `window.py`) with GHK window probabilities, and its SE.

  Σ_j log P(A_j | A_{j−w..j−1}) = log P(A_1..A_{w+1}) + Σ_{j>w+1} log P(A_j | A_{j−w..j−1}),
  terms from `orthant.ghk_window_terms` with independent random numbers, so their errors add in
  quadrature.  max_w (default w): the window size compiled for; every w ≤ max_w reuses it.
  """
  max_w = w if max_w is None else max_w
  if not 0 <= w <= max_w or w >= st.n:
    raise ValueError(f"w must be in [0, min(max_w, n − 1)], got w = {w}, max_w = {max_w}, "
                     f"n = {st.n}")
  return _log_p_window(key, st, jnp.asarray(w), max_w, num_samples)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _log_p_window(key, st, w, max_w, num_samples):
  vals, ses = orthant.ghk_window_terms(key, st.corr, st.thresholds, w, max_w, num_samples)
  return jnp.sum(vals), jnp.sqrt(jnp.sum(ses ** 2))


@functools.partial(jax.jit, static_argnames=("num",))
def sample(key: jax.Array, st: GaussianStatements, num: int) -> jax.Array:
  """(num, n) bool: truth values of the statements in `num` independent worlds."""
  chol = jnp.linalg.cholesky(st.corr)
  f = jax.random.normal(key, (num, st.n), st.corr.dtype) @ chol.T
  return f > st.thresholds
