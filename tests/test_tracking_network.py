"""The tracker on the honest-QA network's own energy (issue 13, item 5): a short training run of
the main job's chained form, its tracked log Z and ∇θ₁ log Z against two independent fresh SMC
references (the benchmark's comparison, `experiments/bench/tracking_network.py`)."""

import jax
import ml_collections
import pytest

from experiments.bench import tracking_network as tn
from experiments.configs.honest_qa import get_config
from lprior.honest_qa import experiment as hq


@pytest.mark.slow
def test_tracking_on_the_network_stays_within_the_references_error():
  """λ = 10, κ = 0.3, the main job's 8 particles: at steps 0, 10 and 20 the references agree
  within 3 SE, the tracked log Z is within max(1, 3 combined SE) of them and the gradient's
  cosine with them is ≥ 0.9 (the references' own cosine is the yardstick, reported)."""
  cfg = get_config("default")
  cfg.num_seeds = 1
  data, _, _ = hq.seed_data(cfg)
  data = jax.tree.map(lambda x: x[0], data)
  c = ml_collections.ConfigDict(dict(num_steps=20, compare_every=10, ref_particles=256,
                                     ref_max_particles=512, ref_mcmc_steps=8,
                                     ref_check_mcmc_steps=32, min_cosine=0.9))
  out = tn.run_cell(cfg, data, dict(form="chained", lam=10.0, kappa=0.3), c)  # prints rows
  rows = out["rows"]
  assert [r["step"] for r in rows] == [0, 10, 20]
  for r in rows:
    assert r["refs_agree"], r
    assert abs(r["gap"]) <= r["tol"] and r["cosine"] >= 0.9, (r["step"], r["gap"], r["tol"],
                                                              r["cosine"], r["ref_self_cosine"])
