"""Nested sampling (`method='ns'`, `logz.nested`): against closed forms, on Skilling's phase
transition where tempered SMC must miss the spike, and its errors on bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lprior import logz
from lprior.testing import bumps


def test_ns_on_per_leaf_gaussians_matches_the_closed_form():
  """θ = {a: (3,), b: (2,)}, per-leaf σ, E = (λ/2)|θ|²: log Z = Σ −½log(1+λσ²) − λμ²/(2(1+λσ²))
  and ∇_μ log Z = −λμ/(1+λσ²); the estimate within 4 of its SE, the gradient within 4 of the
  posterior-mean Monte Carlo error, the N draws' mean at the posterior mean."""
  lam = 4.0
  mean = {"a": jnp.array([0.5, -1.0, 0.2]), "b": jnp.array([1.5, 0.0])}
  sigma = {"a": 0.5, "b": 2.0}
  energy = lambda t: 0.5 * lam * (jnp.sum(t["a"] ** 2) + jnp.sum(t["b"] ** 2))
  s2 = {k: jnp.full_like(mean[k], sigma[k] ** 2) for k in mean}
  exact = sum(float(jnp.sum(-0.5 * jnp.log1p(lam * s2[k]) - lam * mean[k] ** 2
                            / (2 * (1 + lam * s2[k])))) for k in mean)
  grad = {k: -lam * mean[k] / (1 + lam * s2[k]) for k in mean}
  post_mean = {k: mean[k] / (1 + lam * s2[k]) for k in mean}
  post_sd = {k: jnp.sqrt(s2[k] / (1 + lam * s2[k])) for k in mean}
  r = logz.estimate(jax.random.key(0), energy, mean, sigma, method="ns", num_particles=200)
  se = float(r.stderr)
  assert 0.05 < se < 0.5 and abs(float(r.log_z) - exact) < 4 * se, (float(r.log_z), exact, se)
  assert r.info["live_range"] == 0.1 and float(r.info["log_z_live_left"]) < np.log(np.expm1(0.01))
  for k in mean:
    # ∇_μ log Z = E_p[(θ − μ)/σ²]: its Monte Carlo error is sd_p/(σ² √ESS)
    tol = 4 * post_sd[k] / (sigma[k] ** 2 * np.sqrt(float(r.ess)))
    np.testing.assert_array_less(jnp.abs(r.grad_mean[k] - grad[k]), tol)
    draws = r.particles[k]
    assert draws.shape == (200,) + mean[k].shape
    np.testing.assert_array_less(jnp.abs(draws.mean(0) - post_mean[k]), 5 * post_sd[k] / np.sqrt(50))
  assert int(r.num_energy_evals) > 200 and int(r.num_grad_evals) == 0


def test_ns_finds_the_spike_that_tempering_misses():
  """Skilling's phase transition (d = 10, λ = 10): a spike inside the slab holds 90% of Z.
  Tempered SMC sees only the slab (log 0.1 = −2.3 nats low: the control that shows the test has
  power); nested sampling, which keeps climbing until the live log-likelihoods span < 0.1 nat,
  reaches the spike and lands within 4 SE of the exact log Z; with live_range=None it may stop
  on the slab's plateau (the reason the condition exists)."""
  b = bumps.spike_slab(10, 10.0, offset=0.0)
  mean = jnp.zeros(10)
  smc = logz.estimate(jax.random.key(0), b.energy_fn, mean, 1.0, num_particles=256)
  assert float(smc.log_z) - b.exact_log_z < -1.5, float(smc.log_z) - b.exact_log_z
  for seed in range(2):
    r = logz.estimate(jax.random.key(seed), b.energy_fn, mean, 1.0, method="ns",
                      num_particles=200)
    err, se = float(r.log_z) - b.exact_log_z, float(r.stderr)
    assert abs(err) < 4 * se and se < 0.4, (seed, err, se)
    # most of the posterior draws sit in the spike (radius ~ √(d/(λ·100/d)) = 0.1·√10)
    inside = jnp.mean(jnp.linalg.norm(r.particles, axis=1) < 0.6)
    assert float(inside) > 0.75, float(inside)


def test_ns_refuses_bad_input():
  energy = lambda t: jnp.sum(t ** 2)
  mean = jnp.zeros(3)
  with pytest.raises(ValueError, match="num_delete"):
    logz.estimate(jax.random.key(0), energy, mean, 1.0, method="ns", num_particles=10,
                  num_delete=10)
  with pytest.raises(ValueError, match="live_range"):
    logz.estimate(jax.random.key(0), energy, mean, 1.0, method="ns", num_particles=10,
                  live_range=0.0)
  with pytest.raises(TypeError, match="target_ess"):
    logz.estimate(jax.random.key(0), energy, mean, 1.0, method="ns", num_particles=10,
                  target_ess=0.5)
  mesh = jax.make_mesh((1,), ("p",))
  with pytest.raises(ValueError, match="one device"):
    logz.estimate(jax.random.key(0), energy, mean, 1.0, method="ns", num_particles=10, mesh=mesh)
  with pytest.raises(RuntimeError, match="max_steps"):
    logz.estimate(jax.random.key(0), lambda t: 100 * jnp.sum(t ** 2), mean, 1.0, method="ns",
                  num_particles=10, max_steps=2)
