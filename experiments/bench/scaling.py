"""Benchmark 3: particle-gradient evaluations per second against devices, and parallel efficiency.

Each configuration runs in its own process(es) (the device count is fixed when JAX starts): 1,
2, 4 and 8 forced CPU devices in one process, and 2 processes x 4 devices over jax.distributed
(gloo on 127.0.0.1).  Efficiency = throughput / (devices x one-device throughput).  On a machine
with fewer cores than devices, the forced devices share cores, so efficiency must fall past the
core count: the table shows the core count beside it.  With `x64` the workers run in float64,
where every layout gives the same log Z (in float32 a flipped accept/resample decision can move
it: BUILD_NOTES, issue 17 item 4); the timings are float32's otherwise.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile

from lprior.xla import FAST_COMPILE_FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _launch(devices, dim, n, steps, processes=1, x64=False) -> dict:
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "out.json")
    base = [sys.executable, "-m", "experiments.bench.scaling_worker", out, str(devices), str(dim),
            str(n), str(steps)]
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_ENABLE_X64")}
    if x64:
      env["JAX_ENABLE_X64"] = "1"
    if os.environ.get("XLA_FLAGS", "").find("xla_backend_optimization_level") >= 0:
      env["XLA_FLAGS"] = FAST_COMPILE_FLAGS  # keep the caller's compile mode, not its devices
    port = _port()
    cmds = ([base] if processes == 1 else
            [base + [str(processes), str(i), str(port)] for i in range(processes)])
    procs = [subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for c in cmds]
    logs = [p.communicate(timeout=1200)[0] for p in procs]
    for p, log in zip(procs, logs):
      if p.returncode:
        raise RuntimeError(f"scaling worker failed ({' '.join(cmds[0][3:])}):\n{log[-3000:]}")
    with open(out) as f:
      return json.load(f)


def run(cfg, log=print) -> dict:
  c = cfg.scaling
  rows = []
  for devices, processes in [(d, 1) for d in c.devices] + ([(4, 2)] if c.multiprocess else []):
    r = _launch(devices, c.dim, c.num_particles, c.steps, processes, c.x64)
    rows.append(r)
  one = next(r for r in rows if r["devices"] == 1)
  for r in rows:
    r["speedup"] = r["grads_per_s"] / one["grads_per_s"]
    r["efficiency"] = r["speedup"] / r["devices"]
    log(f"  {r['processes']} process(es) x {r['devices'] // r['processes']} devices: "
        f"{r['grads_per_s']:,.0f} particle-grads/s, speed-up x{r['speedup']:.2f}, "
        f"efficiency {r['efficiency']:.2f}")
  return dict(cores=os.cpu_count(), dim=c.dim, num_particles=c.num_particles, rows=rows)
