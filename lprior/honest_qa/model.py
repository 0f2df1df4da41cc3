"""The two-headed question answerer of DESIGN §1 (Flax linen) and its one-head baseline.

Parameter tree (a plain dict):
  {"trunk": {"layers_0": {"kernel", "bias"}, "layers_1": ...},
   "intended": {...}, "instrumental": {...}}
plus, with `encoder_features`, "encoder_human" (an MLP on the human's view A, the reviewer's
notes R and the question: the human model) and "encoder_sensors" (on S and the question) whose
outputs, concatenated, feed the trunk: the designed partition puts "encoder_human" in θ₂.
A head with hidden layers holds {"layers_0", ..., "out"}; a linear head is {"kernel", "bias"}.
`lprior.posterior.default_mask(params, trunk_share=s)` then picks both heads plus the first
round(s · n) trunk layers.  The one-head variant has only "trunk" and "intended"; its
`apply_fn` returns (logits, logits), so C = 0 and L, `evaluate` work unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable, NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from lprior.honest_qa._config import merged
from lprior.pytree import PyTree

HEADS = ("intended", "instrumental")


def default_model_config() -> ml_collections.ConfigDict:
  """trunk_features: widths of the trunk's hidden layers; head_features: hidden widths inside
  each head (() = linear heads); encoder_features: widths of the two channel encoders before
  the trunk (() = none: the trunk reads x); one_head: the plain-SGD baseline (method (a))."""
  return ml_collections.ConfigDict(dict(trunk_features=(48, 32), head_features=(),
                                        encoder_features=(), one_head=False))


ENCODED = dict(encoder_human=("human", "notes", "question"),
               encoder_sensors=("sensors", "question"))  # encoder: the channels it reads


class MLP(nn.Module):
  """relu(Dense) layers named layers_0, layers_1, ...; then, if `out` is set, a linear Dense
  named "out".   (..., d) -> (..., features[-1] or out)"""
  features: Sequence[int]
  out: int | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i, f in enumerate(self.features):
      x = nn.relu(nn.Dense(f, name=f"layers_{i}")(x))
    return x if self.out is None else nn.Dense(self.out, name="out")(x)


class QAModel(nn.Module):
  """Trunk + intended (+ instrumental) heads.   x: (..., d_in) -> logits (..., K) per head."""
  n_answers: int
  trunk_features: Sequence[int] = (48, 32)
  head_features: Sequence[int] = ()
  one_head: bool = False
  encoder_features: Sequence[int] = ()
  encoder_columns: tuple[tuple[int, ...], ...] = ()  # per ENCODED encoder: the columns of x

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, ...]:
    if self.encoder_features:
      x = jnp.concatenate([MLP(self.encoder_features, name=name)(x[..., np.asarray(cols)])
                           for name, cols in zip(ENCODED, self.encoder_columns)], -1)
    h = MLP(self.trunk_features, name="trunk")(x)
    heads = HEADS[:1] if self.one_head else HEADS
    if not self.head_features:  # linear heads: kernel and bias directly under the head's name
      return tuple(nn.Dense(self.n_answers, name=n)(h) for n in heads)
    return tuple(MLP(self.head_features, self.n_answers, name=n)(h) for n in heads)


class Model(NamedTuple):
  """init(key, x) -> params (plain dict); apply_fn(params, x) -> (intended, instrumental)."""
  init: Callable[[jax.Array, jax.Array], PyTree]
  apply_fn: Callable[[PyTree, jax.Array], tuple[jax.Array, jax.Array]]
  module: nn.Module


def _columns(channel_slices: dict[str, slice], names: Sequence[str]) -> tuple[int, ...]:
  """The columns of x holding the named channels (in x's order)."""
  return tuple(i for n in names for i in range(*channel_slices[n].indices(10**9)))


def make_model(n_answers: int, cfg: ml_collections.ConfigDict | dict | None = None, *,
               channel_slices: dict[str, slice] | None = None, **overrides) -> Model:
  """The model for K = n_answers answers (world spec's n_answers) from a model config;
  encoders need `channel_slices` (WorldSpec.channel_slices()): where A, R, S and the question
  lie in x."""
  c = merged(default_model_config(), cfg, overrides, "model")
  enc = tuple(int(w) for w in c["encoder_features"])
  if enc and channel_slices is None:
    raise ValueError("model.encoder_features needs channel_slices (WorldSpec.channel_slices())")
  columns = tuple(_columns(channel_slices, names) for names in ENCODED.values()) if enc else ()
  widths = tuple(c["trunk_features"]) + tuple(c["head_features"]) + enc
  if n_answers < 2 or not c["trunk_features"] or any(int(w) < 1 for w in widths):
    raise ValueError(f"need n_answers >= 2, a non-empty trunk and positive widths; got "
                     f"n_answers={n_answers}, trunk={c['trunk_features']}, "
                     f"heads={c['head_features']}")
  module = QAModel(n_answers, tuple(c["trunk_features"]), tuple(c["head_features"]),
                   bool(c["one_head"]), enc, columns)

  @jax.jit
  def init(key: jax.Array, x: jax.Array) -> PyTree:
    """A plain dict of parameters for inputs shaped like x: (..., d_in)."""
    return dict(module.init(key, x)["params"])

  def apply_fn(params: PyTree, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(intended_logits, instrumental_logits), each (..., K); one head: (logits, logits)."""
    chex.assert_rank(x, {1, 2})
    out = module.apply({"params": params}, x)
    return (out[0], out[0]) if len(out) == 1 else out

  return Model(init=init, apply_fn=apply_fn, module=module)


def model_for(spec, cfg: ml_collections.ConfigDict | dict | None = None, **overrides) -> Model:
  """`make_model` for a world (a WorldSpec): its n_answers and where its channels lie in x."""
  return make_model(spec.n_answers, cfg, channel_slices=spec.channel_slices(), **overrides)
