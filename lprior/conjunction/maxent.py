"""Maximum-entropy completion of k-way marginals, exact by enumeration of the 2ⁿ states.

The max-ent joint with P(A_S) = μ_S for every |S| ≤ k is p_θ(x) ∝ exp Σ_S θ_S [S ⊆ x].  We
minimise the convex dual log Z(θ) − θ·μ by damped Newton steps: the gradient E_θ[A_S] − μ_S and the
Hessian Cov(A_S, A_T) = P(A_{S∪T}) − P(A_S) P(A_T) both come from one superset-sum transform of
p_θ, O(n 2ⁿ).  Steps are Levenberg–Marquardt damped, which also copes with marginals on the
boundary of the marginal polytope (some μ_S = 0, where θ diverges).  Iterative proportional
fitting (`method="ipf"`) rescales p on {x ⊇ S} and its complement one constraint at a time; it
is the classical algorithm, kept as a cross-check: far slower (thousands of sweeps on the
boundary).
"""

from __future__ import annotations

import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from lprior.conjunction import joint as joint_lib
from lprior.conjunction import marginals as marg
from lprior.conjunction._checks import check_num_statements

MAX_N = 22


@flax.struct.dataclass
class MaxEntFit:
  """log_p_all: log P(all true) under the max-ent joint; log_joint (2ⁿ,); theta (m,) natural
  parameters, one per distinct subset (`marginals.distinct_subsets` order; IPF leaves NaN);
  max_residual: max_S |P_θ(A_S) − μ_S|; num_iterations: Newton steps or IPF sweeps."""
  log_p_all: jax.Array
  log_joint: jax.Array
  theta: jax.Array
  max_residual: jax.Array
  num_iterations: jax.Array


def _masks(n: int, order: int) -> np.ndarray:
  """(m,) bitmasks of the distinct subsets of size ≤ order."""
  return np.array([marg.subset_mask(s) for s in marg.distinct_subsets(n, order)], np.int32)


def _log_joint(theta: jax.Array, masks: np.ndarray, n: int) -> jax.Array:
  """log p_θ (2ⁿ,) for natural parameters theta (m,) on the subsets `masks` (m,)."""
  h = jnp.zeros((1 << n,), theta.dtype).at[masks].set(theta)
  s = joint_lib.subset_sums(h)
  return s - logsumexp(s)


# The solvers take the subset masks as arguments: as closed-over constants XLA spends seconds
# constant-folding the gathers and scatters on them.

@functools.partial(jax.jit, static_argnames=("n", "max_iter"))
def _newton(mu, tol, masks, unions, *, n: int, max_iter: int) -> MaxEntFit:
  def dual(theta):  # log Z(θ) − θ·μ
    s = joint_lib.subset_sums(jnp.zeros((1 << n,), theta.dtype).at[masks].set(theta))
    return logsumexp(s) - theta @ mu

  def grad_hess(theta):
    g = joint_lib.superset_sums(jnp.exp(_log_joint(theta, masks, n)))
    e = g[masks]
    return e - mu, g[unions] - e[:, None] * e[None, :]

  # Levenberg–Marquardt-damped Newton: accept θ − (H + λI)⁻¹∇ if the dual decreases enough
  # (then λ ← λ/10), else keep θ and λ ← 10λ.  Plain Newton diverges near the boundary of the
  # marginal polytope, where H is nearly singular.
  def body(state):
    theta, it, f0, grad, hess, lam = state
    eye = jnp.eye(hess.shape[0], dtype=hess.dtype)
    step = -jnp.linalg.solve(hess + lam * eye, grad)
    new = theta + step
    f1 = dual(new)
    slack = 16 * jnp.finfo(f0.dtype).eps * (1 + jnp.abs(f0))  # rounding, near convergence
    ok = jnp.isfinite(f1) & (f1 <= f0 + 1e-4 * grad @ step + slack) & jnp.all(jnp.isfinite(step))
    grad, hess = jax.lax.cond(ok, grad_hess, lambda _: (grad, hess), new)
    return (jnp.where(ok, new, theta), it + 1, jnp.where(ok, f1, f0), grad, hess,
            jnp.where(ok, jnp.maximum(lam / 10, 1e-15), lam * 10))

  theta0 = jnp.zeros_like(mu)
  init = (theta0, jnp.asarray(0), dual(theta0)) + grad_hess(theta0) + (
      jnp.asarray(1e-3, mu.dtype),)
  theta, it, _, grad, _, _ = jax.lax.while_loop(
      lambda s: (s[1] < max_iter) & (jnp.max(jnp.abs(s[3])) > tol), body, init)
  res = jnp.max(jnp.abs(grad))
  log_joint = _log_joint(theta, masks, n)
  return MaxEntFit(log_joint[-1], log_joint, theta, res, it)


@functools.partial(jax.jit, static_argnames=("n", "max_iter"))
def _ipf(mu, tol, masks, *, n: int, max_iter: int) -> MaxEntFit:
  states = jnp.arange(1 << n, dtype=masks.dtype)

  def residual(log_p):
    return jnp.max(jnp.abs(joint_lib.superset_sums(jnp.exp(log_p))[masks] - mu))

  def scale(j, log_p):  # p ← p μ_S / P(A_S) on {x ⊇ S}, p (1 − μ_S) / (1 − P(A_S)) off it
    inside = (states & masks[j]) == masks[j]
    g = jnp.sum(jnp.where(inside, jnp.exp(log_p), 0))
    up = jnp.where(g > 0, jnp.log(mu[j]) - jnp.log(g), 0)
    down = jnp.where(g < 1, jnp.log1p(-mu[j]) - jnp.log1p(-g), 0)
    return log_p + jnp.where(inside, up, down)

  def body(state):
    log_p, it, _ = state
    log_p = jax.lax.fori_loop(0, masks.shape[0], scale, log_p)
    log_p = log_p - logsumexp(log_p)
    return log_p, it + 1, residual(log_p)

  log_p0 = jnp.full((1 << n,), -n * np.log(2.0), mu.dtype)
  init = (log_p0, jnp.asarray(0), residual(log_p0))
  log_p, it, res = jax.lax.while_loop(lambda s: (s[1] < max_iter) & (s[2] > tol), body, init)
  return MaxEntFit(log_p[-1], log_p, jnp.full_like(mu, jnp.nan), res, it)


def fit_maxent(kw: marg.KWay, *, method: str = "newton", max_iter: int | None = None,
           tol: float | None = None) -> MaxEntFit:
  """The max-ent joint matching every marginal in `kw` (n ≤ 22).

  tol: stop when max |P_θ(A_S) − μ_S| ≤ tol (default 1e-10 in float64, 1e-5 in float32).
  max_iter: Newton steps (default 500) or IPF sweeps (default 2000).  Check `max_residual`:
  marginals on the boundary of the marginal polytope converge slowly.
  """
  check_num_statements(kw.n, MAX_N, "maxent")
  marg.check_kway(kw)
  mu = marg.distinct_values(kw)
  if tol is None:
    tol = 1e-10 if mu.dtype == jnp.float64 else 1e-5
  masks = _masks(kw.n, kw.order)
  tol = jnp.asarray(tol, mu.dtype)
  if method == "newton":
    return _newton(mu, tol, masks, masks[:, None] | masks[None, :], n=kw.n,
                   max_iter=500 if max_iter is None else max_iter)
  if method == "ipf":
    return _ipf(mu, tol, masks, n=kw.n, max_iter=2000 if max_iter is None else max_iter)
  raise ValueError(f"method must be 'newton' or 'ipf', got {method!r}")


def log_p_maxent(kw: marg.KWay, **kwargs) -> jax.Array:
  """log P(all true) under the max-ent completion of the marginals (see `fit_maxent`)."""
  return fit_maxent(kw, **kwargs).log_p_all
