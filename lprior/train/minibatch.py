"""Minibatches of the large set: an unbiased estimate of L from b of its n examples."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lprior import posterior as post


def large_batch(key: jax.Array, data: post.Data, batch_size: int) -> post.Data:
  """`data` with the large set replaced by `batch_size` examples drawn without replacement,
  weighted n/b (times their own weights), so that E[L(batch)] = L(full set).  batch_size 0 or
  ≥ n: the full set."""
  n = data.y_large.shape[0]
  if not batch_size or batch_size >= n:
    return data
  idx = jax.random.choice(key, n, (batch_size,), replace=False)
  w = jnp.full((batch_size,), n / batch_size)
  if data.w_large is not None:
    w = w * data.w_large[idx]
  take = lambda x: jax.tree.map(lambda a: a[idx], x)
  return data._replace(x_large=take(data.x_large), y_large=data.y_large[idx], w_large=w)
