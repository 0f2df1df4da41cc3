"""Unnormalised log posteriors of both forms and the energies whose log-integral is log Z(θ₁).

Chained (θ₁, θ₂ whole parameter trees):
  log p̃ = L(θ₂) + log N(θ₁; θ₀, σ₁²) + log N(θ₂; θ₁, σ₂²) − λ C(θ₂) − log Z(θ₁)
Partitioned (θ₁, θ₂ disjoint halves of one tree, θ = merge(θ₁, θ₂)):
  log p̃ = L(θ) + log N(θ₁; θ₁⁰, σ₁²) + log N(θ₂; θ₂⁰, σ₂²) − λ C(θ) − log Z(θ₁)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Callable

import jax
import jax.numpy as jnp

from lprior.posterior import _checks
from lprior.posterior.data import Data, as_data
from lprior.posterior.divergences import Divergence, get_divergence
from lprior.posterior.partition import merge
from lprior.posterior.prior import chained_log_prior_terms, partitioned_log_prior_terms
from lprior.posterior.terms import ApplyFn, consistency, get_likelihood
from lprior.pytree import PyTree

LogZ = jax.Array | float | Callable[[PyTree], jax.Array]

# the terms of log p̃ (`consistency` is C itself, reported beside λC; the total uses λC)
TERM_KEYS = ("log_likelihood", "log_prior_theta1", "log_prior_theta2", "consistency",
             "lam_consistency", "log_z")


def chained_log_posterior(theta1: PyTree, theta2: PyTree, *, apply_fn: ApplyFn, theta0: PyTree,
                          data: Data | Mapping, sigma1, sigma2, lam, log_z: LogZ,
                          divergence: str | Divergence = "symmetric_kl",
                          stop_intended: bool = False, likelihood: str | Callable = "labels"
                          ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """(log p̃(θ₁, θ₂ | D), terms) of the chained form; total = L + priors − λC(θ₂) − log Z(θ₁).

  `log_z` is an estimate of log Z(θ₁) (a scalar, treated as given: no gradient flows to θ₁
  unless it was computed from θ₁ inside the same trace) or a callable log_z(θ₁) -> ().
  `likelihood` picks L (`terms.get_likelihood`: 'labels' or 'bradley_terry' on pairs).
  """
  data = as_data(data)
  _checks.check_nonnegative(lam, "lam")
  div = get_divergence(divergence)
  priors = chained_log_prior_terms(theta1, theta2, theta0, sigma1=sigma1, sigma2=sigma2)
  c = consistency(theta2, apply_fn, data.x_small, divergence=div, stop_intended=stop_intended)
  terms = dict(
      log_likelihood=get_likelihood(likelihood)(theta2, apply_fn, data.x_large, data.y_large,
                                                data.w_large),
      **priors,
      consistency=c,
      lam_consistency=lam * c,
      log_z=_log_z_value(log_z, theta1))
  return _total(terms), terms


def partitioned_log_posterior(theta1: PyTree, theta2: PyTree, *, apply_fn: ApplyFn,
                              theta1_init: PyTree, theta2_init: PyTree, data: Data | Mapping,
                              sigma1, sigma2, lam, log_z: LogZ,
                              divergence: str | Divergence = "symmetric_kl",
                              stop_intended: bool = False,
                              likelihood: str | Callable = "labels"
                              ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """(log p̃(θ₁, θ₂ | D), terms) of the partitioned form; L and C on θ = merge(θ₁, θ₂).

  θ₁, θ₂, θ₁⁰, θ₂⁰ are halves from `partition.split` (None in the other part's leaves);
  `log_z` and `likelihood` as in `chained_log_posterior`.
  """
  data = as_data(data)
  _checks.check_nonnegative(lam, "lam")
  div = get_divergence(divergence)
  priors = partitioned_log_prior_terms(theta1, theta2, theta1_init, theta2_init,
                                       sigma1=sigma1, sigma2=sigma2)
  params = merge(theta1, theta2)
  c = consistency(params, apply_fn, data.x_small, divergence=div, stop_intended=stop_intended)
  terms = dict(
      log_likelihood=get_likelihood(likelihood)(params, apply_fn, data.x_large, data.y_large,
                                                data.w_large),
      **priors,
      consistency=c,
      lam_consistency=lam * c,
      log_z=_log_z_value(log_z, theta1))
  return _total(terms), terms


def chained_energy(apply_fn: ApplyFn, x_small: PyTree, lam, divergence: str | Divergence =
                   "symmetric_kl", stop_intended: bool = False) -> Callable[[PyTree], jax.Array]:
  """E(θ₂) = λ C(θ₂): log Z(θ₁) = log E_{θ₂ ~ N(θ₁, σ₂²)} exp(−E(θ₂))."""
  _checks.check_nonnegative(lam, "lam")
  _checks.check_no_nan(x_small, "x_small")
  div = get_divergence(divergence)

  def energy_fn(theta2: PyTree) -> jax.Array:
    return lam * consistency(theta2, apply_fn, x_small, divergence=div, stop_intended=stop_intended)

  return energy_fn


def partitioned_energy(apply_fn: ApplyFn, x_small: PyTree, lam, divergence: str | Divergence =
                       "symmetric_kl", stop_intended: bool = False
                       ) -> Callable[[PyTree, PyTree], jax.Array]:
  """E(θ₁, θ₂) = λ C(merge(θ₁, θ₂)): log Z(θ₁) = log E_{θ₂ ~ N(θ₂⁰, σ₂²)} exp(−E(θ₁, θ₂))."""
  _checks.check_nonnegative(lam, "lam")
  _checks.check_no_nan(x_small, "x_small")
  div = get_divergence(divergence)

  def energy_fn(theta1: PyTree, theta2: PyTree) -> jax.Array:
    params = merge(theta1, theta2)
    return lam * consistency(params, apply_fn, x_small, divergence=div, stop_intended=stop_intended)

  return energy_fn


def _log_z_value(log_z: LogZ, theta1: PyTree) -> jax.Array:
  """log Z(θ₁) from a scalar estimate or a callable, checked to be a scalar."""
  value = log_z(theta1) if callable(log_z) else log_z
  value = jnp.asarray(value)
  if value.shape != ():
    raise ValueError(f"log_z must be a scalar (or return one), got shape {value.shape}")
  _checks.check_no_nan(value, "log_z")
  return value


def _total(terms: dict[str, jax.Array]) -> jax.Array:
  """L + log prior θ₁ + log prior θ₂ − λC − log Z."""
  return (terms["log_likelihood"] + terms["log_prior_theta1"] + terms["log_prior_theta2"]
          - terms["lam_consistency"] - terms["log_z"])
