"""The benchmark problems, each an energy E(θ) over θ ∈ R^d with base N(0, I) and an exact
log Z = log ∫ exp(−E(θ)) N(θ; 0, I) dθ:

  quadratic   the closed form of DESIGN §1 at a given d and λ (E = λC)
  mixture     E = −log Σ_i a_i exp(−(λ/2) Σ_j h_ij (θ_j − c_ij)²): four bumps of unequal
              curvature and unequal shares of Z (0.4, 0.3, 0.2, 0.1), apart from each other
  spike_slab  the same with two bumps: a broad slab at 0 and a narrow spike (curvature ×100)
              holding 90% of Z beside it — invisible at small β, so a tempered SMC that never
              finds it is log(0.1) low; nested sampling finds it while it lies inside the slab's
              contours (d = 10 in the bench), not once its prior volume is ~e^{−70} (d = 50)
  spike_centred  the spike inside the slab (Skilling's phase transition): nested sampling
              climbs into it, tempering still misses it

(`lprior.testing.bumps` holds the bump targets and their closed forms.)
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lprior.testing import bumps, quadratic

KINDS = ("quadratic", "mixture", "spike_slab", "spike_centred")


class Problem(NamedTuple):
  P: quadratic.Quadratic | None  # the quadratic's parameters (None for the bump targets)
  lam: float
  mean: jax.Array  # (d,) the base's mean μ (σ = 1)
  energy_fn: Callable[[jax.Array], jax.Array]  # θ ↦ E(θ)
  exact_log_z: float
  dim: int
  kind: str = "quadratic"


def make(dim: int, lam: float, *, rank: int = 32, seed: int = 0, kind: str = "quadratic"
         ) -> Problem:
  """The problem of `kind` at (d, λ).  quadratic: C = ½(θ−c)ᵀ(diag(s) + BᵀB)(θ−c) with a
  rank-32 BᵀB of eigenvalues ~1 (dense stiff directions) and Σ s ≈ 1 spread over every
  coordinate (s_i = e^{U(−1,1)}/d): log Z falls from ~−1 nat at λ = 1 to −200…−600 at λ = 10³,
  whatever d.  mixture, spike_slab, spike_centred: see the module docstring."""
  if kind == "quadratic":
    P = quadratic.make(jax.random.key(seed), dim, rank=rank, diag=1.0 / dim, diag_spread=1.0)
    mean = jnp.zeros(dim)
    energy_fn = lambda th: lam * P.consistency(th)
    return Problem(P, lam, mean, energy_fn, float(P.log_z(mean, lam, 1.0)), dim, kind)
  if kind == "mixture":
    rng = np.random.default_rng(seed)
    h = np.exp(rng.uniform(-1, 1, (4, dim))) * np.array([1.0, 3.0, 0.3, 10.0])[:, None] / dim
    c = rng.normal(0.0, 1.0, (4, dim))
    return _problem(bumps.make(h, c, np.array([0.4, 0.3, 0.2, 0.1]), lam), lam, kind)
  if kind in ("spike_slab", "spike_centred"):
    b = bumps.spike_slab(dim, lam, offset=0.5 if kind == "spike_slab" else 0.0, seed=seed)
    return _problem(b, lam, kind)
  raise ValueError(f"unknown problem kind {kind!r}; choose from {KINDS}")


def _problem(b: bumps.Bumps, lam: float, kind: str) -> Problem:
  return Problem(None, lam, jnp.zeros(b.dim), b.energy_fn, b.exact_log_z, b.dim, kind)
