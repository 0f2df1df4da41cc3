"""The nested trainer's steps and the generic loop's checkpoints (a toy two-head linear model)."""

import json
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lprior import logz
from lprior import posterior as post
from lprior.train import CheckpointError, Checkpointer, fit, nested


def _toy(key, n_small=32, n_large=64, d=5, k=3):
  ks = jax.random.split(key, 4)
  params = {"trunk": {"layers_0": {"w": 0.3 * jax.random.normal(ks[0], (d, d))}},
            "intended": {"w": 0.3 * jax.random.normal(ks[1], (d, k))},
            "instrumental": {"w": 0.3 * jax.random.normal(ks[2], (d, k))}}

  def apply_fn(p, x):
    h = jnp.tanh(x @ p["trunk"]["layers_0"]["w"])
    return h @ p["intended"]["w"], h @ p["instrumental"]["w"]

  x = jax.random.normal(ks[3], (n_small + n_large, d))
  y = jnp.argmax(x[n_small:, :k], axis=-1)
  return apply_fn, params, post.Data(x[:n_small], x[n_small:], y)


# the default suite's cells (the partitioned form's tracking trains in the per-layer test below;
# the other cells are `slow`)
_FAST = {("chained", "tracking"), ("chained", "surrogate"), ("partitioned", "none")}


@pytest.mark.parametrize("form,logz", [
    pytest.param(f, m, marks=() if (f, m) in _FAST else pytest.mark.slow)
    for f in ("chained", "partitioned") for m in nested.LOGZ_METHODS])
def test_nested_steps_run_and_improve(form, logz):
  apply_fn, params, data = _toy(jax.random.key(0))
  cfg = nested.default_config()
  cfg.update(form=form, logz=logz, num_particles=8, fresh_every=3, lam=5.0, lr_theta1=3e-2,
             lr_theta2=3e-2)
  problem, t1, t2 = nested.make_problem(apply_fn, params, data, cfg)
  state = nested.init(jax.random.key(1), problem, t1, t2, cfg)
  state, hist = fit(state, nested.make_step(problem, data, cfg), 12, show_progress=False)
  assert all(np.isfinite(v) for row in hist for v in row.values())
  assert hist[-1]["log_posterior"] > hist[0]["log_posterior"]
  if logz == "none":
    assert hist[-1]["log_z"] == 0.0
  else:
    assert hist[-1]["log_z"] <= 1e-3 or logz == "surrogate"  # log Z ≤ 0 (Z ∈ (0, 1])


@pytest.mark.parametrize("form", ["chained", "partitioned"])
def test_simultaneous_update_is_one_gradient_step_in_both_sets(form):
  """update_rule 'simultaneous' with SGD and no log Z: θᵢ' = θᵢ + η ∇θᵢ log p̃(θ₁, θ₂) for both sets
  at the same point (the alternating rule would take θ₁'s gradient at the new θ₂)."""
  apply_fn, params, data = _toy(jax.random.key(0))
  cfg = nested.default_config()
  cfg.update(form=form, logz="none", optimizer="sgd", lr_theta1=0.05, lr_theta2=0.02,
             update_rule="simultaneous")
  problem, t1, t2 = nested.make_problem(apply_fn, params, data, cfg)
  t1 = jax.tree.map(lambda a: a + 0.1, t1)  # off the start, so that θ₁'s gradient is not zero
  state = nested.init(jax.random.key(1), problem, t1, t2, cfg)
  new, metrics = jax.jit(nested.make_step(problem, data, cfg))(state, 0)
  lp = lambda a, b: problem.log_post(a, b, data)[0]
  g1, g2 = jax.grad(lp, argnums=(0, 1))(t1, t2)
  want1 = jax.tree.map(lambda a, g: a + 0.05 * g, t1, g1)
  want2 = jax.tree.map(lambda a, g: a + 0.02 * g, t2, g2)
  for got, want in ((new.theta1, want1), (new.theta2, want2)):
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(metrics["log_posterior"], lp(t1, t2), rtol=1e-5)
  assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(g1)) > 1e-3


def test_simultaneous_tracking_steps_improve():
  apply_fn, params, data = _toy(jax.random.key(0))
  cfg = nested.default_config()
  cfg.update(logz="tracking", num_particles=8, lam=5.0, lr_theta1=3e-2, lr_theta2=3e-2,
             update_rule="simultaneous")
  problem, t1, t2 = nested.make_problem(apply_fn, params, data, cfg)
  state = nested.init(jax.random.key(1), problem, t1, t2, cfg)
  state, hist = fit(state, nested.make_step(problem, data, cfg), 12, show_progress=False)
  assert all(np.isfinite(v) for row in hist for v in row.values())
  assert hist[-1]["log_posterior"] > hist[0]["log_posterior"]


def test_bad_trainer_config():
  apply_fn, params, data = _toy(jax.random.key(0))
  cfg = nested.default_config()
  cfg.form = "braided"
  with pytest.raises(ValueError, match="form"):
    nested.make_problem(apply_fn, params, data, cfg)
  cfg.form, cfg.logz = "chained", "psychic"
  problem, t1, t2 = nested.make_problem(apply_fn, params, data, cfg)
  with pytest.raises(ValueError, match="logz"):
    nested.init(jax.random.key(1), problem, t1, t2, cfg)
  cfg.logz, cfg.update_rule = "none", "leapfrog"
  with pytest.raises(ValueError, match="update_rule"):
    nested.make_step(problem, data, cfg)
  cfg.update_rule, cfg.theta2_steps = "simultaneous", 10
  with pytest.raises(ValueError, match="simultaneous"):
    nested.make_step(problem, data, cfg)


def _counter_step(state, step):
  state = dict(x=state["x"] + jnp.sin(step.astype(jnp.float32)),
               key=jax.random.fold_in(state["key"], step))
  return state, dict(x=state["x"], u=jax.random.uniform(state["key"]))


def _seeds_step(state, step):
  """_counter_step plus a (2,) metric (as vmapped seeds give) and a NaN eval-like value."""
  state, m = _counter_step(state, step)
  return state, {**m, "pair": jnp.stack([m["x"], -m["x"]]), "eval/gap": jnp.nan}


def test_resume_from_checkpoint_equals_uninterrupted(tmp_path):
  """Stopped at step 10, then run to 20 (num_steps raised): the same state and the whole
  history, per-seed lists and NaNs included, as one uninterrupted run; a finished run re-run
  returns it unchanged; a checkpoint past num_steps is an error."""
  init = dict(x=jnp.zeros(()), key=jax.random.key(0))
  kw = dict(checkpoint_every=5, show_progress=False, config={"lr": 0.1})
  full, hist_full = fit(init, _seeds_step, 20, workdir=str(tmp_path / "a"), **kw)
  fit(init, _seeds_step, 10, workdir=str(tmp_path / "b"), **kw)  # "killed" after step 10
  other = dict(x=jnp.full((), 100.0), key=jax.random.key(0))  # a restart would show
  resumed, hist = fit(other, _seeds_step, 20, workdir=str(tmp_path / "b"), **kw)
  assert float(resumed["x"]) == float(full["x"])
  nan_safe = lambda h: json.dumps(h)  # NaN == NaN as text
  assert hist[10]["step"] == 11 and nan_safe(hist) == nan_safe(hist_full)
  assert hist[3]["pair/seeds"] == hist_full[3]["pair/seeds"] and np.isnan(hist[3]["eval/gap"])
  rows = [json.loads(l) for l in open(tmp_path / "b" / "metrics.jsonl")]
  assert [r["step"] for r in rows] == list(range(1, 21))  # each step logged once
  again, hist_again = fit(other, _seeds_step, 20, workdir=str(tmp_path / "b"), **kw)
  assert float(again["x"]) == float(full["x"]) and nan_safe(hist_again) == nan_safe(hist_full)
  with pytest.raises(CheckpointError, match="past num_steps=15"):
    fit(init, _seeds_step, 15, workdir=str(tmp_path / "b"), **kw)


def test_corrupt_or_incompatible_checkpoint_is_an_error(tmp_path):
  init = dict(x=jnp.zeros(()), key=jax.random.key(0))
  fit(init, _counter_step, 5, workdir=str(tmp_path), checkpoint_every=5, show_progress=False,
      config={"lr": 0.1})
  with pytest.raises(CheckpointError, match="different config"):
    fit(init, _counter_step, 10, workdir=str(tmp_path), checkpoint_every=5, show_progress=False,
        config={"lr": 0.2})
  with pytest.raises(CheckpointError, match="cannot be restored"):
    fit(dict(x=jnp.zeros((3,)), key=jax.random.key(0)), _counter_step, 10,
        workdir=str(tmp_path), checkpoint_every=5, show_progress=False, config={"lr": 0.1})
  for f in (tmp_path / "checkpoints").rglob("*"):
    if f.is_file() and "state" in f.parts:
      f.write_bytes(b"garbage")
  with pytest.raises(CheckpointError):
    Checkpointer(str(tmp_path / "checkpoints")).restore(init)


# -- per-layer prior scales and the trainer's log Z self-checks --------------------------------

def test_bad_scales_and_check_options_fail_before_training():
  apply_fn, params, data = _toy(jax.random.key(0))
  bad = [(dict(prior_scales="per_layer", kappa=0.0), "kappa"),
         (dict(prior_scales="per_layer", prior_s=-1.0), "prior_s"),
         (dict(prior_scales="layerwise"), "prior_scales"),
         (dict(sigma2=0.0), "sigma2"),
         (dict(logz_check_every=0), "logz_check_every"),
         (dict(logz_check_policy="ignore"), "logz_check_policy"),
         (dict(grad_estimator="magic"), "grad_estimator"),
         (dict(max_moves=1), "max_moves"),
         (dict(logz="fresh", fresh_every=0), "fresh_every")]
  for over, match in bad:
    cfg = nested.default_config()
    cfg.update(over)
    with pytest.raises(ValueError, match=match):
      problem, t1, t2 = nested.make_problem(apply_fn, params, data, cfg)
      nested.init(jax.random.key(1), problem, t1, t2, cfg)
  with pytest.raises(ValueError, match="structure"):  # a σ pytree that does not match θ
    post.chained_log_prior_terms(params, params, params, sigma1={"trunk": 1.0}, sigma2=1.0)
  with pytest.raises(ValueError, match=r"sigma2\['intended'\]\['w'\]"):
    s = jax.tree.map(lambda x: jnp.ones(()), params)
    s["intended"]["w"] = jnp.zeros(())
    post.chained_log_prior_terms(params, params, params, sigma1=1.0, sigma2=s)


def test_per_layer_scales_follow_each_layers_initial_rms():
  """σ₁,ℓ = s·RMS(layer ℓ's weights at init) on every leaf of the layer (biases at 0 too)."""
  params = {"a": {"kernel": jnp.full((3, 2), 0.5), "bias": jnp.zeros(2)},
            "b": {"kernel": jnp.full((2, 2), 2.0), "bias": jnp.zeros(2)}}
  s1, s2 = post.scales.per_layer(params, 2.0, 0.1)
  assert float(s1["a"]["bias"]) == pytest.approx(1.0) and float(s1["b"]["kernel"]) == 4.0
  assert float(s2["a"]["kernel"]) == pytest.approx(0.1)
  with pytest.raises(ValueError, match="no non-zero"):
    post.scales.init_scales({"c": {"bias": jnp.zeros(3)}})


@pytest.mark.parametrize("form", [pytest.param("chained", marks=pytest.mark.slow), "partitioned"])
def test_per_layer_nested_training_runs(form):
  apply_fn, params, data = _toy(jax.random.key(0))
  cfg = nested.default_config()
  cfg.update(form=form, prior_scales="per_layer", kappa=0.3, lam=5.0, logz_check_every=4)
  problem, t1, t2 = nested.make_problem(apply_fn, params, data, cfg)
  state = nested.init(jax.random.key(1), problem, t1, t2, cfg)
  state, hist = fit(state, nested.make_step(problem, data, cfg), 8, show_progress=False,
                    periodic=(4, nested.make_check(problem, cfg)), on_row=nested.check_row(cfg))
  assert [r["step"] for r in hist if "logz_check/gap" in r] == [4, 8]
  for r in hist:
    if "logz_check/gap" in r:
      assert abs(r["logz_check/gap"]) < max(1.0, 3 * r["logz_check/se"])
      assert r["logz_check/cosine"] > 0.9


def _drifted(cfg):
  """A nested state whose tracked log Z is 50 nats off (as a drifted tracker would be)."""
  apply_fn, params, data = _toy(jax.random.key(0))
  problem, t1, t2 = nested.make_problem(apply_fn, params, data, cfg)
  state = nested.init(jax.random.key(1), problem, t1, t2, cfg)
  state = state.replace(track=state.track.replace(log_z=state.track.log_z - 50.0))
  return problem, data, state


def test_check_policies_reanchor_stop_and_warn(caplog):
  cfg = nested.default_config()
  cfg.update(lam=5.0, logz_check_every=2)
  problem, data, state = _drifted(cfg)
  step = nested.make_step(problem, data, cfg)
  new, hist = fit(state, step, 2, show_progress=False, periodic=(2, nested.make_check(problem, cfg)),
                  on_row=nested.check_row(cfg))
  assert hist[-1]["logz_check/exceeded"] == 1.0 and abs(hist[-1]["logz_check/gap"]) > 40
  # re-anchored: the tracker's log Z is the fresh one, its particles the fresh ones resampled
  assert float(new.track.log_z) == pytest.approx(hist[-1]["logz_check/fresh_log_z"])
  assert float(new.log_z) == float(new.track.log_z)
  assert new.track.particles.energy.shape == (cfg.num_particles,)
  cfg.logz_check_policy = "stop"
  with pytest.raises(RuntimeError, match=r"step 2: log Z check failed.*\-[45]\d\.\d* nats"):
    fit(state, step, 2, show_progress=False, periodic=(2, nested.make_check(problem, cfg)),
        on_row=nested.check_row(cfg))
  cfg.logz_check_policy = "warn"
  import logging
  with caplog.at_level(logging.WARNING):
    kept, _ = fit(state, step, 2, show_progress=False,
                  periodic=(2, nested.make_check(problem, cfg)), on_row=nested.check_row(cfg))
  assert "log Z check failed" in caplog.text
  assert float(kept.track.log_z) < hist[-1]["logz_check/fresh_log_z"] - 40  # not re-anchored


def test_a_capped_tracker_stops_the_run():
  cfg = nested.default_config()
  cfg.update(lam=5.0, logz_check_policy="off", max_substeps=1, substep_ess=0.99,
             lr_theta1=0.5)
  apply_fn, params, data = _toy(jax.random.key(0))
  problem, t1, t2 = nested.make_problem(apply_fn, params, data, cfg)
  state = nested.init(jax.random.key(1), problem, t1, t2, cfg)
  with pytest.raises(RuntimeError, match="max_substeps=1"):
    fit(state, nested.make_step(problem, data, cfg), 5, show_progress=False,
        on_row=nested.check_row(cfg))


def test_on_cap_reanchor_replaces_a_capped_trackers_particles():
  """on_cap='reanchor': the same capped run goes on; each capped step is re-anchored by a fresh
  SMC, so the log Z after a capped step is a fresh estimate's (within 3 combined SEs of a
  512-particle one)."""
  cfg = nested.default_config()
  cfg.update(lam=5.0, logz_check_policy="off", max_substeps=1, substep_ess=0.99,
             lr_theta1=0.5, on_cap="reanchor", logz_check_particles=128)
  apply_fn, params, data = _toy(jax.random.key(0))
  problem, t1, t2 = nested.make_problem(apply_fn, params, data, cfg)
  state = nested.init(jax.random.key(1), problem, t1, t2, cfg)
  state, hist = fit(state, nested.make_step(problem, data, cfg), 5, show_progress=False,
                    periodic=[(1, nested.make_reanchor(problem, cfg))],
                    on_row=nested.check_row(cfg))
  capped = [r["logz_num_capped"] > 0 for r in hist]
  assert any(capped) and [r["logz_reanchored"] == 1.0 for r in hist] == capped
  last = max(i + 1 for i, c in enumerate(capped) if c)  # rerun to the last capped step
  state, _ = fit(nested.init(jax.random.key(1), problem, t1, t2, cfg),
                 nested.make_step(problem, data, cfg), last, show_progress=False,
                 periodic=[(1, nested.make_reanchor(problem, cfg))])
  assert int(state.track.num_capped) == 0
  at = state.track.theta1  # the tracker's θ₁: the last step's, before its θ₁ update
  r = logz.estimate(jax.random.key(2), partial(problem.energy_fn, at), problem.mean_fn(at),
                    problem.sigma2, method="smc", num_particles=512)
  se = float(np.sqrt(state.track.log_z_var + r.stderr**2))
  assert abs(float(state.log_z - r.log_z)) <= 3 * se, (float(state.log_z), float(r.log_z), se)
  assert nested.make_reanchor(problem, cfg.copy_and_resolve_references()) is not None
  cfg.on_cap = "raise"
  assert nested.make_reanchor(problem, cfg) is None


@pytest.mark.parametrize("form", ["chained", "partitioned"])
def test_noncentred_theta2_is_the_same_posterior(form):
  """theta2_param='noncentred': log p̃ over (θ₁, ε) is log p̃(θ₁, b + σ₂ ⊙ ε) of the centred
  problem, term by term (b = θ₁ chained, θ₂⁰ partitioned), and model_params reads θ₂ so."""
  apply_fn, params, data = _toy(jax.random.key(0))
  cfg = nested.default_config()
  cfg.update(form=form, prior_scales="per_layer", kappa=0.2, lam=3.0, logz="none")
  centred, t1, t2_0 = nested.make_problem(apply_fn, params, data, cfg)
  cfg.theta2_param = "noncentred"
  nc, t1_nc, eps0 = nested.make_problem(apply_fn, params, data, cfg)
  assert all(float(jnp.abs(e).max()) == 0.0 for e in jax.tree.leaves(eps0))
  eps = jax.tree.map(lambda x: jax.random.normal(jax.random.key(3), x.shape), eps0)
  theta1 = jax.tree.map(lambda x: x + 0.05, t1)
  sigma2 = nested.prior_scales(cfg, params)[1]
  if form == "partitioned":
    sigma2 = post.split(sigma2, post.default_mask(params))[1]
  base = theta1 if form == "chained" else t2_0
  theta2 = jax.tree.map(lambda b, s, e: b + s * e, base, sigma2, eps)
  (v_c, terms_c), (v_nc, terms_nc) = (centred.log_post(theta1, theta2, data),
                                      nc.log_post(theta1, eps, data))
  np.testing.assert_allclose(v_nc, v_c, rtol=1e-6)
  for k in terms_c:
    np.testing.assert_allclose(terms_nc[k], terms_c[k], rtol=1e-5, atol=1e-6, err_msg=k)
  state = nested.init(jax.random.key(1), nc, t1_nc, eps, cfg).replace(theta1=theta1)
  want = theta2 if form == "chained" else post.merge(theta1, theta2)
  for a, b in zip(jax.tree.leaves(nested.model_params(state, nc)), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_noncentred_refuses_the_surrogate():
  apply_fn, params, data = _toy(jax.random.key(0))
  cfg = nested.default_config()
  cfg.update(logz="surrogate", theta2_param="noncentred")
  problem, t1, t2 = nested.make_problem(apply_fn, params, data, cfg)
  with pytest.raises(ValueError, match="theta2_param='centred'"):
    nested.init(jax.random.key(1), problem, t1, t2, cfg)


def test_plain_step_adds_the_stage_one_prior():
  """plain.make_step(theta0=, sigma1=) descends −(L + log N(θ; θ₀, σ₁²))/n; without theta0, −L/n.
  One SGD step from θ₀ + δ: the prior's share of the gradient is −δ/σ₁² / n exactly."""
  from lprior import gaussian
  from lprior.train import plain
  apply_fn, params, data = _toy(jax.random.key(0))
  cfg = nested.default_config()
  cfg.update(optimizer="sgd", lr_theta2=0.1, batch_size=0)
  n = data.y_large.shape[0]
  start = jax.tree.map(lambda x: x + 0.1, params)
  st = plain.init(jax.random.key(1), start, cfg)
  new_flat, m_flat = plain.make_step(apply_fn, data, cfg)(st, 0)
  new_prior, m_prior = plain.make_step(apply_fn, data, cfg, theta0=params, sigma1=0.5)(st, 0)
  for a, b, p0 in zip(*(jax.tree.leaves(t) for t in (new_prior.params, new_flat.params, start))):
    np.testing.assert_allclose(a - b, -0.1 * 0.1 / 0.25 / n * np.ones_like(p0), rtol=1e-4,
                               atol=1e-7)
  np.testing.assert_allclose(m_prior["log_prior"], gaussian.log_normal(start, params, 0.5),
                             rtol=1e-6)
  np.testing.assert_allclose(m_prior["log_likelihood"], m_flat["log_likelihood"], rtol=1e-6)
  with pytest.raises(ValueError, match="sigma1"):
    plain.make_step(apply_fn, data, cfg, theta0=params)
