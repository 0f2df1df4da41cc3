"""The honest-QA world of DESIGN §4: hidden scenes, questions and their answers.

A scene has `n_slots` slots; a slot may hold an object with a colour and a shape.  Three kinds
of situation make a human labeler err (what each party perceives: `perception.py`):

  occluded   (per object)  the human does not see the object at all;
  low_light  (per scene)   the human swaps two colours (`low_light_pair`);
  far        (per object)  the human swaps two shapes (`far_pair`).

The seen kinds are those the reviewer fixes (their errors reach training, corrected); the unseen
kinds it shares.  Every draw comes from a PRNG key and has a fixed shape.  Answers index one
fixed vocabulary of K = n_slots + 4 + n_colours + n_shapes classes: counts 0..n_slots, no, yes,
each colour, each shape, none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections

from lprior.honest_qa._config import merged

QUESTION_TYPES = ("count_colour", "count_shape", "exists_colour", "exists_shape", "colour_at",
                  "shape_at")
ERROR_KINDS = ("occluded", "low_light", "far")
SENSOR_CODES = ("plain", "xor")  # how S encodes the true scene (perception.sensor_features)
OCCLUDED, LOW_LIGHT, FAR = range(3)

# What the argument of each question type ranges over.
_ARG_OF = {"count_colour": "colour", "count_shape": "shape", "exists_colour": "colour",
           "exists_shape": "shape", "colour_at": "slot", "shape_at": "slot"}


def default_world_config() -> ml_collections.ConfigDict:
  """The CPU-sized default world (the lead nests it under `config.world`).

  Scene: n_slots, n_colours, n_shapes; p_present (per slot), p_occluded and p_far (per present
  object), p_low_light (per scene).  Sensors: sensor_code ('plain' | 'xor', see
  perception.py), sensor_noise (Gaussian std).  Questions: question_types (a subset of
  QUESTION_TYPES, drawn uniformly).  Simple labeler: low_light_pair, far_pair (the swapped
  colours / shapes); error_prob.<kind> (probability that the human is susceptible to that kind
  on an example); seen_error_kinds (the reviewer fixes them), unseen_error_kinds (the reviewer
  shares them); a kind in neither list never causes an error.  Complex labeler: catch_share
  (probability that an example is reviewed).  Sets: n_small; error_ratio (caught error
  examples added to the large set, as a share of n_small); include_uncaught (a label-noise
  variant: as many uncaught seen-kind errors again enter the large set with the human's wrong
  label); n_test (per test split).  comparisons.{margin, confidence, uncaught_confidence_max}:
  step 3 (comparisons.py).  max_rounds: rejection-sampling rounds before giving up.
  """
  return ml_collections.ConfigDict(dict(
      n_slots=3, n_colours=3, n_shapes=3,
      p_present=0.75, p_occluded=0.2, p_far=0.2, p_low_light=0.25,
      sensor_code="plain", sensor_noise=0.35,
      question_types=QUESTION_TYPES,
      low_light_pair=(0, 1), far_pair=(0, 1),
      error_prob=ml_collections.ConfigDict(dict(occluded=1.0, low_light=1.0, far=1.0)),
      seen_error_kinds=("occluded", "low_light"), unseen_error_kinds=("far",),
      catch_share=0.5,
      n_small=4000, error_ratio=0.5, include_uncaught=False, n_test=1000,
      comparisons=ml_collections.ConfigDict(dict(
          margin=0.2, confidence=0.95, uncaught_confidence_max=0.8)),
      max_rounds=200,
  ))


@dataclasses.dataclass(frozen=True)
class WorldSpec:
  """The validated form of a world config.  A pytree: the sizes of the arrays (n_slots,
  n_colours, n_shapes, question_types) are static, every other field is a leaf, so worlds that
  differ only in rates, shares or error kinds share one compilation."""
  n_slots: int
  n_colours: int
  n_shapes: int
  question_types: tuple[str, ...]
  p_present: float
  p_occluded: float
  p_far: float
  p_low_light: float
  sensor_code: str
  sensor_noise: float
  low_light_pair: tuple[int, int]
  far_pair: tuple[int, int]
  error_prob: tuple[float, float, float]  # indexed by ERROR_KINDS
  seen_mask: tuple[bool, bool, bool]      # ERROR_KINDS[k] is a seen kind
  unseen_mask: tuple[bool, bool, bool]    # ERROR_KINDS[k] is an unseen kind
  catch_share: float
  n_small: int
  error_ratio: float
  include_uncaught: bool
  n_test: int
  margin: float
  confidence: float
  uncaught_confidence_max: float
  max_rounds: int

  @property
  def n_answers(self) -> int:
    """K: counts 0..n_slots, no, yes, n_colours colours, n_shapes shapes, none."""
    return self.n_slots + 4 + self.n_colours + self.n_shapes

  @property
  def n_args(self) -> int:
    """Width of the question-argument one-hot."""
    return max(self.n_slots, self.n_colours, self.n_shapes)

  @property
  def view_dim(self) -> int:
    """Features of one view of the scene (A): n_slots · (presence, colour and shape one-hots)."""
    return self.n_slots * (1 + self.n_colours + self.n_shapes)

  @property
  def sensor_dim(self) -> int:
    """S: one input per feature bit under the 'plain' code, two under 'xor'."""
    return self.view_dim * (2 if self.sensor_code == "xor" else 1)

  @property
  def channel_sizes(self) -> dict[str, int]:
    """The widths of x's parts in order: A, R, S, question."""
    return dict(human=self.view_dim, notes=self.view_dim + self.n_slots,
                sensors=self.sensor_dim, question=len(self.question_types) + self.n_args)

  def channel_slices(self) -> dict[str, slice]:
    """Where each part of `channel_sizes` lies in x."""
    out, start = {}, 0
    for name, size in self.channel_sizes.items():
      out[name] = slice(start, start + size)
      start += size
    return out

  @property
  def input_dim(self) -> int:
    """d_in = |A| + |R| + |S| + |question|."""
    return sum(self.channel_sizes.values())

  @property
  def seen_error_kinds(self) -> tuple[str, ...]:
    """The seen kinds by name (outside jit only)."""
    return tuple(k for k, m in zip(ERROR_KINDS, self.seen_mask) if m)

  @property
  def unseen_error_kinds(self) -> tuple[str, ...]:
    return tuple(k for k, m in zip(ERROR_KINDS, self.unseen_mask) if m)

  @property
  def active_mask(self) -> jax.Array:
    """(3,) bool: the kinds that can make the human err at all (seen or unseen)."""
    return jnp.asarray(self.seen_mask) | jnp.asarray(self.unseen_mask)


_META = ("n_slots", "n_colours", "n_shapes", "question_types", "sensor_code")
jax.tree_util.register_dataclass(
    WorldSpec, meta_fields=list(_META),
    data_fields=[f.name for f in dataclasses.fields(WorldSpec) if f.name not in _META])

_CMP_KEYS = ("margin", "confidence", "uncaught_confidence_max")


def world_spec(cfg: WorldSpec | Mapping | ml_collections.ConfigDict | None = None,
               **overrides: Any) -> WorldSpec:
  """A validated `WorldSpec` from a config (defaults for missing keys) plus keyword overrides.

  Raises ValueError on an unknown key, a probability or share outside [0, 1], an unknown
  question type or error kind, overlapping seen/unseen kinds, or a bad size.
  """
  if isinstance(cfg, WorldSpec):
    if overrides:
      return world_spec(_spec_to_dict(cfg), **overrides)
    return cfg
  d = merged(default_world_config(), cfg, overrides, "world", nested=("error_prob", "comparisons"))
  seen, unseen = tuple(d.pop("seen_error_kinds")), tuple(d.pop("unseen_error_kinds"))
  _validate_kinds(seen, unseen)
  cmp_cfg = d.pop("comparisons")
  spec = WorldSpec(
      **{k: v for k, v in d.items() if k not in ("error_prob", "question_types",
                                                  "low_light_pair", "far_pair")},
      question_types=tuple(d["question_types"]), low_light_pair=tuple(d["low_light_pair"]),
      far_pair=tuple(d["far_pair"]),
      error_prob=tuple(float(d["error_prob"][k]) for k in ERROR_KINDS),
      seen_mask=tuple(k in seen for k in ERROR_KINDS),
      unseen_mask=tuple(k in unseen for k in ERROR_KINDS),
      **{k: cmp_cfg[k] for k in _CMP_KEYS})
  _validate(spec)
  return spec


def _spec_to_dict(spec: WorldSpec) -> dict:
  d = dataclasses.asdict(spec)
  d["error_prob"] = dict(zip(ERROR_KINDS, d["error_prob"]))
  d["comparisons"] = {k: d.pop(k) for k in _CMP_KEYS}
  d.pop("seen_mask"), d.pop("unseen_mask")
  d["seen_error_kinds"], d["unseen_error_kinds"] = spec.seen_error_kinds, spec.unseen_error_kinds
  return d


def _validate_kinds(seen: tuple[str, ...], unseen: tuple[str, ...]) -> None:
  for name, kinds in (("seen_error_kinds", seen), ("unseen_error_kinds", unseen)):
    for k in kinds:
      if k not in ERROR_KINDS:
        raise ValueError(f"{name}: unknown error kind {k!r}; valid: {ERROR_KINDS}")
  if not seen:
    raise ValueError("seen_error_kinds is empty: training would hold no human error")
  if set(seen) & set(unseen):
    raise ValueError(f"an error kind is both seen and unseen: {sorted(set(seen) & set(unseen))}")


def _check_unit(name: str, v: float) -> None:
  if not 0.0 <= float(v) <= 1.0:
    raise ValueError(f"{name} must lie in [0, 1], got {v}")


def _validate(s: WorldSpec) -> None:
  """ValueError naming the first bad field of a spec."""
  for name in ("n_slots", "n_colours", "n_shapes", "n_small", "n_test", "max_rounds"):
    if not isinstance(getattr(s, name), int) or getattr(s, name) < 1:
      raise ValueError(f"{name} must be a positive int, got {getattr(s, name)!r}")
  if s.n_colours < 2 or s.n_shapes < 2:
    raise ValueError("n_colours and n_shapes must be at least 2 (a pair is swapped)")
  for name in ("p_present", "p_occluded", "p_far", "p_low_light", "catch_share",
               "uncaught_confidence_max", "confidence"):
    _check_unit(name, getattr(s, name))
  for k, p in zip(ERROR_KINDS, s.error_prob):
    _check_unit(f"error_prob.{k}", p)
  if not 0.0 <= s.margin <= 0.5:
    raise ValueError(f"comparisons.margin must lie in [0, 0.5], got {s.margin}")
  if s.uncaught_confidence_max < 0.5 or s.confidence < 0.5:
    raise ValueError("comparisons.confidence and uncaught_confidence_max must be >= 0.5")
  if s.error_ratio < 0:
    raise ValueError(f"error_ratio must be >= 0, got {s.error_ratio}")
  if s.sensor_noise < 0:
    raise ValueError(f"sensor_noise must be >= 0; got {s.sensor_noise}")
  if s.sensor_code not in SENSOR_CODES:
    raise ValueError(f"sensor_code must be one of {SENSOR_CODES}; got {s.sensor_code!r}")
  if not s.question_types:
    raise ValueError("question_types is empty")
  for q in s.question_types:
    if q not in QUESTION_TYPES:
      raise ValueError(f"unknown question type {q!r}; valid: {QUESTION_TYPES}")
  if len(set(s.question_types)) != len(s.question_types):
    raise ValueError(f"question_types has duplicates: {s.question_types}")
  for name, pair, n in (("low_light_pair", s.low_light_pair, s.n_colours),
                        ("far_pair", s.far_pair, s.n_shapes)):
    if len(pair) != 2 or pair[0] == pair[1] or not all(0 <= int(v) < n for v in pair):
      raise ValueError(f"{name} must be two different values in [0, {n}), got {pair}")


# -- the hidden state and the question ----------------------------------------------------------


class Scene(NamedTuple):
  """The hidden state; leading axes (...) index examples."""
  present: jax.Array    # (..., n_slots) bool
  colour: jax.Array     # (..., n_slots) int32
  shape: jax.Array      # (..., n_slots) int32
  occluded: jax.Array   # (..., n_slots) bool, only where present
  far: jax.Array        # (..., n_slots) bool, only where present
  low_light: jax.Array  # (...,) bool


class Question(NamedTuple):
  qtype: jax.Array  # (...,) int32, an index into QUESTION_TYPES (not into spec.question_types)
  arg: jax.Array    # (...,) int32: a colour, a shape or a slot, as the type says


def _bernoulli(u: jax.Array, p) -> jax.Array:
  """Bernoulli(p) draws from uniforms u ∈ [0, 1)."""
  return u < p


def _randint(u: jax.Array, n) -> jax.Array:
  """Uniform integers in [0, n) from uniforms u ∈ [0, 1)."""
  return jnp.minimum(jnp.floor(u * n), n - 1).astype(jnp.int32)


def scenes_from_uniform(u: jax.Array, spec: WorldSpec) -> Scene:
  """Scenes from uniforms u: (n, 5·n_slots + 1).  Slots present w.p. p_present, uniform colour
  and shape, occluded / far w.p. p_occluded / p_far per present object, low light w.p.
  p_low_light per scene."""
  s = spec.n_slots
  col = lambda i: u[:, i * s:(i + 1) * s]  # (n, n_slots)
  present = _bernoulli(col(0), spec.p_present)
  return Scene(present=present,
               colour=_randint(col(1), spec.n_colours), shape=_randint(col(2), spec.n_shapes),
               occluded=present & _bernoulli(col(3), spec.p_occluded),
               far=present & _bernoulli(col(4), spec.p_far),
               low_light=_bernoulli(u[:, 5 * s], spec.p_low_light))


def arg_range(spec: WorldSpec) -> jax.Array:
  """(len(QUESTION_TYPES),) int32: how many values each type's argument takes."""
  size = {"colour": spec.n_colours, "shape": spec.n_shapes, "slot": spec.n_slots}
  return jnp.array([size[_ARG_OF[q]] for q in QUESTION_TYPES], jnp.int32)


def question_type_ids(spec: WorldSpec) -> jax.Array:
  """(|question_types|,) int32: the configured types as indices into QUESTION_TYPES."""
  return jnp.array([QUESTION_TYPES.index(q) for q in spec.question_types], jnp.int32)


def questions_from_uniform(u: jax.Array, spec: WorldSpec) -> Question:
  """Questions from uniforms u: (n, 2): a type uniform over spec.question_types, an argument
  uniform over its range."""
  ids = question_type_ids(spec)
  qtype = ids[_randint(u[:, 0], ids.shape[0])]
  return Question(qtype=qtype, arg=_randint(u[:, 1], arg_range(spec)[qtype]))


# -- answers ------------------------------------------------------------------------------------


def answer_names(spec: WorldSpec) -> tuple[str, ...]:
  """The K answer classes in vocabulary order."""
  return (tuple(f"count={i}" for i in range(spec.n_slots + 1)) + ("no", "yes")
          + tuple(f"colour={c}" for c in range(spec.n_colours))
          + tuple(f"shape={s}" for s in range(spec.n_shapes)) + ("none",))


def _offsets(spec: WorldSpec) -> dict[str, int]:
  """First vocabulary index of each answer group."""
  no = spec.n_slots + 1
  colour = no + 2
  shape = colour + spec.n_colours
  return dict(count=0, no=no, yes=no + 1, colour=colour, shape=shape,
              none=shape + spec.n_shapes)


def answer(present: jax.Array, colour: jax.Array, shape: jax.Array, question: Question,
           spec: WorldSpec) -> jax.Array:
  """The answer index of `question` about a (possibly perceived) scene.   (..., n_slots) -> (...)

  count_c = Σ_i present_i [colour_i = c]; exists = [count > 0]; colour_at(i) = colour_i if
  present_i else none (likewise for shapes).
  """
  o = _offsets(spec)
  arg = question.arg[..., None]  # (..., 1)
  n_col = jnp.sum(present & (colour == arg), -1)  # (...)
  n_shp = jnp.sum(present & (shape == arg), -1)
  at = jax.nn.one_hot(question.arg, spec.n_slots, dtype=jnp.int32)  # (..., n_slots)
  here = jnp.sum(present * at, -1) > 0
  col_at = jnp.where(here, o["colour"] + jnp.sum(colour * at, -1), o["none"])
  shp_at = jnp.where(here, o["shape"] + jnp.sum(shape * at, -1), o["none"])
  yes_no = lambda c: jnp.where(c > 0, o["yes"], o["no"])
  by_type = jnp.stack([o["count"] + n_col, o["count"] + n_shp, yes_no(n_col), yes_no(n_shp),
                       col_at, shp_at], -1)  # (..., len(QUESTION_TYPES)), same order
  return jnp.take_along_axis(by_type, question.qtype[..., None], -1)[..., 0].astype(jnp.int32)


def true_answer(scene: Scene, question: Question, spec: WorldSpec) -> jax.Array:
  """The true answer index.   -> (...)"""
  return answer(scene.present, scene.colour, scene.shape, question, spec)


def valid_answers(qtype: jax.Array, spec: WorldSpec) -> jax.Array:
  """(..., K) bool: the answers a question of type `qtype` can have."""
  o, k = _offsets(spec), jnp.arange(spec.n_answers)
  groups = {
      "count_colour": k <= spec.n_slots, "count_shape": k <= spec.n_slots,
      "exists_colour": (k == o["no"]) | (k == o["yes"]),
      "exists_shape": (k == o["no"]) | (k == o["yes"]),
      "colour_at": ((k >= o["colour"]) & (k < o["shape"])) | (k == o["none"]),
      "shape_at": (k >= o["shape"]),
  }
  table = jnp.stack([groups[q] for q in QUESTION_TYPES])  # (len(QUESTION_TYPES), K)
  return table[qtype]
