"""What each party perceives of a scene, and the model's input built from it (DESIGN §4).

  human view  the scene as the human perceives it: with the kinds of error it is susceptible to
              on this example, occluded objects vanish, colours `low_light_pair` swap under low
              light, shapes `far_pair` swap for far objects;
  reviewer    the careful reviewer perceives what the human does except the errors of the seen
              kinds (occlusion, low light), which it fixes; it shares the unseen kinds (far);
  complex     the reviewer's view where the example was reviewed (`caught`), else the human's:
              complex = answer(A ⊕ R).

The model's input x = [A, R, S, question]:
  A  the human's view, one-hots per slot (presence; colour and shape where present): the
     human's answer is a simple read-out of A;
  R  the reviewer's notes: per slot a flag and the reviewer's values where the reviewer saw the
     slot differently from the human (blank when the example was not reviewed);
  S  the sensors: the true scene's features under a code, plus noise of std sensor_noise —
     'plain': 2b − 1 for each feature bit b; 'xor': the pair (2r − 1, 2(r ⊕ b) − 1) with a
     fresh random bit r, so reading b needs the product of two inputs.  Decodable (a probe on
     S reads the truth), dearer than A, which the human's answer reads without noise.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from lprior.honest_qa.world import (ERROR_KINDS, FAR, LOW_LIGHT, OCCLUDED, Question, Scene,
                                    WorldSpec, question_type_ids, questions_from_uniform,
                                    scenes_from_uniform)

KindMask = jax.Array  # (3,) bool over world.ERROR_KINDS


class View(NamedTuple):
  """A scene as some party perceives it.   (..., n_slots) each"""
  present: jax.Array
  colour: jax.Array
  shape: jax.Array


def _swap(v: jax.Array, pair: tuple[int, int]) -> jax.Array:
  """v with the values pair[0] and pair[1] exchanged."""
  a, b = pair
  return jnp.where(v == a, b, jnp.where(v == b, a, v))


def true_view(scene: Scene) -> View:
  return View(scene.present, scene.colour, scene.shape)


def perceive(scene: Scene, susceptible: jax.Array, kinds: KindMask, spec: WorldSpec) -> View:
  """The scene as seen by someone who fails in the kinds of `kinds` where `susceptible`.
  susceptible: (n, 3) bool -> View of (n, n_slots) arrays"""
  on = susceptible & jnp.asarray(kinds)  # (n, 3)
  present = scene.present & ~(scene.occluded & on[:, OCCLUDED, None])
  dim = (scene.low_light & on[:, LOW_LIGHT])[:, None]  # (n, 1)
  colour = jnp.where(dim, _swap(scene.colour, spec.low_light_pair), scene.colour)
  shape = jnp.where(scene.far & on[:, FAR, None], _swap(scene.shape, spec.far_pair), scene.shape)
  return View(present, colour, shape)


def human_view(scene: Scene, susceptible: jax.Array, spec: WorldSpec) -> View:
  """The human fails in every active kind it is susceptible to."""
  return perceive(scene, susceptible, spec.active_mask, spec)


def reviewer_view(scene: Scene, susceptible: jax.Array, spec: WorldSpec) -> View:
  """The reviewer fixes the seen kinds and shares the human's unseen-kind failings."""
  return perceive(scene, susceptible, jnp.asarray(spec.unseen_mask), spec)


def _where(cond: jax.Array, a: View, b: View) -> View:
  return View(*(jnp.where(cond, x, y) for x, y in zip(a, b)))


def complex_view(scene: Scene, susceptible: jax.Array, caught: jax.Array,
                 spec: WorldSpec) -> View:
  """A ⊕ R: the reviewer's view where the example was reviewed, the human's elsewhere."""
  return _where(caught[:, None], reviewer_view(scene, susceptible, spec),
                human_view(scene, susceptible, spec))


def view_features(v: View, spec: WorldSpec) -> jax.Array:
  """Per slot [presence, colour one-hot, shape one-hot] (one-hots zero where absent).
  -> (n, n_slots · (1 + n_colours + n_shapes)) float32"""
  p = v.present.astype(jnp.float32)[..., None]
  f = jnp.concatenate([p, jax.nn.one_hot(v.colour, spec.n_colours) * p,
                       jax.nn.one_hot(v.shape, spec.n_shapes) * p], -1)
  return f.reshape(f.shape[0], -1)


def notes_features(human: View, reviewer: View, caught: jax.Array, spec: WorldSpec) -> jax.Array:
  """R: per slot [noted, the reviewer's slot features if noted]; noted = reviewed and the
  reviewer saw the slot differently.   -> (n, n_slots · (2 + n_colours + n_shapes))"""
  n, s = caught.shape[0], spec.n_slots
  h = view_features(human, spec).reshape(n, s, -1)
  r = view_features(reviewer, spec).reshape(n, s, -1)
  noted = (caught[:, None] & jnp.any(h != r, -1)).astype(jnp.float32)[..., None]  # (n, s, 1)
  return jnp.concatenate([noted, r * noted], -1).reshape(n, -1)


def sensor_features(truth: View, key_bits: jax.Array, noise: jax.Array,
                    spec: WorldSpec) -> jax.Array:
  """S: the true features under `spec.sensor_code` plus sensor_noise · noise (module docstring).
  key_bits, noise: (n, F) bool and (n, sensor_dim) normal -> (n, sensor_dim)"""
  b = view_features(truth, spec) > 0.5  # (n, F)
  sign = lambda v: 2.0 * v.astype(jnp.float32) - 1.0
  code = (jnp.concatenate([sign(key_bits), sign(key_bits ^ b)], -1) if spec.sensor_code == "xor"
          else sign(b))
  chex.assert_shape(noise, code.shape)
  return code + spec.sensor_noise * noise


def question_features(question: Question, spec: WorldSpec) -> jax.Array:
  """One-hots of the question type (over spec.question_types) and of its argument."""
  local_type = jnp.argmax(question.qtype[:, None] == question_type_ids(spec)[None], -1)
  return jnp.concatenate([jax.nn.one_hot(local_type, len(spec.question_types)),
                          jax.nn.one_hot(question.arg, spec.n_args)], -1)


class Channels(NamedTuple):
  """The parts of x, in order (slices of x given by `WorldSpec.channel_slices`)."""
  human: jax.Array     # A
  notes: jax.Array     # R
  sensors: jax.Array   # S
  question: jax.Array


def channels(scene: Scene, question: Question, susceptible: jax.Array, caught: jax.Array,
             key_bits: jax.Array, noise: jax.Array, spec: WorldSpec) -> Channels:
  human = human_view(scene, susceptible, spec)
  return Channels(view_features(human, spec),
                  notes_features(human, reviewer_view(scene, susceptible, spec), caught, spec),
                  sensor_features(true_view(scene), key_bits, noise, spec),
                  question_features(question, spec))


def observe(*args, **kwargs) -> jax.Array:
  """The model's input x = [A, R, S, question] (arguments as `channels`).   -> (n, d_in)"""
  c = channels(*args, **kwargs)
  return jnp.concatenate(c, -1).astype(jnp.float32)


class Examples(NamedTuple):
  """Scenes, questions, the labelers' own randomness and the model's input."""
  scene: Scene
  question: Question
  susceptible: jax.Array  # (n, 3) bool: the human is prone to ERROR_KINDS[k] on this example
  caught: jax.Array       # (n,) bool: the example is reviewed (the complex labeler's notes)
  x: jax.Array            # (n, d_in) float32: [A, R, S, question]


@partial(jax.jit, static_argnames=("n",))
def sample_examples(key: jax.Array, spec: WorldSpec, n: int) -> Examples:
  """n i.i.d. examples of the natural distribution with the labelers' randomness:
  susceptible[:, k] ~ Bernoulli(error_prob[k]) for seen or unseen kinds (else False),
  caught ~ Bernoulli(catch_share), the sensors' key bits ~ Bernoulli(½)."""
  w, f = 5 * spec.n_slots + 1, spec.view_dim
  n_u = w + 2 + len(ERROR_KINDS) + 1 + f
  # One random op (XLA compiles each separately, slowly on CPU): uniforms are Φ(z).
  z = jax.random.normal(key, (n, n_u + spec.sensor_dim), jnp.float32)
  u = jax.scipy.special.ndtr(z[:, :n_u])
  scene = scenes_from_uniform(u[:, :w], spec)
  question = questions_from_uniform(u[:, w:w + 2], spec)
  prob = jnp.where(spec.active_mask, jnp.asarray(spec.error_prob), 0.0)
  susceptible = u[:, w + 2:w + 2 + len(ERROR_KINDS)] < prob
  caught = u[:, w + 5] < spec.catch_share
  key_bits = u[:, w + 6:n_u] < 0.5
  x = observe(scene, question, susceptible, caught, key_bits, z[:, n_u:], spec)
  chex.assert_shape(x, (n, spec.input_dim))
  return Examples(scene, question, susceptible, caught, x)
