"""The main job, crashed mid-run and restarted with the same command, ends with the same final
metrics as an uninterrupted run (the nested trainer: its state holds θ₁, θ₂, both optimisers, the
tracking particles and PRNG keys); re-run once finished, it reports the same results again.
Both are `slow`: the launcher killed with SIGKILL in separate processes (one device each; four
launches, 2 min beside the suite from a fresh clone) and in-process on 8 host devices (an
exception after a checkpoint; 6 min: every run compiles again).  The default suite keeps the
trainer's own resume test (tests/test_train.py) and the amplification launcher's SIGKILL test."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from experiments.configs.honest_qa import get_config
from experiments.honest_qa_report import report
from lprior import metrics_writer
from lprior.honest_qa import experiment

ROOT = pathlib.Path(__file__).resolve().parents[1]
ARGS = ["--config=experiments/configs/honest_qa.py:smoke", "--config.variants=c_chained",
        "--config.train.logz_check_every=20",
        "--config.lam_sweep=()", "--config.num_steps=30", "--config.checkpoint_every=10",
        "--config.eval_every=20"]


def _cmd(workdir):
  return [sys.executable, "-m", "experiments.honest_qa", f"--workdir={workdir}", *ARGS]


def _env(cache):
  """One CPU device; a persistent compilation cache shared by the three launches."""
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env.update(JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  return env


def _cfg():
  """The launcher's ARGS as a config, shortened: 20 steps, checkpoints every 5."""
  cfg = get_config("smoke")
  for arg in ARGS[1:]:
    key, _, value = arg[len("--config."):].partition("=")
    section, _, name = key.rpartition(".")
    (cfg[section] if section else cfg)[name] = () if value == "()" else type(
        (cfg[section] if section else cfg)[name])(value)
  cfg.num_steps, cfg.checkpoint_every, cfg.eval_every, cfg.train.logz_check_every = 20, 5, 10, 10
  return cfg


def _final(cfg, workdir):
  report(cfg, *experiment.run(cfg, str(workdir)), str(workdir))
  return json.loads((workdir / "results.json").read_text())["final"]


@pytest.mark.slow
def test_crash_then_rerun_matches_uninterrupted(tmp_path, monkeypatch):
  """On the suite's 8 host devices (a resumed state must be sharded like a fresh one)."""
  cfg = _cfg()
  a = _final(cfg, tmp_path / "ref")
  write = metrics_writer.MetricsWriter.write

  def crash_at_13(self, step, scalars):
    if step == 13:
      raise KeyboardInterrupt("crash after the step-10 checkpoint")
    write(self, step, scalars)

  with monkeypatch.context() as m:
    m.setattr(metrics_writer.MetricsWriter, "write", crash_at_13)
    with pytest.raises(KeyboardInterrupt):
      _final(cfg, tmp_path / "run")
  assert not (tmp_path / "run" / "results.json").exists()
  assert _final(cfg, tmp_path / "run") == a
  rows = [json.loads(l) for l in open(tmp_path / "run" / "runs" / "chained" / "metrics.jsonl")]
  assert [r["step"] for r in rows] == list(range(1, 21))  # resumed: each step logged once
  # finished: a rerun restores the last checkpoint, logs no step again, reports the same numbers
  assert _final(cfg, tmp_path / "run") == a
  again = [json.loads(l) for l in open(tmp_path / "run" / "runs" / "chained" / "metrics.jsonl")]
  assert again == rows


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
  """The run to be killed compiles alone into the cache; the resumed run and the uninterrupted
  reference then run side by side from the cache (one cold compile in all)."""
  env = _env(tmp_path / "cache")
  run = tmp_path / "run"
  proc = subprocess.Popen(_cmd(run), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  ckpts = run / "runs" / "chained" / "checkpoints"
  deadline = time.time() + 600
  while time.time() < deadline and proc.poll() is None:
    if any(p.name.isdigit() and 10 <= int(p.name) < 30 for p in ckpts.glob("*")):
      break
    time.sleep(0.05)
  assert proc.poll() is None, "the run finished before it could be killed"
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not (run / "results.json").exists()
  ref = tmp_path / "ref"  # the uninterrupted run
  ref_log = open(tmp_path / "ref.log", "w")
  ref_proc = subprocess.Popen(_cmd(ref), cwd=ROOT, env=env, stdout=ref_log,
                              stderr=subprocess.STDOUT)
  out = subprocess.run(_cmd(run), cwd=ROOT, env=env, check=True, capture_output=True,
                       text=True, timeout=600)
  assert ref_proc.wait(timeout=600) == 0, (tmp_path / "ref.log").read_text()[-2000:]
  ref_log.close()
  rows = [json.loads(l) for l in open(run / "runs" / "chained" / "metrics.jsonl")]
  assert [r["step"] for r in rows] == list(range(1, 31))  # resumed: each step logged once
  a = json.loads((ref / "results.json").read_text())["final"]
  b = json.loads((run / "results.json").read_text())["final"]
  assert a == b, out.stdout[-2000:]
  # the finished job re-run with the same command: nothing to train, the same report
  (run / "learning_curves.png").unlink()
  again = subprocess.run(_cmd(run), cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
  assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
  assert json.loads((run / "results.json").read_text())["final"] == a
  assert (run / "learning_curves.png").stat().st_size > 0
