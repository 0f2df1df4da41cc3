"""The partitioned form's split of one parameter tree into disjoint parts θ₁ and θ₂ (DESIGN §1).

A mask is a pytree of Python bools with the structure of the parameters (True: the leaf is in
θ₁).  `split` returns two trees of the parameters' structure holding `None` where a leaf belongs
to the other part (None is an empty subtree to jax, so jax.tree.map, grad and the Gaussian priors
see only the part's own leaves); `merge` puts them back together.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

import jax
import numpy as np

from lprior.pytree import PyTree

Mask = Any  # a pytree of bools with the structure of the parameters
Predicate = Callable[[str, Any], bool]

_is_none = lambda x: x is None


def mask_from_predicate(params: PyTree, pred: Predicate) -> Mask:
  """The mask: True where pred(path, leaf), path = jax.tree_util.keystr of the leaf's key path."""
  return jax.tree_util.tree_map_with_path(
      lambda path, x: bool(pred(jax.tree_util.keystr(path), x)), params)


def check_mask(params: PyTree, mask: Mask) -> None:
  """ValueError unless `mask` matches `params`, has bool leaves and selects a proper part."""
  ts, tm = jax.tree.structure(params), jax.tree.structure(mask)
  if ts != tm:
    raise ValueError(f"mask does not match the tree structure of params:\n  {ts}\nvs\n  {tm}")
  leaves = jax.tree_util.tree_flatten_with_path(mask)[0]
  for path, m in leaves:
    if isinstance(m, jax.core.Tracer) or not (
        isinstance(m, (bool, np.bool_)) or (np.ndim(m) == 0 and np.asarray(m).dtype == bool)):
      raise ValueError(f"mask leaf {jax.tree_util.keystr(path)} must be a concrete bool, "
                       f"got {type(m).__name__}")
  n_true = sum(bool(m) for _, m in leaves)
  if n_true == 0:
    raise ValueError("mask selects nothing: theta1 would be empty")
  if n_true == len(leaves):
    raise ValueError("mask selects everything: theta2 would be empty")


def split(params: PyTree, mask: Mask) -> tuple[PyTree, PyTree]:
  """(θ₁, θ₂): the leaves where mask is True / False, with None in the other part's leaves."""
  check_mask(params, mask)
  theta1 = jax.tree.map(lambda m, x: x if bool(m) else None, mask, params)
  theta2 = jax.tree.map(lambda m, x: None if bool(m) else x, mask, params)
  return theta1, theta2


def merge(theta1: PyTree, theta2: PyTree) -> PyTree:
  """The parameter tree with θ₁'s leaves where θ₁ is not None and θ₂'s elsewhere."""
  t1 = jax.tree.structure(theta1, is_leaf=_is_none)
  t2 = jax.tree.structure(theta2, is_leaf=_is_none)
  if t1 != t2:
    raise ValueError(
        f"merge: theta1 and theta2 do not share one tree structure:\n  {t1}\nvs\n  {t2}")
  pairs = zip(jax.tree_util.tree_flatten_with_path(theta1, is_leaf=_is_none)[0],
              jax.tree.leaves(theta2, is_leaf=_is_none))
  for (path, a), b in pairs:
    if (a is None) == (b is None):
      state = "both None" if a is None else "set in both"
      raise ValueError(f"merge: leaf {jax.tree_util.keystr(path)} is {state}; "
                       "theta1 and theta2 must be complementary halves from split")
  return jax.tree.map(lambda a, b: b if a is None else a, theta1, theta2, is_leaf=_is_none)


def default_mask(params: PyTree, *, trunk_share: float = 0.0,
                 head_keys: tuple[str, ...] = ("intended", "instrumental"),
                 trunk_key: str = "trunk") -> Mask:
  """θ₁ = every leaf under a head plus the first round(trunk_share · n) of the n trunk sub-layers.

  A leaf is under a head when a key on its path contains one of `head_keys`.  The trunk is the
  node keyed exactly `trunk_key`; its direct children are ordered by key, numerically by a
  trailing integer (layers_2 before layers_10).  Rounding is half-up (2.5 -> 3).
  """
  if not 0.0 <= trunk_share <= 1.0:
    raise ValueError(f"trunk_share must lie in [0, 1], got {trunk_share}")
  paths = [[_entry_name(e) for e in p] for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
  in_head = [any(h in name for name in p for h in head_keys) for p in paths]
  if not any(in_head):
    raise ValueError(f"default_mask: no parameter path contains any of the head keys {head_keys}")

  # trunk children, grouped by the trunk node's own path: {trunk path: {child names}}
  children: dict[tuple[str, ...], set[str]] = {}
  for p, h in zip(paths, in_head):
    if not h and trunk_key in p:
      i = p.index(trunk_key)
      if i + 1 < len(p):
        children.setdefault(tuple(p[:i + 1]), set()).add(p[i + 1])
  if trunk_share > 0 and not children:
    raise ValueError(f"default_mask: trunk_share={trunk_share} but no node is keyed {trunk_key!r}")
  chosen = set()
  for node, names in children.items():
    k = math.floor(trunk_share * len(names) + 0.5)
    chosen |= {node + (c,) for c in sorted(names, key=_layer_order)[:k]}

  def in_theta1(p: list[str], h: bool) -> bool:
    return h or (trunk_key in p and tuple(p[:p.index(trunk_key) + 2]) in chosen)

  flags = [in_theta1(p, h) for p, h in zip(paths, in_head)]
  mask = jax.tree.unflatten(jax.tree.structure(params), flags)
  check_mask(params, mask)
  return mask


def _entry_name(entry) -> str:
  """The key of one path entry as a string (dict key, attribute name or sequence index)."""
  for attr in ("key", "name", "idx"):
    if hasattr(entry, attr):
      return str(getattr(entry, attr))
  return str(entry)


def _layer_order(name: str) -> tuple[str, int]:
  """Sort key: (prefix, trailing integer) so that layers_2 < layers_10; -1 without digits."""
  m = re.fullmatch(r"(.*?)(\d+)", name)
  return (m.group(1), int(m.group(2))) if m else (name, -1)
