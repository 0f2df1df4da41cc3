"""The isotropic Gaussian N(θ; μ, σ² I) over a parameter pytree."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from lprior.pytree import PyTree, tree_random_normal, tree_size, tree_sq_norm, tree_sub


def log_normal(theta: PyTree, mean: PyTree, sigma) -> jax.Array:
  """log N(θ; μ, σ² I) = −‖θ−μ‖²/(2σ²) − (d/2) log(2πσ²), d = number of entries of θ."""
  d = tree_size(theta)
  sigma = jnp.asarray(sigma)
  return -0.5 * tree_sq_norm(tree_sub(theta, mean)) / sigma**2 - 0.5 * d * (
      math.log(2 * math.pi) + 2 * jnp.log(sigma))


def score(theta: PyTree, mean: PyTree, sigma) -> PyTree:
  """∇_μ log N(θ; μ, σ²) = (θ − μ)/σ² (and minus the gradient with respect to θ)."""
  return jax.tree.map(lambda t, m: (t - m) / sigma**2, theta, mean)


def sample(key: jax.Array, mean: PyTree, sigma) -> PyTree:
  """θ ~ N(μ, σ² I)."""
  return jax.tree.map(lambda m, z: m + sigma * z, mean, tree_random_normal(key, mean))
