"""Mz as a model of the human's exploration (issue 16 item 4): the exploring human draws from its
belief and edits one unit at a time, counted; Mz learns the synonym sets' structure from the
walks (and nothing where there is none); the searches count queries at the call and the edit
chain's correction is exact; the launcher resumes by task and refuses other configs."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import ltp_search_report as report
from experiments.configs.ltp_search import get_config
from lprior.ltp import explorer, mz, tasks
from lprior.ltp import human as hm
from lprior.ltp import latent_search as ls
from lprior.ltp import search_experiment as se
from lprior.train import CheckpointError

ZERO = jnp.zeros((), jnp.int32)


def _small(name="synonyms", **kw):
  return tasks.make_task(name, num_sets=kw.pop("num_sets", 8), **kw)


def test_fresh_proposals_follow_the_belief_and_walks_are_counted():
  t = _small()
  n = 20000
  z, asked = explorer.fresh(jax.random.key(0), t.human, n, ZERO)
  assert z.shape == (n, 32) and int(asked) == n
  fields, logw = explorer.units(t.human)
  p = np.exp(logw[0] - np.logaddexp.reduce(logw[0]))                     # set 0's 16 levels
  idx = np.asarray(z)[:, fields[0]] @ (2 ** np.arange(4))
  freq = np.bincount(idx, minlength=16) / n
  se_ = np.sqrt(p * (1 - p) / n)
  assert np.all(np.abs(freq - p) < 4.5 * se_ + 1e-12), (freq, p)
  w, asked = explorer.walks(jax.random.key(1), t.human, 50, 6, ZERO)
  assert w.shape == (300, 32) and int(asked) == 300
  steps = np.asarray(w).reshape(50, 6, 8, 4)
  changed_sets = np.any(steps[:, 1:] != steps[:, :-1], -1).sum(-1)      # per edit
  assert changed_sets.max() == 1 and changed_sets.mean() > 0.5           # one set, usually moved
  with pytest.raises(ValueError, match="num_walks"):
    explorer.walks(jax.random.key(1), t.human, 0, 6, ZERO)


def test_queries_of_a_change_are_the_examples_reading_it_and_the_units_it_touches():
  t = _small()
  x = np.zeros((4, 32), np.float32)
  x[0, [0, 5, 9]] = 1.0   # reads fields 0 (set 0), 5 (set 1), 9 (set 2)
  x[1, [1, 13, 17]] = 1.0  # set 0, set 3, set 4
  x[2, [20, 24, 28]] = 1.0
  x[3, [2, 6, 30]] = 1.0   # set 0 (but weight 0: padding)
  prob = ls.Problem(jnp.asarray(x), jnp.ones(4), jnp.asarray([1.0, 1.0, 1.0, 0.0]),
                    jnp.asarray(x), jnp.ones(4))
  sc = ls.scorer(t.human, prob)
  changed = np.zeros(32, bool)
  changed[[0, 1, 2]] = True                 # three fields of set 0
  f, j = sc.asked(jnp.asarray(changed))
  assert (int(f), int(j)) == (2, 1)         # examples 0 and 1 read it; one unit judged
  changed[[9, 24]] = True                   # and one field of sets 2 and 6
  f, j = sc.asked(jnp.asarray(changed))
  assert (int(f), int(j)) == (3, 3)
  # a site chain's counts add up step by step
  tr = ls.site(jax.random.key(0), t.human, prob, jnp.zeros(32, jnp.int32), 200)
  assert int(tr.judgments[-1]) == 200 and int(tr.proposals[-1]) == 0
  assert 0 < int(tr.forecasts[-1]) < 200 * 3


def test_edit_chain_corrects_for_the_human_s_proposal_exactly():
  """Without data every edit must be accepted (the edit's density ratio is the prior ratio of
  the unit it redraws); the one-field chain then accepts by the prior ratio only."""
  t = _small()
  x, y = t.sample_train(jax.random.key(0), 16)
  prob = ls.Problem(x, y, jnp.zeros(16), x, y)
  z0 = jnp.zeros(32, jnp.int32)
  tr = ls.edits(jax.random.key(1), t.human, prob, z0, 300)
  assert float(tr.accept.mean()) == 1.0 and int(tr.forecasts[-1]) == 0
  assert int(tr.proposals[-1]) == 300 and int(tr.judgments[-1]) == 0
  site = ls.site(jax.random.key(1), t.human, prob, z0, 300)
  assert float(site.accept.mean()) < 0.9
  # with data the edit chain climbs: its best J beats its start
  prob = ls.Problem(x, y, jnp.ones(16), x, y)
  tr = ls.edits(jax.random.key(2), t.human, prob, z0, 300)
  assert float(tr.best_j[-1]) > float(ls.scorer(t.human, prob).j(z0)) + 1.0


def test_a_problem_of_the_wrong_shape_or_with_nan_is_refused():
  t = _small()
  x, y = t.sample_train(jax.random.key(0), 8)
  with pytest.raises(ValueError, match="Problem.x must have shape"):
    ls.scorer(t.human, ls.Problem(x[:, :5], y, jnp.ones(8), x, y))
  with pytest.raises(ValueError, match="Problem.y holds NaN"):
    ls.scorer(t.human, ls.Problem(x, y.at[0].set(jnp.nan), jnp.ones(8), x, y))


def test_at_budget_reads_the_last_step_within_the_budget():
  q = jnp.asarray([10, 20, 40, 80])
  tr = ls.Trace(q, jnp.zeros(4, jnp.int32), jnp.zeros(4, jnp.int32),
                jnp.asarray([-9.0, -5.0, -3.0, -1.0]), jnp.asarray([0.1, 0.2, 0.3, 0.4]),
                jnp.ones(4), jnp.zeros(3, jnp.int32))
  assert ls.at_budget(tr, 45) == dict(best_j=-3.0, score=pytest.approx(0.3), queries=40)
  assert np.isnan(ls.at_budget(tr, 5)["best_j"])
  assert ls.at_budget(tr, 10 ** 6)["queries"] == 80


def _heldout_gain(name: str) -> tuple[float, float]:
  """Mz's held-out ELBO above independent fair coins, and the most any model could gain (the
  coins' cross-entropy minus the belief's entropy), in nats per hypothesis."""
  t = _small(name, num_sets=16)
  w, _ = explorer.walks(jax.random.key(0), t.human, 4000, 1, ZERO)
  model, info = mz.fit(jax.random.key(1), mz.make(t.human.space, 16, (64,)),
                       w.reshape(4000, 1, -1), max_steps=800, kl_warmup=300)
  coins = 64 * np.log(2.0)
  _, logw = explorer.units(t.human)
  p = np.exp(logw[0] - np.logaddexp.reduce(logw[0]))
  entropy = 16 * float(-(p * np.log(np.maximum(p, 1e-300))).sum())
  return info.held_out_elbo + coins, coins - entropy


def test_mz_learns_the_sets_from_the_walks_and_nothing_where_there_is_none():
  gain, most = _heldout_gain("synonyms_tight")
  assert gain > 0.5 * most, (gain, most)       # it learned the sets (most ≈ 33 nats here)
  gain, most = _heldout_gain("synonyms_indep")
  assert most < 1e-6 and gain < 0.5, gain      # independent words: nothing to learn


def _tiny():
  cfg = get_config("smoke")
  cfg.num_seeds, cfg.size, cfg.n_test, cfg.budgets = 2, 32, 50, (1000, 3000)
  for m in cfg.steps:
    cfg.steps[m] = 100
  cfg.explore.walks = 400
  cfg.mz.max_steps, cfg.mz.kl_warmup = 40, 20
  cfg.gold.sweeps, cfg.gold.burn = 3, 1
  cfg.synonyms.num_sets = 8
  return cfg


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  cfg, workdir = _tiny(), tmp_path_factory.mktemp("search")
  text = report.run(cfg, str(workdir))
  return cfg, workdir, text


def test_launcher_reports_every_method_and_reference(finished):
  cfg, workdir, text = finished
  for m in ls.METHODS:
    assert f"| {m} |" in text
  assert "block Gibbs" in text and "generating Z" in text and "latent_site − site" in text
  res = json.loads((workdir / "results.json").read_text())["tasks"]["synonyms"]
  assert res["mz"]["proposals"] == 400 * cfg.explore.length
  lat = res["methods"]["latent"]["budgets"]["1000"]
  assert all(c["queries"] <= 1000 for c in lat if not np.isnan(c["best_j"]))
  assert (workdir / "search_curves.png").exists()


def test_rerun_computes_nothing_and_another_config_is_refused(finished, monkeypatch):
  cfg, workdir, text = finished
  monkeypatch.setattr(se, "run_task", lambda *a, **k: pytest.fail("recomputed a stored task"))
  assert report.run(cfg, str(workdir)) == text
  other = _tiny()
  other.beta = 0.1
  with pytest.raises(CheckpointError, match="beta"):
    report.run(other, str(workdir))


@pytest.mark.parametrize("key,value,match", [("beta", 0.0, "beta"), ("tasks", "spurious", "tasks"),
                                             ("steps.site", 0, "steps"), ("budgets", (), "budgets")])
def test_nonsense_is_refused_before_anything_runs(key, value, match, tmp_path, monkeypatch):
  monkeypatch.setattr(se, "run_task", lambda *a, **k: pytest.fail("ran"))
  cfg = _tiny()
  section, _, name = key.rpartition(".")
  (cfg[section] if section else cfg)[name] = value
  with pytest.raises(ValueError, match=match):
    report.run(cfg, str(tmp_path))
