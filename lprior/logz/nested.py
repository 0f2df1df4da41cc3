"""Nested sampling of log ∫ N(θ; μ, σ²I) e^{−E(θ)} dθ with BlackJAX's nested slice sampler.

Skilling's Z = ∫₀¹ L(X) dX with L = e^{−E} and X the prior volume above a likelihood contour:
live points climb the contour while the volume shrinks by e^{−1/n} per deleted point, so a mode
holding most of Z in a tiny volume (a phase transition for tempering) is weighted by the volume
it occupies rather than found by luck.  BlackJAX's `nss` makes the constrained moves (hit-and-run
slice sampling shaped by the live covariance) and its integrator accumulates log Z; this module
runs it in one compiled loop and folds in, step by step, what BlackJAX leaves to a pass over a
list of dead points: the information H (SE ≈ √(H/n), Skilling 2006), ∇_μ log Z = E_p[(θ−μ)/σ²],
Kish's ESS of the dead-point weights, and S posterior draws by streaming multinomial resampling
(each slot keeps its draw, or takes a new dead point with probability w/W_new).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from lprior import gaussian
from lprior.pytree import PyTree


def _fold(acc: dict, key: jax.Array, log_w: jax.Array, theta: PyTree, score: PyTree,
          log_lik: jax.Array) -> dict:
  """acc with k more points of log-weights (k,) folded in: the weight total (and of squares),
  the weighted means of the score and of log L, and the S resampled draws."""
  log_w = jnp.where(jnp.isnan(log_w), -jnp.inf, log_w)
  total = jnp.logaddexp(acc["log_w_sum"], logsumexp(log_w))
  p_old, p_new = jnp.exp(acc["log_w_sum"] - total), jnp.exp(log_w - total)  # (), (k,)
  mean = lambda m, x: p_old * m + jnp.tensordot(p_new, jnp.where(p_new.reshape(
      (-1,) + (1,) * (x.ndim - 1)) > 0, x, 0), 1)
  num_slots = jax.tree.leaves(acc["samples"])[0].shape[0]
  logits = jnp.concatenate([(acc["log_w_sum"] - total)[None], log_w - total])
  pick = jax.random.categorical(key, logits, shape=(num_slots,))  # 0: keep the slot's draw
  take = lambda s, x: jnp.where((pick > 0).reshape((-1,) + (1,) * (s.ndim - 1)),
                                x[jnp.maximum(pick - 1, 0)], s)
  return dict(log_w_sum=total, log_w2_sum=jnp.logaddexp(acc["log_w2_sum"], logsumexp(2 * log_w)),
              mean_score=jax.tree.map(mean, acc["mean_score"], score),
              mean_loglik=mean(acc["mean_loglik"], log_lik),
              samples=jax.tree.map(take, acc["samples"], theta))


def _shell_log_volumes(log_x: jax.Array, num_live: int, num_dead: int) -> jax.Array:
  """log of the shells X_{i−1} − X_i of k deletions from n live points, X_0 = e^{log_x}
  (X_i = X_{i−1}e^{−1/(n−i+1)}, the expected shrinkage: BlackJAX's integrator's rule, which
  keeps only the shells' sum; the per-point weights are needed here)."""
  dlx = -1.0 / jnp.arange(num_live, num_live - num_dead, -1).astype(log_x.dtype)
  before = log_x + jnp.concatenate([jnp.zeros(1, log_x.dtype), jnp.cumsum(dlx)[:-1]])
  return before + jnp.log(-jnp.expm1(dlx))


def run(key: jax.Array, mean: PyTree, sigma, *, energy_fn: Callable, num_live: int,
        num_delete: int, num_inner_steps: int, dlogz: float, max_steps: int,
        num_samples: int, live_range: float | None = None) -> dict:
  """log Z by nested slice sampling until log(Z + Z_live) − log Z < dlogz (or max_steps).

  Returns log_z, var (H/n), grad_mean, ess, samples ((S, ...) equally weighted posterior draws),
  num_steps, num_dead, info_h (H in nats), num_energy_evals, acceptance (share of slice moves
  that found a point inside the contour), log_z_live_left and nan_count."""
  import blackjax  # (the estimator's one use of it; an import here keeps `lprior` light)

  loglik = lambda th: -energy_fn(th)
  logprior = lambda th: gaussian.log_normal(th, mean, sigma)
  algo = blackjax.nss(logprior, loglik, num_inner_steps=num_inner_steps, num_delete=num_delete)
  k_init, k_loop = jax.random.split(key)
  theta0 = jax.vmap(gaussian.sample, in_axes=(0, None, None))(
      jax.random.split(k_init, num_live), mean, sigma)
  state = algo.init(theta0)
  score = jax.vmap(gaussian.score, in_axes=(0, None, None))
  dtype = state.integrator.logZ.dtype
  acc = dict(log_w_sum=jnp.asarray(-jnp.inf, dtype), log_w2_sum=jnp.asarray(-jnp.inf, dtype),
             mean_score=jax.tree.map(lambda x: jnp.zeros_like(x[0]), theta0),
             mean_loglik=jnp.zeros((), dtype),
             samples=jax.tree.map(lambda x: jnp.broadcast_to(x[0], (num_samples,) + x.shape[1:]),
                                  theta0))
  zero = jnp.zeros((), jnp.int32)
  stop_gap = jnp.log(jnp.expm1(jnp.asarray(dlogz, dtype)))

  def cond(c):
    state, _, steps, *_ = c
    i = state.integrator
    ll = state.particles.loglikelihood
    flat = live_range is None or (jnp.max(ll) - jnp.min(ll) < live_range)
    return (steps < max_steps) & ~((i.logZ_live - i.logZ < stop_gap) & flat)

  def body(c):
    state, acc, steps, key, evals, accepted, nans = c
    key, k_step, k_fold = jax.random.split(key, 3)
    log_x = state.integrator.logX
    state, info = algo.step(k_step, state)
    dead = info.particles
    log_dx = _shell_log_volumes(log_x, num_live, num_delete)
    acc = _fold(acc, k_fold, dead.loglikelihood + log_dx, dead.position,
                score(dead.position, mean, sigma), dead.loglikelihood)
    u = info.update_info  # SliceInfo, (num_delete, num_inner_steps)
    evals = evals + jnp.sum(2 + u.num_expansions + u.num_shrink)
    accepted = accepted + jnp.sum(u.is_accepted)
    nans = nans + jnp.sum(jnp.isnan(state.particles.loglikelihood))
    return state, acc, steps + 1, key, evals, accepted, nans

  init = (state, acc, zero, k_loop, zero, zero, jnp.sum(jnp.isnan(state.particles.loglikelihood)))
  state, acc, steps, key, evals, accepted, nans = jax.lax.while_loop(cond, body, init)
  # the live points close the integral: each holds X_final / n
  live = state.particles
  log_z_left = state.integrator.logZ_live - state.integrator.logZ
  acc = _fold(acc, key, live.loglikelihood + state.integrator.logX - jnp.log(num_live),
              live.position, score(live.position, mean, sigma), live.loglikelihood)
  log_z = acc["log_w_sum"]
  info_h = jnp.maximum(acc["mean_loglik"] - log_z, 0.0)
  return dict(log_z=log_z, var=info_h / num_live, grad_mean=acc["mean_score"],
              ess=jnp.exp(2 * acc["log_w_sum"] - acc["log_w2_sum"]), samples=acc["samples"],
              num_steps=steps, num_dead=steps * num_delete + num_live, info_h=info_h,
              num_energy_evals=evals + num_live,
              acceptance=accepted / jnp.maximum(steps * num_delete * num_inner_steps, 1),
              log_z_live_left=log_z_left, nan_count=nans)
