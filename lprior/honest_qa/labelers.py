"""The simple labeler (a human who errs in systematic situations) and the complex labeler.

The simple labeler answers the question truthfully about the scene *as it perceives it*: with
the kinds of error it is susceptible to on this example (`Examples.susceptible`), occluded
objects vanish, colours `low_light_pair` swap under low light, shapes `far_pair` swap for far
objects.  The complex labeler returns the truth where the simple labeler is wrong and the
example is `caught` (Bernoulli(catch_share)), and the simple labeler's answer otherwise.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from lprior.honest_qa.world import (ERROR_KINDS, FAR, LOW_LIGHT, OCCLUDED, Examples, Scene,
                                    WorldSpec, answer, true_answer)

KindMask = jax.Array  # (3,) bool over ERROR_KINDS
# Labels.error_class: the human is right / errs of a seen kind / errs of an unseen kind only
# (with its seen-kind failings alone it would be right) / errs otherwise (both kinds together).
HUMAN_RIGHT, SEEN_ERROR, UNSEEN_ERROR, MIXED_ERROR = range(4)


class Labels(NamedTuple):
  """Every label of a batch of examples (n examples)."""
  truth: jax.Array            # (n,) int32
  human: jax.Array            # (n,) int32: the simple labeler
  complex: jax.Array          # (n,) int32: the complex labeler
  human_seen_only: jax.Array  # (n,) int32: the simple labeler with only its seen-kind failings
  error_kinds: jax.Array      # (n, 3) bool: kind k alone (as susceptible here) changes the answer
  at_risk: jax.Array          # (n, 3) bool: kind k alone would change it if the human were prone
  error_class: jax.Array      # (n,) int32: HUMAN_RIGHT, SEEN_ERROR, UNSEEN_ERROR or MIXED_ERROR


def _swap(v: jax.Array, pair: tuple[int, int]) -> jax.Array:
  """v with the values pair[0] and pair[1] exchanged."""
  a, b = pair
  return jnp.where(v == a, b, jnp.where(v == b, a, v))


def perceive(scene: Scene, susceptible: jax.Array, kinds: KindMask,
             spec: WorldSpec) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(present, colour, shape) as the human sees them, failing only in the kinds of `kinds` it is
  susceptible to.   susceptible: (n, 3) bool -> three (n, n_slots) arrays"""
  on = susceptible & jnp.asarray(kinds)  # (n, 3)
  present = scene.present & ~(scene.occluded & on[:, OCCLUDED, None])
  dim = (scene.low_light & on[:, LOW_LIGHT])[:, None]  # (n, 1)
  colour = jnp.where(dim, _swap(scene.colour, spec.low_light_pair), scene.colour)
  shape = jnp.where(scene.far & on[:, FAR, None], _swap(scene.shape, spec.far_pair), scene.shape)
  return present, colour, shape


def _human_answer(ex: Examples, spec: WorldSpec, kinds: KindMask,
                  susceptible: jax.Array) -> jax.Array:
  """The simple labeler's answer failing only in `kinds` (and where susceptible).   -> (n,)"""
  return answer(*perceive(ex.scene, susceptible, kinds, spec), ex.question, spec)


def _complex(truth: jax.Array, human: jax.Array, caught: jax.Array) -> jax.Array:
  return jnp.where((human != truth) & caught, truth, human)


def simple_label(ex: Examples, spec: WorldSpec) -> jax.Array:
  """The simple labeler's answer (all its seen and unseen failings).   -> (n,) int32"""
  return _human_answer(ex, spec, spec.active_mask, ex.susceptible)


def complex_label(ex: Examples, spec: WorldSpec) -> jax.Array:
  """truth where the simple labeler errs and the example is caught, its answer elsewhere."""
  return _complex(true_answer(ex.scene, ex.question, spec), simple_label(ex, spec), ex.caught)


@jax.jit
def label(ex: Examples, spec: WorldSpec) -> Labels:
  """All labels of `ex` and which kinds of error are at play."""
  n_k = len(ERROR_KINDS)
  only = jnp.eye(n_k, dtype=bool) & spec.active_mask  # (3, 3): kind k alone, if active
  prone = jnp.ones_like(ex.susceptible)
  # one batched answer over 9 (failings, susceptibility) settings keeps the program small:
  # truth, human, seen kinds only, each kind alone, each kind alone if always prone
  kinds = jnp.concatenate([jnp.zeros((1, n_k), bool), spec.active_mask[None],
                           jnp.asarray(spec.seen_mask)[None], only, only])  # (9, 3)
  sus = jnp.stack([ex.susceptible] * (3 + n_k) + [prone] * n_k)  # (9, n, 3)
  out = jax.vmap(lambda k, s: _human_answer(ex, spec, k, s))(kinds, sus)  # (9, n)
  truth, human, seen_only = out[0], out[1], out[2]
  cls = jnp.select([human == truth, human == seen_only, seen_only == truth],
                   [HUMAN_RIGHT, SEEN_ERROR, UNSEEN_ERROR], MIXED_ERROR)
  return Labels(truth=truth, human=human, complex=_complex(truth, human, ex.caught),
                human_seen_only=seen_only, error_kinds=(out[3:3 + n_k] != truth).T,
                at_risk=(out[3 + n_k:] != truth).T, error_class=cls.astype(jnp.int32))
