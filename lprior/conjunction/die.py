"""The four-sided-die example (explainer §3.3): equal 2-way probabilities, different 3-way ones.

Roll a fair D4.  Family "common": A = {1, 2}, B = {1, 3}, C = {1, 4}: every pair meets only in
face 1, and so do all three, P(A∧B∧C) = 1/4.  Family "cyclic": A = {1, 2}, B = {1, 3},
C = {2, 3}: every pair meets in one face, but a different one, so P(A∧B∧C) = 0.  In both,
P(each) = 1/2 and P(each pair) = 1/4: no function of 2-way probabilities is right on both.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from lprior.conjunction._checks import check_probabilities

FAMILIES = {
    "common": ({1, 2}, {1, 3}, {1, 4}),
    "cyclic": ({1, 2}, {1, 3}, {2, 3}),
}
TRIPLE = {"common": 0.25, "cyclic": 0.0}  # exact P(A ∧ B ∧ C)


def events_joint(events: Sequence[set[int]], face_probs: Sequence[float]) -> jnp.ndarray:
  """The joint (2ⁿ,) of n events, each a set of faces 1 … F, under face probabilities (F,).

  p[x] = Σ_f P(face f) [x is the truth assignment of the events at face f].
  """
  probs = np.asarray(face_probs, np.float64)
  check_probabilities(probs, "face_probs")
  if abs(probs.sum() - 1) > 1e-9:
    raise ValueError(f"face_probs must sum to 1, got {probs.sum()}")
  faces = np.arange(1, probs.shape[0] + 1)
  if any(not set(e) <= set(faces.tolist()) for e in events):
    raise ValueError(f"events must be subsets of the faces 1..{probs.shape[0]}")
  state = sum((np.isin(faces, sorted(e)).astype(np.int64) << i) for i, e in enumerate(events))
  return jnp.asarray(np.bincount(state, weights=probs, minlength=1 << len(events)))


def die_joint(family: str, num_faces: int = 4) -> jnp.ndarray:
  """The joint (8,) of the three events of a family under a fair die."""
  if family not in FAMILIES:
    raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {family!r}")
  return events_joint(FAMILIES[family], np.full(num_faces, 1.0 / num_faces))
