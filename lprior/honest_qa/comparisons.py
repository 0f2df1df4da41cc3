"""Step 3 of the seed: pairwise comparisons kept only when one answer is confidently better, and
the Bradley–Terry log-likelihood of them under the intended head.

For each example two candidate answers are judged: (truth, the human's answer) where the human
is wrong, else (truth, a random other answer of the question's type), in random order.  The
judge (the complex labeling process) prefers the answer it believes (the complex labeler's):
with confidence `confidence` where it knows the truth (the human was right, or it caught the
error), and with a confidence uniform in [½, uncaught_confidence_max] where it missed the
human's error and so believes the human.  p(a ≻ b) is that confidence if it believes a, one minus
it if it believes b; the comparison is kept iff |p(a ≻ b) − ½| ≥ margin.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from lprior.honest_qa.splits import Split
from lprior.honest_qa.world import WorldSpec, valid_answers, world_spec
from lprior.posterior import terms as post_terms
from lprior.posterior.data import Data
from lprior.posterior.terms import ApplyFn
from lprior.pytree import PyTree


class Comparisons(NamedTuple):
  """n judged pairs; `weight` is 1 for the kept (confident) ones and 0 for the rest."""
  x: jax.Array            # (n, d_in) float32
  winner: jax.Array       # (n,) int32: the answer the judge prefers
  loser: jax.Array        # (n,) int32
  weight: jax.Array       # (n,) float32 in {0, 1}: kept
  confidence: jax.Array   # (n,) float32: max(p, 1 − p) with p = p(a ≻ b)
  winner_is_true: jax.Array  # (n,) bool


def make_comparisons(key: jax.Array, cfg: Any, split: Split) -> Comparisons:
  """One judged pair per example of `split` (e.g. splits["large"]); see the module docstring.

  cfg: a world config / WorldSpec (uses margin, confidence, uncaught_confidence_max).
  """
  spec = world_spec(cfg)
  chex.assert_shape([split.y_true, split.y_human, split.y_complex], (split.size,))
  return _judge(key, spec, split)


@jax.jit
def _judge(key: jax.Array, spec: WorldSpec, split: Split) -> Comparisons:
  n, k = split.y_true.shape[0], spec.n_answers
  u = jax.random.uniform(key, (n, k + 2), minval=jnp.finfo(jnp.float32).tiny)
  # a uniformly random valid answer other than the truth: Gumbel-max over the allowed ones
  allowed = valid_answers(split.question_type, spec) & (
      jnp.arange(k) != split.y_true[:, None])  # (n, K)
  gumbel = -jnp.log(-jnp.log(u[:, :k]))
  distractor = jnp.argmax(jnp.where(allowed, gumbel, -jnp.inf), -1).astype(jnp.int32)
  human_wrong = split.y_human != split.y_true
  other = jnp.where(human_wrong, split.y_human, distractor)
  swap = u[:, k] < 0.5
  a = jnp.where(swap, other, split.y_true)
  b = jnp.where(swap, split.y_true, other)
  missed = human_wrong & (split.y_complex == split.y_human)  # the judge believes the human
  conf = jnp.where(missed, 0.5 + (spec.uncaught_confidence_max - 0.5) * u[:, k + 1],
                   spec.confidence)
  believed = split.y_complex
  winner = jnp.where(a == believed, a, b)
  loser = jnp.where(a == believed, b, a)
  keep = conf - 0.5 >= spec.margin
  return Comparisons(x=split.x, winner=winner, loser=loser,
                     weight=keep.astype(jnp.float32), confidence=conf.astype(jnp.float32),
                     winner_is_true=winner == split.y_true)


def pairs(comparisons: Comparisons) -> jax.Array:
  """(n, 2) int32: (winner, loser) of every judged pair."""
  return jnp.stack([comparisons.winner, comparisons.loser], -1)


def with_comparisons(data: Data, comparisons: Comparisons) -> Data:
  """`data` whose large set is the judged pairs (x, (winner, loser), kept) instead of labels:
  the data of the trainers' likelihood='bradley_terry' mode."""
  return data._replace(x_large=comparisons.x, y_large=pairs(comparisons),
                       w_large=comparisons.weight)


def bradley_terry_log_likelihood(params: PyTree, apply_fn: ApplyFn,
                                 comparisons: Comparisons) -> jax.Array:
  """Σ_n w_n log σ(s_n[winner] − s_n[loser]), s = log softmax of the intended head.  -> ()

  An alternative L(θ) (DESIGN §1) on judged pairs instead of labels.
  """
  return post_terms.bradley_terry_log_likelihood(params, apply_fn, comparisons.x,
                                                 pairs(comparisons), comparisons.weight)
