"""The honest-QA launcher as 2 local processes (`--config.multihost=True`, gloo on 127.0.0.1,
4 CPU devices each) writes the same results as one process with 8 devices; only process 0
prints the table.  Slow (three launcher processes on 2 cores): `pytest -m slow`."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lprior.xla import FAST_COMPILE_FLAGS

ARGS = ["--config=experiments/configs/honest_qa.py:smoke", "--config.variants=b_two_heads",
        "--config.lam_sweep=()", "--config.num_steps=4", "--config.eval_every=2",
        "--config.checkpoint_every=2"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _launch(workdir, devices: int, extra=()):
  env = dict(os.environ, XLA_FLAGS=FAST_COMPILE_FLAGS, JAX_NUM_CPU_DEVICES=str(devices))
  return subprocess.Popen([sys.executable, "-m", "experiments.honest_qa", *ARGS,
                           f"--workdir={workdir}", *extra], cwd=ROOT, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _leaves(tree, prefix=""):
  if isinstance(tree, dict):
    for k, v in tree.items():
      yield from _leaves(v, f"{prefix}/{k}")
  else:
    yield prefix, tree


@pytest.mark.slow
def test_launcher_on_two_processes_matches_one(tmp_path, free_port):
  port = free_port
  pair = [_launch(tmp_path / "two", 4, [
      "--config.multihost=True", f"--config.distributed.coordinator_address=127.0.0.1:{port}",
      "--config.distributed.num_processes=2", f"--config.distributed.process_id={i}",
      "--config.distributed.cpu_collectives=gloo"]) for i in (0, 1)]
  ref = _launch(tmp_path / "one", 8)
  logs = [p.communicate(timeout=900)[0] for p in (*pair, ref)]
  for p, log in zip((*pair, ref), logs):
    assert p.returncode == 0, log[-4000:]
  assert "| b_two_heads |" in logs[0] and "| b_two_heads |" in logs[2]
  assert "| b_two_heads |" not in logs[1]  # process 1 computes but does not report
  one = json.loads((tmp_path / "one" / "results.json").read_text())
  two = json.loads((tmp_path / "two" / "results.json").read_text())
  a, b = dict(_leaves(one["final"])), dict(_leaves(two["final"]))
  assert a.keys() == b.keys() and a
  for k in a:
    np.testing.assert_allclose(b[k], a[k], rtol=0, atol=1e-6, err_msg=k)
