"""The benchmark problems, each an energy E(θ) over θ ∈ R^d with base N(0, I) and an exact
log Z = log ∫ exp(−E(θ)) N(θ; 0, I) dθ:

  quadratic   the closed form of DESIGN §1 at a given d and λ (E = λC)
  mixture     E = −log Σ_i a_i exp(−(λ/2) Σ_j h_ij (θ_j − c_ij)²): four bumps of unequal
              curvature and unequal shares of Z (0.4, 0.3, 0.2, 0.1), apart from each other
  spike_slab  the same with two bumps: a broad slab at 0 and a narrow spike (curvature ×100)
              holding 90% of Z — a phase transition for tempering from the base: the spike is
              invisible at small β, so a tempered SMC that never finds it is log(0.1) low

A bump's integral is closed form, ∫ exp(−(λ/2) h (x − c)²) N(x; 0, 1) dx =
(1 + λh)^−½ exp(−λh c² / (2(1 + λh))), so log Z of a mixture of bumps is a logsumexp of sums.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lprior.testing import quadratic

KINDS = ("quadratic", "mixture", "spike_slab")


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
  whatever d.  mixture, spike_slab: see the module docstring (`bumps`)."""
  if kind == "quadratic":
    P = quadratic.make(jax.random.key(seed), dim, rank=rank, diag=1.0 / dim, diag_spread=1.0)
    mean = jnp.zeros(dim)
    energy_fn = lambda th: lam * P.consistency(th)
    return Problem(P, lam, mean, energy_fn, float(P.log_z(mean, lam, 1.0)), dim, kind)
  if kind == "mixture":
    rng = np.random.default_rng(seed)
    h = np.exp(rng.uniform(-1, 1, (4, dim))) * np.array([1.0, 3.0, 0.3, 10.0])[:, None] / dim
    c = rng.normal(0.0, 1.0, (4, dim))
    return bumps(h, c, np.array([0.4, 0.3, 0.2, 0.1]), lam, kind)
  if kind == "spike_slab":
    rng = np.random.default_rng(seed)
    h = np.stack([np.full(dim, 1.0 / dim), np.full(dim, 100.0 / dim)])
    c = np.stack([np.zeros(dim), rng.normal(0.0, 0.5, dim)])
    return bumps(h, c, np.array([0.1, 0.9]), lam, kind)
  raise ValueError(f"unknown problem kind {kind!r}; choose from {KINDS}")


def bump_log_z(h: np.ndarray, c: np.ndarray, lam: float) -> np.ndarray:
  """log ∫ exp(−(λ/2) Σ_j h_ij (θ_j − c_ij)²) N(θ; 0, I) dθ per bump   (B, d), (B, d) -> (B,)."""
  lh = lam * np.asarray(h, np.float64)
  return np.sum(-0.5 * np.log1p(lh) - 0.5 * lh * np.asarray(c, np.float64) ** 2 / (1 + lh), -1)


def bumps(h: np.ndarray, c: np.ndarray, shares: np.ndarray, lam: float, kind: str) -> Problem:
  """The mixture of bumps whose weights a_i give bump i the share `shares[i]` of Z:
  a_i = shares_i · Z_0 / Z_i (Z_i each bump's integral), so log Z = log Z_0 + log Σ shares."""
  h, c = np.asarray(h, np.float64), np.asarray(c, np.float64)
  if h.shape != c.shape or h.ndim != 2 or np.any(h <= 0):
    raise ValueError(f"need curvatures h > 0 and centres c of one shape (B, d), got "
                     f"{h.shape} and {c.shape}")
  log_zi = bump_log_z(h, c, lam)
  shares = np.asarray(shares, np.float64)
  log_a = np.log(shares) + log_zi[0] - log_zi
  exact = float(log_zi[0] + np.log(shares.sum()))
  lh, cc, la = (jnp.asarray(v, jnp.float32) for v in (lam * h, c, log_a))

  def energy_fn(th):
    return -jax.nn.logsumexp(la - 0.5 * jnp.sum(lh * (th - cc) ** 2, -1))

  return Problem(None, lam, jnp.zeros(h.shape[1]), energy_fn, exact, h.shape[1], kind)
