"""The objectives of learning the prior, as pure functions of the latent.

MAP (a point z):
    J(z) = log Prior(z) + Σ_{(x,y) ∈ D} log f(y | x, z),
    log Prior(z) = log N(z; 0, I) + E_{Z ~ Mz(·,z)}[log Prior_H(Z)] + log|Z|   (lprior.ltp.decoder)
Full posterior (q = N(μ, diag σ²) over z):
    ELBO(q) = E_q[Σ_D log f(y | x, z) + E_{Mz(·,z)} log Prior_H(Z)] + log|Z| − KL(q ‖ N(0, I))
            = E_q[Σ_D log f(y | x, z)] − KL(q ‖ Prior(z))
f imitates the human:  loss(f) = E[CE(target_H(x, z), f(x, z))]  (lprior.ltp.family).
"""

from __future__ import annotations

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp

from lprior.ltp import decoder
from lprior.ltp.family import Family
from lprior.ltp.space import Space
from lprior.pytree import PyTree

CondFn = Callable[[PyTree, jax.Array, jax.Array], jax.Array]  # f(params, x, z) -> prediction
LogPriorFn = Callable[[jax.Array], jax.Array]  # z (K,) -> E_{Mz(·,z)} log Prior_H(Z) (or a surrogate)


def data_log_lik(f: CondFn, f_params: PyTree, z: jax.Array, x: jax.Array, y: jax.Array,
                 family: Family, weights: jax.Array | None = None) -> jax.Array:
  """Σ_i w_i log f(y_i | x_i, z)   (z (K,), x (n, dx), y (n,)) -> scalar."""
  chex.assert_rank([z, x, y], [1, 2, 1])
  lp = family.log_prob(f(f_params, x, z), y)
  return jnp.sum(lp if weights is None else weights * lp)


def log_prior_latent(space: Space, z: jax.Array, expected_log_prior_h: jax.Array) -> jax.Array:
  """log Prior(z) = log N(z; 0, I) + E_{Mz(·,z)} log Prior_H + log|Z| given the middle term."""
  return decoder.log_base(z) + expected_log_prior_h + decoder.log_num_cells(space)


def objective(z: jax.Array, *, f: CondFn, f_params: PyTree, x: jax.Array, y: jax.Array,
              family: Family, space: Space, log_prior_h: LogPriorFn,
              weights: jax.Array | None = None) -> jax.Array:
  """J(z) = log Prior(z) + Σ_i w_i log f(y_i | x_i, z) (MAP objective), with
  `log_prior_h(z)` = E_{Mz(·,z)}[log Prior_H(Z)] (exact, or a surrogate with the right gradient)."""
  return (log_prior_latent(space, z, log_prior_h(z))
          + data_log_lik(f, f_params, z, x, y, family, weights))


def gaussian_kl(mu: jax.Array, log_sigma: jax.Array) -> jax.Array:
  """KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ_k (σ_k² + μ_k² − 1 − 2 log σ_k)."""
  return 0.5 * jnp.sum(jnp.exp(2 * log_sigma) + mu * mu - 1.0 - 2 * log_sigma, -1)


def elbo(mu: jax.Array, log_sigma: jax.Array, eps: jax.Array, *, f: CondFn, f_params: PyTree,
         x: jax.Array, y: jax.Array, family: Family, space: Space, log_prior_h: LogPriorFn,
         weights: jax.Array | None = None) -> jax.Array:
  """Reparameterised estimate of ELBO(q) with z_s = μ + σ ε_s   (eps (S, K)) -> scalar."""
  chex.assert_equal_shape([mu, log_sigma])
  zs = mu + jnp.exp(log_sigma) * eps
  per = jax.vmap(lambda z: data_log_lik(f, f_params, z, x, y, family, weights)
                 + log_prior_h(z))(zs)
  return jnp.mean(per) + decoder.log_num_cells(space) - gaussian_kl(mu, log_sigma)


def imitation_loss(f: CondFn, f_params: PyTree, x: jax.Array, z: jax.Array, target: jax.Array,
                   family: Family) -> jax.Array:
  """mean_i CE(target_i, f(x_i, z_i)): f learns the human's forecasts under Mz(·, z_i)
  ((b, dx), (b, K), (b, Q)) -> scalar."""
  chex.assert_rank([x, z, target], 2)
  return jnp.mean(family.cross_entropy(target, f(f_params, x, z)))
