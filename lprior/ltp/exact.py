"""The ideal: the simulated human updated exactly on D, by enumerating its finite Z space.

    log Post(Z | D) = log Prior_H(Z) + Σ_{(x,y) ∈ D} w_i log P_H(y | x, Z) − log Σ_Z′ (same)
    P(y* | x*, D)   = Σ_Z Post(Z | D) P_H(y* | x*, Z)

The upper anchor of the comparison and the ground truth of the tests.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lprior.ltp import human as hm
from lprior.ltp.human import Human


def _all(human: Human) -> jax.Array:
  return jnp.asarray(human.space.enumerate())


def log_joint(human: Human, x: jax.Array, y: jax.Array, weights: jax.Array | None = None,
              *, flat: bool = False) -> jax.Array:
  """log Prior_H(Z) + Σ_i w_i log P_H(y_i | x_i, Z) for every Z   ((n, dx), (n,), (n,)) -> (|Z|,).
  weights (default 1) mask padding (0) or scale minibatches; flat: without the prior (a flat
  prior over the human's hypotheses: the log-likelihood)."""
  return log_joint_counted(human, x, y, weights, flat=flat)[0]


def log_joint_counted(human: Human, x: jax.Array, y: jax.Array,
                      weights: jax.Array | None = None, *, flat: bool = False
                      ) -> tuple[jax.Array, hm.Queries]:
  """`log_joint` and the human queries enumeration puts: a forecast per (Z, example of weight
  ≠ 0) and, unless flat, one absolute prior per Z."""
  if jnp.ndim(x) != 2 or jnp.ndim(y) != 1 or x.shape[0] != y.shape[0]:
    raise ValueError(f"need x (n, dx) and y (n,), got {jnp.shape(x)} and {jnp.shape(y)}")
  for name, a in (("x", x), ("y", y)):
    if not isinstance(a, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(a))):
      raise ValueError(f"{name} holds NaN or infinite values")
  zs = _all(human)
  w = jnp.ones(x.shape[0], x.dtype) if weights is None else weights
  pred, q = hm.ask_forecast(human, zs[:, None, :], x[None], hm.no_queries(),
                            where=(w != 0)[None, :])                      # (|Z|, n, P)
  ll = jnp.sum(w * human.family.log_prob(pred, y[None]), axis=-1)
  if flat:
    return ll, q
  lp, q = hm.ask_prior(human, zs, q)
  return lp + ll, q


def log_posterior(human: Human, x: jax.Array, y: jax.Array, weights: jax.Array | None = None
                  ) -> jax.Array:
  """log Post(Z | D) over every Z in `space.enumerate()` order   (|Z|,), normalised."""
  lj = log_joint(human, x, y, weights)
  return lj - jax.nn.logsumexp(lj)


def log_evidence(human: Human, x: jax.Array, y: jax.Array, weights: jax.Array | None = None
                 ) -> jax.Array:
  """log P(D) = log Σ_Z Prior_H(Z) Π_i P_H(y_i | x_i, Z)."""
  return jax.nn.logsumexp(log_joint(human, x, y, weights))


def predictive_target(human: Human, log_post: jax.Array, x: jax.Array) -> jax.Array:
  """The posterior predictive at each question as a target (lprior.ltp.family)   (n, Q)."""
  zs = _all(human)
  w = jnp.exp(log_post)
  per_z = jax.vmap(lambda z: human.family.target(hm.forecast(human, z, x)[:, None, :]))(zs)
  return jnp.tensordot(w, per_z, axes=1)


def log_predictive(human: Human, log_post: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
  """log P(y_i | x_i, D) = log Σ_Z Post(Z | D) P_H(y_i | x_i, Z)   (n,)."""
  zs = _all(human)
  ll = jax.vmap(lambda z: hm.log_lik(human, z, x, y))(zs)  # (|Z|, n)
  return jax.nn.logsumexp(ll + log_post[:, None], axis=0)


def map_hypothesis(human: Human, log_post: jax.Array) -> jax.Array:
  """argmax_Z Post(Z | D)   (K,) int."""
  return _all(human)[jnp.argmax(log_post)]


def field_marginals(human: Human, log_post: jax.Array) -> jax.Array:
  """P(Z_k = l | D) per field   (K, L_max), 0 at missing levels."""
  zs = _all(human)
  p = jnp.exp(log_post)
  onehot = jax.nn.one_hot(zs, human.space.max_levels)  # (|Z|, K, L)
  return jnp.einsum("z,zkl->kl", p, onehot)


def posterior_table(human: Human, log_post) -> np.ndarray:
  """(|Z|, K + 1) host array: every hypothesis and its posterior probability (for printing)."""
  return np.concatenate([human.space.enumerate(), np.exp(np.asarray(log_post))[:, None]], 1)
