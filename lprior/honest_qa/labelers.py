"""The labelers' answers: the truth, the human (simple labeler) and the complex labeler.

Each answers the question about the scene as it perceives it (`perception.py`): the human about
its own view A, the complex labeler about A ⊕ R (the reviewer's view where the example was
reviewed), the truth about the scene itself.  Error classes of an example:
  HUMAN_RIGHT         human = complex = truth;
  SEEN_ERROR          human ≠ truth = complex (a caught error: the large set's error examples);
  UNSEEN_PREDICTABLE  human = complex ≠ truth from the seen kinds alone, not reviewed (the
                      mechanism occurs in training, corrected; here the reviewer missed it);
  UNSEEN_NOVEL        human = complex ≠ truth from the unseen kinds alone (never corrected);
  MIXED_ERROR         anything else (both kinds together, or complex ≠ human, truth).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from lprior.honest_qa import perception
from lprior.honest_qa.perception import Examples
from lprior.honest_qa.world import ERROR_KINDS, WorldSpec, answer

HUMAN_RIGHT, SEEN_ERROR, UNSEEN_PREDICTABLE, UNSEEN_NOVEL, MIXED_ERROR = range(5)


class Labels(NamedTuple):
  """Every label of a batch of examples (n examples)."""
  truth: jax.Array            # (n,) int32
  human: jax.Array            # (n,) int32: the simple labeler
  complex: jax.Array          # (n,) int32: the complex labeler
  human_seen_only: jax.Array  # (n,) int32: the human with only its seen-kind failings
  error_kinds: jax.Array      # (n, 3) bool: kind k alone (as susceptible here) changes the answer
  at_risk: jax.Array          # (n, 3) bool: kind k alone would change it if the human were prone
  error_class: jax.Array      # (n,) int32: one of the classes above


def _answer(view: perception.View, ex: Examples, spec: WorldSpec) -> jax.Array:
  return answer(*view, ex.question, spec)


def simple_label(ex: Examples, spec: WorldSpec) -> jax.Array:
  """The simple labeler's answer: about its own view A.   -> (n,) int32"""
  return _answer(perception.human_view(ex.scene, ex.susceptible, spec), ex, spec)


def complex_label(ex: Examples, spec: WorldSpec) -> jax.Array:
  """The complex labeler's answer: about A ⊕ R.   -> (n,) int32"""
  return _answer(perception.complex_view(ex.scene, ex.susceptible, ex.caught, spec), ex, spec)


@jax.jit
def label(ex: Examples, spec: WorldSpec) -> Labels:
  """All labels of `ex`, which kinds of error are at play, and the error class."""
  n_k = len(ERROR_KINDS)
  only = jnp.eye(n_k, dtype=bool) & spec.active_mask  # (3, 3): kind k alone, if active
  prone = jnp.ones_like(ex.susceptible)
  # one batched answer over 10 (failings, susceptibility) settings keeps the program small:
  # truth, human, seen kinds only, the reviewer (unseen kinds only), each kind alone, each kind
  # alone if always prone
  kinds = jnp.concatenate([jnp.zeros((1, n_k), bool), spec.active_mask[None],
                           jnp.asarray(spec.seen_mask)[None], jnp.asarray(spec.unseen_mask)[None],
                           only, only])  # (10, 3)
  sus = jnp.stack([ex.susceptible] * (4 + n_k) + [prone] * n_k)  # (10, n, 3)
  out = jax.vmap(lambda k, s: _answer(perception.perceive(ex.scene, s, k, spec), ex, spec))(
      kinds, sus)  # (10, n)
  truth, human, seen_only, reviewer = out[0], out[1], out[2], out[3]
  cplx = jnp.where(ex.caught, reviewer, human)  # = complex_label(ex, spec), from these answers
  missed = (human == cplx) & (human != truth)
  cls = jnp.select([(human == truth) & (cplx == truth), (human != truth) & (cplx == truth),
                    missed & ~ex.caught & (seen_only == human), missed & (seen_only == truth)],
                   [HUMAN_RIGHT, SEEN_ERROR, UNSEEN_PREDICTABLE, UNSEEN_NOVEL], MIXED_ERROR)
  return Labels(truth=truth, human=human, complex=cplx, human_seen_only=seen_only,
                error_kinds=(out[4:4 + n_k] != truth).T, at_risk=(out[4 + n_k:] != truth).T,
                error_class=cls.astype(jnp.int32))
