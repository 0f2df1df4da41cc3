"""Naive Monte Carlo: log Z ≈ log (1/K) Σ_k e^{−E(θ_k)}, θ_k ~ N(μ, σ²I)."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from lprior import gaussian
from lprior.logz import particles as pt


def run_local(axis, n_local, key, mean, sigma, *, energy_fn: Callable, num_particles: int):
  """One device's share.  Var(log Ẑ) ≈ 1/ESS − 1/K (delta method); fails once Z ≪ 1/K."""
  keys = pt.slot_keys(key, n_local, axis)
  theta = jax.vmap(gaussian.sample, in_axes=(0, None, None))(keys, mean, sigma)
  energy = jax.vmap(energy_fn)(theta)
  log_w_g = -pt.gather(energy, axis)
  log_z = jax.scipy.special.logsumexp(log_w_g) - jnp.log(num_particles)
  ess = pt.ess(log_w_g)
  w_local = jnp.exp(pt.local(pt.normalize(log_w_g), n_local, axis))
  score = jax.vmap(gaussian.score, in_axes=(0, None, None))(theta, mean, sigma)
  replicated = dict(log_z=log_z, var=jnp.maximum(1.0 / ess - 1.0 / num_particles, 0.0), ess=ess,
                    grad_mean=pt.weighted_mean(score, w_local, axis),
                    nan_count=jnp.sum(jnp.isnan(log_w_g)))
  return replicated, (theta, pt.local(pt.normalize(log_w_g), n_local, axis))
