"""Independent particle batches: B tempered-SMC runs of N/B particles each, combined into one
estimate whose standard error comes from their spread.

Ẑ = (1/B) Σ_b Ẑ_b is unbiased for Z like each Ẑ_b, and Var(log Ẑ) ≈ Var(Ẑ_b/Z)/B is estimated
by the sample variance of r_b = Ẑ_b/Ẑ.  Unlike the genealogy (Chan–Lai) estimate of one run,
which cannot exceed 1 (nat²) and understates the error once resampling has left a handful of
ancestors, the batches are independent whatever happens inside each.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from lprior.pytree import PyTree


def combine(log_z_b: jax.Array, grad_b: PyTree, particles_b: PyTree, log_w_b: jax.Array
            ) -> dict:
  """Pool B independent runs.  log_z_b (B,); grad_b, particles_b: leaves with a leading B axis
  (particles (B, n, ...)); log_w_b (B, n) each run's normalised log-weights.

  Returns log_z = log mean Ẑ_b; stderr = sd(Ẑ_b/Ẑ)/√B; the batches' shares Ẑ_b/ΣẐ (B,);
  spread = sd(log Ẑ_b); grad_mean = Σ_b share_b ∇_μ log Ẑ_b; the B·n particles with log-weights
  log w_bi + log share_b (normalised over all of them)."""
  B = log_z_b.shape[0]
  if B < 2:
    raise ValueError(f"combining batches needs at least 2 runs; got {B}")
  log_z = jax.scipy.special.logsumexp(log_z_b) - math.log(B)
  r = jnp.exp(log_z_b - log_z)
  share = r / B
  flat = lambda x: x.reshape((-1,) + x.shape[2:])
  return dict(
      log_z=log_z, stderr=jnp.std(r, ddof=1) / math.sqrt(B), shares=share,
      spread=jnp.std(log_z_b, ddof=1),
      grad_mean=jax.tree.map(lambda g: jnp.tensordot(share.astype(g.dtype), g, 1), grad_b),
      particles=jax.tree.map(flat, particles_b),
      log_weights=flat(log_w_b + jnp.log(share)[:, None]))
