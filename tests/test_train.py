"""The nested trainer's steps and the generic loop's checkpoints (a toy two-head linear model)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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


_FAST = {("chained", "tracking"), ("partitioned", "tracking"), ("chained", "surrogate"),
         ("partitioned", "none")}


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


def test_resume_from_checkpoint_equals_uninterrupted(tmp_path):
  init = dict(x=jnp.zeros(()), key=jax.random.key(0))
  full, hist_full = fit(init, _counter_step, 20, workdir=str(tmp_path / "a"), checkpoint_every=5,
                        show_progress=False)
  fit(init, _counter_step, 10, workdir=str(tmp_path / "b"), checkpoint_every=5,
      show_progress=False)  # "killed" after step 10
  resumed, hist = fit(init, _counter_step, 20, workdir=str(tmp_path / "b"), checkpoint_every=5,
                      show_progress=False)
  assert hist[0]["step"] == 11  # it resumed, not restarted
  assert float(resumed["x"]) == float(full["x"])
  assert hist[-1] == hist_full[-1]
  rows = [json.loads(l) for l in open(tmp_path / "b" / "metrics.jsonl")]
  assert [r["step"] for r in rows] == list(range(1, 21))  # each step logged once


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
