"""Argument checks that run on concrete values only (skipped for tracers under jit/grad/vmap)."""

from __future__ import annotations

import jax
import numpy as np

from lprior.pytree import PyTree, structure_mismatch


def is_concrete(x) -> bool:
  """True unless `x` is a tracer (inside jit, grad, vmap, ...)."""
  return not isinstance(x, jax.core.Tracer)


def check_no_nan(tree: PyTree, name: str) -> None:
  """ValueError if a concrete floating leaf of `tree` holds a NaN."""
  for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
    if not is_concrete(x):
      continue
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.inexact) and np.isnan(x).any():
      raise ValueError(f"{name}{jax.tree_util.keystr(path)} contains NaN")


def check_scalar(x, name: str) -> None:
  if np.ndim(x) != 0:
    raise ValueError(f"{name} must be a scalar, got shape {np.shape(x)}")


def check_nonnegative(x, name: str) -> None:
  """ValueError unless the scalar `x` is finite and ≥ 0 (when concrete)."""
  check_scalar(x, name)
  if is_concrete(x):
    v = float(np.asarray(x))
    if not (np.isfinite(v) and v >= 0):
      raise ValueError(f"{name} must be finite and >= 0, got {v}")


def check_same_structure(a: PyTree, b: PyTree, name_a: str, name_b: str) -> None:
  """ValueError naming both trees if their structures or leaf shapes differ."""
  why = structure_mismatch(a, b)
  if why is not None:
    raise ValueError(f"{name_b} does not match {name_a}: {why}")
