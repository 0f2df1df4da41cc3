"""The data terms of the nested posterior: consistency C(θ) and log-likelihood L(θ) (DESIGN §1).

Both take `apply_fn(params, x) -> (intended_logits, instrumental_logits)`, two arrays of one
shape (..., K) whose last axis is the K answers.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from lprior.posterior import _checks
from lprior.posterior.divergences import Divergence, get_divergence
from lprior.pytree import PyTree

ApplyFn = Callable[[PyTree, PyTree], tuple[jax.Array, jax.Array]]


def heads(params: PyTree, apply_fn: ApplyFn, x: PyTree, *,
          name: str = "x") -> tuple[jax.Array, jax.Array]:
  """(intended, instrumental) logits of apply_fn(params, x), each (..., K), checked."""
  _checks.check_no_nan(x, name)
  out = apply_fn(params, x)
  if not isinstance(out, (tuple, list)) or len(out) != 2:
    length = f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""
    raise ValueError("apply_fn must return a pair (intended_logits, instrumental_logits), got "
                     f"{type(out).__name__}{length}")
  intended, instrumental = out
  for head_name, logits in (("intended", intended), ("instrumental", instrumental)):
    if not hasattr(logits, "shape") or not hasattr(logits, "dtype"):
      raise ValueError(
          f"apply_fn: the {head_name} logits are not an array: {type(logits).__name__}")
    if logits.ndim < 1:
      raise ValueError(f"apply_fn: the {head_name} logits need a last (answer) axis, got a scalar")
  if intended.shape != instrumental.shape:
    raise ValueError("apply_fn: intended and instrumental logits shapes differ: "
                     f"{intended.shape} vs {instrumental.shape}")
  return intended, instrumental


def consistency(params: PyTree, apply_fn: ApplyFn, x_small: PyTree, *,
                divergence: str | Divergence = "symmetric_kl",
                stop_intended: bool = False) -> jax.Array:
  """C(θ) = mean over the small set of D(intended(x), instrumental(x)).  -> ()

  With `stop_intended` the intended logits enter D through `stop_gradient`: same value, but
  no gradient flows through the intended head.  `stop_intended` may be a traced bool (vmap over
  variants that differ only in it).
  """
  div = get_divergence(divergence)
  intended, instrumental = heads(params, apply_fn, x_small, name="x_small")
  if isinstance(stop_intended, (bool, np.bool_)):
    intended = jax.lax.stop_gradient(intended) if stop_intended else intended
  else:
    intended = jnp.where(stop_intended, jax.lax.stop_gradient(intended), intended)
  return jnp.mean(div(intended, instrumental))  # (...) -> ()


def log_likelihood(params: PyTree, apply_fn: ApplyFn, x_large: PyTree, y_large: jax.Array,
                   weights: jax.Array | None = None) -> jax.Array:
  """L(θ) = Σ_n w_n log softmax(intended(x_n))[y_n]  (w_n = 1 without weights).  -> ()"""
  intended, _ = heads(params, apply_fn, x_large, name="x_large")  # (..., K)
  _check_labels(y_large, intended.shape)
  log_p = jax.nn.log_softmax(intended, axis=-1)  # (..., K)
  ll = jnp.take_along_axis(log_p, y_large[..., None], axis=-1)[..., 0]  # (...)
  return _weighted_sum(ll, weights)


def _weighted_sum(ll: jax.Array, weights: jax.Array | None) -> jax.Array:
  """Σ w·ll (Σ ll without weights), checking the weights' shape and NaNs."""
  if weights is None:
    return jnp.sum(ll)
  weights = jnp.asarray(weights)
  if weights.shape != ll.shape:
    raise ValueError(
        f"weights: shape {weights.shape} where the examples' shape {ll.shape} was expected")
  _checks.check_no_nan(weights, "weights")
  return jnp.sum(weights * ll)


def bradley_terry_log_likelihood(params: PyTree, apply_fn: ApplyFn, x_large: PyTree,
                                 pairs: jax.Array, weights: jax.Array | None = None) -> jax.Array:
  """L(θ) on judged pairs: Σ_n w_n log σ(s_n[winner_n] − s_n[loser_n]), s = log softmax of the
  intended head; pairs (n, 2) = (winner, loser) answer indices.  -> ()"""
  intended, _ = heads(params, apply_fn, x_large, name="x_large")  # (n, K)
  _check_labels(pairs, intended.shape[:-1] + (2, intended.shape[-1]), name="pairs")
  s = jax.nn.log_softmax(intended, -1)
  picked = jnp.take_along_axis(s, pairs, -1)  # (n, 2)
  ll = jax.nn.log_sigmoid(picked[..., 0] - picked[..., 1])  # (n,)
  return _weighted_sum(ll, weights)


LIKELIHOODS = {"labels": log_likelihood, "bradley_terry": bradley_terry_log_likelihood}


def get_likelihood(name: str | Callable) -> Callable:
  """L by name ('labels': y_large holds answers; 'bradley_terry': y_large holds (winner, loser)
  pairs), or a callable (params, apply_fn, x_large, y_large, w_large) -> () as is."""
  if callable(name):
    return name
  if name not in LIKELIHOODS:
    raise ValueError(f"likelihood must be one of {sorted(LIKELIHOODS)} or a callable; got {name!r}")
  return LIKELIHOODS[name]


def _check_labels(y: jax.Array, logits_shape: tuple[int, ...], name: str = "y_large") -> None:
  """y: integer labels of shape logits_shape[:-1], in [0, K) when concrete."""
  if not hasattr(y, "dtype") or not jnp.issubdtype(y.dtype, jnp.integer):
    raise ValueError(f"{name} must be an integer array, got dtype "
                     f"{getattr(y, 'dtype', type(y).__name__)}")
  if tuple(y.shape) != tuple(logits_shape[:-1]):
    raise ValueError(f"{name}: shape {tuple(y.shape)} where {tuple(logits_shape[:-1])} "
                     f"(from the logits' shape) was expected")
  if _checks.is_concrete(y) and y.size:
    k = logits_shape[-1]
    y_np = np.asarray(y)
    lo, hi = int(y_np.min()), int(y_np.max())
    if lo < 0 or hi >= k:
      raise ValueError(f"{name}: labels must lie in [0, {k}), found range [{lo}, {hi}]")
