"""The tracking estimator (DESIGN §2) against the closed form along optimiser-like paths of θ₁."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax.flatten_util import ravel_pytree

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
  path = q.ascent_path(P, lam, theta1, P.c + jax.random.normal(jax.random.key(4), (d,)), 12)
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


# -- per-leaf scales, sub-steps along the θ₁ path, ∇θ₁ log Z with its standard error ----------

def _two_leaf(d1=6, d2=4):
  """θ = {'a': (d1,), 'b': (d2,)} with per-leaf scales (0.3, 2.0), as flat helpers."""
  like = {"a": jnp.zeros(d1), "b": jnp.zeros(d2)}
  unravel = ravel_pytree(like)[1]
  sig = {"a": jnp.asarray(0.3), "b": jnp.asarray(2.0)}
  sv = ravel_pytree(jax.tree.map(lambda s, x: jnp.broadcast_to(s, x.shape), sig, like))[0]
  return unravel, sig, sv


def _grad_z(g, g_exact, var) -> float:
  """‖ĝ − g‖² / Σ var: about 1 when the reported variance is right, ≫ 1 when it is too small."""
  return float(jnp.sum((g - g_exact) ** 2) / jnp.sum(var))


def test_per_leaf_sigma_tracking_matches_the_closed_form_within_its_stderr():
  """A pytree of scales (0.3 on one leaf, 2.0 on the other): every step within 3 SE of the exact
  log Z of the base N(θ₁, diag σ²), ∇θ₁ log Z within its own reported variance."""
  lam, d = 10.0, 10
  unravel, sig, sv = _two_leaf()
  P = q.make(jax.random.key(1), d, rank=4, diag=0.5, diag_spread=1.0)
  R = P.rescaled(sv)
  energy_fn, mean_fn = tracking.chained(lambda th: lam * P.consistency(ravel_pytree(th)[0]))
  flat1 = 0.3 * jax.random.normal(jax.random.key(2), (d,))
  state = tracking.init(jax.random.key(5), unravel(flat1), energy_fn=energy_fn, mean_fn=mean_fn,
                        sigma=sig, num_particles=512, precondition="diag")
  direction = jax.random.normal(jax.random.key(6), (d,)) * sv
  for t in range(10):
    flat1 = flat1 + 0.05 * direction
    state, info = tracking.update(state, unravel(flat1), energy_fn=energy_fn, mean_fn=mean_fn,
                                  sigma=sig, precondition="diag", num_mcmc_steps=4)
    exact = float(P.dense_log_z(flat1, lam, sv))
    assert abs(exact - float(R.log_z(flat1 / sv, lam, 1.0))) < 1e-3  # two closed forms agree
    err = float(info["log_z"]) - exact
    assert abs(err) < 3 * float(info["stderr"]) + 0.02, (t, err, float(info["stderr"]))
    g_exact = R.grad_log_z(flat1 / sv, lam, 1.0) / sv
    g = ravel_pytree(info["grad_theta1"])[0]
    assert _grad_z(g, g_exact, ravel_pytree(info["grad_var"])[0]) < 4.0
  with pytest.raises(ValueError, match="sigma"):
    tracking.update(state, unravel(flat1), energy_fn=energy_fn, mean_fn=mean_fn,
                    sigma={"a": 1.0}, precondition="diag")


def test_a_long_step_is_bisected_into_substeps_and_stays_exact():
  """One jump of θ₁ that moves log Z by > 25 nats: the update splits it (sub-steps > 1, each
  keeping the conditional ESS) and lands within 3 SE of the closed form; with max_substeps=1 the
  same jump is taken whole and reported as capped."""
  lam, d = 30.0, 10
  P = q.make(jax.random.key(1), d, rank=4, diag=0.5, diag_spread=1.0)
  energy_fn, mean_fn = tracking.partitioned(
      lambda t1, t2: lam * P.consistency(t2, P.c + t1), jnp.zeros(d))
  theta1 = jnp.zeros(d)
  jump = 2.5 * jax.random.normal(jax.random.key(3), (d,))
  state = tracking.init(jax.random.key(5), theta1, energy_fn=energy_fn, mean_fn=mean_fn,
                        sigma=1.0, num_particles=256, precondition="diag")
  exact = lambda t1: float(P.log_z(jnp.zeros(d), lam, 1.0, P.c + t1))
  assert abs(exact(jump) - exact(theta1)) > 25
  new, info = tracking.update(state, jump, energy_fn=energy_fn, mean_fn=mean_fn, sigma=1.0,
                              precondition="diag", num_mcmc_steps=4, max_substeps=100)
  assert 10 < int(info["substeps"]) < 100 and not bool(info["capped"])
  assert int(info["probes"]) >= int(info["substeps"])
  err = float(info["log_z"]) - exact(jump)
  assert abs(err) < 3 * float(info["stderr"]) + 0.05, (err, float(info["stderr"]))
  _, info1 = tracking.update(state, jump, energy_fn=energy_fn, mean_fn=mean_fn, sigma=1.0,
                             precondition="diag", num_mcmc_steps=4, max_substeps=1)
  assert int(info1["substeps"]) == 1 and bool(info1["capped"]) and int(info1["num_capped"]) == 1


def test_adaptive_moves_run_until_the_particles_decorrelate():
  """jump_target: moves continue (up to max_moves) until the mean squared displacement per
  coordinate reaches the target; the reported ESJD times the moves bounds it."""
  lam, d = 10.0, 20
  P = q.make(jax.random.key(1), d, rank=4, diag=0.5)
  energy_fn, mean_fn = tracking.chained(lambda th: lam * P.consistency(th))
  state = tracking.init(jax.random.key(5), jnp.zeros(d), energy_fn=energy_fn, mean_fn=mean_fn,
                        sigma=1.0, num_particles=64, precondition="diag")
  kw = dict(energy_fn=energy_fn, mean_fn=mean_fn, sigma=1.0, precondition="diag",
            num_mcmc_steps=2)
  _, fixed = tracking.update(state, jnp.zeros(d), **kw)
  _, adapt = tracking.update(state, jnp.zeros(d), max_moves=40, jump_target=1.0, **kw)
  assert int(fixed["moves"]) == 2
  assert 2 < int(adapt["moves"]) <= 40
  assert 0 < float(adapt["esjd"]) < 4.0
  with pytest.raises(ValueError, match="max_moves"):
    tracking.update(state, jnp.zeros(d), max_moves=1, **kw)


@pytest.mark.parametrize("lam,sigma,expect", [(1.0, 0.1, "ibp"), (300.0, 1.0, "stein")])
def test_gradient_estimator_is_chosen_by_its_variance_and_its_stderr_is_right(lam, sigma, expect):
  """Near the base (σ²λ‖M‖ ≪ 1) integration by parts has the lower variance; where E is stiff the
  Stein form does; 'auto' picks that one, and over 20 independent particle sets the squared
  error averages to about the reported variance (a z-like ratio in [0.3, 3])."""
  d = 30
  P = q.make(jax.random.key(1), d, rank=8, diag=0.5, diag_spread=1.0)
  theta1 = P.c + 0.5 * jax.random.normal(jax.random.key(2), (d,))
  energy_fn, mean_fn = tracking.chained(lambda th: lam * P.consistency(th))
  g_exact = P.grad_log_z(theta1, lam, sigma)
  ratios, picks = [], []
  for k in range(20):
    exact = P.sample_conditional(jax.random.key(100 + k), theta1, lam, sigma, 64)
    e, g = jax.vmap(jax.value_and_grad(lambda t: energy_fn(theta1, t)))(exact)
    var = jnp.var(exact, 0) + 1e-12
    p = tracking.smc.Particles(exact, e, g, jnp.full(64, -jnp.log(64.0)), jnp.arange(64))
    st = tracking.TrackingState(theta1, jnp.zeros(()), jnp.zeros(()), p, jnp.ones(()), var,
                                jax.random.key(0), jnp.zeros((), jnp.int32),
                                jnp.zeros((), jnp.int32), jnp.zeros(d))
    out = tracking.gradient(st, energy_fn=energy_fn, mean_fn=mean_fn, sigma=sigma)
    picks.append(["ibp", "stein"][int(out["grad_estimator"])])
    ratios.append(_grad_z(out["grad_theta1"], g_exact, out["grad_var"]))
  assert picks.count(expect) >= 18, picks
  assert 0.3 < float(np.mean(ratios)) < 3.0, ratios


def test_kappa_to_zero_log_z_cancels_the_consistency_term():
  """Per-layer scales σ₂ = κσ₁: as κ → 0, log Z(θ₁) → −λC(θ₁), so −λC(θ₂) − log Z(θ₁) cancels
  at θ₂ = θ₁ and the nested posterior reduces to the stage-1 prior; ∇ log Z → −λ∇C(θ₁).  The
  surviving share (λC + log Z)/λC grows with κ (closed form), and the tracker follows it."""
  lam, d = 10.0, 10
  unravel, sig1, sv = _two_leaf()
  P = q.make(jax.random.key(1), d, rank=4, diag=0.5, diag_spread=1.0)
  theta1 = P.c + jax.random.normal(jax.random.key(2), (d,))
  lam_c = lam * float(P.consistency(theta1))
  share = [1.0 + float(P.dense_log_z(theta1, lam, k * sv)) / lam_c for k in (0.01, 0.1, 0.3, 1.0)]
  assert share[0] < 0.01 and all(a < b for a, b in zip(share, share[1:])) and share[-1] > 0.3, share
  energy_fn, mean_fn = tracking.chained(lambda th: lam * P.consistency(ravel_pytree(th)[0]))
  sig2 = jax.tree.map(lambda s: 0.01 * s, sig1)
  state = tracking.init(jax.random.key(5), unravel(theta1), energy_fn=energy_fn,
                        mean_fn=mean_fn, sigma=sig2, num_particles=256, precondition="diag")
  assert abs(float(state.log_z) + lam_c) < max(3 * float(jnp.sqrt(state.log_z_var)), 1e-2 * lam_c)
  g = tracking.gradient(state, energy_fn=energy_fn, mean_fn=mean_fn, sigma=sig2)
  grad_c = -lam * P.matvec(theta1 - P.c)
  cos = _cos(ravel_pytree(g["grad_theta1"])[0], grad_c)
  assert cos > 0.999, cos
