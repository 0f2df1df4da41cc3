"""The noise of one Langevin (SGLD) step: θ ← θ + η∇log p + √(2ηT)ξ samples p^{1/T}."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lprior.pytree import PyTree, tree_add, tree_random_normal, tree_scale


def add_noise(key: jax.Array, params: PyTree, lr, temperature) -> PyTree:
  """params + √(2·lr·temperature) ξ, ξ ~ N(0, I) like params."""
  noise = tree_random_normal(key, params)
  return tree_add(params, tree_scale(noise, jnp.sqrt(2.0 * lr * temperature)))
