"""The learning-the-prior launcher resumes like a serious one: a finished command re-reports
without training, raising num_steps (and baseline.num_steps) continues from the checkpoints to
the numbers of an uninterrupted run, any other change is refused naming the key, and nonsense
values are refused before any data or training.  Tiny sizes: one task, one seed, |D| = 16."""

import json
import os

import pytest

from experiments.configs import learning_the_prior as ltp_config
from lprior.ltp import experiment, train
from lprior.train import CheckpointError


def _tiny(num_steps: int):
  """The smoke preset shrunk to seconds; the schedules' length (anneal_steps) fixed at 20."""
  c = ltp_config.get_config("smoke")
  c.tasks, c.num_seeds, c.sizes, c.main_size = "spurious", 1, (16,), 16
  c.n_pool, c.n_test, c.eval_samples = 32, 32, 4
  c.num_steps, c.eval_every, c.log_every, c.checkpoint_every = num_steps, 10, 5, 10
  c.warmup2.forecasts, c.warmup2.human_reads = 16, 8
  c.baseline.hidden, c.baseline.batch, c.baseline.num_steps = (8,), 16, num_steps
  c.compare_prior_modes = ""  # a compare-mode fit resumes through the same _fit (time)
  c.ltp.update(anneal_steps=20, z_warmup=2, f_steps=1, f_hidden=(8,), f_batch=8,
               human_samples=2, z_batch=8, z_samples=1, prior_samples=1)
  return c


def _slim(results: dict) -> dict:
  """What the report shows: every task's numbers but its timings and histories."""
  return {n: {k: v for k, v in t.items() if k not in ("seconds", "history")}
          for n, t in results.items()}


def _snapshot(workdir) -> dict:
  """Every file under workdir/runs but the kept results, with its bytes."""
  out = {}
  for root, _, files in os.walk(os.path.join(workdir, "runs")):
    for f in files:
      if f != "result.json" and "tb" not in root.split(os.sep):
        with open(os.path.join(root, f), "rb") as fh:
          out[os.path.relpath(os.path.join(root, f), workdir)] = fh.read()
  return out


def _no_training(monkeypatch):
  """Any training step traced from here on fails the test."""
  def refuse(*args, **kwargs):
    def step(*a):
      raise AssertionError("a training step ran")
    return step
  monkeypatch.setattr(train, "make_ltp_step", refuse)
  monkeypatch.setattr(train, "make_supervised_step", refuse)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
  """An uninterrupted 20-step run: (workdir, results)."""
  workdir = str(tmp_path_factory.mktemp("ltp_full"))
  return workdir, experiment.run(_tiny(20), workdir)


def test_rerun_reports_from_the_kept_result_then_from_checkpoints(full, monkeypatch):
  workdir, first = full
  before = _snapshot(workdir)
  _no_training(monkeypatch)
  monkeypatch.setattr(experiment, "ideal", lambda *a: pytest.fail("the ideal was recomputed"))
  again = experiment.run(_tiny(20), workdir)  # the kept result: nothing computed
  assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)
  monkeypatch.undo()
  _no_training(monkeypatch)
  os.remove(os.path.join(workdir, "runs", "spurious", "result.json"))
  again = experiment.run(_tiny(20), workdir)  # from the checkpoints, without a training step
  assert _slim(again) == _slim(first) and again["spurious"]["history"] == first[
      "spurious"]["history"]
  assert _snapshot(workdir) == before  # no checkpoint or metrics line written


def test_raising_num_steps_continues_to_the_uninterrupted_numbers(full, tmp_path):
  workdir = str(tmp_path)
  experiment.run(_tiny(10), workdir)
  ckpts = os.path.join(workdir, "runs", "spurious", "ltp-ratio", "checkpoints")
  assert sorted(os.listdir(ckpts)) == ["10"]
  out = experiment.run(_tiny(20), workdir)  # num_steps and baseline.num_steps 10 -> 20
  assert sorted(os.listdir(ckpts)) == ["10", "20"]
  assert _slim(out) == _slim(full[1])
  steps = [r["step"] for r in out["spurious"]["history"]["ltp"]]
  assert steps == [5, 10, 15, 20]  # each step once


def test_another_learning_rate_is_refused_naming_the_key(full):
  c = _tiny(20)
  c.ltp.lr_z = 1e-2
  with pytest.raises(CheckpointError, match=r"ltp\.lr_z: 0\.03 \(stored\) vs 0\.01"):
    experiment.run(c, full[0])


BAD = [("num_steps", 0, "num_steps"), ("eval_every", 0, "eval_every"),
       ("n_pool", 0, "n_pool"), ("n_test", 0, "n_test"), ("sizes", (16, 0), "sizes"),
       ("main_size", 64, "main_size"), ("log_every", 0, "log_every"),
       ("checkpoint_every", -1, "checkpoint_every"), ("eval_samples", 0, "eval_samples"),
       ("tasks", "spurious,weather", "unknown task"), ("prng_impl", "dice", "prng_impl"),
       ("compare_prior_modes", "oracle", "compare_prior_modes"),
       ("warmup2.forecasts", 64, "warmup2.forecasts"), ("baseline.lr", 0.0, "baseline.lr"),
       ("baseline.num_steps", 0, "baseline.num_steps"), ("ltp.lr_z", -1e-3, "ltp.lr_z"),
       ("ltp.lr_f", 0.0, "ltp.lr_f"), ("ltp.anneal_steps", 0, "ltp.anneal_steps"),
       ("ltp.restarts", 0, "ltp.restarts"), ("ltp.prior_mode", "psychic", "ltp.prior_mode"),
       ("ltp.star_share", 1.5, "ltp.star_share"), ("ltp.z_init", "random", "ltp.z_init"),
       ("ltp.f_input", "text", "ltp.f_input"), ("ltp.tau_end", 0.0, "ltp.tau_end"),
       ("ltp_overrides.spurious.lr_g", 0.0, "ltp_overrides.spurious.lr_g"),
       ("ltp_overrides.spurious.restart", 2, "ltp_overrides.spurious")]


@pytest.mark.parametrize("key,value,match", BAD, ids=[b[0] for b in BAD])
def test_nonsense_is_refused_before_anything_runs(key, value, match, tmp_path, monkeypatch):
  c = _tiny(10)
  *path, last = key.split(".")
  node = c
  for p in path:
    node = node[p]
  node[last] = value
  monkeypatch.setattr(experiment, "make_data", lambda *a: pytest.fail("data were drawn"))
  with pytest.raises(ValueError, match=match):
    experiment.run(c, str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()
