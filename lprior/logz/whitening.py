"""Per-coordinate base scales by a change of variables: u = θ/σ.

log ∫ N(θ; μ, diag σ²) e^{−E(θ)} dθ = log ∫ N(u; μ/σ, I) e^{−E(σu)} du, so every estimator runs
unchanged in u with a scalar base scale of 1; a scalar σ needs no change of variables (the
engines take it as it is).  Gradients map back as ∇_μ = ∇_{μ/σ} / σ, particles as θ = σu.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from lprior import gaussian
from lprior.pytree import PyTree


class Whitening(NamedTuple):
  """`scale`: σ broadcast over θ's leaves (None for a scalar σ: the identity); `sigma`: the
  scalar base scale the engines see (σ itself, or 1 in whitened coordinates)."""
  scale: PyTree | None
  sigma: jax.Array

  def down(self, theta: PyTree) -> PyTree:
    """θ ↦ u = θ/σ (one point; vmap for particles)."""
    return theta if self.scale is None else jax.tree.map(jnp.divide, theta, self.scale)

  def up(self, u: PyTree) -> PyTree:
    """u ↦ θ = σu (gradients map with `grad_up`)."""
    return u if self.scale is None else jax.tree.map(jnp.multiply, u, self.scale)

  def grad_up(self, g_u: PyTree) -> PyTree:
    """∇_u f ↦ ∇_θ f = ∇_u f / σ (the chain rule through θ = σu)."""
    return self.down(g_u)

  def grad_down(self, g_theta: PyTree) -> PyTree:
    """∇_θ f ↦ ∇_u f = σ ∇_θ f."""
    return self.up(g_theta)

  def energy(self, energy_fn: Callable) -> Callable:
    """u ↦ E(σu)."""
    return energy_fn if self.scale is None else (lambda u: energy_fn(self.up(u)))


def make(sigma, like: PyTree) -> Whitening:
  """The change of variables for base scale σ (a scalar or a pytree of scales like `like`)."""
  if gaussian.is_scalar(sigma):
    return Whitening(None, jnp.asarray(sigma, jnp.result_type(*jax.tree.leaves(like))))
  dtype = jnp.result_type(*jax.tree.leaves(like))
  scale = jax.tree.map(lambda s, x: jnp.broadcast_to(jnp.asarray(s, dtype), jnp.shape(x)),
                       sigma, like)
  return Whitening(scale, jnp.ones((), dtype))


class Flat(NamedTuple):
  """The problem as a flat vector x = ravel(θ/σ): base N(mu, w.sigma² I), energy x ↦ E(θ)."""
  w: Whitening
  mu: jax.Array  # (d,)
  unravel: Callable  # x ↦ u (a pytree like θ/σ; θ = w.up(u))
  energy: Callable  # x ↦ E(θ)


def flat(sigma, mean: PyTree, energy_fn: Callable) -> Flat:
  """`make` followed by flattening: for the estimators that work on (d,) vectors."""
  w = make(sigma, mean)
  mu, unravel = ravel_pytree(w.down(mean))
  energy_w = w.energy(energy_fn)
  return Flat(w, mu, unravel, lambda x: energy_w(unravel(x)))
