"""k-way marginals P(A_{i₁} ∧ … ∧ A_{i_j}), j ≤ k, of n binary statements, as dense tensors.

`KWay.tensors[j − 1]` has shape (n,)*j and entry [i₁, …, i_j] = P(all of A_{i₁}, …, A_{i_j}
true).  Repeated indices name the same event, so the diagonal of the j-way tensor holds the
lower-order marginals: P2[i, i] = p1[i].  Dense tensors keep every estimator a few array ops.
"""

from __future__ import annotations

import functools
import itertools
import math

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from lprior.conjunction import joint as joint_lib
from lprior.conjunction._checks import PROB_TOL, check_probabilities, check_rank, check_shape
from lprior.posterior._checks import is_concrete


@flax.struct.dataclass
class KWay:
  """All j-way marginals for j = 1 … order; tensors[j − 1] has shape (n,)*j."""
  tensors: tuple[jax.Array, ...]

  @property
  def order(self) -> int:
    return len(self.tensors)

  @property
  def n(self) -> int:
    return self.tensors[0].shape[-1]

  @property
  def p1(self) -> jax.Array:
    """(n,) P(A_i)."""
    return self.tensors[0]

  @property
  def p2(self) -> jax.Array:
    """(n, n) P(A_i ∧ A_j), diagonal p1."""
    if self.order < 2:
      raise ValueError("these marginals have order 1; 2-way probabilities are not known")
    return self.tensors[1]

  def truncate(self, order: int) -> "KWay":
    """The same marginals up to `order` only (what a judge who sees fewer statements gets)."""
    if not 1 <= order <= self.order:
      raise ValueError(f"order must be in [1, {self.order}], got {order}")
    return KWay(self.tensors[:order])


def _subset_masks(n: int, j: int) -> np.ndarray:
  """(n,)*j int array: bitmask of the set {i₁, …, i_j} for every index tuple (repeats allowed)."""
  idx = np.indices((n,) * j)
  return np.bitwise_or.reduce(np.left_shift(1, idx), axis=0)


def distinct_subsets(n: int, order: int) -> list[tuple[int, ...]]:
  """Every subset of {0, …, n − 1} of size 1 … order, as sorted tuples (sizes ascending)."""
  return [s for j in range(1, order + 1) for s in itertools.combinations(range(n), j)]


def subset_mask(s: tuple[int, ...]) -> int:
  return sum(1 << i for i in s)


def from_joint(p: jax.Array, order: int) -> KWay:
  """The k-way marginals (k = order) of a joint p (2ⁿ,) over n statements."""
  n = joint_lib.check_joint(p)
  if not 1 <= order <= n:
    raise ValueError(f"order must be in [1, n = {n}], got {order}")
  return _gather_kway(joint_lib.superset_sums(p), n, order)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _gather_kway(g: jax.Array, n: int, order: int) -> KWay:
  return KWay(tuple(g[_subset_masks(n, j)] for j in range(1, order + 1)))


def from_pairwise(p1: jax.Array, p2: jax.Array) -> KWay:
  """KWay of order 2 from P(A_i) (n,) and P(A_i ∧ A_j) (n, n) (the diagonal is set to p1)."""
  check_rank(p1, 1, "p1")
  check_shape(p2, (p1.shape[0], p1.shape[0]), "p2")
  n = p1.shape[0]
  kw = KWay((p1, jnp.where(jnp.eye(n, dtype=bool), p1[:, None], p2)))
  check_kway(kw)
  return kw


def from_samples(samples: jax.Array, order: int) -> KWay:
  """Empirical k-way marginals (k = order) from S joint draws of the n statements (S, n) bool:
  P̂(A_{i₁} ∧ … ∧ A_{i_j}) = mean over draws of Π the indicators.  Each entry has standard
  error √(P̂(1 − P̂)/S); the result is a consistent set (the marginals of the empirical joint)."""
  check_rank(samples, 2, "samples")
  s_count, n = samples.shape
  if s_count == 0:
    raise ValueError("samples: no draws (shape (0, n))")
  if not 1 <= order <= n:
    raise ValueError(f"order must be in [1, n = {n}], got {order}")
  return _sample_kway(jnp.asarray(samples, bool), order)


@functools.partial(jax.jit, static_argnums=1)
def _sample_kway(samples: jax.Array, order: int) -> KWay:
  x = samples.astype(float)  # (S, n), the default float dtype
  tensors, prod = [], x  # prod: (S, n, …, n) with j axes of statements
  for j in range(1, order + 1):
    if j > 1:
      prod = prod[..., None] * x.reshape((x.shape[0],) + (1,) * (j - 1) + (x.shape[1],))
    tensors.append(jnp.mean(prod, axis=0))
  return KWay(tuple(tensors))


def value(kw: KWay, s: tuple[int, ...]) -> jax.Array:
  """P(all statements in the index tuple s true), 1 ≤ |s| ≤ order."""
  return kw.tensors[len(s) - 1][tuple(s)]


@jax.jit
def distinct_values(kw: KWay) -> jax.Array:
  """(m,) the marginals of every distinct subset of size ≤ order, in `distinct_subsets` order."""
  return jnp.concatenate([
      kw.tensors[j - 1][tuple(np.array(list(itertools.combinations(range(kw.n), j))).T)]
      for j in range(1, kw.order + 1)])


def check_kway(kw: KWay, tol: float = PROB_TOL) -> None:
  """ValueError on wrong shapes, NaNs, values outside [0, 1], asymmetric tensors, diagonals that
  disagree with lower orders, or j-way marginals outside their Fréchet bounds
  max(0, P(S∖i) + P(S∖j) − P(S∖{i,j})) ≤ P(S) ≤ min_i P(S∖i) (only necessary for consistency;
  `lp.is_consistent` decides realisability exactly for small n)."""
  n = kw.n
  for j, t in enumerate(kw.tensors, start=1):
    check_shape(t, (n,) * j, f"{j}-way marginals")
    check_probabilities(t, f"{j}-way marginals", tol)
  if not all(is_concrete(t) for t in kw.tensors):
    return
  ts = [np.asarray(t, np.float64) for t in kw.tensors]
  for j in range(2, kw.order + 1):
    t, lower = ts[j - 1], ts[j - 2]
    for perm in itertools.permutations(range(j)):
      if np.abs(t - t.transpose(perm)).max() > tol:
        raise ValueError(f"{j}-way marginals are not symmetric in their indices")
    # Repeating the last index gives the (j−1)-way marginal: P(S ∪ {i}) with i ∈ S is P(S).
    letters = "abcdefgh"[:j - 1]
    diag = np.einsum(f"{letters}{letters[-1]}->{letters}", t)
    if np.abs(diag - lower).max() > tol:
      raise ValueError(f"{j}-way marginals with a repeated index differ from the "
                       f"{j - 1}-way marginals")
    # P(S ∪ {a, b}) ≤ P(S ∪ {a}), and ≥ P(S ∪ {a}) + P(S ∪ {b}) − P(S).
    if (t > lower[..., None] + tol).any():
      raise ValueError(f"inconsistent marginals: a {j}-way probability exceeds a "
                       f"{j - 1}-way probability of one of its subsets")
    sub = 1.0 if j == 2 else ts[j - 3][..., None, None]
    low = lower[..., :, None] + lower[..., None, :] - sub
    if (t < low - tol).any():
      raise ValueError(f"inconsistent marginals: a {j}-way probability is below its Fréchet "
                       f"lower bound P(S∖i) + P(S∖j) − P(S∖{{i,j}})")


def complement_pairs(kw: KWay) -> jax.Array:
  """(n, n) P(¬A_i ∧ ¬A_j) = 1 − p_i − p_j + p_ij (diagonal 1 − p_i)."""
  p1 = kw.p1
  return 1 - p1[:, None] - p1[None, :] + kw.p2


def _strictly_increasing(n: int, j: int) -> np.ndarray:
  """(n,)*j bool: True where i₁ < i₂ < … < i_j."""
  idx = np.indices((n,) * j)
  return np.all(idx[:-1] < idx[1:], axis=0) if j > 1 else np.ones((n,), bool)


def binomial_moments(kw: KWay) -> jax.Array:
  """(order + 1,) S_j = Σ_{|S| = j} P(A_S), S_0 = 1 (sums over distinct subsets)."""
  return jnp.stack([jnp.ones((), kw.p1.dtype)] + [
      jnp.sum(jnp.where(_strictly_increasing(kw.n, j), t, 0))
      for j, t in enumerate(kw.tensors, start=1)])


def complement_binomial_moments(kw: KWay) -> jax.Array:
  """(order + 1,) S_j(¬A) = Σ_{|S| = j} P(∧_{i∈S} ¬A_i) = Σ_{t ≤ j} (−1)^t C(n − t, j − t) S_t(A)."""
  s = binomial_moments(kw)
  n = kw.n
  coef = np.array([[(-1) ** t * math.comb(n - t, j - t) if t <= j else 0
                    for t in range(kw.order + 1)] for j in range(kw.order + 1)], np.float64)
  return jnp.asarray(coef, s.dtype) @ s
