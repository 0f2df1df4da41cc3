"""The human-readable hypothesis space Z: a few named fields, each with a handful of levels.

A hypothesis Z is an int vector (K,) of level indices, one per field; each level has a numeric
value (what the human computes with) and words (what the human reads).  The space is finite,
|Z| = Π_k L_k, so the human's posterior can be enumerated exactly.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Field:
  """One named field of Z: `values[l]` is level l's number, `words[l]` its reading."""
  name: str
  values: tuple[float, ...]
  words: tuple[str, ...]

  def __post_init__(self):
    if len(self.values) < 2 or len(self.values) != len(self.words):
      raise ValueError(f"field {self.name!r}: need >= 2 levels and one reading per level, got "
                       f"{len(self.values)} values and {len(self.words)} readings")

  @property
  def num_levels(self) -> int:
    return len(self.values)


@dataclasses.dataclass(frozen=True)
class Space:
  """Z = (Z_1 … Z_K), Z_k ∈ {0 … L_k − 1}.  Hashable (a static argument of jitted code)."""
  fields: tuple[Field, ...]

  def __post_init__(self):
    if not self.fields:
      raise ValueError("a space needs at least one field")
    names = [f.name for f in self.fields]
    if len(set(names)) != len(names):
      raise ValueError(f"field names must be distinct, got {names}")

  @property
  def num_fields(self) -> int:
    return len(self.fields)

  @property
  def levels(self) -> tuple[int, ...]:
    return tuple(f.num_levels for f in self.fields)

  @property
  def max_levels(self) -> int:
    return max(self.levels)

  @property
  def size(self) -> int:
    """|Z| (an exact Python int: 2^512 does not fit an int64)."""
    return math.prod(self.levels)

  @property
  def log10_size(self) -> float:
    return float(np.sum(np.log10(self.levels)))

  def value_table(self) -> np.ndarray:
    """(K, L_max) numeric values; levels a field lacks hold 0 (they are never decoded)."""
    t = np.zeros((self.num_fields, self.max_levels))
    for k, f in enumerate(self.fields):
      t[k, :f.num_levels] = f.values
    return t

  def level_mask(self) -> np.ndarray:
    """(K, L_max) bool: which levels exist."""
    return np.arange(self.max_levels)[None, :] < np.asarray(self.levels)[:, None]

  def enumerate(self) -> np.ndarray:
    """Every hypothesis, (|Z|, K) int32, in mixed-radix order (the last field fastest)."""
    grids = np.meshgrid(*[np.arange(n) for n in self.levels], indexing="ij")
    return np.stack([g.reshape(-1) for g in grids], axis=1).astype(np.int32)

  def index(self, z_levels) -> np.ndarray:
    """Position of hypotheses (..., K) in `enumerate()`'s order (host-side)."""
    z_levels = np.asarray(z_levels)
    strides = np.cumprod((1,) + self.levels[:0:-1])[::-1]
    return (z_levels * strides).sum(-1)

  def values(self, z_levels: jax.Array) -> jax.Array:
    """Numeric values of hypotheses   (..., K) int -> (..., K) float."""
    table = jnp.asarray(self.value_table())
    return table[jnp.arange(self.num_fields), z_levels]

  def check(self, z_levels) -> None:
    """ValueError unless z_levels is (..., K) with every level in range (host-side; a traced
    array is left to its caller's checks)."""
    if isinstance(z_levels, jax.core.Tracer):
      return
    z = np.asarray(z_levels)
    if z.ndim < 1 or z.shape[-1] != self.num_fields:
      raise ValueError(f"hypotheses must have shape (..., {self.num_fields}), got {z.shape}")
    if np.any(z < 0) or np.any(z >= np.asarray(self.levels)):
      raise ValueError(f"levels out of range {self.levels}: {z}")

  def _more(self, lines: list[str], limit: int | None) -> str:
    if limit is not None and self.num_fields > limit:
      lines = lines[:limit] + [f"  … and {self.num_fields - limit} more fields"]
    return "\n".join(lines)

  def describe(self, z_levels: Sequence[int], probs: np.ndarray | None = None,
               limit: int | None = None) -> str:
    """One line per field, e.g. 'pointy ears: strong evidence for husky (+2)'; with `probs`
    (K, L_max) the probability of that level is appended; the first `limit` fields only."""
    self.check(z_levels)
    lines = []
    for k, (f, l) in enumerate(zip(self.fields, np.asarray(z_levels).tolist())):
      extra = f"  [p = {probs[k, l]:.2f}]" if probs is not None else ""
      lines.append(f"  {f.name}: {f.words[l]}{extra}")
    return self._more(lines, limit)

  def describe_marginals(self, probs: np.ndarray, min_prob: float = 0.1,
                         limit: int | None = None) -> str:
    """Per field, every level with probability ≥ min_prob (a distribution over Z, read by field);
    the first `limit` fields only."""
    probs = np.asarray(probs)
    lines = []
    for k, f in enumerate(self.fields):
      order = np.argsort(-probs[k, :f.num_levels])
      parts = [f"{f.words[l]} ({probs[k, l]:.2f})" for l in order if probs[k, l] >= min_prob]
      lines.append(f"  {f.name}: " + ("; ".join(parts) or f"{f.words[order[0]]}"))
    return self._more(lines, limit)
