"""Method (a) of the honest-QA experiment: plain SGD on the large set's log-likelihood L(θ) under
the (only) intended head; the baseline the nested posterior is compared with.  With
cfg.mode='sgld' the steps are Langevin's, θ ← θ + η∇(L + log prior) + √(2ηT)ξ with η =
cfg.lr_theta2 and T = cfg.temperature: the same dynamics as the nested trainer's 'sgld'."""

from __future__ import annotations

from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import optax

from lprior import gaussian
from lprior import posterior as post
from lprior.pytree import PyTree
from lprior.train import langevin, optimizer
from lprior.train.minibatch import large_batch


@flax.struct.dataclass
class PlainState:
  params: PyTree
  opt: Any
  key: jax.Array


def _sgld(cfg) -> bool:
  return cfg.get("mode", "map") == "sgld"


def _opt(cfg, n: int = 1) -> optax.GradientTransformation:
  """The optimiser of the per-example loss −(L + log prior)/n (SGLD: plain steps of n·η)."""
  if _sgld(cfg):
    return optax.sgd(cfg.lr_theta2 * n)
  return optimizer.make(cfg, cfg.lr_theta2)


def init(key, params: PyTree, cfg) -> PlainState:
  return PlainState(params, _opt(cfg).init(params), key)


def make_step(apply_fn: post.ApplyFn, data: post.Data, cfg, *, theta0: PyTree | None = None,
              sigma1=None) -> Callable:
  """step_fn(state, step) -> (state, metrics): one optax step on −(L + log N(θ; θ₀, σ₁²))/n
  (L from cfg.likelihood and minibatches of cfg.batch_size as in the nested trainer; the prior
  term, the nested posterior's stage-1 prior, only when `theta0` is given)."""
  n = data.y_large.shape[0]
  opt = _opt(cfg, n)

  l_fn = post.get_likelihood(cfg.get("likelihood", "labels"))
  if theta0 is not None and sigma1 is None:
    raise ValueError("plain.make_step: theta0 needs sigma1 (a scalar or a pytree like θ)")

  def loss(params, d):
    log_lik = l_fn(params, apply_fn, d.x_large, d.y_large, d.w_large)
    log_prior = 0.0 if theta0 is None else gaussian.log_normal(params, theta0, sigma1)
    return -(log_lik + log_prior) / n, (log_lik, log_prior)

  def step_fn(state: PlainState, step):
    d = large_batch(jax.random.fold_in(state.key, step), data, cfg.get("batch_size", 0))
    (value, (log_lik, log_prior)), g = jax.value_and_grad(loss, has_aux=True)(state.params, d)
    updates, opt_state = opt.update(g, state.opt, state.params)
    params = optax.apply_updates(state.params, updates)
    if _sgld(cfg):
      params = langevin.add_noise(jax.random.fold_in(jax.random.fold_in(state.key, step), 1),
                                  params, cfg.lr_theta2, cfg.temperature)
    return state.replace(params=params, opt=opt_state), dict(
        log_likelihood=log_lik, log_prior=jnp.asarray(log_prior, jnp.float32), loss=value)

  return step_fn
