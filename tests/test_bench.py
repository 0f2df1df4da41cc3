"""`python -m experiments.bench --quick` runs end to end (so the benchmarks never rot), and the
benchmarks' own numbers are right where they can be checked."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments.bench import blackjax_smc, problems
from experiments.configs.bench import get_config
from lprior.testing import bumps
from lprior.xla import FAST_COMPILE_FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_blackjax_reference_estimates_the_closed_form():
  """The BlackJAX reference is a correct estimator: 4 runs within 4 of their spread of the truth."""
  prob = problems.make(50, 30.0)
  runs = [blackjax_smc.log_z(jax.random.key(i), prob.mean, 1.0, energy_fn=prob.energy_fn,
                             num_particles=256, num_mcmc_steps=4) for i in range(4)]
  est = np.array([float(r["log_z"]) for r in runs])
  spread = max(est.std(ddof=1), 0.02)
  assert abs(est.mean() - prob.exact_log_z) < 4 * spread + 0.05, (est, prob.exact_log_z)
  r = runs[0]
  assert int(r["num_grad_evals"]) == int(r["num_steps"]) * 256 * 5 > 0


def test_bench_config_rejects_unknown_preset():
  with pytest.raises(ValueError, match="nope"):
    get_config("nope")


def _quick(tmp_path, *flags) -> dict:
  env = dict(os.environ, XLA_FLAGS=FAST_COMPILE_FLAGS)
  out = subprocess.run([sys.executable, "-m", "experiments.bench", "--quick",
                        f"--workdir={tmp_path}", *flags], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  return json.loads((tmp_path / "results.json").read_text())


@pytest.mark.slow
def test_quick_bench_runs_end_to_end(tmp_path):
  """The log Z and tracking benchmarks (training, memory and scaling, subprocess- and
  compile-heavy, are the slow test below; layouts agreeing is also tests/test_sharding.py's and
  tests/test_distributed.py's)."""
  res = _quick(tmp_path,
               "--config.benchmarks=logz,multimodal,coverage,tracking,tracking_feedback")
  assert {"logz", "multimodal", "coverage", "tracking", "tracking_feedback"} <= set(res)
  assert [p["path"] for p in res["tracking_feedback"]["paths"]] == ["exact", "noise", "own"]
  mm = {s["method"]: s for s in res["multimodal"]["summary"]}
  assert mm["smc"]["bias"] < -1.5 and mm["ns"]["energy_evals"] > 0  # the spike: missed, sought
  (cov1, cov4) = res["coverage"]["rows"]
  assert (cov1["num_batches"], cov4["num_batches"], cov1["repeats"]) == (1, 4, 8)
  assert cov1["reliable"] == 1.0 and cov1["mean_abs_error"] < 0.5  # an easy quadratic
  for f in ("table.md", "logz.png", "multimodal.png"):
    assert (tmp_path / f).stat().st_size > 0, f
  by = {(s["method"], s["N"]): s for s in res["logz"]["summary"]}
  assert by[("laplace", 64)]["abs_error"] < 1e-3  # exact on the quadratic
  assert by[("naive", 64)]["abs_error"] > 5  # and naive MC fails at λ = 10, d = 100
  assert by[("smc", 64)]["abs_error"] < 1.0 and by[("blackjax", 64)]["abs_error"] < 1.0


@pytest.mark.slow
def test_quick_training_memory_and_scaling_benches(tmp_path):
  """Every device layout (1, 2 devices; 2 processes) computes the same log Z; the 1-device
  throughput is the efficiency unit; memory grows with the particles; the training benchmark
  starts from plain SGD."""
  res = _quick(tmp_path, "--config.benchmarks=training,memory,scaling")
  for f in ("scaling.png", "memory.png"):
    assert (tmp_path / f).stat().st_size > 0, f
  rows = res["scaling"]["rows"]  # float64 workers (quick): every layout, the same log Z
  assert {r["dtype"] for r in rows} == {"float64"}
  np.testing.assert_allclose([r["log_z"] for r in rows], rows[0]["log_z"], rtol=1e-9)
  assert rows[0]["devices"] == 1 and rows[0]["efficiency"] == 1.0
  assert rows[-1]["processes"] == 2
  for g in res["memory"]["grid"]:
    assert 1.0 < g["ratio"] < 50.0  # at least the particles, at most a small constant times
  assert res["memory"]["largest"][0]["peak_bytes"] <= 1.0 * 2**30
  assert res["training"]["runs"][0]["trainer"] == "plain"


@pytest.mark.parametrize("kind", ["mixture", "spike_slab", "spike_centred"])
def test_bump_targets_exact_log_z_against_importance_sampling(kind):
  """The bump targets' closed-form log Z equals a 2-million-draw importance-sampling estimate
  from the base (d = 3) within 4 of its standard error (delta method on the weights)."""
  prob = problems.make(3, 10.0, kind=kind)
  th = jax.random.normal(jax.random.key(0), (2_000_000, 3))
  w = np.exp(np.asarray(-jax.jit(jax.vmap(prob.energy_fn))(th), np.float64))
  est, se = np.log(w.mean()), w.std(ddof=1) / np.sqrt(w.size) / w.mean()
  assert abs(est - prob.exact_log_z) < 4 * se, (est, se, prob.exact_log_z)
  assert se < 0.05  # the check has power


def test_spike_holds_its_share_and_a_missed_spike_costs_log_of_the_slab_share():
  """The weights a_i = share_i Z_0 / Z_i give each bump its share of Z: the slab's part alone is
  log(0.1) below the exact log Z (what a tempered SMC that never finds the spike reports)."""
  prob = problems.make(50, 1.0, kind="spike_slab")
  rng = np.random.default_rng(0)  # the centres make() draws with seed 0
  h = np.stack([np.full(50, 1.0 / 50), np.full(50, 100.0 / 50)])
  c = np.stack([np.zeros(50), rng.normal(0.0, 0.5, 50)])
  log_zi = bumps.bump_log_z(h, c, 1.0)
  log_a = np.log([0.1, 0.9]) + log_zi[0] - log_zi
  parts = log_a + log_zi
  np.testing.assert_allclose(parts - prob.exact_log_z, np.log([0.1, 0.9]), atol=1e-9)
  with pytest.raises(ValueError, match="unknown problem kind"):
    problems.make(5, 1.0, kind="banana")


def test_logz_network_rows_summarise_each_method_against_the_references():
  """Per (λ, step, method): mean error ± SE over repeats, the share of runs whose |z| ≤ 2, the
  share flagged unreliable, median SE and wall; auto's choice carried through."""
  from experiments.bench.report import logz_network_rows
  row = lambda name, err, z, ok, choice="": dict(method=name, error=err, stderr=0.1, z=z,
                                                 reliable=ok, wall_s=2.0, choice=choice)
  res = {"cells": [dict(lam=10.0, step=300, dim=4346, ref=-5.0, ref_se=0.05, refs_agree=True,
                        rows=[row("smc", 0.1, 0.9, True), row("smc", 0.3, 2.7, False),
                              row("smc", -0.1, -0.9, True),
                              row("auto", 0.0, 0.0, True, "laplace"),
                              row("laplace", 0.5, 5.0, None)])]}
  smc, auto, laplace = logz_network_rows(res)
  assert (smc["method"], smc["d"], smc["step"]) == ("smc", 4346, 300)
  np.testing.assert_allclose(smc["mean_error"], 0.1)
  np.testing.assert_allclose(smc["error_se"], np.std([0.1, 0.3, -0.1], ddof=1) / np.sqrt(3))
  np.testing.assert_allclose([smc["covered"], smc["unreliable"]], [2 / 3, 1 / 3])
  assert auto["choice"] == "laplace" and np.isnan(auto["error_se"]) and auto["covered"] == 1.0
  assert np.isnan(laplace["unreliable"]) and laplace["covered"] == 0.0  # it has no flag


@pytest.mark.slow
def test_logz_network_bench_runs_on_the_main_jobs_network():
  """λ = 10 at θ₁ where training starts (d ≈ 4k): the references agree, SMC and auto are within
  3 combined SE of them, and nested sampling is left out by name at this dimension (~80 s)."""
  import ml_collections

  from experiments.bench import logz_network
  c = ml_collections.ConfigDict(dict(logz_network=dict(
      preset="default", lams=(10.0,), train_steps=0, particles=256, mcmc_steps=8,
      target_ess=0.9, repeats=1,
      methods="smc,auto,ns", ref_particles=256, ref_max_particles=512, ref_mcmc_steps=8,
      ref_check_mcmc_steps=32, min_cosine=0.9)))
  (cell,) = logz_network.run(c)["cells"]
  assert cell["refs_agree"] and cell["dim"] > logz_network.NS_MAX_DIM
  assert sorted(r["method"] for r in cell["rows"]) == ["auto", "smc"]
  for r in cell["rows"]:
    assert abs(r["z"]) <= 3, r
