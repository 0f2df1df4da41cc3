"""λ annealing in the nested trainer: λ grows by lam_growth while C is above lam_target (up to
lam_max) and holds once C is below it; the tracker follows (θ₁, λ) together, so its log Z stays
that of a fresh SMC at the annealed λ."""

from functools import partial

import jax
import numpy as np
import pytest

from lprior import logz
from lprior.train import fit, nested
from tests.test_train import _toy


def _cfg(**kw):
  cfg = nested.default_config()
  cfg.update(dict(dict(logz="tracking", num_particles=64, lam=1.0, lr_theta1=3e-2,
                       lr_theta2=3e-2, logz_check_policy="off"), **kw))
  return cfg


@pytest.mark.parametrize("form", ["chained", pytest.param("partitioned", marks=pytest.mark.slow)])
def test_lam_grows_while_c_is_above_target_and_the_tracker_follows(form):
  """θ₁ held (lr 0), so the tracker's path is λ's alone: a path chosen from the particles' own
  gradient would add the selection bias that the trainer's checks exist for (BUILD_NOTES)."""
  apply_fn, params, data = _toy(jax.random.key(0))
  cfg = _cfg(form=form, lam_target=1e-4, lam_growth=1.5, lam_max=20.0, lr_theta1=0.0)
  problem, t1, t2 = nested.make_problem(apply_fn, params, data, cfg)
  state = nested.init(jax.random.key(1), problem, t1, t2, cfg)
  state, hist = fit(state, nested.make_step(problem, data, cfg), 10, show_progress=False)
  lams = [r["lam"] for r in hist] + [float(state.lam)]
  for r, lam, nxt in zip(hist, lams, lams[1:]):  # the rule, step by step
    want = min(lam * 1.5, 20.0) if r["consistency"] > 1e-4 else lam
    np.testing.assert_allclose(nxt, want, rtol=1e-6)
  assert lams[0] == 1.0 and lams[-1] == 20.0  # C stayed above 1e-4: λ reached its cap
  # the tracked log Z against a fresh SMC at the final (θ₁, λ), within 3 combined SEs
  at = problem.with_lam(state.lam)
  r = logz.estimate(jax.random.key(2), partial(at.energy_fn, state.theta1),
                    at.mean_fn(state.theta1), at.sigma2, method="smc", num_particles=512)
  gap, se = float(state.log_z - r.log_z), float(np.sqrt(state.track.log_z_var + r.stderr**2))
  assert abs(gap) <= 3 * se, (gap, se)
  assert float(r.log_z) < -1.0  # λ = 20 moved log Z well away from its λ = 1 value


def test_fresh_estimates_log_z_at_the_annealed_lam():
  """logz='fresh' under annealing: after λ has grown, the state's log Z is a fresh SMC's at the
  (θ₁, λ) of the step's start, i.e. within 3 combined SEs of a 512-particle SMC there."""
  apply_fn, params, data = _toy(jax.random.key(0))
  cfg = _cfg(logz="fresh", fresh_every=1, lam_target=1e-4, lam_growth=2.0, lam_max=16.0,
             lr_theta1=0.0)
  problem, t1, t2 = nested.make_problem(apply_fn, params, data, cfg)
  state = nested.init(jax.random.key(1), problem, t1, t2, cfg)
  state, hist = fit(state, nested.make_step(problem, data, cfg), 5, show_progress=False)
  lam = hist[-1]["lam"]  # the λ the last step's fresh SMC ran at (θ₁ held: lr 0)
  assert lam == 16.0
  mine = nested.fresh_estimate(jax.random.key(3), state.theta1, lam, problem, cfg)
  at = problem.with_lam(lam)
  r = logz.estimate(jax.random.key(2), partial(at.energy_fn, state.theta1),
                    at.mean_fn(state.theta1), at.sigma2, method="smc", num_particles=512)
  for est, se in ((state.log_z, mine["stderr"]), (mine["log_z"], mine["stderr"])):
    gap = float(est - r.log_z)
    assert abs(gap) <= 3 * float(np.hypot(se, r.stderr)), (gap, se, r.stderr)
  assert float(r.log_z) < -1.0  # far from log Z at λ = 1: the test can tell the λs apart


def test_surrogate_prices_the_lam_change_at_its_one_particle():
  """logz='surrogate' under annealing, θ₁ and θ₂ held (lr 0): each step's log Z increment is
  the one-particle difference −[E_λ'(θ₁, θ₂) − E_λ(θ₁, θ₂)] between the step's λ and the last
  one's, exactly."""
  apply_fn, params, data = _toy(jax.random.key(0))
  cfg = _cfg(logz="surrogate", theta2_param="centred", lam_target=1e-4, lam_growth=2.0,
             lam_max=16.0, lr_theta1=0.0, lr_theta2=0.0)
  problem, t1, t2 = nested.make_problem(apply_fn, params, data, cfg)
  state = nested.init(jax.random.key(1), problem, t1, t2, cfg)
  state, hist = fit(state, nested.make_step(problem, data, cfg), 4, show_progress=False)
  energy = lambda lam: float(problem.with_lam(lam).energy_fn(state.theta1, state.theta2))
  lams = [r["lam"] for r in hist]
  assert lams == [1.0, 2.0, 4.0, 8.0]
  want = np.cumsum([0.0] + [-(energy(b) - energy(a)) for a, b in zip(lams, lams[1:])])
  np.testing.assert_allclose([r["log_z"] for r in hist], want, rtol=1e-5, atol=1e-5)
  assert want[-1] < -0.1  # the λ changes moved log Z: the check has something to see


def test_lam_holds_once_c_is_below_target():
  apply_fn, params, data = _toy(jax.random.key(0))
  cfg = _cfg(logz="none", lam_target=100.0, lam_growth=2.0, lam_max=1e3)
  problem, t1, t2 = nested.make_problem(apply_fn, params, data, cfg)
  state = nested.init(jax.random.key(1), problem, t1, t2, cfg)
  state, hist = fit(state, nested.make_step(problem, data, cfg), 3, show_progress=False)
  assert all(r["consistency"] < 100.0 for r in hist) and float(state.lam) == 1.0


@pytest.mark.parametrize("kw,match", [
    (dict(lam_target=1e-2, lam_growth=1.0), "lam_growth > 1"),
    (dict(lam_target=1e-2, lam_max=0.5), "lam_max >= lam"),
    (dict(lam_target=-1.0), "lam_target must be >= 0"),
])
def test_bad_annealing_options_are_refused(kw, match):
  with pytest.raises(ValueError, match=match):
    nested.check_config(_cfg(**kw))
