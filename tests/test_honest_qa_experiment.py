"""The honest-QA experiment's plan of compiled groups, and its sharding over devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs.honest_qa import get_config
from lprior.honest_qa import experiment as ex
from lprior.honest_qa import model_for, world_spec
from lprior.train import nested


def test_plan_groups_variants_by_compiled_step():
  cfg = get_config("smoke")
  cfg.variants, cfg.lam_sweep = ",".join(ex.VARIANTS), (1.0, 10.0)
  plan = ex.plan(cfg)
  assert list(plan) == list(ex.GROUPS)
  assert [a.name for a in plan["chained_anneal"]] == ["c_chained_anneal"]
  assert ex.group_train_config(cfg, "chained_anneal").lam_target == cfg.anneal.target
  assert ex.group_train_config(cfg, "chained").lam_target == 0.0
  assert ex.group_train_config(cfg, "designed_anneal").theta2_keys == ("encoder_human",)
  assert ex.group_train_config(cfg, "chained_sgld").mode == "sgld"
  assert ex.group_train_config(cfg, "chained_fresh").logz == "fresh"
  surrogate = ex.group_train_config(cfg, "chained_surrogate")
  assert (surrogate.logz, surrogate.theta2_param, surrogate.form) == ("surrogate", "centred",
                                                                      "chained")
  assert [a.name for a in plan["chained_surrogate"]] == ["c_chained_surrogate"]
  assert ex.split_modifiers("c_chained_anneal_fresh") == ("c_chained", ("_anneal", "_fresh"))
  for mode, logz in (("fresh", "fresh"), ("surrogate", "surrogate")):  # the modifiers compose
    t = ex.group_train_config(cfg, f"chained_anneal_{mode}")
    assert (t.logz, t.lam_target, t.form) == (logz, cfg.anneal.target, "chained")
    assert [a.name for a in plan[f"chained_anneal_{mode}"]] == [f"c_chained_anneal_{mode}"]
  assert [a.name for a in plan["designed"]] == ["d_designed", "d_designed_stop"]
  assert ex.group_train_config(cfg, "designed").theta2_keys == ("encoder_human",)
  assert ex.group_train_config(cfg, "designed").form == "partitioned"
  assert [a.name for a in plan["ceiling"]] == ["a_ceiling"]
  chained = {a.name: a for a in plan["chained"]}
  assert set(chained) == {"c_chained", "c_chained_stop", "c_kappa_control",
                          "c_chained_lam1"}  # λ = 10 is c_chained
  assert chained["c_chained_stop"].stop_intended and not chained["c_chained"].stop_intended
  assert chained["c_chained_lam1"].lam == 1.0 and chained["c_chained"].lam == cfg.train.lam
  assert ex.group_train_config(cfg, "two_heads").logz == "none"
  assert ex.group_train_config(cfg, "two_heads").form == "chained"
  assert ex.group_train_config(cfg, "chained").logz == cfg.train.logz
  assert ex.group_train_config(cfg, "partitioned").form == "partitioned"
  cfg.variants = "a_plain,e_other"
  with pytest.raises(ValueError, match="e_other"):
    ex.plan(cfg)


def test_plan_holds_the_kappa_sweep_and_the_kappa_control():
  cfg = get_config("smoke")
  cfg.variants, cfg.lam_sweep, cfg.kappa_sweep = "a_plain,c_chained,c_kappa_control", (), (0.1, 0.3)
  chained = {a.name: a for a in ex.plan(cfg)["chained"]}
  assert set(chained) == {"c_chained", "c_kappa_control", "c_chained_kappa0.1"}  # 0.3 = c_chained
  assert chained["c_kappa_control"].kappa == cfg.kappa_control
  assert chained["c_chained_kappa0.1"].kappa == 0.1 and chained["c_chained"].kappa == 0.3
  assert all(a.lam == cfg.train.lam for a in chained.values())


@pytest.mark.parametrize("key,value,match", [
    ("train.lam", -1.0, "train.lam must be >= 0"),
    ("kappa_sweep", (0.1, 0.0), "kappa_sweep holds 0.0"),
    ("kappa_control", -0.1, "kappa_control holds -0.1"),
    ("lam_sweep", (-2.0,), "lam_sweep holds -2.0"),
    ("train.lam_target", -1.0, "lam_target must be >= 0"),
    ("patience", -1, "patience must be >= 0"),
    ("arms_per_batch", -1, "arms_per_batch must be >= 0"),
    ("concurrent_groups", 0, "concurrent_groups must be >= 1"),
    ("heldout_size", 0, "heldout_size must be >= 1"),
    ("train.logz_check_policy", "ignore", "logz_check_policy"),
    ("train.prior_scales", "isotropic", "need train.prior_scales='per_layer'"),
    ("model.encoder_features", (), "need model.encoder_features"),
])
def test_bad_config_is_refused_before_any_data(key, value, match):
  cfg = get_config("smoke")
  cfg.variants = "a_plain,c_kappa_control,d_designed"
  section, _, name = key.rpartition(".")
  (cfg[section] if section else cfg)[name] = value
  with pytest.raises(ValueError, match=match):
    ex.run(cfg, "/nonexistent/never/written")


def test_runs_are_evaluated_at_their_early_stopping_best():
  """With patience 1 the group stops at the first evaluation that does not improve; every
  run's final numbers are those of its best held-out step, not of the last."""
  cfg = get_config("smoke")
  cfg.variants, cfg.lam_sweep, cfg.num_seeds = "a_plain", (), 2
  cfg.num_steps, cfg.eval_every, cfg.patience = 400, 5, 1
  cfg.train.lr_theta2 = 0.3  # far too large: the held-out score soon falls
  data, splits, keys = ex.seed_data(cfg)
  hist, final = ex.run_group(cfg, "plain", ex.plan(cfg)["plain"], data, splits, keys,
                             None)["a_plain"]
  last = hist[-1]["step"]
  assert last < 400 and np.all(final["stopped"])
  scores = np.array([r["heldout_log_lik/seeds"] for r in hist if "heldout_log_lik/seeds" in r])
  steps = [r["step"] for r in hist if "heldout_log_lik/seeds" in r]
  np.testing.assert_array_equal(final["best_step"], np.asarray(steps)[scores.argmax(0)])
  assert np.all(final["best_step"] < last)


def _two_heads_smoke():
  """(cfg, data, splits, keys, arms) of the smoke two-heads group, 3 steps: the same batching
  and sharding as the nested groups, a cheaper compile."""
  cfg = get_config("smoke")
  cfg.variants, cfg.lam_sweep = "b_two_heads,b_two_heads_stop", ()
  cfg.num_steps, cfg.eval_every = 3, 3
  return (cfg, *ex.seed_data(cfg), ex.plan(cfg)["two_heads"])


def test_same_numbers_on_one_and_eight_devices():
  """Arms × seeds sharded over 8 devices (padded 4 -> 8) give what one device gives, up to
  float32 rounding (XLA compiles a batch of 1 and of 4 per device differently; Adam's
  normalised steps carry those 1e-7 differences to ~2e-5 after three steps)."""
  assert len(jax.devices()) == 8
  cfg, data, splits, keys, arms = _two_heads_smoke()
  one = ex.run_group(cfg, "two_heads", arms, data, splits, keys, None, devices=jax.devices()[:1])
  eight = ex.run_group(cfg, "two_heads", arms, data, splits, keys, None)
  for name in ("b_two_heads", "b_two_heads_stop"):
    (h1, f1), (h8, f8) = one[name], eight[name]
    assert f1.keys() == f8.keys() and len(h1) == len(h8) == 3
    for k in f1:
      np.testing.assert_allclose(f8[k], f1[k], rtol=0, atol=1e-6, err_msg=k)
    for r1, r8 in zip(h1, h8):
      for k in ("log_likelihood", "lam_consistency", "log_prior_theta2"):
        np.testing.assert_allclose(r8[k], r1[k], rtol=1e-4, err_msg=k)


def test_a_group_split_into_batches_gives_the_numbers_of_one_batch():
  """arms_per_batch splits a group's arms into batches trained one after another (the memory
  of `full`'s chained group); each run's numbers are those it has in the whole group."""
  arms = [ex.Arm(n, 1.0, False, 0.3) for n in "abc"]
  assert [(n, [a.name for a in p]) for n, p in ex.batches("chained", arms, 2)] == [
      ("chained.0", ["a", "b"]), ("chained.1", ["c"])]
  assert [n for n, _ in ex.batches("chained", arms, 0)] == ["chained"]
  assert [n for n, _ in ex.batches("chained", arms, 3)] == ["chained"]
  cfg, data, splits, keys, arms = _two_heads_smoke()
  arm = arms[1]  # the second arm alone: its place in the batch moves
  (h1, f1), (hw, fw) = (ex.run_group(cfg, "two_heads", a, data, splits, keys, None)[arm.name]
                        for a in ([arm], arms))
  assert f1.keys() == fw.keys() and len(h1) == len(hw) == 3
  for k in f1:
    np.testing.assert_allclose(f1[k], fw[k], rtol=0, atol=1e-6, err_msg=k)


def test_annealed_runs_are_selected_only_once_c_reaches_its_target():
  """λ anneals ×lam_growth a step while C > lam_target; until C reaches the target no
  evaluation is eligible for early stopping: a target never reached leaves every run training
  to num_steps and reported at its last parameters, one met at once changes nothing."""
  cfg = get_config("smoke")
  cfg.variants, cfg.num_seeds, cfg.num_steps, cfg.eval_every, cfg.patience = (
      "b_two_heads", 2, 15, 5, 1)
  cfg.train.update(lam_target=1e-9, lam_growth=1.05, lam_max=1e6)
  data, splits, keys = ex.seed_data(cfg)
  arms = ex.plan(cfg)["two_heads"]
  hist, final = ex.run_group(cfg, "two_heads", arms, data, splits, keys, None)["b_two_heads"]
  np.testing.assert_allclose([r["lam"] for r in hist], 10.0 * 1.05 ** np.arange(15), rtol=1e-4)
  assert not np.any(final["eligible"]) and not np.any(final["stopped"])
  np.testing.assert_array_equal(final["best_step"], [15, 15])
  np.testing.assert_allclose(final["lam"], 10.0 * 1.05 ** 15, rtol=1e-4)
  cfg.train.lam_target = 10.0  # C ≈ 0.3 nats from the start: λ stays, selection as before
  hist, final = ex.run_group(cfg, "two_heads", arms, data, splits, keys, None)["b_two_heads"]
  assert all(r["lam"] == 10.0 for r in hist) and np.all(final["eligible"])
  assert np.all(final["consistency"] <= 10.0)


def test_the_designed_partition_puts_the_human_model_under_the_integral():
  """d_designed: θ₂ = the encoder of A, R and the question (which reads no sensor column),
  θ₁ = everything else."""
  cfg = get_config("smoke")
  spec = world_spec(cfg.world)
  model = model_for(spec, cfg.model)
  x = jax.random.normal(jax.random.key(0), (4, spec.input_dim))
  params = model.init(jax.random.key(1), x[0])
  mask = nested.partition_mask(params, ex.group_train_config(cfg, "designed"))
  assert {k: set(jax.tree.leaves(v)) for k, v in mask.items()} == {
      "encoder_human": {False}, "encoder_sensors": {True}, "trunk": {True}, "intended": {True},
      "instrumental": {True}}
  s = spec.channel_slices()["sensors"]
  moved = x.at[:, s].add(1.0)  # the sensors change: the human model's view does not
  enc = lambda x: jax.nn.relu(x[:, model.module.encoder_columns[0]]
                              @ params["encoder_human"]["layers_0"]["kernel"]
                              + params["encoder_human"]["layers_0"]["bias"])
  np.testing.assert_array_equal(enc(x), enc(moved))
  assert not np.allclose(model.apply_fn(params, x)[0], model.apply_fn(params, moved)[0])
  assert set(model.module.encoder_columns[0]).isdisjoint(range(s.start, s.stop))
  with pytest.raises(ValueError, match="name no top-level parameter key"):
    nested.partition_mask(params, _with(cfg.train, theta2_keys=("nope",)))


def _with(c, **kw):
  c = c.copy_and_resolve_references()
  c.update(kw)
  return c


def test_sgld_arms_report_the_posterior_averaged_prediction():
  """With burn-in past all but the last evaluation the average holds one prediction, the final
  parameters': the final metrics are then those of the last evaluation in the history."""
  cfg = get_config("smoke")
  cfg.variants, cfg.num_seeds, cfg.num_steps, cfg.eval_every = "a_plain_sgld", 2, 20, 5
  cfg.sgld.burnin = 0.9  # evaluations at 5, 10, 15, 20: only step 20 is past 18
  data, splits, keys = ex.seed_data(cfg)
  arms = ex.plan(cfg)["plain_sgld"]
  hist, final = ex.run_group(cfg, "plain_sgld", arms, data, splits, keys, None)["a_plain_sgld"]
  assert hist[-1]["step"] == 20 and not np.any(final["stopped"])
  for k in ("iid/accuracy", "seen/intended/agree_human", "unseen_predictable/accuracy"):
    np.testing.assert_allclose(final[k], hist[-1][f"eval/{k}/seeds"], atol=1e-6, err_msg=k)


def test_plain_sgld_step_is_a_langevin_step_on_the_summed_posterior():
  """θ′ = θ + η∇(L + log prior) + √(2ηT)ξ: at T → 0 the drift alone, with the summed
  (not per-example) gradient; at T = 1 the noise has variance 2η."""
  from lprior import gaussian
  from lprior import posterior as post
  from lprior.train import plain
  from tests.test_train import _toy
  apply_fn, params, data = _toy(jax.random.key(0))
  params = {k: v for k, v in params.items() if k != "instrumental"}
  one = lambda p, x: (lambda h: (h @ p["intended"]["w"],) * 2)(
      jnp.tanh(x @ p["trunk"]["layers_0"]["w"]))
  cfg = nested.default_config()
  cfg.update(mode="sgld", lr_theta2=1e-3, temperature=1e-12, batch_size=0)
  theta0 = jax.tree.map(jnp.zeros_like, params)
  step = plain.make_step(one, data, cfg, theta0=theta0, sigma1=1.0)
  new, _ = step(plain.init(jax.random.key(1), params, cfg), 0)
  g = jax.grad(lambda p: post.log_likelihood(p, one, data.x_large, data.y_large)
               + gaussian.log_normal(p, theta0, 1.0))(params)
  for a, b, d in zip(jax.tree.leaves(new.params), jax.tree.leaves(params), jax.tree.leaves(g)):
    np.testing.assert_allclose(a, b + 1e-3 * d, rtol=1e-4, atol=1e-6)
  cfg.temperature = 1.0
  hot, _ = plain.make_step(one, data, cfg, theta0=theta0, sigma1=1.0)(
      plain.init(jax.random.key(1), params, cfg), 0)
  noise = np.concatenate([np.ravel(a - b) for a, b in zip(jax.tree.leaves(hot.params),
                                                          jax.tree.leaves(new.params))])
  assert abs(noise.var() / 2e-3 - 1) < 4 * np.sqrt(2 / noise.size)  # χ² spread of the variance
