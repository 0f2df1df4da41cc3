"""The independence estimate: log P(all true) ≈ Σ_i log P(A_i)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lprior.conjunction.marginals import KWay


@jax.jit
def log_p_independent(kw: KWay) -> jax.Array:
  """log Π_i p_i: exact iff the statements are mutually independent; uses 1-way marginals only."""
  return jnp.sum(jnp.log(kw.p1))
