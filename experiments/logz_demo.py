"""A CPU-sized demo of the log Z estimators on a closed-form problem (DESIGN §1).

  python -m experiments.logz_demo [--dim=200] [--lam=100] [--num_particles=256] [--out=results/logz_demo]

Prints a table (estimate, error against the closed form, reported standard error, gradient
evaluations, seconds) and writes it as JSON and a bar plot of the errors.
"""

from __future__ import annotations

import json
import os
import time

from absl import app, flags
import jax
import jax.numpy as jnp

from lprior import logz
from lprior.testing import quadratic

_DIM = flags.DEFINE_integer("dim", 200, "dimension d of θ")
_LAM = flags.DEFINE_float("lam", 100.0, "λ")
_N = flags.DEFINE_integer("num_particles", 256, "particles")
_OUT = flags.DEFINE_string("out", "results/logz_demo", "output folder")


def main(_):
  P = quadratic.make(jax.random.key(0), _DIM.value, rank=16, diag=0.05)
  mean = 0.3 * jax.random.normal(jax.random.key(1), (_DIM.value,))
  energy = lambda t: _LAM.value * P.consistency(t)
  exact = float(P.log_z(mean, _LAM.value, 1.0))
  exact_samples = P.sample_conditional(jax.random.key(2), mean, _LAM.value, 1.0, _N.value)
  rows = []
  for method, opts in [("naive", {}), ("smc", {}), ("ti", {}), ("laplace", {}),
                       ("bdmc", dict(exact_samples=exact_samples, num_steps=200))]:
    t = time.perf_counter()
    r = logz.estimate(jax.random.key(3), energy, mean, 1.0, method=method,
                      num_particles=_N.value, **opts)
    jax.block_until_ready(r.log_z)
    row = dict(method=method, log_z=float(r.log_z), error=float(r.log_z) - exact,
               stderr=float(r.stderr), grad_evals=int(r.num_grad_evals or 0),
               seconds=time.perf_counter() - t)
    if method == "bdmc":
      row["upper"] = float(r.info["log_z_upper"])
    rows.append(row)
    print(f"{method:8s} log Z = {row['log_z']:10.3f}  error {row['error']:+8.3f}  "
          f"± {row['stderr']:.3f}  grads {row['grad_evals']:>9d}  {row['seconds']:6.1f}s"
          + (f"  (upper bound {row['upper']:.3f})" if "upper" in row else ""), flush=True)
  print(f"{'exact':8s} log Z = {exact:10.3f}   (d = {_DIM.value}, λ = {_LAM.value})")
  os.makedirs(_OUT.value, exist_ok=True)
  with open(os.path.join(_OUT.value, "results.json"), "w") as f:
    json.dump(dict(exact=exact, dim=_DIM.value, lam=_LAM.value, rows=rows), f, indent=1)
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6, 3))
  ax.bar([r["method"] for r in rows], [r["error"] for r in rows],
         yerr=[2 * r["stderr"] for r in rows], color="C0")
  ax.axhline(0, color="k", lw=0.8)
  ax.set_ylabel("log Z error (nats), ±2 SE")
  ax.set_title(f"d = {_DIM.value}, λ = {_LAM.value}, exact log Z = {exact:.1f}")
  fig.tight_layout()
  fig.savefig(os.path.join(_OUT.value, "errors.png"), dpi=120)
  print(f"wrote {_OUT.value}/results.json and errors.png")


if __name__ == "__main__":
  app.run(main)
