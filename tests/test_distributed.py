"""2 local processes over `jax.distributed` (gloo collectives on 127.0.0.1, 4 CPU devices each)
give the same numbers as one process with 8 devices, for the same key."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np

from lprior.xla import FAST_COMPILE_FLAGS

WORKER = pathlib.Path(__file__).with_name("distributed_worker.py")


def _run(pids, port, tmp_path):
  """Start every process at once (the reference overlaps the pair), wait, read their JSON."""
  env = dict(os.environ, XLA_FLAGS=FAST_COMPILE_FLAGS)  # the worker sets its device count
  procs = [subprocess.Popen([sys.executable, str(WORKER), str(p), str(port),
                             str(tmp_path / f"out{p}.json")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True) for p in pids]
  logs = [p.communicate(timeout=600)[0] for p in procs]
  for p, log in zip(procs, logs):
    assert p.returncode == 0, log[-4000:]
  return [json.loads((tmp_path / f"out{p}.json").read_text()) for p in pids]


def test_two_processes_match_one_process(tmp_path, free_port):
  ref, a, b = _run([-1, 0, 1], free_port, tmp_path)
  assert a["process_count"] == b["process_count"] == 2 and ref["process_count"] == 1
  for out in (a, b):
    for k in ("log_z", "stderr", "track_log_z"):
      np.testing.assert_allclose(out[k], ref[k], rtol=1e-9, err_msg=k)
    np.testing.assert_allclose(out["track_grad"], ref["track_grad"], rtol=1e-7, atol=1e-9)
  assert abs(ref["log_z"] - ref["exact"]) < 3 * ref["stderr"] + 0.05  # and it is right
  for out in (a, b):  # the honest-QA group: every process reads the same replicated results
    assert out["honest_qa_final"].keys() == ref["honest_qa_final"].keys()
    for k, v in ref["honest_qa_final"].items():
      np.testing.assert_allclose(out["honest_qa_final"][k], v, rtol=0, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(out["honest_qa_log_likelihood"], ref["honest_qa_log_likelihood"],
                               rtol=1e-6)


def test_importing_lprior_and_configs_leaves_the_backend_unstarted():
  """`jax.distributed.initialize` must come before the XLA backend starts, and launchers call it
  after loading their config: no lprior module or config may start the backend on import."""
  code = """
import importlib, pkgutil
import jax._src.xla_bridge as xb
import experiments.configs, lprior
mods = [m.name for m in pkgutil.walk_packages(lprior.__path__, "lprior.")]
mods += [m.name for m in pkgutil.iter_modules(experiments.configs.__path__, "experiments.configs.")]
for name in mods:
  mod = importlib.import_module(name)
  if hasattr(mod, "get_config"):
    mod.get_config()
  assert not xb._backends, f"importing {name} started the XLA backend"
print(len(mods))
"""
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert int(out.stdout.split()[-1]) > 60
