"""One process of the scaling benchmark: tracking updates (the training workload) with the
particles sharded over every device of the job; prints/writes particle-gradient evaluations per
second.  Run by `experiments.bench.scaling`:

  python -m experiments.bench.scaling_worker OUT_JSON DEVICES DIM PARTICLES STEPS [PROCESSES PID PORT]
"""

import json
import sys

import jax


def main(argv):
  out, devices, dim, n, steps = argv[1], int(argv[2]), int(argv[3]), int(argv[4]), int(argv[5])
  processes = int(argv[6]) if len(argv) > 6 else 1
  jax.config.update("jax_num_cpu_devices", devices)
  if processes > 1:
    from lprior import distributed
    distributed.initialize(f"127.0.0.1:{argv[8]}", processes, int(argv[7]), cpu_collectives="gloo")

  import numpy as np

  from experiments.bench import problems
  from experiments.bench.timing import wall
  from lprior.logz import tracking

  prob = problems.make(dim, 100.0)
  mesh = jax.make_mesh((jax.device_count(),), ("particles",))
  energy_fn, mean_fn = tracking.chained(prob.energy_fn)
  opts = dict(precondition="diag", num_mcmc_steps=2)
  theta1 = prob.mean
  state = tracking.init(jax.random.key(0), theta1, energy_fn=energy_fn, mean_fn=mean_fn,
                        sigma=1.0, num_particles=n, mesh=mesh, **opts)
  times = []
  for s in range(steps + 1):
    theta1 = theta1 + 1e-3
    (state, info), t = wall(lambda: tracking.update(state, theta1, energy_fn=energy_fn,
                                                     mean_fn=mean_fn, sigma=1.0, mesh=mesh,
                                                     **opts))
    if s:  # the first update compiles
      times.append(t)
  per_update = n * (opts["num_mcmc_steps"] + 3)  # value+grad at θ₁′, MALA steps, refresh, ∇θ₁E
  step_s = float(np.median(times))
  result = dict(devices=jax.device_count(), processes=jax.process_count(), dim=dim,
                dtype=str(info["log_z"].dtype),
                num_particles=n, step_s=step_s, grads_per_s=per_update / step_s,
                log_z=float(jax.device_get(info["log_z"]) if info["log_z"].is_fully_addressable
                            else info["log_z"].addressable_data(0)))
  if jax.process_index() == 0:
    with open(out, "w") as f:
      json.dump(result, f)


if __name__ == "__main__":
  main(sys.argv)
