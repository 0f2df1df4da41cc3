"""One process of the 2-process test: `python distributed_worker.py PROCESS_ID PORT OUT_JSON`.

With PROCESS_ID = -1 it runs alone on 8 local devices (the reference).  Otherwise it joins a
2-process `jax.distributed` job on 127.0.0.1 (gloo collectives, 4 CPU devices each) and runs
a tempered SMC (the tracking init) and a tracking update over the global 8-device mesh, then a
two-step honest-QA group (arms x seeds sharded over every process's devices)."""

import json
import sys

import jax
import numpy as np

pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
jax.config.update("jax_enable_x64", True)
if pid < 0:
  jax.config.update("jax_num_cpu_devices", 8)
else:
  jax.config.update("jax_num_cpu_devices", 4)

from lprior import distributed  # noqa: E402

if pid >= 0:
  distributed.initialize(f"127.0.0.1:{port}", 2, pid, cpu_collectives="gloo")

from lprior.logz import tracking  # noqa: E402
from lprior.testing import quadratic as q  # noqa: E402

assert jax.device_count() == 8, jax.devices()
mesh = jax.make_mesh((8,), ("particles",))
lam, d = 30.0, 20
P = q.make(jax.random.key(0), d, rank=4, diag=0.5, dtype=np.float64)
mean = 0.3 * np.asarray(jax.random.normal(jax.random.key(1), (d,), np.float64))
energy = lambda th: lam * P.consistency(th)
ef, mf = tracking.chained(energy)
# the init is a tempered SMC estimate (sharded); the update exercises transport, moves, ∇
state = tracking.init(jax.random.key(3), mean, energy_fn=ef, mean_fn=mf, sigma=1.0,
                      num_particles=64, mesh=mesh, num_mcmc_steps=2)
smc_log_z, smc_stderr = state.log_z, state.log_z_var ** 0.5
state, info = tracking.update(state, mean + 0.05, energy_fn=ef, mean_fn=mf, sigma=1.0, mesh=mesh)
host = distributed.host_value
result = dict(process_count=jax.process_count(), log_z=float(host(smc_log_z)),
              stderr=float(host(smc_stderr)), exact=float(P.log_z(mean, lam, 1.0)),
              track_log_z=float(host(info["log_z"])),
              track_grad=host(info["grad_theta1"]).tolist())

from experiments.configs.honest_qa import get_config  # noqa: E402
from lprior.honest_qa import experiment  # noqa: E402

cfg = get_config("smoke")
cfg.variants, cfg.lam_sweep, cfg.num_steps, cfg.eval_every = "b_two_heads", (), 2, 2
data, splits, keys = experiment.seed_data(cfg)
group = experiment.run_group(cfg, "two_heads", experiment.plan(cfg)["two_heads"], data, splits,
                             keys, None)
history, final = group["b_two_heads"]
result["honest_qa_final"] = {k: np.asarray(v).tolist() for k, v in final.items()}
result["honest_qa_log_likelihood"] = [r["log_likelihood"] for r in history]
with open(out, "w") as f:
  json.dump(result, f)
