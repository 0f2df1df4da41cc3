"""Small pure helpers over parameter pytrees (plain dicts, Flax params, Equinox modules)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any


def tree_size(tree: PyTree) -> int:
  """Total number of scalar entries d of a pytree."""
  return int(sum(np.prod(np.shape(x), dtype=int) for x in jax.tree.leaves(tree)))


def tree_dot(a: PyTree, b: PyTree) -> jax.Array:
  """⟨a, b⟩ summed over every leaf."""
  return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def tree_sq_norm(a: PyTree) -> jax.Array:
  """‖a‖² summed over every leaf."""
  return tree_dot(a, a)


def tree_add(a: PyTree, b: PyTree) -> PyTree:
  return jax.tree.map(jnp.add, a, b)


def tree_sub(a: PyTree, b: PyTree) -> PyTree:
  return jax.tree.map(jnp.subtract, a, b)


def tree_scale(a: PyTree, s) -> PyTree:
  return jax.tree.map(lambda x: s * x, a)


def tree_random_normal(key: jax.Array, like: PyTree) -> PyTree:
  """A standard normal draw with the structure, shapes and dtypes of `like`."""
  leaves, treedef = jax.tree.flatten(like)
  keys = jax.random.split(key, len(leaves))
  return treedef.unflatten(
      [jax.random.normal(k, jnp.shape(x), jnp.result_type(x)) for k, x in zip(keys, leaves)])


def tree_stack(trees: list[PyTree]) -> PyTree:
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def tree_index(tree: PyTree, i) -> PyTree:
  """Entry i (or entries, for an index array) along the leading axis of every leaf."""
  return jax.tree.map(lambda x: x[i], tree)


def leading_size(tree: PyTree) -> int:
  """The common leading-axis size of every leaf (the particle count)."""
  sizes = {jnp.shape(x)[0] for x in jax.tree.leaves(tree)}
  if len(sizes) != 1:
    raise ValueError(f"leaves disagree on the leading (particle) axis: sizes {sorted(sizes)}")
  return sizes.pop()


def structure_mismatch(a: PyTree, b: PyTree, *, leading: int = 0) -> str | None:
  """Why `b` (with `leading` extra leading axes on every leaf) does not match `a`; None if it does."""
  ta, tb = jax.tree.structure(a), jax.tree.structure(b)
  if ta != tb:
    return f"tree structures differ:\n  {ta}\nvs\n  {tb}"
  for path, x, y in zip(_paths(a), jax.tree.leaves(a), jax.tree.leaves(b)):
    sx, sy = tuple(jnp.shape(x)), tuple(jnp.shape(y))[leading:]
    if sx != sy:
      return f"leaf {path}: shape {sy} (after {leading} leading axes) where {sx} was expected"
  return None


def _paths(tree: PyTree) -> list[str]:
  return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
