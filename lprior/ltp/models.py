"""The learned parts: f(y | x, z) (the human's forecaster, conditioned on the latent), the
baseline nets (x -> y, fit directly on D or on human forecasts), and the predictor of the
human's prior judgments.  Small Flax (linen) MLPs; the public functions take
`apply_fn(params, inputs)` and parameter pytrees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from lprior.ltp.family import Family
from lprior.pytree import PyTree

ApplyFn = Callable[[PyTree, jax.Array], jax.Array]
# LeCun-uniform weights: Flax's default truncated normal costs more to compile (see BUILD_NOTES)
_INIT = nn.initializers.lecun_uniform()
LOG_STD_BOUND = 5.0  # a gaussian prediction's log standard deviation is soft-clipped to ±this


class MLP(nn.Module):
  """gelu(Dense) hidden layers, then a linear output   (..., d) -> (..., out)."""
  hidden: Sequence[int]
  out: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for width in self.hidden:
      x = nn.gelu(nn.Dense(width, kernel_init=_INIT)(x))
    return nn.Dense(self.out, kernel_init=_INIT)(x)


def as_prediction(raw: jax.Array, family: Family) -> jax.Array:
  """A net's raw output as a prediction of `family` (gaussian: log std soft-clipped)."""
  if family.name == "binary":
    return raw
  return jnp.stack([raw[..., 0], LOG_STD_BOUND * jnp.tanh(raw[..., 1] / LOG_STD_BOUND)], -1)


class Net(NamedTuple):
  """init(key) -> params; apply_fn(params, inputs (..., d_in)) -> prediction (..., P)."""
  init: Callable[[jax.Array], PyTree]
  apply_fn: ApplyFn
  d_in: int


def make_net(d_in: int, family: Family, hidden: Sequence[int]) -> Net:
  """An MLP from d_in inputs to a prediction of `family`."""
  if d_in < 1 or not hidden or min(hidden) < 1:
    raise ValueError(f"need d_in >= 1 and positive hidden widths, got {d_in}, {hidden}")
  module = MLP(tuple(hidden), family.pred_dim)
  apply_fn = lambda params, inputs: as_prediction(module.apply(params, inputs), family)
  return Net(lambda key: module.init(key, jnp.zeros((1, d_in))), apply_fn, d_in)


def conditional(apply_fn: ApplyFn) -> Callable[[PyTree, jax.Array, jax.Array], jax.Array]:
  """f(params, x, z) = apply_fn(params, [x, z]) with z broadcast over x's batch dims
  ((..., dx), (..., K)) -> (..., P)."""
  def f(params: PyTree, x: jax.Array, z: jax.Array) -> jax.Array:
    shape = jnp.broadcast_shapes(x.shape[:-1], z.shape[:-1])
    xz = jnp.concatenate([jnp.broadcast_to(x, shape + x.shape[-1:]),
                          jnp.broadcast_to(z, shape + z.shape[-1:])], -1)
    return apply_fn(params, xz)
  return f


class PriorNet(nn.Module):
  """One-hot hypothesis (..., K, L_max) -> a score (...,): the learned log Prior up to a constant."""
  hidden: Sequence[int]

  @nn.compact
  def __call__(self, onehot: jax.Array) -> jax.Array:
    x = onehot.reshape(*onehot.shape[:-2], -1)
    for width in self.hidden:
      x = nn.gelu(nn.Dense(width, kernel_init=_INIT)(x))
    return nn.Dense(1, kernel_init=_INIT)(x)[..., 0]


def make_prior_net(num_fields: int, max_levels: int, hidden: Sequence[int]
                   ) -> tuple[Callable[[jax.Array], PyTree], ApplyFn]:
  """(init(key) -> params, apply_fn(params, z_levels (..., K) int) -> score (...,))."""
  module = PriorNet(tuple(hidden))
  init = lambda key: module.init(key, jnp.zeros((1, num_fields, max_levels)))
  apply_fn = lambda params, z: module.apply(params, jax.nn.one_hot(z, max_levels))
  return init, apply_fn


