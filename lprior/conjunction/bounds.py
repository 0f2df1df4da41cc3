"""Bounds on P(all true) from k-way marginals, via P(∧A_i) = 1 − P(∪B_i) with B_i = ¬A_i.

All closed forms; jit- and vmap-able.  Lower bounds on P(all) are upper bounds on the union:
Boole/Fréchet (S₁), Bonferroni (odd truncations of inclusion–exclusion), Kounias
(S₁ − max_i Σ_j P(B_iB_j)) and Hunter (S₁ − the heaviest spanning tree of P(B_iB_j)).  Upper
bounds on P(all): Fréchet (min of the highest-order marginals), Bonferroni (even truncations),
Dawson–Sankoff (optimal from S₁, S₂) and de Caen (Σ_i P(B_i)² / Σ_j P(B_iB_j)).  The sharp
bounds from the marginals are the linear programme in `lp.py`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lprior.conjunction import marginals as marg
from lprior.conjunction.tree import max_spanning_tree

Bound = tuple[jax.Array, jax.Array]  # (lower, upper) on P(all true)


def _clip(lo, hi) -> Bound:
  return jnp.clip(lo, 0, 1), jnp.clip(hi, 0, 1)


def frechet(kw: marg.KWay) -> Bound:
  """max(0, Σ_i p_i − (n − 1)) ≤ P(all) ≤ min over the highest-order marginals."""
  return _clip(1 - jnp.sum(1 - kw.p1), jnp.min(kw.tensors[-1]))


def bonferroni(kw: marg.KWay) -> Bound:
  """With T_j = Σ_{t=1}^j (−1)^{t+1} S_t(B): T_even ≤ P(∪B) ≤ T_odd for every j ≤ order."""
  s = marg.complement_binomial_moments(kw)  # (order + 1,)
  signs = jnp.array([(-1.0) ** (t + 1) for t in range(1, kw.order + 1)], s.dtype)
  t = jnp.concatenate([jnp.zeros((1,), s.dtype), jnp.cumsum(signs * s[1:])])  # T_0 … T_k
  odd = jnp.arange(kw.order + 1) % 2 == 1
  return _clip(1 - jnp.min(jnp.where(odd, t, jnp.inf)), 1 - jnp.max(jnp.where(odd, -jnp.inf, t)))


def _off_diagonal(q: jax.Array) -> jax.Array:
  return jnp.where(jnp.eye(q.shape[0], dtype=bool), 0, q)


def hunter(kw: marg.KWay) -> jax.Array:
  """Lower bound 1 − S₁(B) + max_{spanning trees T} Σ_{ij∈T} P(B_i ∧ B_j)."""
  q = marg.complement_pairs(kw)
  return jnp.clip(1 - jnp.trace(q) + max_spanning_tree(_off_diagonal(q))[1], 0, 1)


def kounias(kw: marg.KWay) -> jax.Array:
  """Lower bound 1 − S₁(B) + max_i Σ_{j≠i} P(B_i ∧ B_j) (a star; Hunter's tree is at least this)."""
  q = marg.complement_pairs(kw)
  return jnp.clip(1 - jnp.trace(q) + jnp.max(jnp.sum(_off_diagonal(q), axis=1)), 0, 1)


def dawson_sankoff(kw: marg.KWay) -> jax.Array:
  """Upper bound 1 − [2S₁/(κ+1) − 2S₂/(κ(κ+1))], κ = 1 + ⌊2S₂/S₁⌋ (S_j of the complements)."""
  s = marg.complement_binomial_moments(kw.truncate(2))
  s1, s2 = s[1], s[2]
  kappa = 1 + jnp.floor(2 * s2 / jnp.where(s1 > 0, s1, 1))
  union = 2 * s1 / (kappa + 1) - 2 * s2 / (kappa * (kappa + 1))
  return jnp.clip(1 - jnp.where(s1 > 0, union, 0), 0, 1)


def de_caen(kw: marg.KWay) -> jax.Array:
  """Upper bound 1 − Σ_i P(B_i)² / Σ_j P(B_i ∧ B_j) (terms with P(B_i) = 0 are 0)."""
  q = marg.complement_pairs(kw)
  qi, row = jnp.diagonal(q), jnp.sum(q, axis=1)
  return jnp.clip(1 - jnp.sum(jnp.where(qi > 0, qi ** 2 / jnp.where(qi > 0, row, 1), 0)), 0, 1)


@jax.jit
def closed_form_bounds(kw: marg.KWay) -> dict[str, Bound]:
  """Every bound the marginals' order allows: name → (lower, upper); a one-sided bound has the
  trivial 0 or 1 on its other side."""
  zero, one = jnp.zeros((), kw.p1.dtype), jnp.ones((), kw.p1.dtype)
  out = {"frechet": frechet(kw), "bonferroni": bonferroni(kw)}
  if kw.order >= 2:
    out |= {"hunter": (hunter(kw), one), "kounias": (kounias(kw), one),
            "dawson_sankoff": (zero, dawson_sankoff(kw)), "de_caen": (zero, de_caen(kw))}
  return out


@jax.jit
def best_bounds(kw: marg.KWay) -> Bound:
  """(max of the lower bounds, min of the upper bounds) over `closed_form_bounds`."""
  b = closed_form_bounds(kw)
  return (jnp.max(jnp.stack([lo for lo, _ in b.values()])),
          jnp.min(jnp.stack([hi for _, hi in b.values()])))
