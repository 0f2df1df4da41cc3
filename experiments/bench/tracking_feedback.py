"""Does a tracker drift because its own gradient chose the step?  (Closed-form quadratic.)

The trainer steps θ₁ with ∇θ₁ log Z read off the tracker's particles, then the same particles
weigh that step: the step and the weights share the particles' noise.  Here θ₁ descends
pull·‖θ₁‖²/2 + log Z(θ₁) plus a fixed random walk (pull = 2: curvature ≥ 1, as log Z curves by
more than −1 at σ = 1) on the chained quadratic of `lprior.testing.quadratic`, where log Z(θ₁)
and its gradient are exact.
Three paths, each followed by two independent trackers (same N, moves, metric):
  exact:  the step uses the exact ∇ log Z (no tracker chooses it);
  noise:  the exact ∇ plus independent noise as large as the chooser's error (the noise alone);
  own:    the step uses the first tracker's ∇ (the trainer's situation).
The first tracker (the chooser on 'own') and the second (a shadow that never chooses) are
compared with the exact log Z; the drift per step is the slope of the gap over the second half
of the path (after the fast initial descent).  A shadow with no drift beside a drifting chooser
says the drift is the feedback, not the estimator.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments.bench.tracking_network import cosine
from lprior.logz import tracking
from lprior.testing import quadratic

PATHS = ("exact", "noise", "own")


def run_path(path: str, c, log=print) -> dict:
  """Follow one path (module docstring) with a chooser and a shadow; gaps and drifts."""
  P = quadratic.make(jax.random.key(c.seed), c.dim, rank=16, diag=1.0, diag_spread=1.0,
                     lowrank_scale=3.0, center_scale=1.0)
  energy_fn, mean_fn = tracking.chained(lambda t2: c.lam * P.consistency(t2))
  kw = dict(energy_fn=energy_fn, mean_fn=mean_fn, sigma=1.0)
  opts = dict(num_mcmc_steps=c.mcmc_steps, max_moves=c.mcmc_steps, precondition=c.precondition)

  def start(i):  # as the trainer starts: a large SMC resampled to N
    st = tracking.init(jax.random.key(10 + i), jnp.zeros(c.dim), num_particles=256,
                       num_mcmc_steps=8, precondition=c.precondition, **kw)
    return tracking.resample_to(jax.random.key(20 + i), st, c.num_particles)

  update = jax.jit(lambda st, t1: tracking.update(st, t1, **kw, **opts))
  exact = jax.jit(lambda t1: (P.log_z(t1, c.lam, 1.0), P.grad_log_z(t1, c.lam, 1.0)))
  chooser, shadow = start(0), start(1)
  theta1 = jnp.zeros(c.dim)
  g_exact = exact(theta1)[1]  # then carried from the end of each step
  rows, t0 = [], time.perf_counter()
  for s in range(1, c.num_steps + 1):
    if path == "exact":
      g = g_exact
    elif path == "noise":
      z = jax.random.normal(jax.random.fold_in(jax.random.key(5), s), (c.dim,))
      g = g_exact + jnp.linalg.norm(chooser.grad_log_z - g_exact) * z / jnp.linalg.norm(z)
    else:
      g = chooser.grad_log_z
    walk = c.walk * jax.random.normal(jax.random.fold_in(jax.random.key(4), s), (c.dim,))
    theta1 = theta1 + c.lr * (-c.pull * theta1 - g) + walk / np.sqrt(c.dim)
    chooser, _ = update(chooser, theta1)
    shadow, _ = update(shadow, theta1)
    log_z, g_exact = exact(theta1)
    rows.append(dict(step=s, exact=float(log_z), chooser_gap=float(chooser.log_z - log_z),
                     shadow_gap=float(shadow.log_z - log_z),
                     chooser_cos=cosine(chooser.grad_log_z, g_exact),
                     shadow_cos=cosine(shadow.grad_log_z, g_exact)))
  half = rows[len(rows) // 2:]
  steps = np.array([r["step"] for r in half], float)
  drift = {who: float(np.polyfit(steps, [r[f"{who}_gap"] for r in half], 1)[0])
           for who in ("chooser", "shadow")}
  last = rows[-1]
  out = dict(path=path, chooser_drift_per_step=drift["chooser"],
             shadow_drift_per_step=drift["shadow"], chooser_gap=last["chooser_gap"],
             shadow_gap=last["shadow_gap"], gap_at_half=half[0]["chooser_gap"],
             shadow_gap_at_half=half[0]["shadow_gap"], chooser_cos=last["chooser_cos"],
             shadow_cos=last["shadow_cos"], log_z_end=last["exact"],
             wall_s=time.perf_counter() - t0)
  log(f"  {path:>5}: drift per step chooser {out['chooser_drift_per_step']:+.3f}, shadow "
      f"{out['shadow_drift_per_step']:+.3f} nats; gap at the end {out['chooser_gap']:+.1f} / "
      f"{out['shadow_gap']:+.1f} (at half {out['gap_at_half']:+.1f} / "
      f"{out['shadow_gap_at_half']:+.1f}); cos {out['chooser_cos']:.3f} / {out['shadow_cos']:.3f}",
      flush=True)
  return dict(out, rows=rows)


def run(cfg, log=print) -> dict:
  c = cfg.tracking_feedback
  unknown = set(c.paths.split(",")) - set(PATHS)
  if unknown:
    raise ValueError(f"tracking_feedback.paths names unknown paths {sorted(unknown)}; choose "
                     f"from {PATHS}")
  return dict(paths=[run_path(p, c, log) for p in c.paths.split(",")],
              config=c.to_dict())
