"""2 local processes over `jax.distributed` (gloo collectives on 127.0.0.1, 4 CPU devices each)
give the same numbers as one process with 8 devices, for the same key."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np

WORKER = pathlib.Path(__file__).with_name("distributed_worker.py")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _run(pids, port, tmp_path):
  """Start every process at once (the reference overlaps the pair), wait, read their JSON."""
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # the worker sets devices
  procs = [subprocess.Popen([sys.executable, str(WORKER), str(p), str(port),
                             str(tmp_path / f"out{p}.json")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True) for p in pids]
  logs = [p.communicate(timeout=600)[0] for p in procs]
  for p, log in zip(procs, logs):
    assert p.returncode == 0, log[-4000:]
  return [json.loads((tmp_path / f"out{p}.json").read_text()) for p in pids]


def test_two_processes_match_one_process(tmp_path):
  ref, a, b = _run([-1, 0, 1], _free_port(), tmp_path)
  assert a["process_count"] == b["process_count"] == 2 and ref["process_count"] == 1
  for out in (a, b):
    for k in ("log_z", "stderr", "track_log_z"):
      np.testing.assert_allclose(out[k], ref[k], rtol=1e-9, err_msg=k)
    np.testing.assert_allclose(out["track_grad"], ref["track_grad"], rtol=1e-7, atol=1e-9)
  assert abs(ref["log_z"] - ref["exact"]) < 3 * ref["stderr"] + 0.05  # and it is right
