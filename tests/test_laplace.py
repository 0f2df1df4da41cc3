"""The Laplace estimator against closed forms (quadratic energies) and 1-D quadrature."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from scipy import integrate

from lprior.logz.laplace import laplace
from lprior.testing import quadratic as qd


@pytest.fixture(scope="module", autouse=True)
def x64():
  """float64 for the whole module, restored afterwards."""
  old = jax.config.jax_enable_x64
  jax.config.update("jax_enable_x64", True)
  yield
  jax.config.update("jax_enable_x64", old)


def _rel(a, b) -> float:
  return float(jnp.linalg.norm(jnp.ravel(a - b)) / jnp.linalg.norm(jnp.ravel(b)))


@functools.cache
def _quadratic_runner(**options):
  """One compiled Laplace call per shape: the quadratic, λ and σ are traced arguments."""
  def run(key, q, mu, lam, sigma):
    return laplace(key, lambda th: lam * q.consistency(th), mu, sigma, **options)
  return jax.jit(run)


@functools.partial(jax.jit, static_argnames=("dim", "rank", "diag", "diag_spread", "center_scale"))
def _make(key, dim, rank, diag, diag_spread, center_scale):
  kq, km = jax.random.split(key)
  q = qd.make(kq, dim, rank=rank, diag=diag, diag_spread=diag_spread, center_scale=center_scale,
              dtype=jnp.float64)
  return q, 0.5 * jax.random.normal(km, (dim,), jnp.float64)


def _problem(dim: int, seed: int = 0, *, rank: int, diag: float, diag_spread: float = 0.0,
             center_scale: float = 1.0):
  """A random quadratic (float64) and a base mean μ ~ N(0, 0.25 I)."""
  return _make(jax.random.key(seed), dim, rank, diag, diag_spread, center_scale)


@jax.jit
def _closed_form(q, mu, lam, sigma):
  """(log Z, ∇_μ log Z) of the quadratic case, exactly."""
  return q.log_z(mu, lam, sigma), q.grad_log_z(mu, lam, sigma)


# -- quadratic energies: exact -----------------------------------------------------------

@pytest.mark.parametrize("sigma", [0.5, 1.0])
@pytest.mark.parametrize("lam", [1.0, 100.0, 1000.0])
@pytest.mark.parametrize("dim", [10, 1000])
def test_quadratic_matches_closed_form(dim, lam, sigma):
  q, mu = _problem(dim, rank=8, diag=0.5, diag_spread=1.0, center_scale=1.0)
  res = _quadratic_runner()(jax.random.key(1), q, mu, lam, sigma)
  truth, grad = _closed_form(q, mu, lam, sigma)
  assert abs(float(res.log_z - truth)) <= 1e-5 * abs(float(truth))
  assert _rel(res.grad_mean, grad) <= 1e-6
  assert float(res.stderr) == 0.0
  assert bool(res.info["newton_converged"]) and bool(res.info["hessian_pd"])
  assert int(res.num_steps) == 1  # one Newton step is exact for a quadratic
  assert int(res.num_grad_evals) > 0 and int(res.num_energy_evals) > 0


def test_quadratic_pytree_parametrisation():
  """θ = {'w': (4, 5), 'b': (7,)}; the energy reads the leaves in its own order (wᵀ, then b),
  not the order ravel_pytree uses."""
  lam, sigma = 100.0, 0.5
  q, flat_mu = _problem(27, seed=1, rank=6, diag=0.2, diag_spread=1.0)
  to_flat = lambda t: jnp.concatenate([t["w"].T.ravel(), t["b"]])
  from_flat = lambda v: {"w": v[:20].reshape(5, 4).T, "b": v[20:]}
  mean = from_flat(flat_mu)

  res = laplace(jax.random.key(0), lambda t: lam * q.consistency(to_flat(t)), mean, sigma)
  truth, grad = _closed_form(q, flat_mu, lam, sigma)
  assert abs(float(res.log_z - truth)) <= 1e-5 * abs(float(truth))
  assert jax.tree.structure(res.grad_mean) == jax.tree.structure(mean)
  assert res.grad_mean["w"].shape == (4, 5) and res.info["mode"]["b"].shape == (7,)
  assert _rel(to_flat(res.grad_mean), grad) <= 1e-6


# -- the matrix-free path (Newton-CG + deflated SLQ) --------------------------------------

def test_large_dim_deflated_slq_within_stderr():
  """d = 3000 > exact_max_dim: M = BᵀB (rank 20) + a small spread diagonal."""
  lam, sigma = 100.0, 1.0
  q, mu = _problem(3000, seed=3, rank=20, diag=0.01, diag_spread=0.5, center_scale=1.0)
  run = _quadratic_runner(exact_max_dim=100, lanczos_rank=24)
  res = run(jax.random.key(0), q, mu, lam, sigma)
  truth, grad = _closed_form(q, mu, lam, sigma)
  err, se = abs(float(res.log_z - truth)), float(res.stderr)
  assert 0.0 < se < 1.0
  assert err <= 3 * se, (err, se)
  assert _rel(res.grad_mean, grad) <= 1e-6
  assert bool(res.info["newton_converged"])

  # Pure low rank, lanczos_rank ≥ rank: the deflated part carries the whole log det.
  q0 = q._replace(s=jnp.zeros_like(q.s))
  res0 = run(jax.random.key(0), q0, mu, lam, sigma)
  truth0, _ = _closed_form(q0, mu, lam, sigma)
  assert abs(float(res0.log_z - truth0)) <= 1e-4 * abs(float(truth0))


# -- a non-quadratic, separable energy: 1-D quadrature -------------------------------------

def _log_cosh(x, xp):
  return xp.logaddexp(x, -x) - np.log(2.0)


def _separable_log_z(mu, c, lam, kappa, sigma) -> float:
  """Σ_i log ∫ N(t; μ_i, σ²) exp(−λ log cosh(t−c_i) − κ(t−c_i)⁴) dt by adaptive quadrature."""
  total = 0.0
  for m, ci in zip(np.asarray(mu), np.asarray(c)):
    def density(t, m=m, ci=ci):
      r = t - ci
      return np.exp(-0.5 * (t - m)**2 / sigma**2 - lam * _log_cosh(r, np) - kappa * r**4) / np.sqrt(
          2 * np.pi * sigma**2)
    lo, hi = min(m, ci) - 10 * sigma - 10, max(m, ci) + 10 * sigma + 10
    value, _ = integrate.quad(density, lo, hi, points=sorted([m, ci]), epsabs=0, epsrel=1e-12,
                              limit=200)
    total += np.log(value)
  return total


def _separable_energy(c, lam, kappa):
  def energy(theta):
    r = theta - c
    return lam * jnp.sum(_log_cosh(r, jnp)) + kappa * jnp.sum(r**4)
  return energy


def _stationarity(energy, res, mu, sigma) -> float:
  x = res.info["mode"]
  return float(jnp.linalg.norm(jax.grad(energy)(x) + (x - mu) / sigma**2))


def test_non_quadratic_close_to_quadrature():
  """Observed |relative error| of log Z: 0.41% at λ = 10, 0.08% at λ = 100 (d = 5)."""
  rng = np.random.default_rng(0)
  c, mu = jnp.asarray(rng.normal(size=5)), jnp.asarray(rng.normal(size=5))
  errors = []
  for lam in (10.0, 100.0):
    energy = _separable_energy(c, lam, kappa=1.0)
    res = laplace(jax.random.key(0), energy, mu, 1.0)
    truth = _separable_log_z(mu, c, lam, 1.0, 1.0)
    errors.append(abs(float(res.log_z) - truth) / abs(truth))
    assert bool(res.info["newton_converged"])
    assert _stationarity(energy, res, mu, 1.0) < 1e-8
  assert errors[0] < 0.01 and errors[1] < 0.002
  assert errors[1] < errors[0]  # the approximation sharpens as the conditional concentrates


def test_damped_newton_from_far_start():
  """log cosh under a weak prior, started 8 units away: a plain Newton step overshoots, the
  line search must cut it back, and the mode is still found."""
  c = jnp.zeros(5)
  mu = c + 8.0
  energy = _separable_energy(c, lam=3.0, kappa=0.0)
  res = laplace(jax.random.key(0), energy, mu, 30.0)
  assert bool(res.info["newton_converged"])
  assert int(res.num_energy_evals) > int(res.num_steps) + 1  # at least one backtrack
  assert _stationarity(energy, res, mu, 30.0) < 1e-8
  truth = _separable_log_z(mu, c, 3.0, 0.0, 30.0)
  assert abs(float(res.log_z) - truth) < 0.05 * abs(truth)


# -- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("sigma", [0.0, -1.0])
def test_sigma_must_be_positive(sigma):
  with pytest.raises(ValueError, match="sigma"):
    laplace(jax.random.key(0), lambda th: jnp.sum(th**2), jnp.zeros(3), sigma)


def _saddle_energy(theta):
  """−(3/2)‖θ‖² + ‖θ‖⁴: θ = 0 is stationary with I + σ²H = −2I at σ = 1."""
  sq = jnp.sum(theta**2)
  return -1.5 * sq + sq**2


def test_not_positive_definite_raises():
  with pytest.raises(ValueError, match="positive-definite"):
    laplace(jax.random.key(0), _saddle_energy, jnp.zeros(8), 1.0)


@pytest.mark.parametrize("dim, options", [(10, {}), (3000, dict(exact_max_dim=100, lanczos_rank=24))])
def test_not_positive_definite_under_jit_gives_nan(dim, options):
  """E = −100 C started at its centre (a stationary point): I + σ²H = I − 100 M is indefinite."""
  q, _ = _problem(dim, seed=3, rank=20 if dim > 100 else 8, diag=0.01 if dim > 100 else 0.5,
                  diag_spread=0.5 if dim > 100 else 1.0)
  res = _quadratic_runner(**options)(jax.random.key(0), q, q.c, -100.0, 1.0)
  assert np.isnan(float(res.log_z)) and not bool(res.info["hessian_pd"])
