"""The two-stage Gaussian priors of both forms (DESIGN §1), without the consistency factor.

σ₁ and σ₂ are scalars or pytrees of per-layer scales (`lprior.posterior.scales`)."""

from __future__ import annotations

import jax

from lprior import gaussian
from lprior.posterior import _checks
from lprior.pytree import PyTree


def chained_log_prior_terms(theta1: PyTree, theta2: PyTree, theta0: PyTree, *,
                            sigma1, sigma2) -> dict[str, jax.Array]:
  """Chained: log N(θ₁; θ₀, σ₁²) and log N(θ₂; θ₁, σ₂²), θ₀, θ₁, θ₂ whole parameter trees."""
  _checks.check_same_structure(theta0, theta1, "theta0", "theta1")
  _checks.check_same_structure(theta1, theta2, "theta1", "theta2")
  gaussian.check_scale(sigma1, theta1, "sigma1")
  gaussian.check_scale(sigma2, theta2, "sigma2")
  return dict(log_prior_theta1=gaussian.log_normal(theta1, theta0, sigma1),
              log_prior_theta2=gaussian.log_normal(theta2, theta1, sigma2))


def partitioned_log_prior_terms(theta1: PyTree, theta2: PyTree, theta1_init: PyTree,
                                theta2_init: PyTree, *, sigma1, sigma2) -> dict[str, jax.Array]:
  """Partitioned: log N(θ₁; θ₁⁰, σ₁² I) and log N(θ₂; θ₂⁰, σ₂² I) over each part's own leaves.

  θ₁, θ₂ (and their initial values) are the halves from `partition.split`; None leaves are
  empty subtrees, so the dimension d of each Gaussian counts only the part's leaves.
  """
  _checks.check_same_structure(theta1_init, theta1, "theta1_init", "theta1")
  _checks.check_same_structure(theta2_init, theta2, "theta2_init", "theta2")
  gaussian.check_scale(sigma1, theta1, "sigma1")
  gaussian.check_scale(sigma2, theta2, "sigma2")
  return dict(log_prior_theta1=gaussian.log_normal(theta1, theta1_init, sigma1),
              log_prior_theta2=gaussian.log_normal(theta2, theta2_init, sigma2))
