"""The diagonal Gaussian N(θ; μ, diag(σ²)) over a parameter pytree.

σ is a scalar (the isotropic N(μ, σ²I)) or a pytree of scales with θ's structure, each leaf a
scalar or an array broadcastable to its θ leaf (per-layer scales: DESIGN §1 "Scale of the
priors").
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from lprior.pytree import PyTree, tree_random_normal, tree_size, tree_sq_norm, tree_sub


def is_scalar(sigma) -> bool:
  """True when σ is one number (the isotropic case), not a pytree of scales."""
  return isinstance(sigma, (int, float, np.number)) or (
      hasattr(sigma, "shape") and hasattr(sigma, "dtype") and np.ndim(sigma) == 0)


def broadcast_scale(sigma, like: PyTree) -> PyTree:
  """σ as a pytree with the structure of `like` (a scalar is shared by every leaf); each leaf
  keeps its own shape (a scalar or one broadcastable to its θ leaf)."""
  if is_scalar(sigma):
    return jax.tree.map(lambda _: jnp.asarray(sigma), like)
  return sigma


def check_scale(sigma, like: PyTree, name: str = "sigma") -> None:
  """ValueError unless σ is a scalar or a pytree matching `like` leaf by leaf (broadcastable
  shapes), and (where concrete) finite and > 0 everywhere."""
  if not is_scalar(sigma):
    ts, tl = jax.tree.structure(sigma), jax.tree.structure(like)
    if ts != tl:
      raise ValueError(f"{name}: a pytree of scales must have the parameters' structure:\n  "
                       f"{ts}\nvs\n  {tl}")
    for (path, s), x in zip(jax.tree_util.tree_flatten_with_path(sigma)[0], jax.tree.leaves(like)):
      try:
        ok = np.broadcast_shapes(np.shape(s), np.shape(x)) == tuple(np.shape(x))
      except ValueError:
        ok = False
      if not ok:
        raise ValueError(f"{name}{jax.tree_util.keystr(path)}: shape {np.shape(s)} does not "
                         f"broadcast to its parameter's shape {np.shape(x)}")
  for path, s in jax.tree_util.tree_flatten_with_path(sigma)[0]:
    if isinstance(s, jax.core.Tracer):
      continue
    v = np.asarray(s, np.float64)
    if not (np.all(np.isfinite(v)) and np.all(v > 0)):
      raise ValueError(f"{name}{jax.tree_util.keystr(path)} must be finite and > 0; got "
                       f"min {v.min() if v.size else v}")


def _sum_log_scale(sigma, like: PyTree) -> jax.Array:
  """Σ over every entry of θ of log σ (σ broadcast to θ)."""
  if is_scalar(sigma):
    return tree_size(like) * jnp.log(jnp.asarray(sigma))
  return sum(jnp.sum(jnp.broadcast_to(jnp.log(s), jnp.shape(x)))
             for s, x in zip(jax.tree.leaves(sigma), jax.tree.leaves(like)))


def log_normal(theta: PyTree, mean: PyTree, sigma) -> jax.Array:
  """log N(θ; μ, diag σ²) = −½ Σ ((θ−μ)/σ)² − Σ log σ − (d/2) log 2π, d = entries of θ."""
  d = tree_size(theta)
  if is_scalar(sigma):
    sq = tree_sq_norm(tree_sub(theta, mean)) / jnp.asarray(sigma) ** 2
  else:
    sq = tree_sq_norm(jax.tree.map(lambda t, m, s: (t - m) / s, theta, mean, sigma))
  return -0.5 * sq - _sum_log_scale(sigma, theta) - 0.5 * d * math.log(2 * math.pi)


def score(theta: PyTree, mean: PyTree, sigma) -> PyTree:
  """∇_μ log N(θ; μ, σ²) = (θ − μ)/σ² (and minus the gradient with respect to θ)."""
  s = broadcast_scale(sigma, mean)
  return jax.tree.map(lambda t, m, s: (t - m) / s**2, theta, mean, s)


def sample(key: jax.Array, mean: PyTree, sigma) -> PyTree:
  """θ ~ N(μ, diag σ²)."""
  s = broadcast_scale(sigma, mean)
  return jax.tree.map(lambda m, s, z: m + s * z, mean, s, tree_random_normal(key, mean))
