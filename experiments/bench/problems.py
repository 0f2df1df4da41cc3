"""The benchmark problems: the closed-form quadratic of DESIGN §1 at a given d and λ."""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from lprior.testing import quadratic


class Problem(NamedTuple):
  P: quadratic.Quadratic
  lam: float
  mean: jax.Array  # (d,) the base's mean μ (σ = 1)
  energy_fn: Callable[[jax.Array], jax.Array]  # θ ↦ λC(θ)
  exact_log_z: float


def make(dim: int, lam: float, *, rank: int = 32, seed: int = 0) -> Problem:
  """C = ½(θ−c)ᵀ(diag(s) + BᵀB)(θ−c) with a rank-32 BᵀB of eigenvalues ~1 (dense stiff
  directions) and Σ s ≈ 1 spread over every coordinate (s_i = e^{U(−1,1)}/d): log Z falls from
  ~−1 nat at λ = 1 to −200…−600 at λ = 10³, whatever d."""
  P = quadratic.make(jax.random.key(seed), dim, rank=rank, diag=1.0 / dim, diag_spread=1.0)
  mean = jnp.zeros(dim)
  energy_fn = lambda th: lam * P.consistency(th)
  return Problem(P, lam, mean, energy_fn, float(P.log_z(mean, lam, 1.0)))
