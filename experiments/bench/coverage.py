"""Benchmark: are the SMC error bars honest about themselves?

Per cell (target, d, λ) of `problems` and per number of batches B (1: one run, SE from its
genealogy; B > 1: `logz.batches`, SE from the batches' spread), `repeats` independent runs of
method='smc' at N particles.  Reported: the share flagged unreliable (`logz.reliability`), the
coverage of ±2 SE among the runs not flagged (target 0.9–0.99), and among the runs whose error
exceeds 2 SE the share flagged (target ≥ 0.9).  The repeats are one vmapped call per cell.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from experiments.bench import problems
from lprior import logz


def _runs(prob: problems.Problem, num_particles: int, num_batches: int, repeats: int,
          seed: int, opts: dict) -> dict:
  """{error, stderr, reliable, reasons...} arrays over `repeats` keys."""

  def one(key):
    r = logz.estimate(key, prob.energy_fn, prob.mean, 1.0, method="smc",
                      num_particles=num_particles, num_batches=num_batches, **opts)
    return dict(log_z=r.log_z, stderr=r.stderr, reliable=r.info["reliable"],
                **r.info["reliability"])

  keys = jax.random.split(jax.random.key(seed), repeats)
  out = jax.device_get(jax.jit(jax.vmap(one))(keys))
  out["error"] = np.asarray(out.pop("log_z"), np.float64) - prob.exact_log_z
  return out


def summarise(out: dict) -> dict:
  """Coverage of ±2 SE where reliable; the flag's hit rate where the error exceeds 2 SE."""
  err, se, ok = np.abs(out["error"]), np.asarray(out["stderr"]), np.asarray(out["reliable"])
  miss = err > 2.0 * se
  reasons = {k: float(np.mean(v)) for k, v in out.items()
             if k not in ("error", "stderr", "reliable")}
  return dict(
      repeats=int(err.size), reliable=float(np.mean(ok)),
      coverage=float(np.mean(~miss[ok])) if ok.any() else float("nan"),
      misses=int(miss.sum()),
      flagged_misses=float(np.mean(~ok[miss])) if miss.any() else float("nan"),
      mean_abs_error=float(np.mean(err)), median_stderr=float(np.median(se)),
      bias=float(np.mean(out["error"])), reasons=reasons,
      coverage_ok=bool(not ok.any() or 0.9 <= np.mean(~miss[ok]) <= 0.99),
      flag_ok=bool(not miss.any() or np.mean(~ok[miss]) >= 0.9))


def run(cfg, log=print) -> dict:
  c = cfg.coverage
  rows = []
  for cell in c.cells:
    target, d, lam = cell.split(":")
    prob = problems.make(int(d), float(lam), kind=target)
    for b in c.batches:
      t0 = time.perf_counter()
      out = _runs(prob, c.particles, b, c.repeats, c.seed,
                  dict(num_mcmc_steps=cfg.mcmc_steps, target_ess=cfg.target_ess))
      s = summarise(out)
      s.update(target=target, d=int(d), lam=float(lam), num_batches=b, N=c.particles,
               wall_s=time.perf_counter() - t0)
      rows.append(s)
      log(f"  {target:>10} d={d:>5} λ={lam:>6} B={b:>2}: reliable {s['reliable']:.2f}, "
          f"±2SE coverage {s['coverage']:.2f}, misses {s['misses']}/{s['repeats']} flagged "
          f"{s['flagged_misses']:.2f}; |err| {s['mean_abs_error']:.3f}, SE "
          f"{s['median_stderr']:.3f} ({s['wall_s']:.0f} s)")
  return dict(rows=rows)
