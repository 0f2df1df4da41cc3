"""Prior(z) for the optimiser: the human's prior reached through the decoder Mz, in three modes.

The z-step needs ∇_z E_{Z ~ Mz(·,z)}[log Prior_H(Z)].  Mz is a product over fields, so with
hypotheses Z^s ~ Mz(·, z) (s = 1 … M) the Rao–Blackwellised estimator

    ĝ_k = (1/M) Σ_s Σ_l ∂q_k(l | z)/∂z_k · Δ_{s,k,l},   Δ_{s,k,l} = log Prior_H(Z^s_{k←l}) − log Prior_H(Z^s)

is unbiased (Σ_l ∂q_k(l) = 0 lets us subtract log Prior_H(Z^s)); Z^s_{k←l} is Z^s with field k
set to level l.  The same estimator serves any score of hypotheses (`score_deltas`: the data
term Σ_D log f(y | x, Z) when f reads hypotheses).  It needs only *ratios* of neighbouring
hypotheses, so the modes are:

  direct   the human gives log Prior_H of each hypothesis; Δ is a difference of two answers
  ratio    the human only judges log Prior_H(Z′)/Prior_H(Z) for each pair (the same Δ)
  learned  a small network trained on the human's ratio judgments stands in for the human

`surrogate` is a scalar whose gradient is ĝ (its value is not the prior).
"""

from __future__ import annotations

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp

from lprior.ltp import decoder
from lprior.ltp import human as hm
from lprior.ltp.human import Human
from lprior.ltp.space import Space
from lprior.pytree import PyTree

MODES = ("direct", "ratio", "learned")


def check_mode(mode: str) -> str:
  if mode not in MODES:
    raise ValueError(f"unknown prior mode {mode!r}; choose from {MODES}")
  return mode


def neighbours(space: Space, z_levels: jax.Array) -> jax.Array:
  """Every one-field change of each hypothesis   (..., K) -> (..., K, L_max, K): [k, l] is Z
  with field k set to level l (levels a field lacks are clipped to its last; mask them)."""
  k_, l_ = space.num_fields, space.max_levels
  top = jnp.asarray(space.levels) - 1
  eye = jnp.eye(k_, dtype=bool)[:, None, :]                      # (K, 1, K)
  lev = jnp.minimum(jnp.arange(l_)[None, :], top[:, None])        # (K, L)
  z = z_levels[..., None, None, :]                                # (..., 1, 1, K)
  return jnp.where(eye, lev[..., None], z).astype(jnp.int32)


def score_deltas(score_fn: Callable[[jax.Array], jax.Array], space: Space, z_levels: jax.Array
                 ) -> jax.Array:
  """Δ[..., k, l] = s(Z_{k←l}) − s(Z) for a score s over hypotheses ((B, K) int -> (B,)), e.g.
  Σ_D log f(y | x, Z) from f   (..., K) -> (..., K, L_max), 0 at missing levels."""
  nb = neighbours(space, z_levels)
  sc = score_fn(nb.reshape(-1, space.num_fields)).reshape(nb.shape[:-1])
  own = jnp.take_along_axis(sc, z_levels[..., None], axis=-1)[..., 0]  # the neighbour l = Z_k is Z
  return jnp.where(jnp.asarray(space.level_mask()), sc - own[..., None], 0.0)


def read_score_deltas(score_fn: Callable[[jax.Array], jax.Array], space: Space, idx: jax.Array,
                      z_levels: jax.Array) -> jax.Array:
  """`score_deltas` for a sum of per-example scores of which example i reads only the fields
  idx_i: Δ[k, l] = Σ_i Σ_j [idx_ij = k] (s_i(Z_{k←l}) − s_i(Z)), at (n·s·L) evaluations instead
  of (K·L·n).  score_fn(levels at the read fields (..., n, s) int) -> (..., n); idx (n, s)
  distinct per row; z_levels (K,) -> (K, L_max), 0 at missing levels."""
  chex.assert_rank([idx, z_levels], [2, 1])
  n, s = idx.shape
  lv = z_levels[idx]                                                      # (n, s)
  top = jnp.asarray(space.levels)[idx] - 1                                # (n, s)
  lev = jnp.arange(space.max_levels)[None, :, None]                       # (1, L, 1)
  slot = jnp.eye(s, dtype=bool)[:, None, None, :]                          # (s, 1, 1, s)
  moved = jnp.where(slot, jnp.minimum(lev[..., None], top[None, None]), lv)  # (s, L, n, s)
  delta = score_fn(moved) - score_fn(lv)[None, None]                      # (s, L, n)
  out = jnp.zeros((space.num_fields, space.max_levels), delta.dtype)
  out = out.at[idx.T[:, None, :], lev].add(delta)
  return jnp.where(jnp.asarray(space.level_mask()), out, 0.0)


def human_deltas(human: Human, z_levels: jax.Array, mode: str,
                 queries: hm.Queries | None = None) -> jax.Array | tuple[jax.Array, hm.Queries]:
  """Δ[..., k, l] = log Prior_H(Z_{k←l}) − log Prior_H(Z) from the human   (..., K) -> (..., K, L_max),
  0 at missing levels.  'direct': two absolute answers, subtracted; 'ratio': one judgment.
  With `queries`, also the count after asking: per hypothesis, its Σ_k (L_k − 1) one-field
  neighbours ('ratio': one judgment each; 'direct': one absolute answer each, and one for Z)."""
  if mode not in ("direct", "ratio"):
    raise ValueError(f"human_deltas takes mode 'direct' or 'ratio', got {mode!r}")
  q = hm.no_queries() if queries is None else queries
  d, q = hm.ask_neighbours(human, z_levels, q, absolute=mode == "direct")
  return d if queries is None else (d, q)


def learned_deltas(apply_fn: Callable[[PyTree, jax.Array], jax.Array], params: PyTree,
                   space: Space, z_levels: jax.Array, scale: float = 1.0) -> jax.Array:
  """Δ from the learned predictor g: scale · (g(Z_{k←l}) − g(Z))   (..., K) -> (..., K, L_max)."""
  return score_deltas(lambda z: scale * apply_fn(params, z), space, z_levels)


def surrogate(space: Space, z: jax.Array, tau, deltas: jax.Array) -> jax.Array:
  """(1/M) Σ_s Σ_{k,l} q_k(l | z) · sg(Δ_{s,k,l}); its gradient in z is the estimator ĝ.
  z (K,), deltas (M, K, L_max) at M hypotheses drawn from Mz(·, z) -> scalar."""
  chex.assert_rank(z, 1)
  chex.assert_shape(deltas, (None, space.num_fields, space.max_levels))
  q = decoder.level_probs(space, z, tau)
  return jnp.sum(q * jnp.mean(jax.lax.stop_gradient(deltas), 0))


def expected_log_prior(human: Human, z: jax.Array, tau) -> jax.Array:
  """E_{Z ~ Mz(·,z)}[log Prior_H(Z)] exactly, by enumerating every Z (|Z| human queries: for
  tests and reporting, not for training)   (..., K) -> (...,)."""
  zs = jnp.asarray(human.space.enumerate())
  return jnp.sum(decoder.hypothesis_probs(human.space, z, tau) * hm.log_prior(human, zs), -1)


def ratio_pairs(key: jax.Array, space: Space, z_levels: jax.Array) -> jax.Array:
  """For each hypothesis a neighbour that differs in one random field, at a random other level
  (the pairs shown to the human to train the learned predictor)   (B, K) -> (B, K)."""
  k1, k2 = jax.random.split(key)
  b = z_levels.shape[0]
  levels = jnp.asarray(space.levels)
  field = jax.random.randint(k1, (b,), 0, space.num_fields)
  n = levels[field]
  shift = 1 + jnp.floor(jax.random.uniform(k2, (b,)) * (n - 1)).astype(jnp.int32)
  new = (z_levels[jnp.arange(b), field] + shift) % n
  return z_levels.at[jnp.arange(b), field].set(new.astype(z_levels.dtype))


def ratio_loss(apply_fn: Callable[[PyTree, jax.Array], jax.Array], params: PyTree,
               z_levels: jax.Array, z_other: jax.Array, judged: jax.Array, scale: float = 1.0
               ) -> jax.Array:
  """Mean squared error of the predictor's log-ratio against the human's judgments, in units of
  `scale`:  mean((g(Z′) − g(Z) − Δ/scale)²)."""
  pred = apply_fn(params, z_other) - apply_fn(params, z_levels)
  return jnp.mean((pred - judged / scale) ** 2)
