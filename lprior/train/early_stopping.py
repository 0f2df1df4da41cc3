"""Early stopping on a held-out score: the best score so far, the step it was reached at, the
parameters there and how many evaluations have passed without improving on it.

A pure, vmappable record kept in the training state (so it is checkpointed and a resumed run
stops where an uninterrupted one would): `update` after each evaluation, `stopped` once
`stale ≥ patience`.  Selection uses held-out training data only, never a test split.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from lprior.pytree import PyTree


@flax.struct.dataclass
class Best:
  score: jax.Array  # () float32: the best held-out score so far (higher is better); −inf at first
  step: jax.Array   # () int32: the step it was reached at (0 before any evaluation)
  stale: jax.Array  # () int32: evaluations since the score last improved
  params: PyTree    # the parameters at `step`


def init(params: PyTree) -> Best:
  """No evaluation yet: score −∞, step 0, the given parameters."""
  return Best(jnp.asarray(-jnp.inf, jnp.float32), jnp.asarray(0, jnp.int32),
              jnp.asarray(0, jnp.int32), params)


def update(best: Best, score: jax.Array, params: PyTree, step: jax.Array,
           eligible: jax.Array | bool = True) -> Best:
  """The record after an evaluation of `params` at `step` scoring `score` (a NaN never wins).
  An ineligible evaluation (e.g. before λ's annealing reached its target) resets the record to
  `params` with score −∞ and stale 0: selection starts at the first eligible evaluation, and a
  run that never gets there is reported at its last parameters."""
  better = score > best.score  # False for NaN
  keep = lambda new, old: jnp.where(better, new, old)
  improved = Best(score=keep(jnp.asarray(score, jnp.float32), best.score),
                  step=keep(jnp.asarray(step, jnp.int32), best.step),
                  stale=jnp.where(better, 0, best.stale + 1).astype(jnp.int32),
                  params=jax.tree.map(keep, params, best.params))
  reset = init(params).replace(step=jnp.asarray(step, jnp.int32))
  return jax.tree.map(lambda a, b: jnp.where(eligible, a, b), improved, reset)


def stopped(best: Best, patience: int) -> jax.Array:
  """True once `patience` ≥ 1 evaluations in a row have not improved on the best (patience 0:
  never; the best is still kept)."""
  return jnp.logical_and(patience > 0, best.stale >= patience)
