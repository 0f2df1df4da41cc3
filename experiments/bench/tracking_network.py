"""Benchmark: the tracked log Z and ∇θ₁ log Z on the main job's own network, during training.

For each cell (form, λ, κ) one seed of the honest-QA world at the main job's sizes is trained by
the nested trainer as the main job configures it (its self-checks included).  At every
comparison step, *before* that step's own check, the tracker's log Z(θ₁) and ∇θ₁ log Z (at the
θ₁ its particles stand at) are compared with a fresh tempered SMC of `ref_particles`, itself
checked against a second independent one:
  - the two references must agree (log Z within 3 combined SE, gradient cosine ≥ `min_cosine`);
    else their particles are doubled (up to `ref_max_particles`) and, failing that, the
    checkpoint is *unverified* (both values kept).  The second runs `ref_check_mcmc_steps`
    moves per β step (more than the first's `ref_mcmc_steps`): two identical SMC runs agree
    with each other when both are biased alike by poor mixing (at λ = 100, 8 moves are ~1 nat
    low: BUILD_NOTES), a better-mixed one does not;
  - passed: |tracked − reference| ≤ max(1 nat, 3 combined SE) and cosine(∇ tracked, ∇ reference)
    ≥ `min_cosine`; the references' own gradient cosine is reported as the yardstick.
Cost: the trainer's median step time (sub-steps, re-anchors and amortised checks included)
against plain SGD's on the same data, and the tracker's sub-steps and moves per step.
A cell with `train.logz='fresh'` is compared with what its next step uses: a fresh SMC at the
current θ₁ (cfg's particles and moves; its own SE) on a refresh step, else the held estimate
(`fresh_every` > 1: log Z and ∇ from up to fresh_every − 1 steps ago, SE taken as 0).
`replay=True` separates the two ways the tracker can fail: an independent tracker (same options,
no checks) follows the θ₁ path training took, recorded; its θ₁ never depended on its particles,
so what it gets wrong is the path's difficulty, what only the trained tracker gets wrong is the
feedback (the step chosen from the particles that then measure it).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments.configs.honest_qa import get_config as honest_qa_config
from lprior.honest_qa import experiment as hq
from lprior.honest_qa.model import model_for
from lprior.honest_qa.world import world_spec
from lprior.logz import tracking
from lprior.pytree import tree_dot, tree_sq_norm
from lprior.train import nested, plain


def cosine(a, b) -> float:
  return float(tree_dot(a, b) / jnp.sqrt(tree_sq_norm(a) * tree_sq_norm(b) + 1e-30))


def _reference(key, problem, theta1, tcfg, num_particles: int, mcmc_steps: int) -> dict:
  """A fresh tempered SMC at θ₁: log Z, its SE, ∇θ₁ log Z (the tracker's estimator) and cost."""
  t0 = time.perf_counter()
  st = tracking.init(key, theta1, energy_fn=problem.energy_fn, mean_fn=problem.mean_fn,
                     sigma=problem.sigma2, num_particles=num_particles,
                     num_mcmc_steps=mcmc_steps, precondition=tcfg.precondition, rank=tcfg.rank)
  g = tracking.gradient(st, energy_fn=problem.energy_fn, mean_fn=problem.mean_fn,
                        sigma=problem.sigma2, grad_energy_fn=problem.grad_energy_fn)
  return dict(log_z=float(st.log_z), se=float(jnp.sqrt(st.log_z_var)), grad=g["grad_theta1"],
              grad_se=float(g["grad_stderr"]), seconds=time.perf_counter() - t0,
              num_particles=num_particles)


def _status(row: dict, agree: bool, c) -> str:
  """'unverified' (the references disagree), else 'passed' (|gap| ≤ tol and cosine ≥
  min_cosine) or 'failed'."""
  if not agree:
    return "unverified"
  ok = abs(row["gap"]) <= row["tol"] and row["cosine"] >= c.min_cosine
  return "passed" if ok else "failed"


def references(key, problem, theta1, tcfg, c) -> tuple[dict, dict, bool]:
  """Two independent references at θ₁, their particles doubled until they agree (log Z within 3
  combined SE and their gradients' cosine ≥ `min_cosine`) or `ref_max_particles` is reached
  (then verified is False)."""
  n = c.ref_particles
  while True:
    ka, kb = jax.random.split(jax.random.fold_in(key, n))
    a = _reference(ka, problem, theta1, tcfg, n, c.ref_mcmc_steps)
    b = _reference(kb, problem, theta1, tcfg, n,
                   c.get("ref_check_mcmc_steps", c.ref_mcmc_steps))
    agree = (abs(a["log_z"] - b["log_z"]) <= 3.0 * np.hypot(a["se"], b["se"]) + 1e-6
             and cosine(a["grad"], b["grad"]) >= c.min_cosine)
    if agree or 2 * n > c.ref_max_particles:
      return a, b, bool(agree)
    n *= 2


def _train_config(cfg_hq, cell: dict):
  t = hq.group_train_config(cfg_hq, "chained" if cell["form"] == "chained" else "partitioned")
  t.update(cell.get("train", {}))
  t.lam = float(cell["lam"])
  if "kappa" in cell:
    t.prior_scales, t.kappa = "per_layer", float(cell["kappa"])
  return t


def run_cell(cfg_hq, data, cell: dict, c, log=print) -> dict:
  """Train one cell and compare at `compare_every` steps (module docstring)."""
  tcfg = _train_config(cfg_hq, cell)
  model = model_for(world_spec(cfg_hq.world), cfg_hq.model)
  params0 = model.init(jax.random.key(1), data.x_small[0])
  problem, t1, t2 = nested.make_problem(model.apply_fn, params0, data, tcfg)
  state = nested.init(jax.random.key(2), problem, t1, t2, tcfg)
  step = jax.jit(nested.make_step(problem, data, tcfg))
  check = nested.make_check(problem, tcfg)
  check = jax.jit(check) if check is not None else None
  reanchor = nested.make_reanchor(problem, tcfg)
  reanchor = jax.jit(reanchor) if reanchor is not None else None
  tracks = tcfg.logz == "tracking"
  fresh = jax.jit(lambda k, st: nested.fresh_estimate(k, st.theta1, st.lam, problem, tcfg))
  on_row = nested.check_row(tcfg)
  rows, times, subs, moves, checks_s, reanchored = [], [], [], [], [], 0
  key = jax.random.key(100)
  theta1_of = lambda st: st.track.theta1 if tracks else st.theta1  # where log Z is estimated
  path, refs = [theta1_of(state)], {}  # θ₁ after every step; (log Z, SE, ∇) of the references

  def estimate(s):
    """(log Z, SE, ∇θ₁ log Z, estimator) of the cell's method at θ₁ after s steps."""
    if not tracks and s % tcfg.fresh_every == 0:  # what the next step computes
      r = fresh(jax.random.fold_in(jax.random.key(101), s), state)
      return float(r["log_z"]), float(r["stderr"]), r["grad"], "fresh smc"
    if not tracks:  # the next step uses the held estimate (its SE is not kept: 0)
      return float(state.log_z), 0.0, state.grad_log_z, "held"
    tr = state.track
    g = tracking.gradient(tr, energy_fn=problem.energy_fn, mean_fn=problem.mean_fn,
                          sigma=problem.sigma2, grad_energy_fn=problem.grad_energy_fn,
                          grad_estimator=tcfg.grad_estimator)
    return (float(tr.log_z), float(jnp.sqrt(tr.log_z_var)), g["grad_theta1"],
            ["ibp", "stein"][int(g["grad_estimator"])])

  def compare(s):
    a, b, agree = references(jax.random.fold_in(key, s), problem, theta1_of(state), tcfg, c)
    ref, ref_se = 0.5 * (a["log_z"] + b["log_z"]), 0.5 * np.hypot(a["se"], b["se"])
    ref_grad = jax.tree.map(lambda x, y: 0.5 * (x + y), a["grad"], b["grad"])
    refs[s] = (ref, ref_se, ref_grad, agree)
    log_z, log_z_se, grad, estimator = estimate(s)
    se = float(np.hypot(log_z_se, ref_se))
    row = dict(step=s, tracked=log_z, tracked_se=log_z_se,
               ref_a=a["log_z"], ref_b=b["log_z"],
               ref_se_a=a["se"], ref_se_b=b["se"], ref_particles=a["num_particles"],
               refs_agree=agree, gap=log_z - ref,
               se=se, tol=max(1.0, 3.0 * se), cosine=cosine(grad, ref_grad),
               ref_self_cosine=cosine(a["grad"], b["grad"]), ref_grad_stderr=a["grad_se"],
               estimator=estimator, ref_seconds=a["seconds"] + b["seconds"])
    row["log_z_ok"] = abs(row["gap"]) <= row["tol"]
    row["grad_ok"] = row["cosine"] >= c.min_cosine
    row["status"] = _status(row, agree, c)
    rows.append(row)
    log(f"    step {s:5d}: tracked {row['tracked']:9.2f} ± {row['tracked_se']:.2f}  refs "
        f"{a['log_z']:9.2f} / {b['log_z']:9.2f} (N={a['num_particles']}, ±{a['se']:.2f})  "
        f"gap {row['gap']:+7.2f} (tol {row['tol']:.2f})  cos {row['cosine']:.3f} (refs "
        f"{row['ref_self_cosine']:.3f}, {row['estimator']})  {row['status']}", flush=True)

  compare(0)
  metrics = {}
  for s in range(c.num_steps):
    t0 = time.perf_counter()
    state, m = step(state, jnp.asarray(s))
    if reanchor is not None:
      state, rm = reanchor(state, jnp.asarray(s))
      reanchored += int(rm["logz_reanchored"])
    jax.block_until_ready(state)
    times.append(time.perf_counter() - t0)
    path.append(theta1_of(state))
    subs.append(int(m.get("logz_substeps", 0)))
    moves.append(int(m.get("logz_moves", 0)))
    done = s + 1
    metrics = {k: float(v) for k, v in m.items() if jnp.ndim(v) == 0}
    if done % c.compare_every == 0:
      compare(done)  # before the trainer's own check at this step: the drift it has to catch
    if check is not None and done % tcfg.logz_check_every == 0:
      t0 = time.perf_counter()
      state, cm = check(state, jnp.asarray(s))
      jax.block_until_ready(state)
      checks_s.append(time.perf_counter() - t0)
      metrics.update({k: float(v) for k, v in cm.items()})
    on_row(done, metrics)
  # the first step compiles; the first check too.  'fresh' refreshes every fresh_every steps and
  # holds in between: the median would be a held step, so its step time is the mean
  avg = np.median if tracks else np.mean
  step_s = float(avg(times[1:])) if len(times) > 1 else float("nan")
  check_s = float(np.median(checks_s[1:] or checks_s)) if checks_s else 0.0
  amortised = step_s + (check_s * len(checks_s) / max(len(times), 1))
  out = dict(cell=cell, rows=rows, step_s=step_s, check_s=check_s, amortised_step_s=amortised,
             substeps_mean=float(np.mean(subs)), substeps_max=int(np.max(subs)),
             moves_mean=float(np.mean(moves)), reanchored=reanchored,
             final=dict(lam_consistency=metrics.get("lam_consistency"),
                        log_likelihood=metrics.get("log_likelihood")),
             passed=all(r["status"] == "passed" for r in rows),
             unverified=sum(r["status"] == "unverified" for r in rows))
  if c.get("replay", False) and tracks:
    out["replay"] = replay(problem, tcfg, path, refs, c, log)
  return out


def replay(problem, tcfg, path: list, refs: dict, c, log=print) -> dict:
  """An independent tracker along the recorded θ₁ path (module docstring), started as the
  trainer starts (`nested.start_tracker`), compared with the same references at the same
  steps."""
  kw = dict(energy_fn=problem.energy_fn, mean_fn=problem.mean_fn, sigma=problem.sigma2)
  st = nested.start_tracker(jax.random.key(7), path[0], problem, tcfg)
  upd = jax.jit(lambda st, t1: tracking.update(st, t1, **kw, **nested._smc_options(tcfg),
                                               **nested._tracking_options(tcfg)))
  rows, subs, capped = [], [], 0
  for s in range(len(path)):
    if s:
      st, info = upd(st, path[s])
      subs.append(int(info["substeps"]))
      capped += int(info["capped"])
    if s in refs:
      ref, ref_se, ref_grad, agree = refs[s]
      g = tracking.gradient(st, **kw, grad_energy_fn=problem.grad_energy_fn,
                            grad_estimator=tcfg.grad_estimator)
      se = float(np.hypot(float(jnp.sqrt(st.log_z_var)), ref_se))
      row = dict(step=s, tracked=float(st.log_z), gap=float(st.log_z) - ref, tol=max(1.0, 3 * se),
                 cosine=cosine(g["grad_theta1"], ref_grad), capped_so_far=capped)
      row["status"] = _status(row, agree, c)
      rows.append(row)
      log(f"    replay step {s:5d}: tracked {row['tracked']:9.2f}  gap {row['gap']:+8.2f} (tol "
          f"{row['tol']:.2f})  cos {row['cosine']:.3f}  capped so far {capped}  {row['status']}",
          flush=True)
  return dict(rows=rows, substeps_mean=float(np.mean(subs)) if subs else 0.0,
              substeps_max=max(subs, default=0), num_capped=capped)


def plain_step_s(cfg_hq, data, num_steps: int) -> float:
  """Median seconds of a plain-SGD step (one head) on the same data."""
  model = model_for(world_spec(cfg_hq.world), cfg_hq.model, one_head=True)
  params0 = model.init(jax.random.key(1), data.x_small[0])
  state = plain.init(jax.random.key(2), params0, cfg_hq.train)
  step = jax.jit(plain.make_step(model.apply_fn, data, cfg_hq.train))
  times = []
  for s in range(num_steps):
    t0 = time.perf_counter()
    state, _ = step(state, jnp.asarray(s))
    jax.block_until_ready(state)
    times.append(time.perf_counter() - t0)
  return float(np.median(times[1:]))


def cells(c) -> list[dict]:
  """Chained λ × κ, plus the partitioned form at the main job's settings."""
  out = [dict(form="chained", lam=lam, kappa=k) for lam in c.lams for k in c.kappas]
  if c.partitioned:
    out.append(dict(form="partitioned", lam=c.partitioned_lam))
  return out


def one_seed(preset: str, train: dict | None = None):
  """(the honest-QA config at `preset` with one seed and `train`'s overrides, that seed's data)."""
  cfg_hq = honest_qa_config(preset)
  cfg_hq.num_seeds = 1
  cfg_hq.train.update(train or {})
  data, _, _ = hq.seed_data(cfg_hq)
  return cfg_hq, jax.tree.map(lambda x: x[0], data)


def run(cfg, log=print) -> dict:
  c = cfg.tracking_network
  cfg_hq, data = one_seed(c.preset, {k: v for k, v in c.train.to_dict().items() if v is not None})
  base = plain_step_s(cfg_hq, data, 30)
  log(f"  plain SGD: {base * 1e3:.2f} ms/step")
  results = []
  for cell in cells(c):
    log(f"  cell {cell}", flush=True)
    r = run_cell(cfg_hq, data, cell, c, log)
    r["step_ratio"] = r["amortised_step_s"] / base
    log(f"    {r['amortised_step_s'] * 1e3:.1f} ms/step amortised (x{r['step_ratio']:.2f} plain; "
        f"check {r['check_s']:.2f} s); sub-steps {r['substeps_mean']:.2f} (max "
        f"{r['substeps_max']}), moves {r['moves_mean']:.1f}, re-anchored {r['reanchored']}; "
        f"{'PASSED' if r['passed'] else 'not passed'}", flush=True)
    results.append(r)
  return dict(preset=c.preset, plain_step_s=base, cells=results,
              train=cfg_hq.train.to_dict())
