"""Mixtures of Gaussian bumps under a N(0, I) base, with exact log Z: the multimodal and
phase-transition targets of the estimator tests and the bench.

E(θ) = −log Σ_i a_i exp(−(λ/2) Σ_j h_ij (θ_j − c_ij)²).  A bump's integral is closed form,
∫ exp(−(λ/2) h (x − c)²) N(x; 0, 1) dx = (1 + λh)^−½ exp(−λh c² / (2(1 + λh))), so log Z is a
logsumexp of sums; the weights a_i are set so that bump i holds the share `shares[i]` of Z.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Bumps(NamedTuple):
  energy_fn: Callable[[jax.Array], jax.Array]  # θ (d,) ↦ E(θ)
  exact_log_z: float
  dim: int


def bump_log_z(h: np.ndarray, c: np.ndarray, lam: float) -> np.ndarray:
  """log ∫ exp(−(λ/2) Σ_j h_ij (θ_j − c_ij)²) N(θ; 0, I) dθ per bump   (B, d), (B, d) -> (B,)."""
  lh = lam * np.asarray(h, np.float64)
  return np.sum(-0.5 * np.log1p(lh) - 0.5 * lh * np.asarray(c, np.float64) ** 2 / (1 + lh), -1)


def make(h: np.ndarray, c: np.ndarray, shares: np.ndarray, lam: float) -> Bumps:
  """Bumps of curvatures h (B, d) > 0 and centres c (B, d), weighted a_i = shares_i · Z_0 / Z_i
  (Z_i each bump's integral), so log Z = log Z_0 + log Σ shares."""
  h, c = np.asarray(h, np.float64), np.asarray(c, np.float64)
  if h.shape != c.shape or h.ndim != 2 or np.any(h <= 0):
    raise ValueError(f"need curvatures h > 0 and centres c of one shape (B, d), got "
                     f"{h.shape} and {c.shape}")
  shares = np.asarray(shares, np.float64)
  if shares.shape != h.shape[:1] or np.any(shares <= 0):
    raise ValueError(f"need one share > 0 per bump ({h.shape[0]}); got {shares}")
  log_zi = bump_log_z(h, c, lam)
  log_a = np.log(shares) + log_zi[0] - log_zi
  lh, cc, la = (jnp.asarray(v, jnp.float32) for v in (lam * h, c, log_a))

  def energy_fn(th):
    return -jax.nn.logsumexp(la - 0.5 * jnp.sum(lh * (th - cc) ** 2, -1))

  return Bumps(energy_fn, float(log_zi[0] + np.log(shares.sum())), h.shape[1])


def spike_slab(dim: int, lam: float, *, offset: float = 0.5, seed: int = 0,
               spike_share: float = 0.9) -> Bumps:
  """A broad slab at 0 (curvature λ/d) and a spike 100x stiffer holding `spike_share` of Z,
  centred at offset · N(0, I).  offset = 0 is Skilling's phase transition (the spike inside the
  slab's contours: nested sampling must climb into it; tempering jumps there at one β and
  misses it); offset > 0 puts the spike beside the slab: still inside its contours at small d
  (nested sampling finds it at d = 10), in a prior volume ~e^{−H} outside them at large d."""
  c = np.stack([np.zeros(dim), offset * np.random.default_rng(seed).normal(0.0, 1.0, dim)])
  h = np.stack([np.full(dim, 1.0 / dim), np.full(dim, 100.0 / dim)])
  return make(h, c, np.array([1.0 - spike_share, spike_share]), lam)
