"""Mz(·, z): the decoder from a compact latent z ∈ R^K to a distribution over hypotheses Z.

Field k reads the coordinate z_k through L_k bins of equal mass under N(0, 1) (edges
e_{k,l} = Φ⁻¹(l / L_k)); the hard decode is the bin that holds z_k, and Mz blurs it by τ:

    q_k(l | z) = P(z_k + τε ∈ [e_{k,l}, e_{k,l+1})) = Φ((e_{l+1} − z_k)/τ) − Φ((e_l − z_k)/τ),
    Mz(Z | z)  = Π_k q_k(Z_k | z),  i.e. a sample of Mz(·, z) is hard(z + τε).

So the latent prior  log Prior(z) = log N(z; 0, I) + log Prior_H(hard(z)) + log|Z|  gives every
cell exactly its human prior mass (each cell has N(0, I)-mass 1/|Z|); with the blur, the second
term becomes E_{Z ~ Mz(·,z)} log Prior_H(Z), which is smooth in z.  τ → 0 recovers the hard decode.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr
from scipy.stats import norm

from lprior.ltp.space import Space


def edges(space: Space) -> np.ndarray:
  """(K, L_max + 1) bin edges; a field with fewer levels has +inf beyond its last bin."""
  out = np.full((space.num_fields, space.max_levels + 1), np.inf)
  for k, n in enumerate(space.levels):
    out[k, :n + 1] = norm.ppf(np.arange(n + 1) / n)
  return out


def centres(space: Space) -> np.ndarray:
  """(K, L_max) the median of each bin, Φ⁻¹((l + ½)/L_k) (0 at missing levels)."""
  out = np.zeros((space.num_fields, space.max_levels))
  for k, n in enumerate(space.levels):
    out[k, :n] = norm.ppf((np.arange(n) + 0.5) / n)
  return out


def check_latent(space: Space, z) -> None:
  """ValueError unless z has shape (..., K) for this space's K fields."""
  if jnp.ndim(z) < 1 or jnp.shape(z)[-1] != space.num_fields:
    raise ValueError(f"latents must have shape (..., {space.num_fields}), got {jnp.shape(z)}")


def bounds(space: Space) -> tuple[np.ndarray, np.ndarray]:
  """(lower, upper) (K,) each: the medians of each field's two extreme bins.  Keeping z inside
  keeps every bin within a few τ of an edge, so the blur's gradient never vanishes there."""
  c = centres(space)
  top = np.asarray(space.levels) - 1
  return c[:, 0], c[np.arange(space.num_fields), top]


def _interval(a: jax.Array, b: jax.Array) -> jax.Array:
  """P(a ≤ N(0,1) < b), accurate in both tails."""
  return jnp.where(a > 0, ndtr(-a) - ndtr(-b), ndtr(b) - ndtr(a))


def level_probs(space: Space, z: jax.Array, tau) -> jax.Array:
  """q_k(l | z) for every field and level   (..., K) -> (..., K, L_max); 0 at missing levels."""
  check_latent(space, z)
  e = jnp.asarray(edges(space))
  zz = z[..., None]
  p = _interval((e[:, :-1] - zz) / tau, (e[:, 1:] - zz) / tau)
  return jnp.where(jnp.asarray(space.level_mask()), p, 0.0)


def hypothesis_probs(space: Space, z: jax.Array, tau) -> jax.Array:
  """Mz(Z | z) for every Z in `space.enumerate()` order   (..., K) -> (..., |Z|) (enumerates)."""
  zs = jnp.asarray(space.enumerate())
  q = level_probs(space, z, tau)
  return jnp.prod(q[..., jnp.arange(space.num_fields), zs], -1)


def hard(space: Space, z: jax.Array) -> jax.Array:
  """The bin of each coordinate   (..., K) -> (..., K) int32."""
  check_latent(space, z)
  inner = jnp.asarray(edges(space))[:, 1:-1]  # interior edges (inf where absent)
  return jnp.sum(z[..., None] >= inner, axis=-1).astype(jnp.int32)


def hard_at(space: Space, idx: jax.Array, z: jax.Array) -> jax.Array:
  """`hard` for coordinates of the fields idx only   (idx broadcastable to z) -> int32 like z."""
  inner = jnp.asarray(edges(space))[:, 1:-1][idx]                        # idx.shape + (L − 1,)
  return jnp.sum(z[..., None] >= inner, axis=-1).astype(jnp.int32)


def sample(key: jax.Array, space: Space, z: jax.Array, tau, num: int) -> jax.Array:
  """`num` hypotheses from Mz(·, z) per latent   (..., K) -> (..., num, K) int32."""
  eps = jax.random.normal(key, z.shape[:-1] + (num, z.shape[-1]), z.dtype)
  return hard(space, z[..., None, :] + tau * eps)


def encode(space: Space, z_levels: jax.Array) -> jax.Array:
  """The latent at the median of each hypothesis's bins   (..., K) int -> (..., K)."""
  space.check(z_levels)
  c = jnp.asarray(centres(space))
  return c[jnp.arange(space.num_fields), z_levels]


def log_base(z: jax.Array) -> jax.Array:
  """log N(z; 0, I)   (..., K) -> (...,)."""
  return -0.5 * jnp.sum(z * z, -1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


def log_num_cells(space: Space) -> float:
  """log |Z| (the constant that makes exp(log Prior(z)) a density)."""
  return float(np.sum(np.log(space.levels)))
