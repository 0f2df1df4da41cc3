"""Independent particle batches (`logz.batches`) and the reliability flags
(`logz.reliability`): against closed forms and against the quadratic's exact log Z."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lprior import logz
from lprior.logz import batches, reliability
from lprior.testing import quadratic as q


def test_combine_is_the_mean_of_the_batch_estimates():
  log_z_b = jnp.array([-3.0, -2.5, -3.2, -2.9])
  grad_b = jnp.arange(8.0).reshape(4, 2)
  particles_b = jnp.arange(24.0).reshape(4, 3, 2)
  log_w_b = jnp.log(jnp.full((4, 3), 1 / 3))
  c = batches.combine(log_z_b, grad_b, particles_b, log_w_b)
  z = np.exp(np.asarray(log_z_b, np.float64))
  np.testing.assert_allclose(float(c["log_z"]), np.log(z.mean()), rtol=1e-6)
  r = z / z.mean()
  np.testing.assert_allclose(float(c["stderr"]), r.std(ddof=1) / 2.0, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(c["shares"]), z / z.sum(), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(c["grad_mean"]), (z / z.sum()) @ np.arange(8.0).reshape(4, 2),
                             rtol=1e-5)
  assert c["particles"].shape == (12, 2)
  np.testing.assert_allclose(float(jax.scipy.special.logsumexp(c["log_weights"])), 0.0, atol=1e-6)
  with pytest.raises(ValueError, match="at least 2"):
    batches.combine(log_z_b[:1], grad_b[:1], particles_b[:1], log_w_b[:1])


def test_batched_smc_against_the_closed_form(x64):
  P = q.make(jax.random.key(0), 10, rank=3, diag=0.5, dtype=jnp.float64)
  mean = jnp.full((10,), 0.2)
  energy = lambda t: 10.0 * P.consistency(t)
  exact = float(P.log_z(mean, 10.0, 1.0))
  opts = dict(num_particles=256, num_batches=4, num_mcmc_steps=4)
  r = logz.estimate(jax.random.key(1), energy, mean, 1.0, **opts)
  assert abs(float(r.log_z) - exact) <= 4 * float(r.stderr), (float(r.log_z), exact, float(r.stderr))
  assert 0 < float(r.stderr) < 0.5
  assert r.particles.shape == (256, 10) and r.info["batch_log_z"].shape == (4,)
  assert r.info["num_ancestors"].shape == (4,)
  assert bool(r.info["reliable"]) and reliability.explain(r.info) == []
  # the pooled ∇_μ log Z: the share-weighted batch gradients, near the closed form
  np.testing.assert_allclose(np.asarray(r.grad_mean), np.asarray(P.grad_log_z(mean, 10.0, 1.0)),
                             atol=0.1)
  with pytest.raises(ValueError, match="num_batches"):
    logz.estimate(jax.random.key(1), energy, mean, 1.0, num_particles=256, num_batches=3)
  with pytest.raises(TypeError, match="num_batches"):
    logz.estimate(jax.random.key(1), energy, mean, 1.0, method="ais", num_particles=64,
                  num_batches=2)


def test_flags_fire_on_their_causes():
  ess = jnp.array([200.0, 150.0, jnp.nan])
  acc = jnp.array([0.6, 0.5, jnp.nan])
  ok = reliability.flags(jnp.asarray(100), ess, acc, 256)
  assert not any(bool(v) for v in ok.values()) and bool(reliability.reliable(ok))
  cases = dict(genealogy_collapsed=dict(num_ancestors=jnp.asarray(3)),
               ess_collapsed=dict(ess_trace=jnp.array([200.0, 5.0, jnp.nan])),
               moves_stalled=dict(acceptance_trace=jnp.array([0.6, 0.01, jnp.nan])))
  for reason, change in cases.items():
    args = dict(num_ancestors=jnp.asarray(100), ess_trace=ess, acceptance_trace=acc,
                num_particles=256) | change
    got = reliability.flags(**args)
    assert [k for k, v in got.items() if bool(v)] == [reason]
    assert not bool(reliability.reliable(got))
    assert reliability.explain(dict(reliability=got)) == [reliability.REASONS[reason]]
  # batches: the genealogy does not matter (the SE comes from the spread); disagreement does
  b = reliability.flags(jnp.array([2, 3]), ess[None].repeat(2, 0), acc[None].repeat(2, 0), 128,
                        spread=jnp.asarray(0.2), shares=jnp.array([0.45, 0.55]))
  assert [k for k, v in b.items() if bool(v)] == ["batches_disagree"]
  b = reliability.flags(jnp.array([2, 3]), ess[None].repeat(2, 0), acc[None].repeat(2, 0), 128,
                        spread=jnp.asarray(1.5), shares=jnp.array([0.5, 0.5]))
  assert [k for k, v in b.items() if bool(v)] == ["batches_disagree"]
  # AIS: ESS decays by design
  assert not bool(reliability.flags(jnp.asarray(100), jnp.array([5.0]), acc, 256,
                                    resampled=False)["ess_collapsed"])


@pytest.mark.slow
def test_batches_on_two_devices_equal_one(x64):
  """(slow: two more compiles of the batched engine; the sharded engine itself is in the
  default suite, tests/test_sharding.py)"""
  P = q.make(jax.random.key(0), 8, rank=2, diag=0.5, dtype=jnp.float64)
  mean = jnp.zeros(8)
  energy = lambda t: 5.0 * P.consistency(t)
  opts = dict(num_particles=64, num_batches=4, num_mcmc_steps=2)
  ref = logz.estimate(jax.random.key(3), energy, mean, 1.0, **opts)
  mesh = jax.make_mesh((2,), ("particles",), devices=jax.devices()[:2])
  got = logz.estimate(jax.random.key(3), energy, mean, 1.0, mesh=mesh, **opts)
  np.testing.assert_allclose(float(got.log_z), float(ref.log_z), rtol=1e-9)
  np.testing.assert_allclose(float(got.stderr), float(ref.stderr), rtol=1e-7)
