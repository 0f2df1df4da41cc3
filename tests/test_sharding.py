"""Same key ⇒ same numbers without a mesh and on 2- and 8-device meshes (forced CPU devices)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lprior import logz
from lprior.testing import quadratic as q


@pytest.mark.parametrize("method", ["naive", "smc", "waste_free"])
def test_one_vs_many_devices(method, x64):
  P = q.make(jax.random.key(0), 20, rank=4, diag=0.5, dtype=jnp.float64)
  mean = jnp.full((20,), 0.1)
  energy = lambda t: 50.0 * P.consistency(t)
  opts = dict(method=method, num_particles=64)
  if method == "waste_free":  # 8 devices: one chain of 8 states each
    opts = dict(method="smc", num_particles=64, waste_free=8)
  ref = logz.estimate(jax.random.key(7), energy, mean, 1.0, **opts)
  assert len(jax.devices()) >= 8
  for n, name in [(2, "data"), (8, "particles")]:
    mesh = jax.make_mesh((n,), (name,), devices=jax.devices()[:n])
    got = logz.estimate(jax.random.key(7), energy, mean, 1.0, mesh=mesh, **opts)
    np.testing.assert_allclose(float(got.log_z), float(ref.log_z), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(float(got.stderr), float(ref.stderr), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(np.asarray(got.grad_mean), np.asarray(ref.grad_mean), rtol=1e-6,
                               atol=1e-9)
    np.testing.assert_allclose(np.asarray(got.particles), np.asarray(ref.particles), rtol=1e-6,
                               atol=1e-9)
