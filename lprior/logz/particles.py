"""Reductions over the particle axis, identical on one device and on a sharded mesh.

Particles are a leading axis on every leaf.  Inside `jax.shard_map` each device holds a
contiguous block of `n_local` of the `N` global particles; `axis` is the mesh axis name (None
when not sharded).  Per-particle scalars (log-weights, energies, acceptance) are gathered into
the full (N,) vector on every device by a psum of zero-padded blocks: adding zeros is exact, so
every device then reduces the same vector in the same order, and the result does not depend on
the device count.  Pytree-valued means use a plain psum (equal up to float rounding).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from lprior.pytree import PyTree


def num_shards(axis: str | None) -> int:
  return 1 if axis is None else jax.lax.axis_size(axis)


def slot_ids(n_local: int, axis: str | None) -> jax.Array:
  """Global indices (n_local,) of this device's particles."""
  offset = 0 if axis is None else jax.lax.axis_index(axis) * n_local
  return offset + jnp.arange(n_local)


def psum(x, axis: str | None):
  return x if axis is None else jax.lax.psum(x, axis)


def gather(x: jax.Array, axis: str | None) -> jax.Array:
  """(n_local, ...) → (N, ...) on every device, bit-exact, typed as replicated."""
  if axis is None:
    return x
  n_local = x.shape[0]
  full = jnp.zeros((n_local * num_shards(axis),) + x.shape[1:], x.dtype)
  full = jax.lax.dynamic_update_slice_in_dim(full, x, jax.lax.axis_index(axis) * n_local, 0)
  return jax.lax.psum(full, axis)


def local(x_global: jax.Array, n_local: int, axis: str | None) -> jax.Array:
  """This device's block of a global (N, ...) array."""
  if axis is None:
    return x_global
  return jax.lax.dynamic_slice_in_dim(x_global, jax.lax.axis_index(axis) * n_local, n_local, 0)


def slot_keys(key: jax.Array, n_local: int, axis: str | None) -> jax.Array:
  """One key per particle slot, a function of (key, global slot index) only."""
  return jax.vmap(lambda i: jax.random.fold_in(key, i))(slot_ids(n_local, axis))


def take(tree: PyTree, global_idx: jax.Array, axis: str | None) -> PyTree:
  """Particles at global indices `global_idx` (this device's new slots), from any device."""
  if axis is None:
    return jax.tree.map(lambda x: x[global_idx], tree)
  return jax.tree.map(lambda x: jax.lax.all_gather(x, axis, tiled=True)[global_idx], tree)


def normalize(log_w: jax.Array) -> jax.Array:
  """Global log-weights (N,) normalised to log-sum 0."""
  return log_w - jax.scipy.special.logsumexp(log_w)


def ess(log_w: jax.Array) -> jax.Array:
  """Effective sample size 1/Σ W² of normalised global log-weights."""
  return jnp.exp(-jax.scipy.special.logsumexp(2.0 * normalize(log_w)))


def weighted_mean(tree: PyTree, w_local: jax.Array, axis: str | None) -> PyTree:
  """Σ_i W_i x_i over all devices; `w_local` are this device's normalised weights (n_local,)."""
  return jax.tree.map(lambda x: psum(jnp.tensordot(w_local.astype(x.dtype), x, 1), axis), tree)


def weighted_moments(flat: jax.Array, w_local: jax.Array, axis: str | None):
  """Per-coordinate weighted mean and variance of flat particles (n_local, d)."""
  w = w_local.astype(flat.dtype)
  m = psum(w @ flat, axis)
  v = psum(w @ (flat - m) ** 2, axis)
  return m, v


def ravel_particles(tree: PyTree) -> jax.Array:
  """(n, ...) pytree → (n, d) matrix, in `ravel_pytree` order."""
  return jax.vmap(lambda t: ravel_pytree(t)[0])(tree)
