"""Divergences between two answer distributions given as logits.

Every divergence takes logits `a`, `b` of shape (..., K) (last axis = the K answers) and returns
shape (...).  p = softmax(a), q = softmax(b); all work in log space (log_softmax, logsumexp).
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

Divergence = Callable[[jax.Array, jax.Array], jax.Array]


def _check_pair(a: jax.Array, b: jax.Array) -> None:
  """Both logits arrays have one shape (..., K) with K the last axis."""
  if jnp.shape(a) != jnp.shape(b):
    raise ValueError(
        f"divergence: logits shapes differ: {jnp.shape(a)} vs {jnp.shape(b)}")
  if jnp.ndim(a) < 1:
    raise ValueError("divergence: logits need a last (answer) axis, got a scalar")


def _log_probs(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
  """log p, log q from logits."""
  _check_pair(a, b)
  return jax.nn.log_softmax(a, axis=-1), jax.nn.log_softmax(b, axis=-1)


def symmetric_kl(a: jax.Array, b: jax.Array) -> jax.Array:
  """KL(p‖q) + KL(q‖p) = Σ_k (p_k − q_k)(log p_k − log q_k).   (..., K) x2 -> (...)"""
  lp, lq = _log_probs(a, b)
  return jnp.sum((jnp.exp(lp) - jnp.exp(lq)) * (lp - lq), axis=-1)


def jensen_shannon(a: jax.Array, b: jax.Array) -> jax.Array:
  """JS = ½ KL(p‖m) + ½ KL(q‖m), m = ½(p + q), log m = logsumexp(log p, log q) − log 2; ≤ log 2."""
  lp, lq = _log_probs(a, b)
  lm = jnp.logaddexp(lp, lq) - math.log(2.0)  # (..., K)
  return 0.5 * jnp.sum(jnp.exp(lp) * (lp - lm) + jnp.exp(lq) * (lq - lm), axis=-1)


def total_variation(a: jax.Array, b: jax.Array) -> jax.Array:
  """TV = ½ Σ_k |p_k − q_k| ∈ [0, 1]."""
  lp, lq = _log_probs(a, b)
  return 0.5 * jnp.sum(jnp.abs(jnp.exp(lp) - jnp.exp(lq)), axis=-1)


def squared_logits(a: jax.Array, b: jax.Array) -> jax.Array:
  """½ ‖a − b‖² on the raw logits (not shift-invariant; quadratic for linear heads)."""
  _check_pair(a, b)
  return 0.5 * jnp.sum(jnp.square(a - b), axis=-1)


DIVERGENCES: dict[str, Divergence] = {
    "symmetric_kl": symmetric_kl,
    "jensen_shannon": jensen_shannon,
    "total_variation": total_variation,
    "squared_logits": squared_logits,
}


def get_divergence(name: str | Divergence) -> Divergence:
  """The divergence registered under `name` (a callable is returned unchanged)."""
  if callable(name):
    return name
  try:
    return DIVERGENCES[name]
  except (KeyError, TypeError):
    raise ValueError(
        f"unknown divergence {name!r}; valid names: {sorted(DIVERGENCES)}") from None
