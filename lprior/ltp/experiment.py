"""The experiment of issue 5 as data: on each task, every method on D* for every |D| and seed.

Methods (all evaluated on the same held-out D* questions):
  direct          a network fit directly on D
  warmup2         "warm-up 2": a network fit on the human's forecasts for `warmup2.forecasts` iid
                  questions of D*, the human having updated exactly on all of D
  warmup2_reads   the same, the human having read only the first `warmup2.human_reads` of D
  ltp_map         learning the prior, MAP z*: predictions f(y | x*, z*)
  ltp_posterior   learning the prior, q(z) = N(μ, σ²): predictions E_q f(y | x*, z)
  ideal           the human prior updated exactly on D (enumeration; no training)
  flat_bayes      the same with a flat prior over the human's hypotheses (the human's forecasts
                  averaged over the likelihood alone)
  flat_mle        maximum likelihood over the human's hypotheses: the human's forecast under
                  argmax_Z Σ_D log P_H(y | x, Z), with no prior at all
Where Z is too large to enumerate (more than MAX_ENUMERATE hypotheses: `synonyms`, 2^512) the
three exact methods are replaced, under the same keys, by the gold (`gold`): block-Gibbs chains
on the human's posterior, on the flat prior's, and coordinate ascent for maximum likelihood.
Every method's human queries are counted where they are made (`human.Queries`): the runs of
learning the prior accumulate theirs in the training state; enumeration counts a forecast per
(Z, example) and a prior per Z; warm-up 2 counts the forecasts its network is fit on.
Runs that share a compiled step are one `lprior.train.fit` call: direct and both warm-ups (one
MLP step, different data), ltp_map and ltp_posterior (one joint step, a traced flag); inside a
call the runs (method × |D| × seed) are one vmapped batch axis.

Resuming (workdir given): each fit checkpoints into workdir/runs/<task>/<part>/checkpoints under
an identity (`data_identity` and the part's config: its runs, the baselines' or the resolved
ltp config); num_steps and baseline.num_steps are left out (raising them continues the run:
schedules have their own length, ltp.anneal_steps), and so are keys that change no trained
state (eval_every, log_every, checkpoint_every, eval_samples, eval_batch, n_test, fast_compile,
which tasks and prior modes run: each has its own directory); any other change is refused
(CheckpointError naming the key).  A finished task's result is kept in
workdir/runs/<task>/result.json with the whole config: rerunning the same config re-reports
from it, computing nothing; any change recomputes it from the checkpoints.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lprior.distributed import host_value
from lprior.ltp import decoder, exact, gibbs, prior, train
from lprior.ltp import human as hm
from lprior.ltp.models import make_net
from lprior.ltp.tasks import TASKS, Task, make_task, trend_curve
from lprior.metrics_writer import read_jsonl
from lprior.train import fit
from lprior.train.checkpoint import json_default
from lprior.xla import compiler_options

SUPERVISED = ("direct", "warmup2", "warmup2_reads")
LTP = ("ltp_map", "ltp_posterior")
EXACT = ("ideal", "flat_bayes", "flat_mle")
METHODS = SUPERVISED + LTP + EXACT
QUERY_KINDS = hm.Queries._fields


class TaskData(NamedTuple):
  """Per seed (leading axis S): D at the largest |D| (smaller |D| are its prefixes), D*'s
  questions for training (f's questions, warm-up 2's human forecasts) and D*'s test set."""
  x: jax.Array       # (S, N, dx)
  y: jax.Array       # (S, N)
  x_pool: jax.Array  # (S, N_pool, dx)
  x_test: jax.Array  # (S, N_test, dx)
  y_test: jax.Array  # (S, N_test)


class Run(NamedTuple):
  """One trained run of a batch: its method, |D|, seed and (learning the prior) restart."""
  method: str
  size: int
  seed: int
  restart: int = 0


def task_of(cfg, name: str) -> Task:
  return make_task(name, **(cfg[name].to_dict() if name in cfg else {}))


def seed_keys(cfg, stream: int) -> jax.Array:
  root = jax.random.fold_in(jax.random.key(cfg.seed, impl=cfg.prng_impl), stream)
  return jax.random.split(root, cfg.num_seeds)


def make_data(task: Task, cfg) -> TaskData:
  """The seeds' datasets (D's valid entries are prefixes, so the |D| curve is nested)."""
  n = max(cfg.sizes)

  def one(k):
    x, y = task.sample_train(jax.random.fold_in(k, 0), n)
    xp, _ = task.sample_shifted(jax.random.fold_in(k, 1), cfg.n_pool)
    xt, yt = task.sample_shifted(jax.random.fold_in(k, 2), cfg.n_test)
    return TaskData(x, y, xp, xt, yt)

  return jax.jit(jax.vmap(one), compiler_options=compiler_options(cfg.fast_compile))(
      seed_keys(cfg, 0))


def map_runs(fn: Callable, xs, cfg):
  """`fn` over the runs' leading axis, cfg.eval_batch runs at a time: an evaluation vmapped over
  every run at once holds runs × test questions × samples predictions (31.7 GB asked on trend
  at the `full` preset)."""
  return jax.lax.map(fn, xs, batch_size=cfg.eval_batch)


# -------------------------------------------------------------------------------- checks
Z_INITS = ("zero", "prior_mode")
_AT_LEAST_ONE = ("restarts", "anneal_steps", "f_steps", "f_batch", "human_samples", "z_batch",
                 "z_samples", "prior_samples", "g_batch")
_POSITIVE = ("tau_start", "tau_end", "lr_f", "lr_f_end", "lr_z", "lr_z_end", "lr_g",
             "sigma_init", "ratio_scale")
_SHARES = ("star_share", "neighbour_share", "prior_share", "g_uniform_share")


def _need(ok: bool, key: str, value: Any, rule: str) -> None:
  if not ok:
    raise ValueError(f"{key} must be {rule}, got {value!r}")


def _names(text: str) -> list[str]:
  """A comma-separated config string as its entries."""
  return [t for t in (text or "").split(",") if t]


def _widths(v) -> bool:
  return all(int(h) >= 1 for h in v)


def _check_mode(mode: str, key: str) -> None:
  if mode not in prior.MODES:
    raise ValueError(f"{key}: unknown prior mode {mode!r}; choose from {prior.MODES}")


def _check_ltp(lc, key_of) -> None:
  """One task's resolved ltp config; key_of(k) names where k was set."""
  _check_mode(lc.prior_mode, key_of("prior_mode"))
  for k in _AT_LEAST_ONE:
    _need(int(lc[k]) >= 1, key_of(k), lc[k], ">= 1")
  for k in _POSITIVE:
    _need(lc[k] > 0, key_of(k), lc[k], "> 0")
  for k in _SHARES:
    _need(0 <= lc[k] <= 1, key_of(k), lc[k], "in [0, 1]")
  _need(int(lc.z_warmup) >= 0, key_of("z_warmup"), lc.z_warmup, ">= 0")
  _need(lc.perturb >= 0, key_of("perturb"), lc.perturb, ">= 0")
  _need(0 <= lc.z_b2 < 1, key_of("z_b2"), lc.z_b2, "in [0, 1)")
  for k in ("f_hidden", "g_hidden"):
    _need(_widths(lc[k]), key_of(k), lc[k], "layer widths >= 1")
  _need(lc.z_init in Z_INITS, key_of("z_init"), lc.z_init, f"one of {Z_INITS}")
  _need(lc.f_input in train.F_INPUTS, key_of("f_input"), lc.f_input, f"one of {train.F_INPUTS}")


def _check_tasks(cfg) -> list[str]:
  """cfg.tasks, their parameters and their ltp_overrides."""
  names = _names(cfg.tasks)
  _need(bool(names) and len(set(names)) == len(names), "tasks", cfg.tasks,
        "a comma-separated list of distinct tasks")
  for t in names:
    if t not in TASKS:
      raise ValueError(f"tasks: unknown task {t!r}; choose from {', '.join(TASKS)}")
    if t.startswith("spurious") and t in cfg:
      _need(cfg[t].get("bg_noise", 0.0) >= 0, f"{t}.bg_noise", cfg[t].get("bg_noise"), ">= 0")
    try:
      task_of(cfg, t)
    except (TypeError, ValueError) as e:
      raise ValueError(f"{t}: {e}") from e
  over = cfg.get("ltp_overrides", {}) or {}
  for t in over:
    _need(t in TASKS, "ltp_overrides", list(over), f"keyed by tasks from {TASKS}")
    unknown = sorted(set(over[t]) - set(cfg.ltp))
    _need(not unknown, f"ltp_overrides.{t}", unknown, "keys of ltp (unknown ones given)")
  return names


def _check_run(cfg) -> None:
  """The sizes, counts and intervals outside the ltp config."""
  _need(int(cfg.num_seeds) >= 1, "num_seeds", cfg.num_seeds, ">= 1")
  sizes = tuple(cfg.sizes)
  _need(bool(sizes) and min(sizes) >= 1 and len(set(sizes)) == len(sizes), "sizes", sizes,
        "a non-empty tuple of distinct sizes >= 1")
  _need(cfg.main_size in sizes, "main_size", cfg.main_size, f"one of sizes {sizes}")
  for k in ("n_pool", "n_test", "num_steps", "eval_every", "log_every", "eval_samples",
            "eval_batch"):
    _need(int(cfg[k]) >= 1, k, cfg[k], ">= 1")
  _need(int(cfg.checkpoint_every) >= 0, "checkpoint_every", cfg.checkpoint_every,
        ">= 0 (0: no checkpoints)")
  w = cfg.warmup2
  _need(1 <= w.forecasts <= cfg.n_pool, "warmup2.forecasts", w.forecasts,
        f"in [1, n_pool = {cfg.n_pool}]")
  _need(int(w.human_reads) >= 0, "warmup2.human_reads", w.human_reads, ">= 0")
  g = cfg.gold
  _need(int(g.chains) >= 1, "gold.chains", g.chains, ">= 1")
  _need(int(g.mle_sweeps) >= 1, "gold.mle_sweeps", g.mle_sweeps, ">= 1")
  _need(0 <= int(g.burn) < int(g.sweeps), "gold.burn", g.burn, f"in [0, gold.sweeps = {g.sweeps})")
  b = cfg.baseline
  _need(_widths(b.hidden), "baseline.hidden", b.hidden, "layer widths >= 1")
  _need(b.lr > 0, "baseline.lr", b.lr, "> 0")
  _need(b.weight_decay >= 0, "baseline.weight_decay", b.weight_decay, ">= 0")
  for k in ("batch", "num_steps"):
    _need(int(b[k]) >= 1, f"baseline.{k}", b[k], ">= 1")
  try:
    jax.random.key(0, impl=cfg.prng_impl)
  except (TypeError, ValueError) as e:
    raise ValueError(f"prng_impl: unknown key implementation {cfg.prng_impl!r} ({e})") from e


def _check(cfg) -> None:
  """ValueError naming the key and value of the first nonsensical setting: before any data
  or training (a typo in a prior mode must not cost hours of the main batch first)."""
  _check_run(cfg)
  over = cfg.get("ltp_overrides", {}) or {}
  for t in _check_tasks(cfg):
    key_of = lambda k, t=t: (f"ltp_overrides.{t}.{k}" if t in over and k in over[t]
                             else f"ltp.{k}")
    _check_ltp(ltp_config_for(cfg, t), key_of)
  for mode in _names(cfg.compare_prior_modes):
    _check_mode(mode, "compare_prior_modes")
  for t in _names(cfg.get("compare_prior_modes_tasks", "")):
    _need(t in TASKS, "compare_prior_modes_tasks", t, f"a task of {TASKS}")



def _mask(size: int, n: int) -> np.ndarray:
  return (np.arange(n) < size).astype(np.float32)


# ----------------------------------------------------------------------------------- ideal
MAX_ENUMERATE = 10 ** 6  # larger spaces get the Gibbs gold in place of the exact ideal


def enumerable(task: Task) -> bool:
  return task.human.space.size <= MAX_ENUMERATE


def reference(task: Task, cfg, data: TaskData) -> dict[str, Any]:
  """The human's update on D: exact by enumeration (`ideal`) where Z is small enough, else the
  long-run Gibbs gold (`gold`), with the same keys."""
  return ideal(task, cfg, data) if enumerable(task) else gold(task, cfg, data)


def gold(task: Task, cfg, data: TaskData) -> dict[str, Any]:
  """`ideal`'s keys for a Z too large to enumerate, from block Gibbs (`lprior.ltp.gibbs`):
  `gold.chains` chains per (|D|, seed) (the first from the all-first-level hypothesis, the others
  from uniform draws), pooled; the flat prior's posterior likewise (one chain) and maximum
  likelihood by coordinate ascent from its last state; warm-up 2's forecasts from the gold
  posterior (read all of D) and from one chain on the first `human_reads` examples.  Adds
  `chain_gap`: the largest D* score difference between two gold chains (the gold's own error).
  The chains run one after another (`lax.map`): a chain is a long scan of tiny steps, which
  vmapping makes slower per chain on CPU."""
  h, fam, gc = task.human, task.human.family, cfg.gold
  nf, reads, c_ = cfg.warmup2.forecasts, cfg.warmup2.human_reads, int(gc.chains)
  k_, sizes = h.space.num_fields, list(cfg.sizes)
  incs = [gibbs.incidence(h, np.asarray(x)).examples for x in data.x]
  m = max(i.shape[1] for i in incs)
  inc = jnp.asarray(np.stack([np.pad(i, ((0, 0), (0, m - i.shape[1])), constant_values=-1)
                              for i in incs]))
  n, num_seeds, nt = data.x.shape[1], data.x.shape[0], data.x_test.shape[1]
  xe = jnp.concatenate([data.x_test, data.x_pool[:, :nf]], 1)              # (S, nt + nf, K)
  ye = jnp.concatenate([data.y_test, jnp.zeros((num_seeds, nf), data.y_test.dtype)], 1)
  # per (|D|, seed): the gold's c_ chains, one on the first human_reads examples, the flat prior's
  kinds = ["gold"] * c_ + ["reads", "flat"]
  plan = [(i, s, j) for i in range(len(sizes)) for s in range(num_seeds) for j in range(len(kinds))]
  size_of = np.array([sizes[i] for i, _, _ in plan])
  kind_of = [kinds[j] for _, _, j in plan]
  w = np.stack([_mask(min(sz, reads) if k == "reads" else sz, n) for sz, k in zip(size_of, kind_of)])
  keys = seed_keys(cfg, 4)
  key_of = jnp.stack([jax.random.fold_in(jax.random.fold_in(keys[s], sizes[i]), j)
                      for i, s, j in plan])
  random_start = np.array([k == "gold" and j > 0 for k, (_, _, j) in zip(kind_of, plan)])
  batch = (key_of, jnp.asarray([s for _, s, _ in plan]), jnp.asarray(w),
           jnp.asarray(random_start), jnp.asarray([k == "flat" for k in kind_of]))
  levels = jnp.asarray(h.space.levels)

  @jax.jit
  def chains(batch, x, y, inc, xe, ye):
    def one(a):
      key, s, ww, rand, flat = a
      k0, k1 = jax.random.split(key)
      z0 = jnp.where(rand, jax.random.randint(k0, (k_,), 0, levels), 0).astype(jnp.int32)
      return gibbs.run(k1, h, x[s], y[s], ww, inc[s], xe[s], ye[s], z0, sweeps=gc.sweeps,
                       burn=gc.burn, flat=flat)
    return jax.lax.map(one, batch)

  ch = chains(batch, data.x, data.y, inc, xe, ye)
  flat_rows = np.flatnonzero([k == "flat" for k in kind_of])

  @jax.jit
  def icm(keys, s, ww, z0, x, y, inc, xe, ye):
    return jax.lax.map(lambda a: gibbs.run(
        a[0], h, x[a[1]], y[a[1]], a[2], inc[a[1]], xe[a[1]], ye[a[1]], a[3], flat=True,
        temperature=0.0, sweeps=gc.mle_sweeps, burn=gc.mle_sweeps - 1), (keys, s, ww, z0))

  ml = icm(key_of[flat_rows], batch[1][flat_rows], batch[2][flat_rows], ch.last[flat_rows],
           data.x, data.y, inc, xe, ye)
  ch, ml = jax.tree.map(np.asarray, ch), jax.tree.map(np.asarray, ml)
  score = lambda t, s: float(fam.score(jnp.asarray(t[:nt]), data.y_test[s]))
  out: dict[Any, Any] = {}
  for i, size in enumerate(sizes):
    per_seed = []
    for s in range(num_seeds):
      rows = [r for r, (ii, ss, _) in enumerate(plan) if ii == i and ss == s]
      g, rd, fl = rows[:c_], rows[c_], rows[c_ + 1]
      f_ml = int(np.flatnonzero(flat_rows == fl)[0])
      tgt = ch.target[g].mean(0)
      scores = [score(ch.target[r], s) for r in g]
      q = {k: int(v[g].sum()) for k, v in ch.queries._asdict().items()}
      q_flat = {k: int(v[fl] + getattr(ml.queries, k)[f_ml])
                for k, v in ch.queries._asdict().items()}
      log_pred = np.logaddexp.reduce(ch.log_pred[g], 0) - np.log(c_)
      per_seed.append(dict(
          score=score(tgt, s), log_lik=float(log_pred[:nt].mean()),
          z_map=ch.best[g][int(np.argmax(ch.best_log_joint[g]))], p_map=np.nan,
          marginals=ch.marginals[g].mean(0), forecast_all=tgt[nt:],
          forecast_reads=ch.target[rd][nt:], chain_gap=max(scores) - min(scores),
          flat_bayes_score=score(ch.target[fl], s),
          flat_bayes_log_lik=float(ch.log_pred[fl][:nt].mean()), flat_bayes_z_map=ch.best[fl],
          flat_mle_score=score(ml.target[f_ml], s),
          flat_mle_log_lik=float(ml.log_pred[f_ml][:nt].mean()), flat_mle_z_map=ml.last[f_ml],
          **{f"q_{k}": v for k, v in q.items()}, **{f"flat_q_{k}": v for k, v in q_flat.items()}))
    out[size] = {k: np.stack([np.asarray(p[k]) for p in per_seed]) for k in per_seed[0]}
  return out


def ideal(task: Task, cfg, data: TaskData) -> dict[str, Any]:
  """The exact posterior on D for every (|D|, seed): D* metrics, MAP hypothesis, field
  marginals and the queries of the enumeration; the same for the flat prior (its posterior
  mixture, and its maximum-likelihood hypothesis alone); plus warm-up 2's human forecasts (the
  exact posterior predictive on D*'s first `warmup2.forecasts` questions after reading all of D,
  or its first `human_reads`)."""
  h, fam = task.human, task.human.family
  nf, reads = cfg.warmup2.forecasts, cfg.warmup2.human_reads
  zs = jnp.asarray(h.space.enumerate())

  def metrics(lp, xt, yt):
    return dict(score=fam.score(exact.predictive_target(h, lp, xt), yt),
                log_lik=jnp.mean(exact.log_predictive(h, lp, xt, yt)),
                z_map=exact.map_hypothesis(h, lp))

  def one(x, y, w, w_reads, xp, xt, yt):
    # one enumeration of the forecasts: the flat prior's log-likelihood, then the human's prior
    ll, q_flat = exact.log_joint_counted(h, x, y, w, flat=True)
    log_prior, q = hm.ask_prior(h, zs, q_flat)
    lj = log_prior + ll
    lp = lj - jax.nn.logsumexp(lj)
    lp_reads = exact.log_posterior(h, x, y, w_reads)
    out = dict(metrics(lp, xt, yt), p_map=jnp.exp(jnp.max(lp)),
               marginals=exact.field_marginals(h, lp),
               forecast_all=exact.predictive_target(h, lp, xp[:nf]),
               forecast_reads=exact.predictive_target(h, lp_reads, xp[:nf]),
               **{f"q_{k}": v for k, v in q._asdict().items()})
    out.update({f"flat_bayes_{k}": v
                for k, v in metrics(ll - jax.nn.logsumexp(ll), xt, yt).items()})
    mle = zs[jnp.argmax(ll)]
    pred = hm.forecast(h, mle, xt)
    out.update(flat_mle_score=fam.score(fam.target(pred[:, None, :]), yt),
               flat_mle_log_lik=jnp.mean(fam.log_prob(pred, yt)), flat_mle_z_map=mle,
               **{f"flat_q_{k}": v for k, v in q_flat._asdict().items()})
    return out

  all_seeds = jax.jit(jax.vmap(one, in_axes=(0, 0, None, None, 0, 0, 0)),
                      compiler_options=compiler_options(cfg.fast_compile))
  n = data.x.shape[1]
  out: dict[str, Any] = {}
  for size in cfg.sizes:
    r = all_seeds(data.x, data.y, jnp.asarray(_mask(size, n)),
                  jnp.asarray(_mask(min(size, reads), n)), data.x_pool, data.x_test, data.y_test)
    out[size] = {k: np.asarray(v) for k, v in r.items()}
  return out


# ----------------------------------------------------------------------------- batching
def _runs(methods, sizes, num_seeds) -> list[Run]:
  return [Run(m, n, s) for m in methods for n in sizes for s in range(num_seeds)]


def _name(r: Run) -> str:
  return f"{r.method}/n{r.size}" + (f"/r{r.restart}" if r.method.startswith("ltp") else "")


def _split(values: dict, runs: list[Run]) -> dict:
  """{k: (B, ...)} -> {'method/n{size}[/r{restart}]/k': (S, ...)}: runs come in blocks of S seeds."""
  num_seeds = max(r.seed for r in runs) + 1
  return {f"{_name(runs[i])}/{k}": v[i:i + num_seeds]
          for k, v in values.items() for i in range(0, len(runs), num_seeds)}


def _gather(tree, index: np.ndarray):
  return jax.tree.map(lambda a: a[jnp.asarray(index)], tree)


def _stack_keys(keys: jax.Array, runs: list[Run]) -> jax.Array:
  """One key per run from its seed, |D| and method (not its place in the batch), so the same
  run gets the same randomness in every batch it is part of (paired comparisons)."""
  return jnp.stack([jax.random.fold_in(jax.random.fold_in(
      jax.random.fold_in(keys[r.seed], r.size), METHODS.index(r.method)), r.restart)
      for r in runs])


def data_identity(cfg, name: str) -> dict:
  """What a task's training data depend on (part of every fit's checkpoint identity)."""
  return dict(preset=cfg.get("preset"), task=name,
              task_config=cfg[name].to_dict() if name in cfg else {}, seed=cfg.seed,
              num_seeds=cfg.num_seeds, prng_impl=cfg.prng_impl,
              max_size=max(int(n) for n in cfg.sizes), n_pool=cfg.n_pool)


def _fit(state, runs, step_one, data_b, evaluate, test, workdir, cfg, num_steps, desc, identity):
  """One `fit` of a vmapped batch of runs: state and data carry the leading batch axis;
  evaluate(state, data, test) with the runs' test set (passed as an argument: as a constant
  XLA would spend seconds folding what reads it); `identity` (with desc and the runs) is the
  checkpoints' config (num_steps may grow)."""
  opts = compiler_options(cfg.fast_compile)

  def step_fn(full, step):
    st, d = full
    new, m = jax.vmap(step_one, in_axes=(0, 0, None))(st, d, step)
    return (new, d), _split(m, runs)

  ev_test = jax.jit(lambda full, t: _split(evaluate(full[0], full[1], t), runs),
                    compiler_options=opts)
  ev = lambda full: ev_test(full, test)
  scalars = lambda full: {k: v for k, v in ev(full).items() if v.ndim == 1}
  config = dict(desc=desc, runs=[r._asdict() for r in runs], **identity)
  (state, data_b), history = fit((state, data_b), step_fn, num_steps, workdir=workdir, config=config,
                            eval_fn=scalars, eval_every=cfg.eval_every, log_every=cfg.log_every,
                            checkpoint_every=cfg.checkpoint_every, desc=desc,
                            compiler_options=opts)
  final = {k: np.asarray(host_value(v)) for k, v in ev((state, data_b)).items()}
  return state, history, final


# --------------------------------------------------------------------------- supervised
def run_supervised(task: Task, cfg, data: TaskData, ideal_out: dict, workdir: str | None
                   ) -> tuple[dict, list[dict], Any]:
  """direct, warmup2 and warmup2_reads for every |D| and seed: ({'method/n/metric': (S,)},
  history, (runs, final state)) — one vmapped `fit`."""
  fam = task.human.family
  bc = cfg.baseline
  runs = _runs(SUPERVISED, cfg.sizes, cfg.num_seeds)
  n, nf = data.x.shape[1], cfg.warmup2.forecasts
  width = max(n, nf)
  xs, ts, ws = [], [], []
  for r in runs:
    if r.method == "direct":
      x, t, w = data.x[r.seed], fam.observed(data.y[r.seed]), _mask(r.size, n)
    else:
      key = "forecast_all" if r.method == "warmup2" else "forecast_reads"
      x, t = data.x_pool[r.seed, :nf], jnp.asarray(ideal_out[r.size][key][r.seed])
      w = np.ones(nf, np.float32)
    pad = width - x.shape[0]
    xs.append(jnp.pad(x, ((0, pad), (0, 0))))
    ts.append(jnp.pad(t, ((0, pad), (0, 0))))
    ws.append(np.pad(w, (0, pad)))
  data_b = train.SupData(jnp.stack(xs), jnp.stack(ts), jnp.asarray(np.stack(ws)))
  keys = _stack_keys(seed_keys(cfg, 1), runs)
  opts = compiler_options(cfg.fast_compile)
  state = jax.jit(jax.vmap(lambda k: train.init_supervised(k, task, bc)),
                  compiler_options=opts)(keys)
  apply_fn = make_net(task.x_dim, fam, bc.hidden).apply_fn
  seed_idx = np.array([r.seed for r in runs])
  xt, yt = data.x_test[seed_idx], data.y_test[seed_idx]

  def evaluate(st, d, test):
    def one(params, x, y):
      pred = apply_fn(params, x)
      return dict(score=fam.score(fam.target(pred[:, None, :]), y),
                  log_lik=jnp.mean(fam.log_prob(pred, y)))
    return map_runs(lambda a: one(*a), (st.params, *test), cfg)

  state, hist, final = _fit(state, runs, train.make_supervised_step(task, bc), data_b, evaluate,
                            (xt, yt),
                            workdir, cfg, bc.num_steps, f"{task.name}/baselines",
                            dict(data_identity(cfg, task.name), warmup2=cfg.warmup2.to_dict(),
                                 baseline={k: v for k, v in bc.to_dict().items()
                                           if k != "num_steps"}))
  return final, hist, (runs, state, apply_fn)


# ---------------------------------------------------------------------------------- ltp
def z_init(task: Task, lc) -> jnp.ndarray:
  """Where z starts (`lc`: the task's resolved ltp config): 'zero' (the centre of Mz's latent) or
  'prior_mode' (the human's most plausible level of each field, at its bin's median)."""
  if lc.z_init == "zero":
    return jnp.zeros(task.human.space.num_fields)
  if lc.z_init == "prior_mode":
    return decoder.encode(task.human.space,
                          jnp.asarray([int(np.argmax(t)) for t in task.human.log_prior_table]))
  raise ValueError(f"unknown ltp.z_init {lc.z_init!r}; choose 'zero' or 'prior_mode'")


def ltp_plan(cfg) -> list[tuple[str, int]]:
  """(method, |D|) pairs of the main learning-the-prior batch: MAP at every |D|; the full
  posterior at every |D| or (cfg.posterior_at_all_sizes False) at main_size only."""
  post = cfg.sizes if cfg.posterior_at_all_sizes else (cfg.main_size,)
  return [("ltp_map", int(n)) for n in cfg.sizes] + [("ltp_posterior", int(n)) for n in post]


def run_ltp(task: Task, cfg, data: TaskData, workdir: str | None, *, ltp_cfg=None,
            plan=None) -> tuple[dict, list[dict], dict]:
  """Learning the prior for every (method, |D|) of `plan` (default `ltp_plan`), seed and
  restart, one vmapped `fit`; per (method, |D|, seed) the restart with the highest J on D at the
  decoded hypothesis (`train.make_selection_score`; for q(z) at hard(μ), not its ELBO) is kept.
  Returns ({'method/n/metric': (S,)}, history, {'arrays': {'method/n/z_star' (S, K),
  '.../marginals' (S, K, L)}, ...})."""
  lc = (ltp_cfg or cfg.ltp).copy_and_resolve_references()
  h, fam, space = task.human, task.human.family, task.human.space
  plan = plan or ltp_plan(cfg)
  runs = [Run(m, n, s, j) for m, n in plan for j in range(lc.restarts)
          for s in range(cfg.num_seeds)]
  n = data.x.shape[1]
  seed_idx = np.array([r.seed for r in runs])
  z0 = z_init(task, lc)
  z_ref = decoder.hard(space, z0)
  data_b = train.LTPData(
      x=data.x[seed_idx], y=data.y[seed_idx],
      w=jnp.asarray(np.stack([_mask(r.size, n) for r in runs])),
      x_star=data.x_pool[seed_idx],
      posterior=jnp.asarray([float(r.method == "ltp_posterior") for r in runs]),
      z_ref=jnp.broadcast_to(z_ref, (len(runs), space.num_fields)))
  keys = _stack_keys(seed_keys(cfg, 2), runs)
  lo, hi = (jnp.asarray(b) for b in decoder.bounds(space))
  # restart 0 starts at z_init; the others at a draw from N(0, I) inside Mz's bounds
  starts = jnp.stack([z0 if r.restart == 0 else jnp.clip(jax.random.normal(
      jax.random.fold_in(keys[i], 10 ** 6), z0.shape), lo, hi) for i, r in enumerate(runs)])
  opts = compiler_options(cfg.fast_compile)
  state = jax.jit(jax.vmap(lambda k, z: train.init_ltp(k, task, lc, z)),
                  compiler_options=opts)(keys, starts)
  _, f_tau = train.make_f(task, lc)
  select = train.make_selection_score(task, lc)
  xt, yt = data.x_test[seed_idx], data.y_test[seed_idx]
  eps = jax.random.normal(jax.random.fold_in(seed_keys(cfg, 3)[0], 0),
                          (2, cfg.eval_samples, space.num_fields))
  tau_end = lc.tau_end

  def evaluate(st, d, test):
    def one(s, dd, x, y):
      zs = s.mu + dd.posterior * jnp.exp(s.log_sigma) * eps[0]            # (E, K)
      preds = train.predictions(task, lc, f_tau, s.f_params, x, zs, eps[1], tau_end)
      target = fam.target(jnp.swapaxes(preds, 0, 1))
      z_star = decoder.hard(space, s.mu)
      h_pred = hm.forecast(h, z_star, x)
      chosen_by, q_select = select(s, dd)
      asked = jax.tree.map(jnp.add, s.queries, q_select)  # training, then the restart choice
      return dict(score=fam.score(target, y),
                  log_lik=jnp.mean(fam.mixture_log_prob(preds, y)),
                  human_at_z_score=fam.score(fam.target(h_pred[:, None, :]), y),
                  human_at_z_log_lik=jnp.mean(fam.log_prob(h_pred, y)),
                  select=chosen_by, z_star=z_star,
                  marginals=jnp.mean(decoder.level_probs(space, zs, tau_end), 0),
                  **{f"q_{k}": v for k, v in asked._asdict().items()})
    return map_runs(lambda a: one(*a), (st, d, *test), cfg)

  state, hist, final = _fit(state, runs, train.make_ltp_step(task, lc), data_b, evaluate,
                            (xt, yt),
                            workdir, cfg, cfg.num_steps, f"{task.name}/ltp-{lc.prior_mode}",
                            dict(data_identity(cfg, task.name), ltp=lc.to_dict()))
  # keep, per (method, |D|, seed), the restart with the best objective estimate
  best, chosen = {}, {}
  for m, size in plan:
    pre = f"{m}/n{size}"
    scores = np.stack([final[f"{pre}/r{j}/select"] for j in range(lc.restarts)])  # (R, S)
    pick = np.argmax(scores, 0)
    for k in {k.split("/")[-1] for k in final if k.startswith(pre + "/")}:
      if k.startswith("q_"):  # every restart's queries are the method's cost
        best[f"{pre}/{k}"] = sum(final[f"{pre}/r{j}/{k}"] for j in range(lc.restarts))
      else:
        best[f"{pre}/{k}"] = np.stack([final[f"{pre}/r{j}/{k}"][s] for s, j in enumerate(pick)])
    best[f"{pre}/restart"] = pick
    for s, j in enumerate(pick):
      chosen[(m, size, s)] = runs.index(Run(m, size, s, int(j)))
  arrays = {k: best.pop(k) for k in list(best) if k.endswith(("/z_star", "/marginals"))}
  return best, hist, dict(arrays=arrays, runs=runs, chosen=chosen, state=state, f=f_tau,
                          tau=tau_end, cfg=lc, per_restart=final)


# ------------------------------------------------------------------------------- a task
def _by_size(flat: dict, method: str, key: str, sizes) -> dict:
  return {int(n): np.asarray(flat[f"{method}/n{n}/{key}"]).tolist() for n in sizes}


def _grid(task: Task, cfg, data: TaskData, ideal_out, sup, ltp) -> dict:
  """Trend task, seed 0 at main_size: every method's forecast (mean, sd) on a grid of t."""
  n = cfg.main_size
  t = jnp.linspace(0.0, 2.0, 81)[:, None]
  fam, h = task.human.family, task.human
  sd = lambda tgt: np.sqrt(np.maximum(np.asarray(tgt[:, 1] - tgt[:, 0] ** 2), 0.0))
  out = {"t": np.asarray(t[:, 0]).tolist()}
  runs, state, apply_fn = sup
  for i, r in enumerate(runs):
    if r.seed == 0 and r.size == n:
      pred = apply_fn(jax.tree.map(lambda a: a[i], state.params), t)
      tgt = fam.target(pred[:, None, :])
      out[r.method] = dict(mean=np.asarray(tgt[:, 0]).tolist(), sd=sd(tgt).tolist())
  eps = jax.random.normal(jax.random.key(0), (2, cfg.eval_samples, h.space.num_fields))
  for (method, size, seed), i in ltp["chosen"].items():
    if seed == 0 and size == n:
      s = jax.tree.map(lambda a: a[i], ltp["state"])
      post = float(method == "ltp_posterior")
      zs = s.mu + post * jnp.exp(s.log_sigma) * eps[0]
      preds = train.predictions(task, ltp["cfg"], ltp["f"], s.f_params, t, zs, eps[1], ltp["tau"])
      tgt = fam.target(jnp.swapaxes(preds, 0, 1))
      out[method] = dict(mean=np.asarray(tgt[:, 0]).tolist(), sd=sd(tgt).tolist())
  w = jnp.asarray(_mask(n, data.x.shape[1]))
  lp = exact.log_posterior(h, data.x[0], data.y[0], w)
  tgt = exact.predictive_target(h, lp, t)
  out["ideal"] = dict(mean=np.asarray(tgt[:, 0]).tolist(), sd=sd(tgt).tolist())
  mle = jnp.argmax(exact.log_joint(h, data.x[0], data.y[0], w, flat=True))
  tgt = fam.target(hm.forecast(h, jnp.asarray(h.space.enumerate())[mle], t)[:, None, :])
  out["flat_mle"] = dict(mean=np.asarray(tgt[:, 0]).tolist(), sd=sd(tgt).tolist())
  out["truth"] = np.asarray(trend_curve(h.space.values(jnp.asarray(task.truth)), t[:, 0])).tolist()
  out["D"] = dict(x=np.asarray(data.x[0, :n, 0]).tolist(), y=np.asarray(data.y[0, :n]).tolist())
  out["D_star"] = dict(x=np.asarray(data.x_test[0, :200, 0]).tolist(),
                       y=np.asarray(data.y_test[0, :200]).tolist())
  return out


def _int_keys(pairs) -> dict:
  """JSON object hook: the |D| keys of a result back to ints."""
  return {int(k) if k.lstrip("-").isdigit() else k: v for k, v in pairs}


def _plain(x):
  """x as it reads back from JSON (what a cached result is)."""
  return json.loads(json.dumps(x, default=json_default), object_pairs_hook=_int_keys)


def result_identity(cfg, name: str) -> dict:
  """What a task's result depends on: the whole config but which other tasks run."""
  return _plain(dict(task=name, config={k: v for k, v in cfg.to_dict().items() if k != "tasks"}))


def _histories(workdir: str, cfg, name: str) -> dict | None:
  """The task's training histories, read back from its fits' metrics.jsonl (None if gone)."""
  parts = dict(baselines="baselines", ltp=f"ltp-{ltp_config_for(cfg, name).prior_mode}")
  paths = {k: os.path.join(workdir, "runs", name, d, "metrics.jsonl") for k, d in parts.items()}
  if not all(os.path.exists(p) for p in paths.values()):
    return None
  return _plain({k: read_jsonl(p) for k, p in paths.items()})


def _load_result(workdir: str, cfg, name: str) -> dict | None:
  """The task's kept result when it was computed under this config, else None."""
  path = os.path.join(workdir, "runs", name, "result.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    kept = json.load(f, object_pairs_hook=_int_keys)
  history = _histories(workdir, cfg, name) if kept["identity"] == result_identity(cfg, name) \
      else None
  return None if history is None else dict(kept["result"], history=history)


def _save_result(workdir: str, cfg, name: str, result: dict) -> None:
  """Keep the result but its history (the fits' metrics.jsonl hold it) in runs/<task>/
  result.json with its identity, atomically (a crash leaves the old file or none)."""
  path = os.path.join(workdir, "runs", name, "result.json")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  kept = dict(identity=result_identity(cfg, name),
              result={k: v for k, v in result.items() if k != "history"})
  with open(path + ".tmp", "w") as f:
    json.dump(kept, f, default=json_default)
  os.replace(path + ".tmp", path)


def run_task(cfg, name: str, workdir: str | None) -> dict:
  """Every method on one task, as plain data (lists, numbers, strings) for the report; with a
  workdir, the kept result when the config is unchanged (nothing is computed)."""
  _check(cfg)
  if workdir is None:
    return _compute_task(cfg, name, None)
  kept = _load_result(workdir, cfg, name)
  if kept is not None:
    return kept
  out = _plain(_compute_task(cfg, name, workdir))
  _save_result(workdir, cfg, name, out)
  return out


def _queries(flat: dict, prefix: str, tag: str = "q_") -> dict[str, int]:
  """{kind: count} of one (method, |D|) from its per-seed counts (every seed asks the same
  number: the shapes are the same)."""
  key = lambda k: f"{prefix}/{tag}{k}" if prefix else f"{tag}{k}"
  return {k: int(np.max(np.asarray(flat[key(k)]))) for k in QUERY_KINDS}


def _compute_task(cfg, name: str, workdir: str | None) -> dict:
  """`run_task`'s computation: every fit resumes from (or ends at) its checkpoints."""
  task = task_of(cfg, name)
  space, fam = task.human.space, task.human.family
  sub = lambda part: None if workdir is None else os.path.join(workdir, "runs", name, part)
  times = {}
  t0 = time.time()
  data = make_data(task, cfg)
  ideal_out = reference(task, cfg, data)
  times["ideal"] = time.time() - t0
  t0 = time.time()
  sup_final, sup_hist, sup = run_supervised(task, cfg, data, ideal_out, sub("baselines"))
  times["baselines"] = time.time() - t0
  t0 = time.time()
  lc = ltp_config_for(cfg, name)
  ltp_final, ltp_hist, ltp = run_ltp(task, cfg, data, sub(f"ltp-{lc.prior_mode}"), ltp_cfg=lc)
  times["ltp"] = time.time() - t0
  sizes = [int(n) for n in cfg.sizes]
  per_size = lambda f: {n: f(n) for n in sizes}
  methods: dict[str, dict] = {}
  for m in SUPERVISED:
    methods[m] = {k: _by_size(sup_final, m, k, sizes) for k in ("score", "log_lik")}
    # warm-up 2's network is fit on the human's forecasts; the network on D asks nothing
    asked = dict.fromkeys(QUERY_KINDS, 0) | dict(forecast=0 if m == "direct"
                                                  else cfg.warmup2.forecasts)
    methods[m]["queries"] = per_size(lambda n, a=asked: dict(a))
  plan = ltp_plan(cfg)
  for m in LTP:
    got = [n for mm, n in plan if mm == m]
    methods[m] = {k: _by_size(ltp_final, m, k, got)
                  for k in ("score", "log_lik", "human_at_z_score", "human_at_z_log_lik",
                            "select", "restart")}
    methods[m]["z_star"] = _by_size(ltp["arrays"], m, "z_star", got)
    methods[m]["queries"] = {n: _queries(ltp_final, f"{m}/n{n}") for n in got}
  at = lambda n, k: ideal_out[n][k].tolist()
  methods["ideal"] = dict(score=per_size(lambda n: at(n, "score")),
                          log_lik=per_size(lambda n: at(n, "log_lik")),
                          z_star=per_size(lambda n: at(n, "z_map")),
                          p_map=per_size(lambda n: at(n, "p_map")),
                          queries=per_size(lambda n: _queries(ideal_out[n], "", "q_")))
  for m in ("flat_bayes", "flat_mle"):
    methods[m] = dict(score=per_size(lambda n, m=m: at(n, f"{m}_score")),
                      log_lik=per_size(lambda n, m=m: at(n, f"{m}_log_lik")),
                      z_star=per_size(lambda n, m=m: at(n, f"{m}_z_map")),
                      queries=per_size(lambda n: _queries(ideal_out[n], "", "flat_q_")))
  main = cfg.main_size
  show = None if enumerable(task) else READABLE_FIELDS
  readable = {
      "truth": space.describe(task.truth, limit=show),
      "ideal": space.describe(ideal_out[main]["z_map"][0], ideal_out[main]["marginals"][0],
                              limit=show),
      "ltp_map": space.describe(np.asarray(ltp["arrays"][f"ltp_map/n{main}/z_star"][0]),
                                limit=show),
      "ltp_posterior": space.describe_marginals(
          np.asarray(ltp["arrays"][f"ltp_posterior/n{main}/marginals"][0]), limit=show),
  }
  # the prior modes, compared on single starts: the main run's restart 0 and, with the same
  # keys, one MAP run per other mode
  per_restart = ltp["per_restart"]
  r0 = lambda k: np.asarray(per_restart[f"ltp_map/n{main}/r0/{k}"]).tolist()
  prior_modes = {lc.prior_mode: dict(score=r0("score"), log_lik=r0("log_lik"), z_star=r0("z_star"))}
  queries = {lc.prior_mode: _queries(per_restart, f"ltp_map/n{main}/r0")}
  only = _names(cfg.get("compare_prior_modes_tasks", ""))
  for mode in _names(cfg.compare_prior_modes) if not only or name in only else []:
    if mode == lc.prior_mode:
      continue
    lm = lc.copy_and_resolve_references()
    lm.prior_mode, lm.restarts = mode, 1
    t0 = time.time()
    fin, _, extra = run_ltp(task, cfg, data, sub(f"ltp-{mode}"), ltp_cfg=lm,
                            plan=[("ltp_map", main)])
    times[f"ltp-{mode}"] = time.time() - t0
    prior_modes[mode] = dict(score=fin[f"ltp_map/n{main}/score"].tolist(),
                             log_lik=fin[f"ltp_map/n{main}/log_lik"].tolist(),
                             z_star=extra["arrays"][f"ltp_map/n{main}/z_star"].tolist())
    queries[mode] = _queries(fin, f"ltp_map/n{main}")
  out = dict(task=name, score_name=fam.score_name(), sizes=sizes, main_size=main,
             truth=list(task.truth), fields=[f.name for f in space.fields],
             space_size=space.size if enumerable(task) else None,
             log10_space_size=space.log10_size, methods=methods, readable=readable,
             truth_agreement=truth_agreement(task, data, sizes, methods),
             prior_modes=prior_modes, queries=queries, seconds=times,
             history=dict(baselines=sup_hist, ltp=ltp_hist))
  if name == "trend":
    out["grid"] = _grid(task, cfg, data, ideal_out, sup, ltp)
  if not enumerable(task):
    out["gold_chain_gap"] = per_size(lambda n: at(n, "chain_gap"))
  return out


READABLE_FIELDS = 12  # fields printed of a hypothesis too large to read whole


def truth_agreement(task: Task, data: TaskData, sizes, methods: dict) -> dict:
  """Per method with a decoded hypothesis and |D|: the share of fields where it equals the
  generating Z (per seed): over all fields, or, for a human who reads a few fields per question,
  over the fields some question of D reads and over the rest."""
  truth = np.asarray(task.truth)
  out: dict[str, dict] = {}
  for m, d in methods.items():
    if "z_star" not in d:
      continue
    out[m] = {}
    for n in sizes:
      if n not in d["z_star"]:
        continue
      same = np.asarray(d["z_star"][n]) == truth                           # (S, K)
      share = lambda mask: [float(s[k].mean()) if k.any() else float("nan")
                            for s, k in zip(same, mask)]
      if task.human.reads:
        read = np.abs(np.asarray(data.x[:, :n])).max(1) > 0               # (S, K)
        out[m][n] = {"read by D": share(read), "not read by D": share(~read)}
      else:
        out[m][n] = {"all fields": share(np.ones_like(same))}
  return out


def ltp_config_for(cfg, name: str):
  """cfg.ltp with the task's overrides (cfg.ltp_overrides[name])."""
  lc = cfg.ltp.copy_and_resolve_references()
  over = cfg.get("ltp_overrides", {}) or {}
  if name in over:
    lc.update(over[name].to_dict() if hasattr(over[name], "to_dict") else dict(over[name]))
  return lc


def run(cfg, workdir: str | None) -> dict:
  """{task: run_task(...)} for every task in cfg.tasks (the config checked first)."""
  _check(cfg)
  return {name: run_task(cfg, name, workdir) for name in _names(cfg.tasks)}
