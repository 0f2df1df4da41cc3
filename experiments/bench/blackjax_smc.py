"""The reference: BlackJAX's adaptive tempered SMC on the same path π_β ∝ N(θ; μ, σ²I) e^{−βE(θ)}.

Configured as well as BlackJAX's own tools allow on this problem: the HMC kernel with one
leapfrog step (preconditioned MALA, as our moves) and, after every tempering step, BlackJAX's
SMC tuners (what `inner_kernel_tuning` applies): a diagonal inverse mass matrix from the
particles (`from_particles`) and each particle's step size from its acceptance rate
(`update_scale_from_acceptance_rate`).
log Ẑ = Σ_t log_likelihood_increment_t.  θ is a flat (d,) vector.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp


def grad_evals(num_steps, num_particles: int, num_mcmc_steps: int):
  """Gradient evaluations of a run: each tempering step re-initialises every particle's HMC state
  (one gradient) and takes num_mcmc_steps one-leapfrog steps (one gradient each)."""
  return num_steps * num_particles * (1 + num_mcmc_steps)


@partial(jax.jit, static_argnames=("energy_fn", "num_particles", "num_mcmc_steps", "target_ess",
                                   "target_accept", "max_steps"))
def log_z(key: jax.Array, mean: jax.Array, sigma, *, energy_fn: Callable[[jax.Array], jax.Array],
          num_particles: int, num_mcmc_steps: int = 8, target_ess: float = 0.9,
          target_accept: float = 0.6, max_steps: int = 1000) -> dict:
  """BlackJAX's adaptive tempered SMC estimate of log ∫ N(θ; mean, σ²I) e^{−E(θ)} dθ.
  mean (d,) -> {'log_z', 'num_steps', 'num_grad_evals', 'acceptance'}."""
  import blackjax
  from blackjax.smc import resampling
  from blackjax.smc.tuning.from_kernel_info import update_scale_from_acceptance_rate
  from blackjax.smc.tuning.from_particles import particles_stds

  d = mean.shape[0]
  logprior = lambda th: -0.5 * jnp.sum((th - mean) ** 2) / sigma**2  # its constant cancels
  loglik = lambda th: -energy_fn(th)

  def step(key, state, params):
    algo = blackjax.adaptive_tempered_smc(
        logprior, loglik, blackjax.hmc.build_kernel(), blackjax.hmc.init, params,
        resampling.systematic, target_ess, num_mcmc_steps=num_mcmc_steps)
    state, info = algo.step(key, state)
    acc = info.update_info.acceptance_rate.reshape(num_particles, -1).mean(axis=1)
    # what inner_kernel_tuning would do with these two tuners, written out
    params = dict(params,
                  step_size=update_scale_from_acceptance_rate(params["step_size"], acc,
                                                              target_accept),
                  inverse_mass_matrix=(particles_stds(state.particles) ** 2)[None])
    return state, params, info.log_likelihood_increment, acc.mean()

  def cond(c):
    state, _, _, steps, _, _ = c
    return (state.tempering_param < 1.0) & (steps < max_steps)

  def body(c):
    state, params, lz, steps, acc, key = c
    key, sub = jax.random.split(key)
    state, params, inc, a = step(sub, state, params)
    return state, params, lz + inc, steps + 1, acc + a, key

  k0, key = jax.random.split(key)
  theta0 = mean + sigma * jax.random.normal(k0, (num_particles, d), mean.dtype)
  params = dict(step_size=jnp.full((num_particles,), min(1.0, d ** (-1 / 6)) * sigma, mean.dtype),
                inverse_mass_matrix=jnp.full((1, d), sigma**2, mean.dtype),
                num_integration_steps=jnp.ones((1,), jnp.int32))
  zero = jnp.zeros((), mean.dtype)
  init = (blackjax.adaptive_tempered_smc.init(theta0), params, zero, 0, zero, key)
  _, _, lz, steps, acc, _ = jax.lax.while_loop(cond, body, init)
  return dict(log_z=lz, num_steps=steps, acceptance=acc / jnp.maximum(steps, 1),
              num_grad_evals=grad_evals(steps, num_particles, num_mcmc_steps))
