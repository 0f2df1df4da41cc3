"""method='auto' (issue 17 item 2): the pilot measures the curvature at the mode exactly, the
choice follows it, and whichever path it takes is right against the closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lprior import logz
from lprior.logz import auto
from lprior.testing import quadratic as q


def _problem(lam):
  P = q.make(jax.random.key(0), 20, rank=4, diag=0.5, diag_spread=1.0)
  mean = jnp.full((20,), 0.1)
  return P, mean, (lambda t: lam * P.consistency(t))


@pytest.mark.parametrize("lam, chosen", [(0.1, "prior"), (100.0, "laplace")])
def test_choice_follows_the_measured_curvature(lam, chosen):
  """σ = 0.5: the pilot's top curvature is σ²λ times A's top eigenvalue (to 1e-3); the path
  follows the rule; log Z within 4 SE of the closed form; the pilot's cost is counted."""
  P, mean, energy = _problem(lam)
  top = 0.25 * lam * float(jnp.linalg.eigvalsh(P.dense())[-1])
  assert (top >= auto.STIFF) == (chosen == "laplace")
  r = logz.estimate(jax.random.key(1), energy, mean, 0.5, method="auto", num_particles=256)
  a = r.info["auto"]
  np.testing.assert_allclose(float(a["top_curvature"]), top, rtol=1e-3)
  assert a["reference"] == chosen and bool(a["newton_converged"])
  exact = float(P.log_z(mean, lam, 0.5))
  assert abs(float(r.log_z) - exact) < 4 * float(r.stderr) + 1e-4, (float(r.log_z), exact)
  plain = logz.estimate(jax.random.key(1), energy, mean, 0.5, method="smc", num_particles=256,
                        reference=chosen)
  assert int(r.num_grad_evals) > int(a["num_grad"]) > 0
  assert int(r.num_grad_evals) - int(a["num_grad"]) == int(plain.num_grad_evals) or \
      chosen == "prior"  # (the adaptive prior path's length depends on the key)


def test_auto_refuses_a_trace_and_foreign_options():
  _, mean, energy = _problem(1.0)
  with pytest.raises(ValueError, match="cannot be traced"):
    jax.jit(lambda k: logz.estimate(k, energy, mean, 1.0, method="auto").log_z)(jax.random.key(0))
  with pytest.raises(TypeError, match="unknown option"):
    logz.estimate(jax.random.key(0), energy, mean, 1.0, method="auto", reference="laplace")
