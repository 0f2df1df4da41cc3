"""Benchmark 4: peak memory of the tracking update against particles N and dimension d.

XLA's compiled memory analysis of one tracking update (arguments + outputs + temporaries −
donated aliases) is the peak the program needs; it costs no allocation, so it also sizes
problems far beyond this machine's memory.  A few points are checked against the peak resident
memory of a fresh process that runs them.  The reference is N·d·bytes: one copy of the particles.  The problem is the benchmark
quadratic (rank-32 BᵀB), λ = 100, the diagonal metric, 2 MALA moves per update.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

GIB = 2.0**30
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _update_fn(dim: int, n: int, rank: int, precondition: str):
  """(jitted update(state, θ₁′, problem), init(θ₁, problem), problem) of a tracking update on the
  quadratic of `dim`; the problem's arrays are arguments, so a compile-only analysis of a huge d
  holds no constants."""
  from lprior.logz import tracking
  from lprior.testing.quadratic import Quadratic

  opts = dict(precondition=precondition, num_mcmc_steps=2)

  def fns(P):
    return tracking.chained(lambda th: 100.0 * P.consistency(th))

  def init(th, P):
    energy_fn, mean_fn = fns(P)
    return tracking.init(jax.random.key(0), th, energy_fn=energy_fn, mean_fn=mean_fn, sigma=1.0,
                         num_particles=n, **opts)

  def update(state, th, P):
    energy_fn, mean_fn = fns(P)
    return tracking.update(state, th, energy_fn=energy_fn, mean_fn=mean_fn, sigma=1.0, **opts)

  shape = lambda *s: jax.ShapeDtypeStruct(s, jnp.float32)
  P = Quadratic(shape(dim), shape(rank, dim), shape(dim))
  return jax.jit(update, donate_argnums=0), init, P, shape(dim)


def analysed_bytes(dim: int, n: int, rank: int = 32, precondition: str = "diag") -> dict:
  """XLA's peak estimate of one tracking update (compile only)."""
  update, init, P, theta = _update_fn(dim, n, rank, precondition)
  state = jax.eval_shape(init, theta, P)
  m = update.lower(state, theta, P).compile().memory_analysis()
  peak = (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
          - m.alias_size_in_bytes)
  return dict(dim=dim, num_particles=n, peak_bytes=int(peak), temp_bytes=int(m.temp_size_in_bytes),
              argument_bytes=int(m.argument_size_in_bytes),
              particle_bytes=n * dim * 4, ratio=peak / (n * dim * 4))


def _measure_in_process(dim: int, n: int, rank: int, precondition: str) -> dict:
  """Run init + a few updates here; peak RSS before and after (call in a fresh process)."""
  from experiments.bench.timing import peak_rss_bytes
  from experiments.bench import problems
  update, init, _, _ = _update_fn(dim, n, rank, precondition)
  P = problems.make(dim, 100.0, rank=rank).P
  theta = jnp.zeros(dim)
  state = jax.jit(init)(theta, P)
  jax.block_until_ready(state)
  base = peak_rss_bytes()
  for _ in range(3):
    theta = theta + 1e-3
    state, _ = update(state, theta, P)
  jax.block_until_ready(state)
  return dict(dim=dim, num_particles=n, rss_peak_bytes=peak_rss_bytes(), rss_before_bytes=base)


def measured_bytes(dim: int, n: int, rank: int = 32, precondition: str = "diag") -> dict:
  """Peak resident memory of a fresh process running init + 3 updates."""
  code = (f"import json; from experiments.bench.memory import _measure_in_process as m; "
          f"print(json.dumps(m({dim}, {n}, {rank}, {precondition!r})))")
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=1200)
  if out.returncode:
    raise RuntimeError(out.stderr[-3000:])
  return json.loads(out.stdout.strip().splitlines()[-1])


def largest_fit(budget_bytes: float, n: int, grid: list[dict], rank: int = 32,
                precondition: str = "diag") -> dict:
  """The largest d (at N particles) whose analysed peak fits in `budget_bytes`: the peak is
  linear in d at fixed N, so a line through the grid's two largest d at this N predicts it,
  and compile-only analyses refine it (bisection to 1%)."""
  pts = sorted((g["dim"], g["peak_bytes"]) for g in grid if g["num_particles"] == n)[-2:]
  (d0, b0), (d1, b1) = pts
  slope = (b1 - b0) / (d1 - d0)
  guess = int(d1 + (budget_bytes - b1) / slope)
  fits = lambda d: analysed_bytes(d, n, rank, precondition)["peak_bytes"] <= budget_bytes
  lo, hi = int(guess * 0.9), int(guess * 1.1)
  while not fits(lo):
    lo, hi = int(lo * 0.8), lo
  while fits(hi):
    lo, hi = hi, int(hi * 1.2)
  while hi / lo > 1.01:
    mid = int(np.sqrt(lo * hi))
    lo, hi = (mid, hi) if fits(mid) else (lo, mid)
  r = analysed_bytes(lo, n, rank, precondition)
  return dict(r, predicted_dim=guess)


def run(cfg, log=print) -> dict:
  c = cfg.memory
  grid = []
  for n in c.particles:
    for d in c.dims:
      r = analysed_bytes(d, n)
      grid.append(r)
      log(f"  N={n:>5} d={d:>8}: peak {r['peak_bytes'] / 2**20:9.1f} MiB = "
          f"{r['ratio']:.2f} x N·d·4 bytes")
  checks = []
  for n, d in c.measure:
    m = measured_bytes(d, n)
    a = next((g for g in grid if g["dim"] == d and g["num_particles"] == n), None) or \
        analysed_bytes(d, n)
    m.update(analysed_peak_bytes=a["peak_bytes"],
             growth_bytes=m["rss_peak_bytes"] - m["rss_before_bytes"])
    checks.append(m)
    log(f"  measured N={n} d={d}: process peak RSS {m['rss_peak_bytes'] / 2**20:.0f} MiB "
        f"(analysed program peak {a['peak_bytes'] / 2**20:.0f} MiB)")
  fit = [largest_fit(c.budget_gib * GIB, n, grid) for n in c.fit_particles]
  for f in fit:
    log(f"  largest d in {c.budget_gib:g} GiB at N={f['num_particles']}: {f['dim']:,} "
        f"(N·d = {f['num_particles'] * f['dim']:.3g})")
  return dict(grid=grid, measured=checks, largest=fit, budget_gib=c.budget_gib)
