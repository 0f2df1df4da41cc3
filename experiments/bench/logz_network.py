"""Benchmark: every log Z estimator on the honest-QA network's own energy, against references.

The integral is the one the nested trainer needs: log ∫ N(θ₂′; m(θ₁), σ₂²) e^{−E(θ₁, θ₂′)}
over the main job's network (chained form, per-layer scales), at θ₁ where training starts and
after `train_steps` steps of the two-heads trainer (λC, no log Z: the θ₁ the experiments reach,
without an estimator choosing its own path).  The truth is not known in closed form, so the
yardstick is two independent tempered SMCs of `ref_particles` that must agree (the second with
more moves per β step; `tracking_network.references`, particles doubled until they do).  Each
method in `methods` (`logz_accuracy.OURS` names) runs `repeats` keys at N = `particles` (after
one compiling call, timed apart): error against the references' mean, its own SE, z = error /
√(SE² + ref SE²), wall time, and what it chose or flagged (`auto`'s start, `reliable`).  Nested sampling is not run at this dimension (it
needs ≥ 2d slice steps per replaced live point); the table says so.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from experiments.bench import tracking_network
from experiments.bench.logz_accuracy import OURS, ours_options
from lprior import logz
from lprior.honest_qa import experiment as hq
from lprior.honest_qa.model import model_for
from lprior.honest_qa.world import world_spec
from lprior.pytree import tree_size
from lprior.train import nested

NS_MAX_DIM = 200  # above it nested sampling's 2d slice steps per live point are not run here


def _thetas(cfg_hq, data, lam: float, steps: int, log=print):
  """(problem, tcfg, {step: θ₁}) of the two-heads trainer at λ: θ₁ at step 0 and `steps`."""
  tcfg = hq.group_train_config(cfg_hq, "two_heads")
  tcfg.lam = float(lam)
  model = model_for(world_spec(cfg_hq.world), cfg_hq.model)
  params0 = model.init(jax.random.key(1), data.x_small[0])
  problem, t1, t2 = nested.make_problem(model.apply_fn, params0, data, tcfg)
  state = nested.init(jax.random.key(2), problem, t1, t2, tcfg)
  out = {0: state.theta1}
  if steps:
    step = jax.jit(nested.make_step(problem, data, tcfg))
    t0 = time.perf_counter()
    for s in range(steps):
      state, _ = step(state, jax.numpy.asarray(s))
    jax.block_until_ready(state)
    log(f"    trained {steps} two-heads steps at λ = {lam:g} in {time.perf_counter() - t0:.0f} s")
    out[steps] = state.theta1
  return problem, tcfg, out


def _method_rows(name: str, problem, theta1, c, ref: float, ref_se: float) -> list[dict]:
  """`repeats` runs of method `name` at θ₁: error against the references, SE, wall, flags."""
  method, n, opts = ours_options(name, c.particles, c.mcmc_steps, c.target_ess)
  energy = lambda t2: problem.energy_fn(theta1, t2)
  mean = problem.mean_fn(theta1)
  run = lambda k: logz.estimate(k, energy, mean, problem.sigma2, method=method,
                                num_particles=n, **opts)
  t0 = time.perf_counter()
  float(run(jax.random.key(999)).log_z)  # compiles: timed apart
  first = time.perf_counter() - t0
  rows = []
  for rep in range(c.repeats):
    t0 = time.perf_counter()
    r = run(jax.random.key(1000 + rep))
    log_z = float(r.log_z)
    wall = time.perf_counter() - t0
    se = float(r.stderr) if np.isfinite(float(r.stderr)) else float("nan")
    info = r.info or {}
    rows.append(dict(method=name, rep=rep, log_z=log_z, error=log_z - ref, stderr=se,
                     z=(log_z - ref) / np.hypot(se if np.isfinite(se) else 0.0, ref_se),
                     wall_s=wall, first_call_s=first, grad_evals=int(r.num_grad_evals),
                     reliable=None if "reliable" not in info else bool(info["reliable"]),
                     choice=(info.get("auto") or {}).get("reference", "")))
  return rows


def run(cfg, log=print) -> dict:
  c = cfg.logz_network
  cfg_hq, data = tracking_network.one_seed(c.preset)
  cells = []
  for lam in c.lams:
    problem, tcfg, thetas = _thetas(cfg_hq, data, lam, c.train_steps, log)
    dim = tree_size(problem.mean_fn(thetas[0]))
    for step, theta1 in thetas.items():
      t0 = time.perf_counter()
      a, b, agree = tracking_network.references(jax.random.key(7 + step), problem, theta1, tcfg,
                                                c)
      ref, ref_se = 0.5 * (a["log_z"] + b["log_z"]), 0.5 * np.hypot(a["se"], b["se"])
      log(f"  λ = {lam:g}, step {step}, d = {dim}: references {a['log_z']:.2f} ± {a['se']:.2f} "
          f"/ {b['log_z']:.2f} ± {b['se']:.2f} (N = {a['num_particles']}, "
          f"{'agree' if agree else 'DISAGREE'}; {time.perf_counter() - t0:.0f} s)", flush=True)
      rows = []
      for name in c.methods.split(","):
        if OURS[name][0] == "ns" and dim > NS_MAX_DIM:
          log(f"    {name:12s} not run: d = {dim} > {NS_MAX_DIM}")
          continue
        rs = _method_rows(name, problem, theta1, c, ref, ref_se)
        rows += rs
        err = np.array([r["error"] for r in rs])
        log(f"    {name:12s} error {np.mean(err):+8.2f} (|err| median {np.median(np.abs(err)):.2f})"
            f"  SE {np.median([r['stderr'] for r in rs]):.2f}  z {np.median([r['z'] for r in rs]):+.1f}"
            f"  reliable {sum(bool(r['reliable']) for r in rs)}/{len(rs)}"
            f"  {np.median([r['wall_s'] for r in rs]):.1f} s {rs[0]['choice']}", flush=True)
      cells.append(dict(lam=lam, step=step, dim=dim, ref=ref, ref_se=ref_se, refs_agree=agree,
                        ref_particles=a["num_particles"], ref_a=a["log_z"], ref_b=b["log_z"],
                        rows=rows))
  return dict(preset=c.preset, cells=cells, skipped_ns_above_dim=NS_MAX_DIM)

