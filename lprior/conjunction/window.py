"""The w-neighbour estimate: each statement depends on the w statements before it, and no others.

log P(all) ≈ log P(A_1..A_{w+1}) + Σ_{i > w+1} log P(A_i | A_{i−w}, …, A_{i−1})
           = Σ_{cliques} log P(A_i..A_{i+w}) − Σ_{separators} log P(A_{i+1}..A_{i+w}),
the max-ent completion of the (w + 1)-way marginals of consecutive windows (a junction chain).
w = 0 is independence; w = n − 1 is exact.  "Each statement is conditionally independent of the
rest given w neighbours" is exactly the assumption under which this is exact.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from lprior.conjunction.marginals import KWay


def window_logprobs(kw: KWay, size: int) -> jax.Array:
  """(n − size + 1,) log P(A_i ∧ … ∧ A_{i+size−1}) for consecutive windows (needs order ≥ size)."""
  if not 1 <= size <= kw.order:
    raise ValueError(f"windows of {size} statements need marginals of order >= {size}; "
                     f"these have order {kw.order}")
  starts = np.arange(kw.n - size + 1)
  idx = tuple((starts + r) for r in range(size))
  return jnp.log(kw.tensors[size - 1][idx])


def chain_log_p(log_cliques: jax.Array, log_separators: jax.Array) -> jax.Array:
  """Σ log P(clique) − Σ log P(separator): cliques (c,), separators (c − 1,)."""
  if log_separators.shape[0] != log_cliques.shape[0] - 1:
    raise ValueError(f"a chain of {log_cliques.shape[0]} cliques has "
                     f"{log_cliques.shape[0] - 1} separators, got {log_separators.shape[0]}")
  return jnp.sum(log_cliques) - jnp.sum(log_separators)


def log_p_window(kw: KWay, w: int) -> jax.Array:
  """The w-neighbour estimate from exact window marginals (0 ≤ w ≤ min(order, n) − 1)."""
  if not 0 <= w < kw.n:
    raise ValueError(f"w must be in [0, n − 1 = {kw.n - 1}], got {w}")
  if w + 1 > kw.order:
    raise ValueError(f"windows of {w + 1} statements need marginals of order >= {w + 1}; "
                     f"these have order {kw.order}")
  return _log_p_window(kw, w)


@functools.partial(jax.jit, static_argnums=1)
def _log_p_window(kw: KWay, w: int) -> jax.Array:
  cliques = window_logprobs(kw, w + 1)
  seps = window_logprobs(kw, w)[1:-1] if w > 0 else jnp.zeros((kw.n - 1,), kw.p1.dtype)
  return chain_log_p(cliques, seps)
