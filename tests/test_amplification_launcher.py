"""The amplification launcher as a resumable job: checkpoints per (task, method), re-reporting a
finished run without training, extending num_steps exactly, refusing other config changes and
invalid values.  One small run (module fixture) is shared; trainers are cached per process, so
the later runs compile nothing new."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax.numpy as jnp
import numpy as np
import pytest

from experiments.amplification import run
from experiments.configs.amplification import get_config
from lprior.amplification import experiment, iterate
from lprior.train.checkpoint import CheckpointError

TASK = "sum_mod3_len4"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(transparency: bool = False, **overrides):
  """The smoke preset shrunk: adversary and coin on the sum task, 40 steps in 2 chunks."""
  c = get_config("smoke")
  c.methods, c.tasks, c.eval_every, c.num_eval = "adversary,coin", "sum", 20, 100
  c.num_steps.sum = c.anneal_steps.sum = 40
  c.transparency.tasks = "perm" if transparency else ""
  c.transparency.num_trees, c.transparency.critic_steps, c.transparency.critic_batch = 16, 5, 16
  for key, value in overrides.items():
    *path, last = key.split(".")
    node = c
    for p in path:
      node = node[p]
    node[last] = value
  return c


def _results(workdir) -> dict:
  with open(os.path.join(workdir, "results.json")) as f:
    return json.load(f)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """(workdir, printed text) of an uninterrupted 40-step run with transparency."""
  workdir = str(tmp_path_factory.mktemp("finished"))
  return workdir, run(_config(transparency=True), workdir)


@pytest.fixture
def chunks(monkeypatch):
  """Counts the compiled chunks run (calls of Trainer.run_chunk), by method name."""
  counts = {}
  original = iterate.Trainer.run_chunk

  def counting(self, learner, keys, method, *args):
    counts[method.name] = counts.get(method.name, 0) + 1
    return original(self, learner, keys, method, *args)

  monkeypatch.setattr(iterate.Trainer, "run_chunk", counting)
  return counts


def _copy(src: str, tmp_path) -> str:
  dst = str(tmp_path / "workdir")
  shutil.copytree(src, dst)
  return dst


def test_rerun_rereports_without_training(finished, tmp_path, chunks, monkeypatch):
  src, text = finished
  workdir = _copy(src, tmp_path)
  monkeypatch.setattr(experiment, "transparency_costs",
                      lambda *a, **k: pytest.fail("transparency recomputed"))
  assert run(_config(transparency=True), workdir) == text
  assert chunks == {}
  for name in ("results.json", "table.md", "metrics.jsonl"):
    with open(os.path.join(src, name)) as a, open(os.path.join(workdir, name)) as b:
      assert a.read() == b.read(), name
  assert set(os.listdir(os.path.join(workdir, "runs", TASK, "coin", "history"))) == {
      "20.npz", "40.npz"}


def test_raising_num_steps_extends_exactly(finished, tmp_path, chunks):
  """20 steps, then num_steps=40 in the same workdir: the numbers of the uninterrupted run (so
  also what a run killed after its step-20 checkpoint ends with)."""
  workdir = str(tmp_path)
  run(_config(**{"num_steps.sum": 20}), workdir)
  assert chunks == {"adversary": 1, "coin": 1}
  run(_config(), workdir)
  assert chunks == {"adversary": 2, "coin": 2}  # only the new chunk of each
  want, got = _results(finished[0])["tasks"], _results(workdir)["tasks"]
  assert got == want
  np.testing.assert_array_equal(got[TASK]["coin"]["step"], [[0, 0], [20, 20], [40, 40]])


def test_sigkill_then_rerun_matches(finished, tmp_path):
  """A launcher killed with SIGKILL after a checkpoint, rerun: the uninterrupted numbers."""
  workdir = str(tmp_path)
  flags = [f"--config={ROOT}/experiments/configs/amplification.py:smoke", f"--workdir={workdir}",
           "--config.methods=adversary,coin", "--config.tasks=sum", "--config.num_eval=100",
           "--config.transparency.tasks=", "--config.transparency.num_trees=16",
           "--config.transparency.critic_steps=5", "--config.transparency.critic_batch=16"]
  log = tmp_path / "stderr.txt"
  with open(log, "w") as err:
    proc = subprocess.Popen([sys.executable, "-m", "experiments.amplification", *flags],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
  mark = os.path.join(workdir, "runs", TASK, "adversary", "checkpoints", "20",
                      "commit_success.txt")
  try:
    deadline = time.time() + 120
    while not os.path.exists(mark) and proc.poll() is None and time.time() < deadline:
      time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
  finally:
    proc.wait()
  assert os.path.exists(mark), log.read_text()[-2000:]
  assert not os.path.exists(os.path.join(workdir, "results.json"))  # killed before the end
  run(_config(), workdir)
  assert _results(workdir)["tasks"] == _results(finished[0])["tasks"]


@pytest.mark.parametrize("key,value", [("learning_rate", 1e-2), ("anneal_steps.sum", 80)])
def test_changed_config_is_refused(finished, tmp_path, chunks, key, value):
  workdir = _copy(finished[0], tmp_path)
  with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
    run(_config(transparency=True, **{key: value}), workdir)
  assert chunks == {}
  with open(os.path.join(finished[0], "metrics.jsonl")) as a, \
       open(os.path.join(workdir, "metrics.jsonl")) as b:
    assert a.read() == b.read()  # the old run's log is left as it was


def test_lowered_num_steps_is_refused(finished, tmp_path, chunks):
  workdir = _copy(finished[0], tmp_path)
  with pytest.raises(CheckpointError, match="step 40, past num_steps.sum=20"):
    run(_config(transparency=True, **{"num_steps.sum": 20}), workdir)
  assert chunks == {}


@pytest.mark.parametrize("key,value", [
    ("num_seeds", 0), ("num_steps.sum", 0), ("num_steps.sum", 30), ("eval_every", 0),
    ("batch_size", 0), ("learning_rate", 0.0), ("num_eval", 0), ("temperature", 0.0),
    ("cold_temperature", -1.0), ("iterate_warmup", 1.0), ("tasks", "sum,sort"),
    ("target_accuracy", 0.0), ("target_accuracy", 1.5), ("transparency.num_trees", 0),
    ("transparency.critic_steps", 0), ("transparency.at", "root"),
    ("transparency.tasks", "sort"), ("anneal_steps.sum", 0), ("methods", "greedy")])
def test_bad_values_refused_before_anything(tmp_path, monkeypatch, key, value):
  monkeypatch.setattr(experiment, "seed_keys", lambda *a: pytest.fail("computed something"))
  workdir = tmp_path / "workdir"
  with pytest.raises(ValueError, match=key.split(".")[-1]):
    run(_config(**{key: value}), str(workdir))
  assert not workdir.exists()


def test_alpha_schedule_follows_anneal_steps():
  """Coin's α reaches its end at step anneal_steps − 1 and stays there."""
  alphas = iterate.standard_methods(coin_alpha=(0.0, -0.5))["coin"].alphas
  at = lambda step: float(iterate.alpha_at(jnp.asarray(step), alphas, 41))
  assert at(0) == 0.0 and at(20) == pytest.approx(-0.25) and at(40) == at(79) == -0.5
