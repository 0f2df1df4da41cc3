"""Sharp bounds on P(all true) given k-way marginals: the linear programmes over joints.

min / max p[all] subject to p ≥ 0, Σ p = 1 and Σ_{x ⊇ S} p[x] = μ_S for every |S| ≤ k, over the
2ⁿ states (n ≤ 16).  For exchangeable marginals (μ_S = q_{|S|}) the optimum can be symmetrised,
so it is the same programme over the distribution of the number K of true statements:
Σ_K π_K C(K, j)/C(m, j) = q_j, objective π_m, for any m.  Solved by scipy's HiGHS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.optimize
import scipy.sparse

from lprior.conjunction import marginals as marg
from lprior.conjunction._checks import check_num_statements, check_probabilities

MAX_N = 16


def _solve(a_eq, b_eq, num_vars: int) -> tuple[tuple[float, float], tuple[np.ndarray, ...]]:
  """((min, max) of the last variable over {x ≥ 0 : A x = b}, (argmin, argmax)); ValueError if
  infeasible."""
  c = np.zeros(num_vars)
  c[-1] = 1.0
  out, xs = [], []
  for sign in (1.0, -1.0):
    r = scipy.optimize.linprog(sign * c, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    if r.status == 2:
      raise ValueError("inconsistent marginals: no joint distribution has them")
    if r.status != 0:
      raise RuntimeError(f"linprog failed: {r.message}")
    out.append(sign * r.fun)
    xs.append(np.clip(r.x, 0, None) / np.clip(r.x, 0, None).sum())
  return (float(np.clip(out[0], 0, 1)) + 0.0, float(np.clip(out[1], 0, 1)) + 0.0), tuple(xs)


def _constraint_matrix(n: int, order: int) -> scipy.sparse.csr_matrix:
  """(1 + #subsets, 2ⁿ): a row of ones, then the indicator of {x ⊇ S} for each subset S."""
  states = np.arange(1 << n)
  rows = [np.ones(1 << n, bool)] + [(states & m) == m for m in
                                    (marg.subset_mask(s) for s in marg.distinct_subsets(n, order))]
  return scipy.sparse.csr_matrix(np.stack(rows).astype(np.float64))


def lp_bounds(kw: marg.KWay, return_joints: bool = False):
  """The sharpest (lower, upper) on P(all true) implied by the marginals (n ≤ 16).

  With return_joints, also the two extremal joints (2ⁿ,): the dependence structures a dishonest
  debater would pick to make P(all) smallest or largest while showing the same marginals.
  """
  check_num_statements(kw.n, MAX_N, "lp_bounds")
  marg.check_kway(kw)
  b = np.concatenate([[1.0], np.asarray(marg.distinct_values(kw), np.float64)])
  bounds, joints = _solve(_constraint_matrix(kw.n, kw.order), b, 1 << kw.n)
  return (bounds, joints) if return_joints else bounds


def is_consistent(kw: marg.KWay) -> bool:
  """Whether some joint distribution over the n statements has exactly these marginals."""
  try:
    lp_bounds(kw)
  except ValueError:
    return False
  return True


def exchangeable_lp_bounds(m: int, q: Sequence[float]) -> tuple[float, float]:
  """Sharp bounds on P(all m true) when every j statements are all true w.p. q[j − 1]."""
  q = np.asarray(q, np.float64)
  check_probabilities(q, "q")
  if m < len(q):
    raise ValueError(f"m = {m} statements have no {len(q)}-way marginals")
  k = np.arange(m + 1)
  a_eq = np.stack([np.ones(m + 1)] + [np.array([math.comb(int(x), j) for x in k], np.float64)
                                      / math.comb(m, j) for j in range(1, len(q) + 1)])
  return _solve(a_eq, np.concatenate([[1.0], q]), m + 1)[0]

