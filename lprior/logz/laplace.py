"""The Laplace estimate of log Z = log ∫ N(θ; μ, σ²I) e^{−E(θ)} dθ.

With f(θ) = E(θ) + ‖θ−μ‖²/(2σ²) and θ* = argmin f, a second-order expansion of f at θ* gives

  log Z ≈ −E(θ*) − ‖θ*−μ‖²/(2σ²) − ½ log det(I + σ² H),   H = ∇²E(θ*),

and ∇_μ log Z ≈ (θ* − μ)/σ².  Both are exact when E is quadratic (Gaussian conditional).
A pytree of per-coordinate scales σ is handled in u = θ/σ (`lprior.logz.whitening`).

Mode: damped Newton from θ = μ.  For d ≤ `exact_max_dim` the Newton system uses the dense
Hessian and a Cholesky solve; above it, truncated conjugate gradients on Hessian-vector products.
Every step is safeguarded by an Armijo backtracking line search (and a prior-preconditioned
gradient step −σ²∇f where the Newton matrix is not positive-definite), so non-convex energies
do not blow up.

log det: exact (Cholesky) for small d; for large d, deflated stochastic Lanczos quadrature: the
top-k Ritz pairs (λ_i, v_i) of σ²H enter exactly as Σ log(1+λ_i), and the remainder
log det(I + σ² P⊥ H P⊥), P⊥ = I − VVᵀ, is estimated by `slq_logdet` (its stderr is reported).
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lprior import gaussian
from lprior import lanczos as lz
from lprior.logz import whitening
from lprior.logz.result import LogZResult
from lprior.pytree import PyTree

Vec = jax.Array
MatVec = Callable[[Vec], Vec]


class LaplaceConfig(NamedTuple):
  """Static options (hashable: they key the jit cache)."""
  exact_max_dim: int = 2000
  max_newton_steps: int = 50
  tol: float | None = None  # relative gradient-norm tolerance (default eps^¾ of the dtype)
  max_backtracks: int = 30
  cg_tol: float | None = None  # relative CG residual (default √eps of the dtype)
  cg_max_iters: int = 200
  lanczos_rank: int = 32  # k top eigenpairs of σ²H handled exactly (large d)
  lanczos_iters: int | None = None  # Lanczos steps used to find them (default 2k + 10)
  num_probes: int = 16  # SLQ probes for the deflated remainder
  num_iters: int = 32  # Lanczos steps per SLQ probe


# -- the objective -------------------------------------------------------------------------

def _objective(energy: Callable[[Vec], jax.Array], mu: Vec, sigma) -> Callable[[Vec], jax.Array]:
  """f(x) = E(x) + ‖x−μ‖²/(2σ²), the negative log of the unnormalised conditional."""
  def f(x):
    r = x - mu
    return energy(x) + 0.5 * jnp.dot(r, r) / sigma**2
  return f


def hvp_at(energy: Callable[[Vec], jax.Array], x: Vec) -> MatVec:
  """v ↦ ∇²E(x) v (forward-over-reverse, linearised once at x)."""
  _, lin = jax.linearize(jax.grad(energy), x)
  return lin


# -- Newton directions: solve (I + σ²H) p = −σ² g ------------------------------------------

def _dense_direction(energy, x: Vec, g: Vec, sigma) -> tuple[Vec, jax.Array]:
  """p = −(I + σ²H)⁻¹ σ² g by Cholesky; −σ²g where I + σ²H is not positive-definite.

  Returns (p, gradient-evaluation count: the dense Hessian costs d HVPs of 2 each)."""
  d = x.shape[0]
  H = jax.hessian(energy)(x)
  A = jnp.eye(d, dtype=x.dtype) + sigma**2 * 0.5 * (H + H.T)
  L = jnp.linalg.cholesky(A)
  p = jax.scipy.linalg.cho_solve((L, True), -sigma**2 * g)
  ok = jnp.all(jnp.isfinite(p)) & (jnp.dot(p, g) < 0)
  return jnp.where(ok, p, -sigma**2 * g), jnp.asarray(2 * d)


class _CG(NamedTuple):
  x: Vec
  r: Vec
  p: Vec
  rr: jax.Array
  it: jax.Array
  neg: jax.Array  # negative curvature met


def _truncated_cg(A: MatVec, b: Vec, rtol, max_iters: int) -> tuple[Vec, jax.Array]:
  """Conjugate gradients for A x = b from x = 0, stopping at ‖r‖ ≤ rtol‖b‖, after max_iters,
  or on negative curvature pᵀAp ≤ 0 (then the last iterate, or b itself if none: both are
  descent directions for the quadratic model).  Returns (x, number of A-products)."""
  bb = jnp.dot(b, b)
  stop2 = (rtol**2) * bb

  def cond(s: _CG):
    return (s.rr > stop2) & (s.it < max_iters) & ~s.neg

  def body(s: _CG):
    Ap = A(s.p)
    pAp = jnp.dot(s.p, Ap)
    neg = pAp <= 0
    a = s.rr / jnp.where(neg, 1.0, pAp)
    x = jnp.where(neg, s.x, s.x + a * s.p)
    r = jnp.where(neg, s.r, s.r - a * Ap)
    rr = jnp.dot(r, r)
    p = r + (rr / s.rr) * s.p
    return _CG(x, r, p, rr, s.it + 1, neg)

  s = jax.lax.while_loop(cond, body, _CG(jnp.zeros_like(b), b, b, bb, jnp.asarray(0), jnp.asarray(False)))
  empty = jnp.all(s.x == 0)
  return jnp.where(empty, b, s.x), s.it


def _cg_direction(energy, x: Vec, g: Vec, sigma, rtol, max_iters: int) -> tuple[Vec, jax.Array]:
  """p ≈ −(I + σ²H)⁻¹ σ² g by truncated CG on HVPs (each HVP counted as 2 gradients)."""
  hv = hvp_at(energy, x)
  p, its = _truncated_cg(lambda v: v + sigma**2 * hv(v), -sigma**2 * g, rtol, max_iters)
  ok = jnp.all(jnp.isfinite(p)) & (jnp.dot(p, g) < 0)
  return jnp.where(ok, p, -sigma**2 * g), 1 + 2 * its  # linearize evaluates ∇E once


# -- damped Newton -----------------------------------------------------------------------

class _Newton(NamedTuple):
  x: Vec
  f: jax.Array
  g: Vec  # ∇f(x)
  gE_norm: jax.Array  # ‖∇E(x)‖, for the roundoff-aware stopping scale
  steps: jax.Array
  converged: jax.Array
  stalled: jax.Array
  n_energy: jax.Array
  n_grad: jax.Array


def _converged(g: Vec, gE_norm, x: Vec, mu: Vec, sigma, tol) -> jax.Array:
  """‖∇f‖ ≤ tol·(1 + ‖∇E‖ + ‖x−μ‖/σ²): relative to the two terms that cancel at the mode."""
  scale = 1.0 + gE_norm + jnp.linalg.norm(x - mu) / sigma**2
  return jnp.linalg.norm(g) <= tol * scale


def _line_search(f: Callable, x: Vec, fx, g: Vec, p: Vec, max_backtracks: int):
  """Largest t = 2^{−j} with f(x + t p) ≤ f(x) + 10⁻⁴ t gᵀp (+ a roundoff slack).

  Returns (t, accepted, number of f evaluations); NaN trial values count as failures."""
  slope = jnp.dot(g, p)
  slack = 16 * jnp.finfo(x.dtype).eps * (1.0 + jnp.abs(fx))

  def ok(t, ft):
    return ft <= fx + 1e-4 * t * slope + slack

  def cond(s):
    t, ft, n = s
    return ~ok(t, ft) & (n <= max_backtracks)

  def body(s):
    t, _, n = s
    t = 0.5 * t
    return t, f(x + t * p), n + 1

  one = jnp.asarray(1.0, x.dtype)
  t, ft, n = jax.lax.while_loop(cond, body, (one, f(x + p), jnp.asarray(1)))
  return t, ok(t, ft), n


def newton_mode(energy: Callable[[Vec], jax.Array], mu: Vec, sigma, cfg: LaplaceConfig,
                dense: bool, start: Vec | None = None) -> _Newton:
  """argmin_x E(x) + ‖x−μ‖²/(2σ²) by line-searched Newton from x = start (default μ; flat
  vectors)."""
  f = _objective(energy, mu, sigma)
  eps = jnp.finfo(mu.dtype).eps
  tol = eps**0.75 if cfg.tol is None else cfg.tol
  cg_tol = eps**0.5 if cfg.cg_tol is None else cfg.cg_tol

  def grads(x):
    """(f(x), ∇f(x), ‖∇E(x)‖) from one value-and-gradient of E."""
    e, gE = jax.value_and_grad(energy)(x)
    r = x - mu
    return e + 0.5 * jnp.dot(r, r) / sigma**2, gE + r / sigma**2, jnp.linalg.norm(gE)

  def cond(s: _Newton):
    return ~s.converged & ~s.stalled & (s.steps < cfg.max_newton_steps)

  def body(s: _Newton):
    if dense:
      p, n_dir = _dense_direction(energy, s.x, s.g, sigma)
    else:
      p, n_dir = _cg_direction(energy, s.x, s.g, sigma, cg_tol, cfg.cg_max_iters)
    t, accepted, n_ls = _line_search(f, s.x, s.f, s.g, p, cfg.max_backtracks)
    x_new = jnp.where(accepted, s.x + t * p, s.x)
    fx, g, gE_norm = grads(x_new)
    conv = _converged(g, gE_norm, x_new, mu, sigma, tol)
    return _Newton(x_new, fx, g, gE_norm, s.steps + 1, conv, ~accepted, s.n_energy + n_ls,
                   s.n_grad + n_dir + 1)

  x0 = mu if start is None else start
  fx, g, gE_norm = grads(x0)
  zero = jnp.asarray(0)
  init = _Newton(x0, fx, g, gE_norm, zero, _converged(g, gE_norm, x0, mu, sigma, tol),
                 jnp.asarray(False), zero, jnp.asarray(1))
  return jax.lax.while_loop(cond, body, init)


# -- log det(I + σ²H) --------------------------------------------------------------------

def exact_logdet(energy: Callable[[Vec], jax.Array], x: Vec, sigma):
  """log det(I + σ² ∇²E(x)) by Cholesky; (value, positive-definite flag, gradient count)."""
  d = x.shape[0]
  H = jax.hessian(energy)(x)
  L = jnp.linalg.cholesky(jnp.eye(d, dtype=x.dtype) + sigma**2 * 0.5 * (H + H.T))
  diag = jnp.diagonal(L)
  pd = jnp.all(jnp.isfinite(diag)) & jnp.all(diag > 0)
  value = 2 * jnp.sum(jnp.log(diag))
  return jnp.where(pd, value, jnp.nan), pd, jnp.asarray(2 * d)


def _complement_scale(A: MatVec, V: jax.Array, z: Vec) -> jax.Array:
  """c = 1 + zᵀAz/zᵀz for z projected off span(V): a typical eigenvalue of I + A there.

  Giving the deflated operator this eigenvalue on span(V) (and subtracting k log c) leaves the
  log det unchanged but removes the probe variance that a jump from 1 to the bulk level at the
  edge of span(V) would cause."""
  z = z - V @ (V.T @ z)
  c = 1.0 + jnp.dot(z, A(z)) / jnp.dot(z, z)
  return jnp.where(jnp.isfinite(c) & (c > 0), c, 1.0)


def deflated_logdet(key: jax.Array, hvp: MatVec, d: int, sigma, cfg: LaplaceConfig, dtype):
  """log det(I + σ²H) ≈ Σ_{i≤k} log(1+λ_i) + SLQ[log det(I + σ² P⊥HP⊥)], (λ_i, V) the top-k
  Ritz pairs of σ²H.  Returns (value, stderr, positive-definite flag, smallest Ritz value of
  σ²H, gradient count)."""
  k = min(cfg.lanczos_rank, d)
  m = min(d, 2 * k + 10 if cfg.lanczos_iters is None else max(cfg.lanczos_iters, k))
  kv, kl, ks = jax.random.split(key, 3)
  A = lambda v: sigma**2 * hvp(v)
  vals, vecs = lz.eigenpairs(A, jax.random.normal(kv, (d,), dtype), m, kl)
  lam, V = vals[:k], vecs[:, :k]
  head = jnp.sum(jnp.log1p(lam))

  kc, ks = jax.random.split(ks)
  c = _complement_scale(A, V, jax.random.rademacher(kc, (d,), dtype))

  def deflated(v):
    """P⊥(I + σ²H)P⊥ + c VVᵀ: its log det is the remainder's plus k log c."""
    a = V.T @ v
    w = v - V @ a
    Aw = A(w)
    return w + Aw - V @ (V.T @ Aw) + c * (V @ a)

  if k < d:
    tail, stderr = lz.slq_logdet(deflated, ks, d, num_probes=cfg.num_probes,
                                 num_iters=cfg.num_iters, dtype=dtype)
    tail = tail - k * jnp.log(c)
    n_tail = cfg.num_probes * min(cfg.num_iters, d) + 1
  else:
    tail, stderr, n_tail = jnp.zeros((), dtype), jnp.zeros((), dtype), 0
  min_ritz = jnp.min(vals)
  pd = (1.0 + min_ritz > 0) & jnp.isfinite(head) & jnp.isfinite(tail)
  value = jnp.where(pd, head + tail, jnp.nan)
  return value, stderr, pd, min_ritz, jnp.asarray(2 * (m + n_tail) + 1)


# -- the estimator -----------------------------------------------------------------------

@functools.partial(jax.jit, static_argnames=("energy_fn", "cfg"))
def _laplace(key: jax.Array, mean: PyTree, sigma, energy_fn: Callable, cfg: LaplaceConfig) -> LogZResult:
  w, mu, unravel, energy = whitening.flat(sigma, mean, energy_fn)
  d = mu.shape[0]
  sigma = w.sigma
  dense = d <= cfg.exact_max_dim

  s = newton_mode(energy, mu, sigma, cfg, dense)
  x = s.x
  if dense:
    logdet, pd, n_ld = exact_logdet(energy, x, sigma)
    stderr = jnp.zeros((), mu.dtype)
    min_ritz = jnp.full((), jnp.nan, mu.dtype)
  else:
    logdet, stderr, pd, min_ritz, n_ld = deflated_logdet(key, hvp_at(energy, x), d, sigma, cfg, mu.dtype)
  r = x - mu
  log_z = -energy(x) - 0.5 * jnp.dot(r, r) / sigma**2 - 0.5 * logdet
  info = dict(mode=w.up(unravel(x)), logdet=logdet, newton_converged=s.converged, hessian_pd=pd,
              grad_norm=jnp.linalg.norm(s.g), min_ritz=min_ritz)
  return LogZResult(log_z=log_z, stderr=stderr, grad_mean=w.grad_up(unravel(r / sigma**2)),
                    num_energy_evals=s.n_energy + 1, num_grad_evals=s.n_grad + n_ld,
                    num_steps=s.steps, info=info)


def _concrete(x) -> np.ndarray | None:
  """x as a NumPy array, or None while it is being traced."""
  try:
    return np.asarray(x)
  except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
    return None


def laplace(key: jax.Array, energy_fn: Callable[[PyTree], jax.Array], mean: PyTree, sigma, *,
            exact_max_dim: int = 2000, max_newton_steps: int = 50, tol: float | None = None,
            max_backtracks: int = 30, cg_tol: float | None = None, cg_max_iters: int = 200,
            lanczos_rank: int = 32, lanczos_iters: int | None = None, num_probes: int = 16,
            num_iters: int = 32) -> LogZResult:
  """Laplace estimate of log ∫ N(θ; mean, σ²I) e^{−energy_fn(θ)} dθ over a parameter pytree θ.

  log Z ≈ −E(θ*) − ‖θ*−μ‖²/(2σ²) − ½ log det(I + σ²∇²E(θ*)); grad_mean = (θ*−μ)/σ².  The key
  drives the stochastic log det (d > exact_max_dim) only.  Outside a trace, raises ValueError for
  σ ≤ 0 and where I + σ²H is not positive-definite at the mode; under a trace
  the latter gives log_z = NaN and info['hessian_pd'] = False.  See LaplaceConfig for options.
  """
  gaussian.check_scale(sigma, mean, "laplace: sigma")
  cfg = LaplaceConfig(exact_max_dim, max_newton_steps, tol, max_backtracks, cg_tol, cg_max_iters,
                      lanczos_rank, lanczos_iters, num_probes, num_iters)
  res = _laplace(key, mean, sigma, energy_fn, cfg)
  pd = _concrete(res.info["hessian_pd"])
  if pd is not None and not bool(pd):
    raise ValueError(
        "laplace: I + σ²∇²E(θ*) is not positive-definite at the mode found (the energy has "
        "negative curvature there beyond the prior's 1/σ²); the Laplace approximation does not "
        f"apply.  Newton converged: {bool(res.info['newton_converged'])}, smallest Ritz value "
        f"of σ²H: {float(res.info['min_ritz'])} (NaN on the dense path).")
  return res
