"""Region-product estimates from 2-way marginals: Bethe on the complete graph, and trees.

For a tree T the max-ent distribution with T's pair marginals is p(x) = Π_{ij∈T} p_ij / Π_i
p_i^{deg_i − 1}, exact on tree-structured joints.  The same formula on the complete graph is
the Bethe approximation: at a belief-propagation fixed point whose beliefs equal the given
marginals, the model's log P(x) is Σ_{i<j} log b_ij(x) − (n − 2) Σ_i log b_i(x) up to log Z_Bethe
− log Z, so it is the Bethe estimate of the max-ent (pairwise-model) log P(all true).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy

from lprior.conjunction.marginals import KWay
from lprior.conjunction.tree import max_spanning_tree


@jax.jit
def log_p_bethe(kw: KWay) -> jax.Array:
  """Σ_{i<j} log p_ij − (n − 2) Σ_i log p_i (exact for n ≤ 2 and for independent statements)."""
  n = kw.n
  logp2 = jnp.log(kw.p2)
  pairs = 0.5 * (jnp.sum(logp2) - jnp.trace(logp2))
  return pairs - (n - 2) * jnp.sum(jnp.log(kw.p1))


@jax.jit
def log_p_tree(kw: KWay, parent: jax.Array) -> jax.Array:
  """log p_root + Σ_{i≠root} log P(A_i | A_parent(i)): the max-ent completion of the tree's
  pair marginals (parent (n,) int, −1 at the single root)."""
  p1, p2 = kw.p1, kw.p2
  n = kw.n
  par = jnp.maximum(parent, 0)
  cond = jnp.log(p2[jnp.arange(n), par]) - jnp.log(p1[par])
  return jnp.sum(jnp.where(parent < 0, jnp.log(p1), cond))


@jax.jit
def pair_mutual_information(kw: KWay) -> jax.Array:
  """(n, n) I(A_i; A_j) in nats from the 2×2 tables (diagonal: the entropies H(A_i))."""
  p1, p11 = kw.p1, kw.p2
  p10 = p1[:, None] - p11
  p01 = p1[None, :] - p11
  p00 = 1 - p1[:, None] - p1[None, :] + p11
  q1, q0 = p1, 1 - p1
  mi = jnp.zeros_like(p11)
  for cell, a, b in ((p11, q1, q1), (p10, q1, q0), (p01, q0, q1), (p00, q0, q0)):
    cell = jnp.clip(cell, 0, 1)
    mi = mi + xlogy(cell, cell) - xlogy(cell, a[:, None] * b[None, :])
  return mi


def chow_liu_parent(kw: KWay) -> jax.Array:
  """(n,) parents of the maximum mutual-information spanning tree (Chow–Liu), root 0."""
  return max_spanning_tree(pair_mutual_information(kw))[0]


@jax.jit
def log_p_chow_liu(kw: KWay) -> jax.Array:
  """Max-ent completion of the pair marginals on the Chow–Liu tree (the KL-best tree model)."""
  return log_p_tree(kw, chow_liu_parent(kw))
