"""Value checks for probabilities (run on concrete arrays only; skipped under jit/vmap/grad)."""

from __future__ import annotations

import chex
import numpy as np

from lprior.posterior._checks import is_concrete

# Probabilities computed in float32 can stray this far outside [0, 1] or their Fréchet bounds.
PROB_TOL = 1e-6


def check_probabilities(x, name: str, tol: float = PROB_TOL) -> None:
  """ValueError if a concrete `x` holds a NaN or a value outside [−tol, 1 + tol]."""
  if not is_concrete(x):
    return
  a = np.asarray(x)
  if np.isnan(a).any():
    raise ValueError(f"{name} contains NaN")
  if (a < -tol).any() or (a > 1 + tol).any():
    raise ValueError(f"{name} must lie in [0, 1]; got values in [{a.min():.6g}, {a.max():.6g}]")


def check_num_statements(n: int, max_n: int, what: str) -> None:
  """ValueError unless 1 ≤ n ≤ max_n (`what` names the method that enumerates 2ⁿ states)."""
  if not 1 <= n <= max_n:
    raise ValueError(f"{what} enumerates 2^n states and supports 1 <= n <= {max_n}; got n = {n}")


def check_shape(x, shape, name: str) -> None:
  """chex's shape assertion (None matches any size), re-raised as a ValueError naming `x`."""
  try:
    chex.assert_shape(x, shape)
  except AssertionError as e:
    raise ValueError(f"{name} has shape {np.shape(x)}, expected {tuple(shape)}") from e


def check_rank(x, rank: int, name: str) -> None:
  """ValueError unless x has `rank` dimensions (chex's assertion, re-raised)."""
  try:
    chex.assert_rank(x, rank)
  except AssertionError as e:
    raise ValueError(f"{name} must have {rank} dimensions, got shape {np.shape(x)}") from e
