"""Lanczos tridiagonalisation of a symmetric operator given only by matrix-vector products.

Used for the top eigenpairs of a Hessian (low-rank preconditioners) and for stochastic Lanczos
quadrature of log det (the Laplace estimator at large d).  Full reorthogonalisation; on
breakdown (an invariant subspace found) the basis restarts from a fresh random vector and the
tridiagonal matrix decouples, so Ritz values stay correct.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


class Tridiagonal(NamedTuple):
  alpha: jax.Array  # (m,) diagonal
  beta: jax.Array  # (m-1,) off-diagonal
  basis: jax.Array  # (m, d) orthonormal rows q_j

  def dense(self) -> jax.Array:
    return jnp.diag(self.alpha) + jnp.diag(self.beta, 1) + jnp.diag(self.beta, -1)


def _orthonormalise(w, Q, mask):
  """w minus its projection on the rows of Q selected by mask, twice (classical Gram–Schmidt)."""
  for _ in range(2):
    w = w - ((Q @ w) * mask) @ Q
  return w


def lanczos(matvec: Callable[[jax.Array], jax.Array], v0: jax.Array, num_iters: int,
            key: jax.Array | None = None) -> Tridiagonal:
  """m = num_iters steps of Lanczos on A (symmetric, d×d) from v0 (d,): Qᵀ A Q ≈ T."""
  d = v0.shape[0]
  m = min(num_iters, d)
  key = jax.random.key(0) if key is None else key
  Q = jnp.zeros((m, d), v0.dtype).at[0].set(v0 / jnp.linalg.norm(v0))
  tiny = jnp.finfo(v0.dtype).eps ** 0.5

  def body(j, carry):
    Q, alpha, beta = carry
    q = Q[j]
    w = matvec(q)
    a = jnp.dot(q, w)
    mask = (jnp.arange(m) <= j).astype(v0.dtype)
    w = _orthonormalise(w, Q, mask)
    b = jnp.linalg.norm(w)
    scale = jnp.maximum(jnp.abs(a), 1.0)
    broke = b <= tiny * scale
    fresh = _orthonormalise(jax.random.normal(jax.random.fold_in(key, j), (d,), v0.dtype), Q, mask)
    nxt = jnp.where(broke, fresh / jnp.linalg.norm(fresh), w / jnp.where(broke, 1.0, b))
    Q = jnp.where(j + 1 < m, Q.at[jnp.minimum(j + 1, m - 1)].set(nxt), Q)
    alpha = alpha.at[j].set(a)
    beta = beta.at[jnp.minimum(j, m - 2)].set(jnp.where((j < m - 1) & ~broke, b, beta[jnp.minimum(j, m - 2)]))
    return Q, alpha, beta

  alpha = jnp.zeros((m,), v0.dtype)
  beta = jnp.zeros((max(m - 1, 0),), v0.dtype)
  if m == 1:
    return Tridiagonal(jnp.array([jnp.dot(Q[0], matvec(Q[0]))]), beta, Q)
  Q, alpha, beta = jax.lax.fori_loop(0, m, body, (Q, alpha, beta))
  return Tridiagonal(alpha, beta, Q)


def eigenpairs(matvec, v0, num_iters: int, key=None):
  """All Ritz pairs (values (m,), vectors (d, m)), values in decreasing order."""
  T = lanczos(matvec, v0, num_iters, key)
  vals, vecs = jnp.linalg.eigh(T.dense())
  return vals[::-1], (T.basis.T @ vecs)[:, ::-1]


def slq_logdet(matvec, key: jax.Array, dim: int, *, num_probes: int = 16, num_iters: int = 32,
               dtype=jnp.float32):
  """log det A for symmetric positive-definite A by stochastic Lanczos quadrature.

  log det A = tr log A ≈ mean over Rademacher probes z of ‖z‖² Σ_j τ_j² log θ_j, with (θ_j, τ_j)
  the Ritz values and first components of the eigenvectors of T.  Returns (estimate, stderr)."""
  def one(k):
    kz, kl = jax.random.split(k)
    z = jax.random.rademacher(kz, (dim,), dtype)
    T = lanczos(matvec, z, num_iters, kl)
    theta, S = jnp.linalg.eigh(T.dense())
    return dim * jnp.sum(S[0] ** 2 * jnp.log(jnp.maximum(theta, jnp.finfo(dtype).tiny)))

  vals = jax.lax.map(one, jax.random.split(key, num_probes))
  return jnp.mean(vals), jnp.std(vals, ddof=1) / jnp.sqrt(num_probes)
