"""Benchmark 2: the nested posterior's training overhead over plain SGD (honest-QA model).

Christiano's bar: the nested problem should be "nearly as easy as optimizing f directly".  One
seed of the honest-QA world at the main job's sizes; each trainer's compiled step is timed
(median over steps, compile apart), the full-data training log-likelihood L is read every
`eval_every` steps (outside the timing), and we report time per step and time to reach the L
that plain SGD reaches after `target_fraction` (0.9) of its improvement.  The profile is by
subtraction over trainers that share everything but one part: plain (one head, L) -> two heads
with λC and θ₁ (no log Z) -> nested with the tracking log Z at each particle count; plus XLA's
own flop count of each step.  The nested trainer also runs with `theta2_steps` θ₂ steps per
particle-and-θ₁ step (the GAN-style ratio), for the same number of θ₂ steps in all, and with
simultaneous θ₁/θ₂ updates (one gradient pass for both sets, `train.update_rule`).
"""

from __future__ import annotations

import jax
import numpy as np

from experiments.bench.timing import wall
from experiments.bench.tracking_network import one_seed
from lprior import posterior as post
from lprior.honest_qa import experiment as hq
from lprior.honest_qa.model import model_for
from lprior.honest_qa.world import world_spec
from lprior.train import nested, plain


def _trainer(cfg_hq, data, name: str, num_particles: int | None, theta2_steps: int = 1,
             update_rule: str = "alternating"):
  """(init state, step_fn, params_of, apply_fn) for 'plain', 'two_heads' or 'nested'."""
  one_head = name == "plain"
  model = model_for(world_spec(cfg_hq.world), cfg_hq.model, one_head=one_head)
  params0 = model.init(jax.random.key(1), data.x_small[0])
  key = jax.random.key(2)
  if one_head:
    return (plain.init(key, params0, cfg_hq.train),
            plain.make_step(model.apply_fn, data, cfg_hq.train), lambda st: st.params,
            model.apply_fn)
  t = hq.group_train_config(cfg_hq, "two_heads" if name == "two_heads" else "chained")
  if num_particles:
    t.num_particles = num_particles
  t.theta2_steps, t.update_rule = theta2_steps, update_rule
  prob, t1, t2 = nested.make_problem(model.apply_fn, params0, data, t)
  return (nested.init(key, prob, t1, t2, t), nested.make_step(prob, data, t),
          lambda st: nested.model_params(st, prob), model.apply_fn)


def _flops(step, state) -> float:
  cost = step.lower(state, 0).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", float("nan"))) if cost else float("nan")


def measure(cfg_hq, data, name, num_particles, num_steps, eval_every, theta2_steps=1,
            update_rule="alternating") -> dict:
  """One trainer: median seconds per outer step, XLA flops per step, and the full-data L every
  `eval_every` outer steps."""
  state, step_fn, params_of, apply_fn = _trainer(cfg_hq, data, name, num_particles, theta2_steps,
                                                 update_rule)
  step = jax.jit(step_fn)
  l_full = jax.jit(lambda p: post.get_likelihood(cfg_hq.train.likelihood)(
      p, apply_fn, data.x_large, data.y_large, data.w_large))
  flops = _flops(step, state)
  (state, _), compile_s = wall(lambda: step(state, 0))
  times, curve = [], [(1, float(l_full(params_of(state))))]
  for s in range(1, num_steps):
    (state, _), t = wall(lambda: step(state, s))
    times.append(t)
    if (s + 1) % eval_every == 0 or s + 1 == num_steps:
      curve.append((s + 1, float(l_full(params_of(state)))))
  return dict(trainer=name, update_rule=update_rule if name != "plain" else "",
              num_particles=num_particles or 0, theta2_steps=theta2_steps,
              step_s=float(np.median(times)),
              first_step_s=compile_s, flops_per_step=flops, curve=curve)


def _time_to(curve, step_s, target) -> float | None:
  """Seconds of steps until the full-data L first reaches `target` (None if never)."""
  for s, l in curve:
    if l >= target:
      return s * step_s
  return None


def run(cfg, log=print) -> dict:
  c = cfg.training
  cfg_hq, data = one_seed(c.preset)
  runs = [measure(cfg_hq, data, "plain", None, c.num_steps, c.eval_every)]
  for rule in c.update_rules:
    # 'simultaneous' takes one step of each set per outer step
    ratios = c.theta2_steps if rule == "alternating" else (1,)
    runs.append(measure(cfg_hq, data, "two_heads", None, c.num_steps, c.eval_every, 1, rule))
    runs += [measure(cfg_hq, data, "nested", n, c.num_steps // k, max(1, c.eval_every // k), k,
                     rule) for n in c.particles for k in ratios]
  base = runs[0]
  # the L plain SGD reaches after `target_fraction` of its improvement over the run (its last,
  # noisy minibatch-driven value is a target no regularised trainer need reach)
  l0, l1 = base["curve"][0][1], base["curve"][-1][1]
  target = l0 + c.target_fraction * (l1 - l0)
  t_base = _time_to(base["curve"], base["step_s"], target)
  for r in runs:
    r["step_ratio"] = r["step_s"] / base["step_s"]
    # per θ₂ step: plain SGD takes one parameter step per step, the GAN-style ratio takes k
    r["theta2_step_ratio"] = r["step_ratio"] / r["theta2_steps"]
    r["flops_ratio"] = r["flops_per_step"] / base["flops_per_step"]
    r["time_to_target_s"] = _time_to(r["curve"], r["step_s"], target)
    r["time_to_target_ratio"] = (r["time_to_target_s"] / t_base
                                 if r["time_to_target_s"] is not None else None)
    log(f"  {r['trainer']:>9} {r['update_rule']:>12} N={r['num_particles']:>3} "
        f"θ₂ steps {r['theta2_steps']:>2}: "
        f"{r['step_s'] * 1e3:7.2f} ms/step "
        f"(x{r['step_ratio']:.2f} plain, x{r['theta2_step_ratio']:.2f} per θ₂ step; flops "
        f"x{r['flops_ratio']:.2f}); final L {r['curve'][-1][1]:.0f}; to L = {target:.0f}: "
        + (f"{r['time_to_target_s']:.2f} s (x{r['time_to_target_ratio']:.2f})"
           if r["time_to_target_s"] is not None else "not reached"))
  return dict(preset=c.preset, target_log_likelihood=target, runs=runs,
              n_large=int(data.y_large.shape[0]), n_small=int(data.x_small.shape[0]),
              batch_size=int(cfg_hq.train.batch_size))
