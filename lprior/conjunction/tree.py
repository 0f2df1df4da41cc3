"""Maximum-weight spanning tree of a complete graph (Prim's algorithm), jit- and vmap-able.

scipy.sparse.csgraph.minimum_spanning_tree does this on the host; the estimators and bounds
that need a tree (Chow–Liu, Hunter) run under jax.vmap over batches of marginals, hence this.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lprior.conjunction._checks import check_rank


@jax.jit
def max_spanning_tree(w: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Tree maximising Σ_edges w_ij over the complete graph with symmetric weights w (n, n).

  Returns (parent (n,) int, with parent[0] = −1 at the root; total weight Σ_{i≠0} w[i, parent[i]]).
  """
  check_rank(w, 2, "w")
  n = w.shape[0]
  neg = jnp.asarray(-jnp.inf, w.dtype)

  def add_vertex(_, state):
    in_tree, best, best_from, parent = state
    j = jnp.argmax(jnp.where(in_tree, neg, best)).astype(jnp.int32)
    parent = parent.at[j].set(best_from[j])
    better = (w[j] > best) & ~in_tree
    return (in_tree.at[j].set(True), jnp.where(better, w[j], best),
            jnp.where(better, j, best_from), parent)

  init = (jnp.arange(n) == 0, w[0], jnp.zeros((n,), jnp.int32), jnp.full((n,), -1, jnp.int32))
  _, _, _, parent = jax.lax.fori_loop(0, n - 1, add_vertex, init)
  total = jnp.sum(jnp.where(parent >= 0, w[jnp.arange(n), jnp.maximum(parent, 0)], 0))
  return parent, total
