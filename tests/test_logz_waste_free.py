"""Waste-free tempered SMC (`waste_free=P`, issue 17 item 2): every chain state kept with its own
(E, ∇E), and log Z right against the closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lprior import logz
from lprior.logz import smc, tracking
from lprior.testing import quadratic as q


def _problem(dim, lam):
  P = q.make(jax.random.key(0), dim, rank=4, diag=0.5, diag_spread=1.0)
  mean = jnp.full((dim,), 0.1)
  return P, mean, (lambda t: lam * P.consistency(t))


def test_move_keeps_every_chain_state_with_its_energy():
  """N = 12, P = 3: four ancestors drawn by weight, each followed by its two chain states; every
  kept particle carries E and ∇E of its own position, the chain shares its ancestor's time-0
  index, and weights are reset to 1/N.  (A wrong reshape pairs a state with another's energy.)"""
  _, mean, energy = _problem(5, 10.0)
  n, chain = 12, 3
  cfg = smc.SMCConfig(waste_free=chain)
  ctx = smc._Ctx(energy, mean, jnp.asarray(1.0), cfg, None, n, n)
  theta = mean + jax.random.normal(jax.random.key(1), (n, 5))
  e, g = smc.evaluate(energy, theta)
  log_w = jax.nn.log_softmax(-0.5 * e)  # unequal weights, as after a reweighting
  p = smc.Particles(theta, e, g, log_w, jnp.arange(n) + 100)
  new, eps, acc = smc.waste_free_move(jax.random.key(2), p, log_w, jnp.asarray(0.5),
                                      jnp.asarray(0.3), ctx)
  e_new, g_new = smc.evaluate(energy, new.theta)
  np.testing.assert_allclose(new.energy, e_new, rtol=1e-6)
  np.testing.assert_allclose(new.grad, g_new, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(new.log_w, -np.log(n) * np.ones(n), rtol=1e-6)
  eve = np.asarray(new.eve).reshape(n // chain, chain)
  assert (eve == eve[:, :1]).all() and set(eve[:, 0]) <= set(range(100, 100 + n))
  starts = np.asarray(new.theta).reshape(n // chain, chain, 5)[:, 0]
  np.testing.assert_array_equal(starts, np.asarray(theta)[eve[:, 0] - 100])  # the ancestors
  assert 0.0 < float(acc) <= 1.0
  moved = np.asarray(new.theta).reshape(n // chain, chain, 5)
  assert (np.abs(moved[:, 1:] - moved[:, :1]).sum(-1) > 0).mean() >= 0.5  # chains moved


@pytest.mark.parametrize("chain", [4, 16])
def test_within_stderr_of_the_closed_form(chain):
  """d = 10, λ = 100, N = 512, over 4 keys (one vmapped call): each error within 4 SE, the mean
  error within 4 SE of the mean, and the cost counted for N/P chains of P − 1 moves."""
  P, mean, energy = _problem(10, 100.0)
  exact = float(P.log_z(mean, 100.0, 1.0))
  run = jax.jit(jax.vmap(lambda k: logz.estimate(k, energy, mean, 1.0, num_particles=512,
                                                 waste_free=chain)))
  r = run(jax.random.split(jax.random.key(3), 4))
  err, se = np.asarray(r.log_z) - exact, np.asarray(r.stderr)
  assert np.all(np.abs(err) < 4 * se), (err, se)
  assert abs(err.mean()) < 4 * np.sqrt(np.sum(se**2)) / 4, (err, se)
  assert np.all(np.asarray(r.info["waste_free"]) == chain)
  steps, hvp = np.asarray(r.num_steps), np.asarray(r.info["num_hvp"])
  per_step = 512 // chain * (chain - 1) * 2  # each state: one MALA step and one (E, ∇E)
  np.testing.assert_array_equal(r.num_grad_evals, 512 + steps * per_step + 2 * hvp)


def test_bad_waste_free_options_are_refused():
  _, mean, energy = _problem(5, 10.0)
  with pytest.raises(ValueError, match="waste_free must be 0"):
    logz.estimate(jax.random.key(0), energy, mean, 1.0, num_particles=64, waste_free=1)
  with pytest.raises(ValueError, match="waste_free=5 must divide the 64"):
    logz.estimate(jax.random.key(0), energy, mean, 1.0, num_particles=64, waste_free=5)
  mesh = jax.make_mesh((8,), ("particles",))
  with pytest.raises(ValueError, match="waste_free=16 must divide the 8 particles per device"):
    logz.estimate(jax.random.key(0), energy, mean, 1.0, num_particles=64, waste_free=16, mesh=mesh)
  with pytest.raises(TypeError, match="unknown option"):
    logz.estimate(jax.random.key(0), energy, mean, 1.0, method="ais", num_particles=64,
                  waste_free=4)
  with pytest.raises(ValueError, match="not of tracking"):
    tracking.config(dict(waste_free=4))
