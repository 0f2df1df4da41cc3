"""Method (a) of the honest-QA experiment: plain SGD on the large set's log-likelihood L(θ) under
the (only) intended head; the baseline the nested posterior is compared with."""

from __future__ import annotations

from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import optax

from lprior import posterior as post
from lprior.pytree import PyTree
from lprior.train.minibatch import large_batch


@flax.struct.dataclass
class PlainState:
  params: PyTree
  opt: Any
  key: jax.Array


def _opt(cfg) -> optax.GradientTransformation:
  return optax.adam(cfg.lr_theta2) if cfg.optimizer == "adam" else optax.sgd(cfg.lr_theta2)


def init(key, params: PyTree, cfg) -> PlainState:
  return PlainState(params, _opt(cfg).init(params), key)


def make_step(apply_fn: post.ApplyFn, data: post.Data, cfg) -> Callable:
  """step_fn(state, step) -> (state, metrics): one optax step on −L/n (mean log-likelihood;
  L from cfg.likelihood and minibatches of cfg.batch_size as in the nested trainer)."""
  opt = _opt(cfg)
  n = data.y_large.shape[0]

  l_fn = post.get_likelihood(cfg.get("likelihood", "labels"))

  def loss(params, d):
    return -l_fn(params, apply_fn, d.x_large, d.y_large, d.w_large) / n

  def step_fn(state: PlainState, step):
    d = large_batch(jax.random.fold_in(state.key, step), data, cfg.get("batch_size", 0))
    value, g = jax.value_and_grad(loss)(state.params, d)
    updates, opt_state = opt.update(g, state.opt, state.params)
    params = optax.apply_updates(state.params, updates)
    return state.replace(params=params, opt=opt_state), dict(log_likelihood=-value * n,
                                                             loss=value)

  return step_fn
