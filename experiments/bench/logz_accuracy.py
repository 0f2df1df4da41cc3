"""Benchmark 1: log Z accuracy against compute, ours beside BlackJAX's adaptive tempered SMC.

For every target with an exact log Z (`problems.KINDS`: the quadratic, a mixture of unequal
bumps, a spike-and-slab phase transition), (d, λ), budget (particles N) and repeat: each estimator's error in
nats against the exact log Z, its gradient evaluations and its wall time (compiled once before,
timed apart).  Our SMC and BlackJAX's run with the same N, MCMC steps per tempering step and
target ESS, so their budgets match up to the adaptive number of steps.  Also the tracking
estimator against fresh SMC runs of equal accuracy (`tracking_vs_fresh`).
"""

from __future__ import annotations

import importlib.util
from collections import defaultdict

import jax
import jax.numpy as jnp
import numpy as np

from experiments.bench import blackjax_smc, problems
from experiments.bench.timing import median_wall, wall
from lprior import logz
from lprior.logz import tracking
from lprior.testing import quadratic

# name -> (our estimate's method, options); 'ti' is read from the 'smc' run
OURS = {
    "smc": ("smc", dict(precondition="lowrank")),
    "smc_diag": ("smc", dict(precondition="diag")),
    "smc_laplace": ("smc", dict(precondition="lowrank", reference="laplace")),
    # waste-free at about smc's gradient budget: 4N particles in N/4 chains of 16 states
    # (4N · 15/16 · 2 ≈ 7.5N evaluations per step against smc's 9N)
    "smc_wf": ("smc", dict(precondition="lowrank", waste_free=16, particle_factor=4)),
    # a partition of unity over the prior and the modes Newton reaches (one SMC per piece)
    "smc_modes": ("smc", dict(precondition="lowrank", reference="modes")),
    "auto": ("auto", dict(precondition="lowrank")),  # prior or Laplace start, by the pilot
    "ais": ("ais", dict(num_steps=64)),
    "naive": ("naive", {}),
    "laplace": ("laplace", {}),
    "ns": ("ns", {}),
    "ns_plain": ("ns", dict(live_range=None)),  # the usual stop: remaining evidence < dlogz
}


def ours_options(name: str, n: int, mcmc_steps: int, target_ess: float
                 ) -> tuple[str, int, dict]:
  """(method, particles, options) that `logz.estimate` takes for our estimator `name` (OURS) at
  the budget of n particles, mcmc_steps moves per β step and the target ESS."""
  method, opts = OURS[name]
  opts = dict(opts)
  n = n * opts.pop("particle_factor", 1)  # the row keeps the budget's N; grad_evals the cost
  if method in ("smc", "ais", "auto"):
    opts = dict(opts, num_mcmc_steps=mcmc_steps)
  if method in ("smc", "auto"):
    opts = dict(opts, target_ess=target_ess)
  return method, n, opts


def _ours(name: str, prob: problems.Problem, n: int, mcmc_steps: int, target_ess: float):
  method, n, opts = ours_options(name, n, mcmc_steps, target_ess)

  def run(i):
    r = logz.estimate(jax.random.key(i), prob.energy_fn, prob.mean, 1.0, method=method,
                      num_particles=n, **opts)
    info = r.info or {}
    return dict(log_z=r.log_z, stderr=r.stderr, grad_evals=r.num_grad_evals,
                energy_evals=r.num_energy_evals, steps=r.num_steps, ti=info.get("ti"),
                ancestors=info.get("num_ancestors"))
  return run


def _blackjax(prob: problems.Problem, n: int, mcmc_steps: int, target_ess: float):
  def run(i):
    r = blackjax_smc.log_z(jax.random.key(i), prob.mean, 1.0, energy_fn=prob.energy_fn,
                           num_particles=n, num_mcmc_steps=mcmc_steps, target_ess=target_ess)
    return dict(log_z=r["log_z"], stderr=jnp.nan, grad_evals=r["num_grad_evals"],
                energy_evals=0, steps=r["num_steps"], ti=None, ancestors=None)
  return run


def _jaxns(prob: problems.Problem, n: int):
  from experiments.bench import jaxns_ns  # (jaxns is the bench's optional peer: `.[bench]`)

  def run(i):
    r = jaxns_ns.log_z(jax.random.key(i), prob.mean, 1.0, energy_fn=prob.energy_fn, num_live=n)
    return dict(log_z=r["log_z"], stderr=r["stderr"], grad_evals=0,
                energy_evals=r["num_energy_evals"], steps=0, ti=None, ancestors=None)
  return run


def _rows(name, prob, n, outs, med_s, first_s):
  rows = []
  for rep, o in enumerate(outs):
    for label, value in ((name, o["log_z"]), ("ti", o["ti"])):
      if value is None or (label == "ti" and name != "smc"):
        continue
      rows.append(dict(target=prob.kind, d=prob.dim, lam=prob.lam, method=label,
                       num_particles=n, rep=rep,
                       log_z=float(value), exact=prob.exact_log_z,
                       error=float(value) - prob.exact_log_z,
                       stderr=float(o["stderr"]) if label == name else float("nan"),
                       grad_evals=int(o["grad_evals"]) if o["grad_evals"] is not None else 0,
                       energy_evals=int(o["energy_evals"] or 0),
                       steps=int(o["steps"]) if o["steps"] is not None else 0,
                       ancestors=int(o["ancestors"]) if o["ancestors"] is not None else -1,
                       wall_s=med_s, first_call_s=first_s))
  return rows


def logz_summary(rows: list[dict]) -> list[dict]:
  """Median |error|, stderr, gradient evaluations and wall time per (target, d, λ, method, N)."""
  groups = defaultdict(list)
  for r in rows:
    groups[(r.get("target", "quadratic"), r["d"], r["lam"], r["method"], r["num_particles"])
           ].append(r)
  out = []
  for (target, d, lam, method, n), rs in sorted(groups.items()):
    out.append(dict(target=target, d=d, lam=lam, method=method, N=n,
                    abs_error=float(np.median([abs(r["error"]) for r in rs])),
                    mean_abs_error=float(np.mean([abs(r["error"]) for r in rs])),
                    abs_error_se=float(np.std([abs(r["error"]) for r in rs], ddof=1)
                                       / np.sqrt(len(rs))) if len(rs) > 1 else float("nan"),
                    bias=float(np.mean([r["error"] for r in rs])),
                    bias_se=float(np.std([r["error"] for r in rs], ddof=1) / np.sqrt(len(rs)))
                    if len(rs) > 1 else float("nan"), repeats=len(rs),
                    stderr=float(np.median([r["stderr"] for r in rs])),
                    grad_evals=int(np.median([r["grad_evals"] for r in rs])),
                    energy_evals=int(np.median([r.get("energy_evals", 0) for r in rs])),
                    ancestors=int(np.median([r["ancestors"] for r in rs])),
                    wall_s=rs[0]["wall_s"], first_call_s=rs[0]["first_call_s"]))
  return out


def smc_vs_blackjax(summary: list[dict],
                    ours: tuple[str, ...] = ("smc", "smc_diag", "smc_laplace", "smc_wf",
                                             "smc_modes", "auto")) -> list[dict]:
  """Per our SMC variant and (d, λ, N): its and BlackJAX's median |error|, gradient evaluations,
  wall time, and z = (ours − BlackJAX's mean |error|) / SE of that difference; the targets: error
  no worse (z ≤ 2, or both medians within 0.1 nat) at ≤ 1.2x wall."""
  idx = {(s.get("target", "quadratic"), s["d"], s["lam"], s["method"], s["N"]): s
         for s in summary}
  out = []
  for (target, d, lam, m, n), s in sorted(idx.items(), key=lambda kv: (kv[0][3], kv[0])):
    b = idx.get((target, d, lam, "blackjax", n))
    if m not in ours or b is None:
      continue
    z = ((s["mean_abs_error"] - b["mean_abs_error"])
         / np.sqrt(s["abs_error_se"] ** 2 + b["abs_error_se"] ** 2))
    out.append(dict(ours=m, target=target, d=d, lam=lam, N=n, ours_err=s["abs_error"],
                    bj_err=b["abs_error"],
                    z=float(z), ours_grads=s["grad_evals"], bj_grads=b["grad_evals"],
                    ours_s=s["wall_s"], bj_s=b["wall_s"], wall_ratio=s["wall_s"] / b["wall_s"],
                    error_ok=bool(z <= 2.0 or max(s["abs_error"], b["abs_error"]) <= 0.1),
                    wall_ok=bool(s["wall_s"] <= 1.2 * b["wall_s"])))
  return out


def run(cfg, log=print) -> dict:
  """rows: one per (d, λ, method, N, repeat) (wall_s: the median over the repeats); summary
  per (d, λ, method, N); vs_blackjax: the targets."""
  methods = cfg.methods.split(",")
  unknown = set(methods) - set(OURS) - {"blackjax", "jaxns"}
  if unknown:
    raise ValueError(f"config.methods names unknown estimators {sorted(unknown)}; "
                     f"choose from {sorted(OURS) + ['blackjax', 'jaxns']}")
  if "jaxns" in methods and importlib.util.find_spec("jaxns") is None:
    raise ImportError("methods names 'jaxns' but jaxns is not installed: pip install -e '.[bench]'"
                      " (or drop it from the methods)")
  targets = [t for t in cfg.get("targets", "quadratic").split(",") if t]
  unknown = set(targets) - set(problems.KINDS)
  if unknown:
    raise ValueError(f"config.targets names unknown targets {sorted(unknown)}; choose from "
                     f"{problems.KINDS}")
  rows = []
  for target in targets:
    rows += _target_rows(cfg, target, methods, log)
  summary = logz_summary(rows)
  return dict(rows=rows, summary=summary, vs_blackjax=smc_vs_blackjax(summary))


def _target_rows(cfg, target: str, methods: list[str], log) -> list[dict]:
  """The rows of one target over the d × λ × N grid."""
  rows = []
  for d in cfg.dims:
    large = d >= cfg.large.dim  # big d: fewer budgets and repeats (each run takes minutes)
    particles = cfg.large.particles if large else cfg.particles
    repeats = cfg.large.repeats if large else cfg.repeats
    for lam in cfg.lams:
      prob = problems.make(d, lam, kind=target)
      for n in particles:
        runners = {name: _ours(name, prob, n, cfg.mcmc_steps, cfg.target_ess)
                   for name in methods if name not in ("blackjax", "jaxns")}
        if "blackjax" in methods:
          runners["blackjax"] = _blackjax(prob, n, cfg.mcmc_steps, cfg.target_ess)
        if "jaxns" in methods:
          runners["jaxns"] = _jaxns(prob, n)
        for name, fn in runners.items():
          if name in ("laplace",) and n != particles[0]:
            continue  # deterministic: no particles
          outs, med, first = median_wall(fn, repeats)
          rows += _rows(name, prob, n, outs, med, first)
          errs = [abs(float(o["log_z"]) - prob.exact_log_z) for o in outs]
          log(f"  {target:>10} d={d:>6} λ={lam:>6g} N={n:>4} {name:>9}: |err| "
              f"{np.median(errs):7.3f} nats, {med:7.3f} s (first call {first:.1f} s)")
  return rows


def tracking_vs_fresh(cfg, log=print) -> dict:
  """The tracking estimator along an optimiser-like path of θ₁ (DESIGN §2) against fresh SMC.

  Per outer step: tracking's median |error| and cost (wall, gradient evaluations); fresh SMC at
  a ladder of N: median |error| and cost at one θ₁ of the path.  The fresh run of equal
  accuracy is the cheapest whose median error is at most tracking's."""
  t = cfg.tracking
  prob = problems.make(t.dim, t.lam, rank=t.rank)
  P, lam = prob.P, t.lam
  energy_fn, mean_fn = tracking.chained(prob.energy_fn)
  theta1 = P.c + 0.3 * jax.random.normal(jax.random.key(100), (t.dim,))
  theta2 = P.c + 3.0 * jax.random.normal(jax.random.key(7), (t.dim,))
  path = quadratic.ascent_path(P, lam, theta1, theta2, t.num_steps)
  exact = np.array([float(P.log_z(th, lam, 1.0)) for th in path])
  opts = dict(precondition="lowrank", rank=t.metric_rank)
  state, _ = wall(lambda: tracking.init(jax.random.key(3), theta1, energy_fn=energy_fn,
                                        mean_fn=mean_fn, sigma=1.0, num_particles=t.num_particles,
                                        num_mcmc_steps=t.init_mcmc_steps, **opts))
  errs, times, grads = [], [], []
  for i, th in enumerate(path):
    (state, info), s = wall(lambda: tracking.update(state, th, energy_fn=energy_fn,
                                                     mean_fn=mean_fn, sigma=1.0,
                                                     num_mcmc_steps=t.mcmc_steps, **opts))
    errs.append(abs(float(info["log_z"]) - exact[i]))
    if i > 0:  # the first update compiles
      times.append(s)
  # per particle: 1 value-and-gradient at the new θ₁, the MALA steps, 1 refresh, ∇θ₁E; + metric
  per_step_grads = t.num_particles * (t.mcmc_steps + 3) + 4 * t.metric_rank
  track = dict(median_error=float(np.median(errs)), max_error=float(np.max(errs)),
               wall_s=float(np.median(times)), grad_evals=per_step_grads,
               log_z_moved=float(exact[0] - exact[-1]), steps=len(path))
  log(f"  tracking: median |err| {track['median_error']:.3f} nats (max {track['max_error']:.3f}) "
      f"over {len(path)} steps moving log Z by {track['log_z_moved']:.0f} nats; "
      f"{track['wall_s'] * 1e3:.1f} ms/step")
  fresh = []
  mid = path[len(path) // 2]
  e_mid = float(P.log_z(mid, lam, 1.0))
  for n in t.fresh_particles:
    fn = lambda i, n=n: logz.estimate(jax.random.key(i), prob.energy_fn, mid, 1.0,
                                      method="smc", num_particles=n, **opts)
    outs, med, _ = median_wall(fn, t.fresh_repeats)
    err = float(np.median([abs(float(o.log_z) - e_mid) for o in outs]))
    fresh.append(dict(num_particles=n, median_error=err, wall_s=med,
                      grad_evals=int(np.median([int(o.num_grad_evals) for o in outs]))))
    log(f"  fresh SMC N={n:>4}: median |err| {err:.3f} nats, {med:.3f} s")
  equal = [f for f in fresh if f["median_error"] <= track["median_error"]]
  ref = min(equal, key=lambda f: f["wall_s"]) if equal else max(fresh, key=lambda f: f["wall_s"])
  return dict(tracking=track, fresh=fresh, reference=ref, reached=bool(equal),
              wall_ratio=track["wall_s"] / ref["wall_s"],
              grad_ratio=track["grad_evals"] / ref["grad_evals"])
