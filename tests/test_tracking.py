"""The tracking estimator (DESIGN §2) against the closed form along optimiser-like paths of θ₁."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lprior.logz import tracking
from lprior.testing import quadratic as q


def _cos(a, b):
  return float(jnp.dot(a, b) / jnp.linalg.norm(a) / jnp.linalg.norm(b))


@pytest.mark.slow  # 40–90 s; test_tracking_chained_small_d_* covers the same code by default
def test_tracking_chained_d1000_follows_log_z_over_200_steps():
  """Acceptance: d = 1,000, λ = 100, 200 steps of lr 1e-2 (norms 0.05–1, log Z moving by
  ~120 nats): within 1 nat at every step, ∇θ₁ log Z at median cosine ≥ 0.99.  N = 256,
  2 MALA moves per update, low-rank metric (rank 40) and metric transport."""
  lam, d = 100.0, 1000
  P = q.make(jax.random.key(0), d, rank=32)
  energy_fn, mean_fn = tracking.chained(lambda th: lam * P.consistency(th))
  theta1 = P.c + 0.3 * jax.random.normal(jax.random.key(100), (d,))
  theta2 = P.c + 3.0 * jax.random.normal(jax.random.key(7), (d,))
  path = q.ascent_path(P, lam, theta1, theta2, 200)
  exact = np.array([float(P.log_z(t, lam, 1.0)) for t in path])
  assert exact[0] - exact[-1] > 100  # the path moves log Z a lot

  opts = dict(precondition="lowrank", rank=40)
  state = tracking.init(jax.random.key(3), theta1, energy_fn=energy_fn, mean_fn=mean_fn,
                        sigma=1.0, num_particles=256, num_mcmc_steps=16, **opts)
  errs, coss = [], []
  for t, th in enumerate(path):
    state, info = tracking.update(state, th, energy_fn=energy_fn, mean_fn=mean_fn, sigma=1.0,
                                  num_mcmc_steps=2, **opts)
    errs.append(float(info["log_z"]) - exact[t])
    coss.append(_cos(info["grad_theta1"], P.grad_log_z(th, lam, 1.0)))
  assert max(map(abs, errs)) < 1.0, (max(map(abs, errs)), errs[-1])
  assert np.median(coss) >= 0.99, np.median(coss)
  assert int(state.step) == 200


def test_tracking_chained_small_d_within_its_stderr():
  """d = 10: every transport is a valid importance weight; errors within 3 of the accumulated
  standard error (init SE plus per-step delta-method variances) at every step, from one init."""
  lam, d = 30.0, 10
  P = q.make(jax.random.key(1), d, rank=4, diag=0.5, diag_spread=1.0)
  energy_fn, mean_fn = tracking.chained(lambda th: lam * P.consistency(th))
  theta1 = 0.3 * jax.random.normal(jax.random.key(2), (d,))
  path = q.ascent_path(P, lam, theta1, P.c + jax.random.normal(jax.random.key(4), (d,)), 25)
  opts = dict(precondition="lowrank", rank=10)
  init = tracking.init(jax.random.key(5), theta1, energy_fn=energy_fn, mean_fn=mean_fn,
                       sigma=1.0, num_particles=256, **opts)
  for transport in tracking.TRANSPORTS:
    state = init
    for th in path:
      state, info = tracking.update(state, th, energy_fn=energy_fn, mean_fn=mean_fn, sigma=1.0,
                                    transport=transport, **opts)
      err = float(info["log_z"]) - float(P.log_z(th, lam, 1.0))
      assert abs(err) < 3 * float(info["stderr"]), (transport, err, float(info["stderr"]))
      assert _cos(info["grad_theta1"], P.grad_log_z(th, lam, 1.0)) > 0.99


def test_tracking_partitioned_follows_log_z_and_its_gradient():
  """Partitioned form: θ₁ (4,) sets the centre of C(θ₁, θ₂′) = ½(θ₂′ − c − Aθ₁)ᵀM(·); the base
  N(θ₂⁰, 1) is fixed.  ∇θ₁ log Z = −Aᵀ ∇_μ log Z (closed form).  Metric transport (the default
  with the low-rank metric) moves the particles with the conditional mean."""
  lam, d = 30.0, 10
  P = q.make(jax.random.key(1), d, rank=4, diag=0.5, diag_spread=1.0)
  A = 0.5 * jax.random.normal(jax.random.key(8), (d, 4))
  theta2_init = jnp.zeros(d)
  center = lambda t1: P.c + A @ t1["w"]
  energy_fn, mean_fn = tracking.partitioned(
      lambda t1, t2: lam * P.consistency(t2, center(t1)), theta2_init)
  theta1 = {"w": jnp.zeros(4)}
  opts = dict(precondition="lowrank", rank=10)
  state = tracking.init(jax.random.key(5), theta1, energy_fn=energy_fn, mean_fn=mean_fn,
                        sigma=1.0, num_particles=256, **opts)
  for t in range(25):
    theta1 = {"w": theta1["w"] + 0.05 * jnp.array([1.0, -0.5, 0.3, 0.2])}
    state, info = tracking.update(state, theta1, energy_fn=energy_fn, mean_fn=mean_fn, sigma=1.0,
                                  **opts)
    exact = float(P.log_z(theta2_init, lam, 1.0, center(theta1)))
    err = float(info["log_z"]) - exact
    assert abs(err) < 3 * float(info["stderr"]), (t, err, float(info["stderr"]))
    g_exact = -A.T @ P.grad_log_z(theta2_init, lam, 1.0, center(theta1))
    assert _cos(info["grad_theta1"]["w"], g_exact) > 0.99


def test_tracking_bad_input():
  P = q.make(jax.random.key(1), 6, rank=2)
  energy_fn, mean_fn = tracking.chained(P.consistency)
  state = tracking.init(jax.random.key(0), jnp.zeros(6), energy_fn=energy_fn, mean_fn=mean_fn,
                        sigma=1.0, num_particles=16, num_mcmc_steps=1)
  with pytest.raises(ValueError, match="transport"):
    tracking.update(state, jnp.zeros(6), energy_fn=energy_fn, mean_fn=mean_fn, sigma=1.0,
                    transport="teleport")
  with pytest.raises(ValueError, match="precondition"):  # init used the default, 'lowrank'
    tracking.update(state, jnp.zeros(6), energy_fn=energy_fn, mean_fn=mean_fn, sigma=1.0,
                    precondition="diag")
