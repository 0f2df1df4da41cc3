"""A researcher's own MCMC move plugged into the tempered-SMC engine (issue 17 item 6): the
engine uses it, and with a valid kernel that is not lprior's the estimate is right."""

from typing import NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import pytest

from lprior import logz
from lprior.logz import moves
from lprior.testing import quadratic as q

MALA = moves.Kernel(blackjax.mala.init,
                    lambda k, s, f, eps, m: blackjax.mala.build_kernel()(k, s, f, eps))


class _Info(NamedTuple):
  acceptance_rate: jax.Array


class _Shift(NamedTuple):
  position: jax.Array


def _shift(k, s, f, eps, m):  # not an MCMC move: it only shows that the engine calls it
  return _Shift(s.position + 1e3), _Info(jnp.ones(()))


SHIFT = moves.Kernel(lambda position, logdensity_fn: _Shift(position), _shift)


def test_a_plugged_blackjax_mala_estimates_log_z_within_its_stderr():
  P = q.make(jax.random.key(0), 10, rank=4, diag=0.5, diag_spread=1.0)
  mean = 0.3 * jax.random.normal(jax.random.key(100), (10,))
  lam = 10.0
  exact = float(P.log_z(mean, lam, 1.0))
  r = logz.estimate(jax.random.key(1), lambda t: lam * P.consistency(t), mean, 1.0,
                    num_particles=256, kernel=MALA)
  assert bool(r.info["plugged_kernel"])
  assert abs(float(r.log_z) - exact) < 4 * float(r.stderr), (float(r.log_z), exact, float(r.stderr))


def test_the_engine_moves_particles_with_the_plugged_kernel_only():
  """AIS, 4 tempering steps of 1 move each: every particle is shifted by exactly 4 × 1000 from
  its base draw (lprior's own kernel would keep them near the base)."""
  energy = lambda t: 0.5 * jnp.sum(t * t)
  r = logz.estimate(jax.random.key(2), energy, jnp.zeros(3), 1.0, method="ais",
                    num_particles=16, num_steps=4, num_mcmc_steps=1, kernel=SHIFT)
  assert float(jnp.min(r.particles)) > 3990 and float(jnp.max(r.particles)) < 4010
  with pytest.raises(TypeError, match="Kernel"):
    logz.estimate(jax.random.key(2), energy, jnp.zeros(3), 1.0, kernel=(MALA.init, MALA.step))
