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
  L from cfg.likelihood as in the nested trainer)."""
  opt = _opt(cfg)
  n = data.y_large.shape[0]

  def loss(params):
    l_fn = post.get_likelihood(cfg.get("likelihood", "labels"))
    return -l_fn(params, apply_fn, data.x_large, data.y_large, data.w_large) / n

  def step_fn(state: PlainState, step):
    value, g = jax.value_and_grad(loss)(state.params)
    updates, opt_state = opt.update(g, state.opt, state.params)
    params = optax.apply_updates(state.params, updates)
    return state.replace(params=params, opt=opt_state), dict(log_likelihood=-value * n,
                                                             loss=value)

  return step_fn
