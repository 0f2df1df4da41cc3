"""The honest-QA experiment (issue 3 §6): every method on the same worlds, resumable through
`lprior.train.fit`.

Methods: (a) plain SGD, one head, on the large set, and its ceiling (the same model trained on
as many i.i.d. examples labelled with the truth); (b) two heads with λC and no log Z;
(c) the nested posterior, chained form; (d) nested, partitioned: θ₁ = the heads (plus
`trunk_share` of the trunk), or designed (d_designed: θ₂ = the human model, the encoder of A, R
and the question; θ₁ = the sensors' encoder, trunk and heads); (b)–(d) with and without
`stop_intended`; plus (c) at the λ of `lam_sweep` and the κ of `kappa_sweep`, and the κ → 0
control (c_kappa_control: κ = `kappa_control`, where the nested posterior must reduce to plain
with the same stage-1 prior).  Runs that share a compiled step form a group (`group_of`: (a), the
ceiling, (b), (c) with the sweeps, (d)): inside a group the arms differ only in (λ,
stop_intended, κ), traced values, so one compilation serves arms × seeds,
vmapped over one batch axis and sharded over every device.  (b) is its own group
(logz='none'), not (c) with log Z weighted 0: it would pay for tracking a log Z it ignores.

Every run is early-stopped on held-out small-set data (splits['heldout'], never a test split):
the intended head's mean log-likelihood every `eval_every` steps, the best parameters kept in the
training state (`lprior.train.early_stopping`); the group stops once every run has gone
`patience` evaluations without improving, and the final evaluation is at each run's best.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from lprior import posterior as post
from lprior.distributed import host_value, put_global
from lprior.honest_qa import (make_comparisons, make_datasets, model_for, with_comparisons,
                               world_spec)
from lprior.honest_qa.splits import TEST_SPLITS, heldout_split, iid_split, rates
from lprior.train import early_stopping, fit, nested, plain
from lprior.xla import compiler_options

VARIANTS = ("a_plain", "a_ceiling", "b_two_heads", "b_two_heads_stop", "c_chained",
            "c_chained_stop", "c_kappa_control", "d_partitioned", "d_partitioned_stop",
            "d_designed", "d_designed_stop", "a_plain_sgld", "c_chained_sgld",
            "b_two_heads_anneal", "c_chained_anneal", "d_designed_anneal", "a_plain_tight",
            "c_chained_fresh", "c_chained_surrogate", "c_chained_anneal_fresh",
            "c_chained_anneal_surrogate")
GROUPS = ("plain", "ceiling", "two_heads", "chained", "partitioned", "designed", "plain_sgld",
          "chained_sgld", "two_heads_anneal", "chained_anneal", "designed_anneal",
          "plain_tight", "chained_fresh", "chained_surrogate", "chained_anneal_fresh",
          "chained_anneal_surrogate")
# variant and group suffixes: SGLD instead of MAP (cfg.sgld); λ annealed (cfg.anneal); log Z by
# a fresh tempered SMC every train.fresh_every steps instead of the tracker (its particles never
# outlive the step they chose: no feedback, BUILD_NOTES); log Z by the post's one-particle
# difference surrogate (θ₂ centred: the surrogate moves θ₂ itself); they compose
# (c_chained_anneal_fresh: λ annealed, log Z by fresh SMC)
MODIFIERS = ("_sgld", "_anneal", "_fresh", "_surrogate")
GROUP_OF = {"a": "plain", "b": "two_heads", "c": "chained", "d": "partitioned"}
# groups trained by the plain trainer, one head; plain_tight: plain with the designed arm's
# prior on the human model (σ₂ = κσ₁ on encoder_human): the designed partition without C, log Z
ONE_HEAD = ("plain", "ceiling", "plain_sgld", "plain_tight")
HEADS = ("intended", "instrumental")

FORM_OF = {"two_heads": "chained", "chained": "chained", "partitioned": "partitioned",
           "designed": "partitioned"}
# the designed partition: θ₂ = the human model (the encoder of A, R and the question), under the
# log-integral; θ₁ = the sensors' encoder, the trunk and both heads (model.encoder_features)
DESIGNED_THETA2 = ("encoder_human",)


def split_modifiers(name: str) -> tuple[str, tuple[str, ...]]:
  """A variant's or group's name without its MODIFIERS suffixes, and those suffixes in order:
  'c_chained_anneal_fresh' -> ('c_chained', ('_anneal', '_fresh'))."""
  mods: list[str] = []
  while (m := next((m for m in MODIFIERS if name.endswith(m)), None)) is not None:
    mods.insert(0, m)
    name = name[:-len(m)]
  return name, tuple(mods)


def group_of(variant: str) -> str:
  """The compiled group a variant trains in."""
  base, mods = split_modifiers(variant)
  if mods:
    return group_of(base) + "".join(mods)
  special = {"a_ceiling": "ceiling", "a_plain_tight": "plain_tight", "d_designed": "designed",
             "d_designed_stop": "designed"}
  return special.get(variant, GROUP_OF[variant[0]])


class Arm(NamedTuple):
  """One trained variant: its name and the values that may differ inside its group."""
  name: str
  lam: float
  stop_intended: bool
  kappa: float  # σ₂,ℓ = κ·σ₁,ℓ (train.prior_scales='per_layer')


HYPER = ("lam", "stop_intended", "kappa")  # the traced fields of Arm


def sweep_name(cfg, lam: float) -> str:
  """The run that gives the λ sweep's point `lam` (c_chained itself at the trainer's λ)."""
  variants = cfg.variants.split(",")
  if lam == cfg.train.lam and "c_chained" in variants:
    return "c_chained"
  return f"c_chained_lam{lam:g}"


def kappa_name(cfg, kappa: float) -> str:
  """The run that gives the κ sweep's point `kappa` (c_chained itself at the trainer's κ)."""
  if kappa == cfg.train.kappa and "c_chained" in cfg.variants.split(","):
    return "c_chained"
  return f"c_chained_kappa{kappa:g}"


def check(cfg) -> None:
  """ValueError, before any data or training, for a config value that cannot hold."""
  if not cfg.train.lam >= 0:
    raise ValueError(f"config.train.lam must be >= 0; got {cfg.train.lam}")
  nested.check_config(cfg.train)
  for key in ("num_seeds", "num_steps", "eval_every", "heldout_size", "concurrent_groups"):
    if int(cfg[key]) < 1:
      raise ValueError(f"config.{key} must be >= 1; got {cfg[key]}")
  for key in ("patience", "checkpoint_every", "consistency_size", "arms_per_batch"):
    if int(cfg[key]) < 0:
      raise ValueError(f"config.{key} must be >= 0; got {cfg[key]}")
  for v in cfg.variants.split(","):
    if v in VARIANTS and split_modifiers(v)[1]:
      nested.check_config(_with_mode(cfg, group_of(v), cfg.train.copy_and_resolve_references()))
  anneal = nested.annealing(cfg.train)
  for v in cfg.lam_sweep or ():
    if not (0 < v <= cfg.train.lam_max if anneal else v >= 0):
      raise ValueError(f"config.lam_sweep holds {v}; it must be "
                       + (f"in (0, train.lam_max={cfg.train.lam_max}] (λ anneals from it)"
                          if anneal else ">= 0"))
  for key, values in (("kappa_sweep", cfg.kappa_sweep or ()), ("kappa_control",
                                                              (cfg.kappa_control,))):
    for v in values:
      if not v > 0:
        raise ValueError(f"config.{key} holds {v}; it must be > 0")
  designed = [v for v in cfg.variants.split(",") if v.startswith(("d_designed", "a_plain_tight"))]
  if designed and not tuple(cfg.model.encoder_features):
    raise ValueError(f"{designed} treat the human model's encoder apart (θ₂, or its prior): "
                     "they need model.encoder_features (e.g. (16,)); got ()")
  if designed and cfg.train.prior_scales != "per_layer":
    raise ValueError(f"{designed} need train.prior_scales='per_layer' (σ₂ = κσ₁)")
  if not (cfg.sgld.lr > 0 and cfg.sgld.temperature > 0 and 0 <= cfg.sgld.burnin < 1):
    raise ValueError("config.sgld needs lr > 0, temperature > 0 and burnin in [0, 1); got "
                     f"{cfg.sgld.lr}, {cfg.sgld.temperature}, {cfg.sgld.burnin}")
  needs_kappa = bool(cfg.kappa_sweep) or "c_kappa_control" in cfg.variants.split(",")
  if needs_kappa and cfg.train.prior_scales != "per_layer":
    raise ValueError("config.kappa_sweep and c_kappa_control need train.prior_scales="
                     f"'per_layer' (σ₂ = κσ₁); got {cfg.train.prior_scales!r}")


def plan(cfg) -> dict[str, list[Arm]]:
  """{group: arms} for cfg.variants, cfg.lam_sweep and cfg.kappa_sweep; ValueError on an
  unknown variant or a value that cannot hold (`check`)."""
  check(cfg)
  groups: dict[str, list[Arm]] = {g: [] for g in GROUPS}
  kappa = cfg.train.kappa
  for v in cfg.variants.split(","):
    if v not in VARIANTS:
      raise ValueError(f"unknown variant {v!r} in config.variants; choose from {VARIANTS}")
    k = cfg.kappa_control if v == "c_kappa_control" else kappa
    groups[group_of(v)].append(Arm(v, cfg.train.lam, v.endswith("_stop"), k))
  for lam in cfg.lam_sweep or ():
    if sweep_name(cfg, lam) != "c_chained":
      groups["chained"].append(Arm(sweep_name(cfg, lam), float(lam), False, kappa))
  for k in cfg.kappa_sweep or ():
    if kappa_name(cfg, k) != "c_chained":
      groups["chained"].append(Arm(kappa_name(cfg, k), cfg.train.lam, False, float(k)))
  return {g: arms for g, arms in groups.items() if arms}


def batches(group: str, arms: list[Arm], arms_per_batch: int) -> list[tuple[str, list[Arm]]]:
  """A group's arms in compiled batches of at most `arms_per_batch` arms (× num_seeds runs; 0:
  the whole group at once), each with the name of its checkpoint folder: the group's own name
  for a single batch, 'group.i' for the i-th of several.  Runs are independent, so the split
  changes the memory a batch asks for (arms × seeds × particles × consistency inputs), not the
  numbers."""
  k = arms_per_batch if arms_per_batch > 0 else len(arms)
  parts = [arms[i:i + k] for i in range(0, len(arms), k)]
  return [(group if len(parts) == 1 else f"{group}.{i}", p) for i, p in enumerate(parts)]


def group_train_config(cfg, group: str):
  """The trainer config shared by a group's arms (method (b): no log Z)."""
  t = cfg.train.copy_and_resolve_references()
  base = split_modifiers(group)[0]
  t.form = FORM_OF[base]
  if base == "two_heads":
    t.logz = "none"
  if base == "designed":
    t.theta2_keys = DESIGNED_THETA2
  return _with_mode(cfg, group, t)


def _with_mode(cfg, group: str, t):
  """`t` (a train config) with a modified group's settings: SGLD's mode, step size and
  temperature (cfg.sgld); λ annealing's target, growth and cap (cfg.anneal); the log Z method
  ('fresh', 'surrogate'), for each of the group's MODIFIERS."""
  mods = split_modifiers(group)[1]
  if "_sgld" in mods:
    t.mode, t.temperature = "sgld", cfg.sgld.temperature
    t.lr_theta1 = t.lr_theta2 = cfg.sgld.lr
    t.lr_decay_steps = 0  # Langevin steps at a fixed η
  if "_anneal" in mods:
    a = cfg.anneal
    t.lam_target, t.lam_growth, t.lam_max = a.target, a.growth, a.lam_max
  if "_fresh" in mods:
    t.logz = "fresh"
  if "_surrogate" in mods:
    t.logz, t.theta2_param = "surrogate", "centred"
  return t


def seed_data(cfg) -> tuple[Any, dict, jax.Array]:
  """Per-seed worlds stacked on a leading seed axis: (Data, splits, seed keys).  C is taken on
  the first `consistency_size` inputs of the small set (0: all of it); with
  train.likelihood='bradley_terry' the large set holds step 3's judged pairs, not labels.  With
  the ceiling among the variants, splits['ceiling_train'] holds its training set: as many i.i.d.
  examples as the large set, every label kept (it trains on y_true); splits['heldout'] holds
  `heldout_size` fresh small-set examples for early stopping."""
  keys = jax.random.split(jax.random.key(cfg.seed), cfg.num_seeds)
  per = [make_datasets(jax.random.fold_in(k, 0), cfg.world) for k in keys]
  for k, (_, sp) in zip(keys, per):
    sp["heldout"] = heldout_split(jax.random.fold_in(k, 5), cfg.world, cfg.heldout_size)
  if "a_ceiling" in cfg.variants.split(","):
    for k, (d, sp) in zip(keys, per):
      sp["ceiling_train"] = iid_split(jax.random.fold_in(k, 4), cfg.world, d.y_large.shape[0])
  if cfg.consistency_size:
    per = [(d._replace(x_small=d.x_small[:cfg.consistency_size]), sp) for d, sp in per]
  if cfg.train.likelihood == "bradley_terry":
    per = [(with_comparisons(d, make_comparisons(jax.random.fold_in(k, 3), cfg.world, sp["large"])),
            sp) for k, (d, sp) in zip(keys, per)]
  stack = lambda *xs: jnp.stack(xs)
  data = jax.tree.map(stack, *[p[0] for p in per])
  splits = {n: jax.tree.map(stack, *[p[1][n] for p in per]) for n in per[0][1]}
  return data, splits, keys


def _batch_sharding(batch: int, devices=None) -> tuple[int, NamedSharding]:
  """(padded batch size, sharding of its leading axis over `devices`, default every device)."""
  devices = jax.devices() if devices is None else list(devices)
  padded = -(-batch // len(devices)) * len(devices)
  mesh = jax.sharding.Mesh(np.array(devices), ("batch",))
  return padded, NamedSharding(mesh, PartitionSpec("batch"))


def _batched(tree, index: np.ndarray, sharding: NamedSharding):
  """tree's leading axis gathered at `index` (B,), sharded over the devices (of every process)."""
  return put_global(jax.tree.map(lambda x: x[index], tree), sharding)


def ceiling_data(data, splits):
  """The ceiling's training data: the large set replaced by splits['ceiling_train'] with its
  true labels (per seed, like `data`)."""
  sp = splits["ceiling_train"]
  return data._replace(x_large=sp.x, y_large=sp.y_true, w_large=None)


def _eval_fn(apply_fn, splits, seed_of, arms, num_seeds, replicated, opts):
  """(evaluate, evaluate_logits): params (B, ...) -> {'arm/split/metric': (S,)}, replicated on
  every device (readable on any host): the intended head's accuracy and repeats_human_error,
  and each head's agreement with the truth, the human and the complex labeler
  ('split/head/agree_<label>'; one-head models answer with the same head twice);
  evaluate_logits the same from {split: (intended, instrumental) logits (B, n, K)} (e.g. log
  posterior-averaged predictions)."""
  names = [n for n in TEST_SPLITS if n in splits]

  def one(x, seed, from_logits):
    out = {}
    for n in names:
      sp = jax.tree.map(lambda v: v[seed], splits[n])
      logits = x[n] if from_logits else apply_fn(x, sp.x)
      r = rates(logits[0], sp.y_true, sp.y_human)
      out.update({f"{n}/{k}": r[k] for k in ("accuracy", "repeats_human_error",
                                               "accuracy_where_human_right")})
      for head, lg in zip(HEADS, logits):
        pred = jnp.argmax(lg, -1)
        for label in ("true", "human", "complex"):
          out[f"{n}/{head}/agree_{label}"] = jnp.mean(pred == getattr(sp, f"y_{label}"))
    return out

  def fn(from_logits):
    return jax.jit(lambda x: _per_arm(jax.vmap(lambda x, s: one(x, s, from_logits))(x, seed_of),
                                      arms, num_seeds),
                   out_shardings=replicated, compiler_options=opts)

  return fn(False), fn(True)


def _predictive_fn(apply_fn, splits, seed_of):
  """params (B, ...) -> {split: (intended, instrumental) softmax probabilities (B, n, K)}."""
  names = [n for n in TEST_SPLITS if n in splits]

  def one(params, seed):
    return {n: tuple(jax.nn.softmax(lg, -1) for lg in
                     apply_fn(params, jax.tree.map(lambda v: v[seed], splits[n]).x))
            for n in names}

  return lambda params: jax.vmap(one)(params, seed_of)


def _heldout_score(apply_fn, heldout):
  """(params, seed) -> the intended head's mean log-likelihood of the held-out labels."""
  def score(params, seed):
    sp = jax.tree.map(lambda x: x[seed], heldout)
    return rates(apply_fn(params, sp.x)[0], sp.y_true, sp.y_human)["log_lik_truth"]
  return score


def _per_arm(values: dict, arms: list[Arm], num_seeds: int) -> dict:
  """{k: (B,)} over the batch (arm-major, padded) -> {'arm/k': (S,)}."""
  out = {}
  for k, v in values.items():
    for i, a in enumerate(arms):
      out[f"{a.name}/{k}"] = v[i * num_seeds:(i + 1) * num_seeds]
  return out


def _arm_history(history: list[dict], name: str) -> list[dict]:
  """The rows of one arm, its keys without the 'arm/' prefix ('eval/arm/k' -> 'eval/k')."""
  pre, epre = f"{name}/", f"eval/{name}/"
  rows = []
  for r in history:
    row = {"step": r["step"]}
    for k, v in r.items():
      if k.startswith(pre):
        row[k[len(pre):]] = v
      elif k.startswith(epre):
        row["eval/" + k[len(epre):]] = v
    rows.append(row)
  return rows


def run_group(cfg, group: str, arms: list[Arm], data, splits, keys, workdir: str | None,
              devices=None) -> dict[str, tuple[list[dict], dict]]:
  """Train a group's arms on every seed: {arm name: (history, final eval {metric: (S,)})}, the
  final evaluation at each run's early-stopping best (plus 'best_step' and 'stopped', (S,)).
  The batch is sharded over `devices` (default: all); the numbers do not depend on them."""
  S, A = cfg.num_seeds, len(arms)
  batch, sharding = _batch_sharding(A * S, devices)
  replicated = NamedSharding(sharding.mesh, PartitionSpec())
  seed_of = np.arange(batch) % S  # arm-major; the padding repeats real seeds of the last arm
  arm_of = np.minimum(np.arange(batch) // S, A - 1)
  tcfg = None if group in ONE_HEAD else group_train_config(cfg, group)
  pcfg = _with_mode(cfg, group, cfg.train.copy_and_resolve_references())
  if group == "ceiling":  # trained on the truth's labels, whatever L is made of
    pcfg.likelihood, data = "labels", ceiling_data(data, splits)
  opts = compiler_options(cfg.fast_compile)
  model = model_for(world_spec(cfg.world), cfg.model, one_head=tcfg is None)
  params0 = jax.jit(jax.vmap(lambda k: model.init(jax.random.fold_in(k, 1), data.x_small[0])),
                    compiler_options=opts)(keys)
  hyper = {f: jnp.asarray([getattr(arms[i], f) for i in arm_of]) for f in HYPER}
  per = _batched((data, params0, keys), seed_of, sharding)
  hyper = put_global(hyper, sharding)

  if tcfg is None:
    state = jax.jit(jax.vmap(lambda k, p: plain.init(k, p, pcfg)),
                    compiler_options=opts)(per[2], per[1])

    def step_one(st, d, p0, h, s):  # the same stage-1 prior as the nested arms
      sigma1 = nested.prior_scales(pcfg, p0)[0]
      if group == "plain_tight":  # ... but the designed arm's σ₂ = κσ₁ on its θ₂ (the human model)
        sigma1 = {k: jax.tree.map(lambda x: h["kappa"] * x, v) if k in DESIGNED_THETA2 else v
                  for k, v in sigma1.items()}
      return plain.make_step(model.apply_fn, d, pcfg, theta0=p0, sigma1=sigma1)(st, s)
    params_of = lambda st, per_, h: st.params
  else:
    def problem(d, p0, h):
      return nested.make_problem(model.apply_fn, p0, d, tcfg, lam=h["lam"],
                                 stop_intended=h["stop_intended"], kappa=h["kappa"])

    def init_one(d, p0, k, h):
      prob, t1, t2 = problem(d, p0, h)
      return nested.init(jax.random.fold_in(k, 2), prob, t1, t2, tcfg)

    state = jax.jit(jax.vmap(init_one), compiler_options=opts)(*per, hyper)
    step_one = lambda st, d, p0, h, s: nested.make_step(problem(d, p0, h)[0], d, tcfg)(st, s)
    one_params = lambda st, d, p0, h: nested.model_params(st, problem(d, p0, h)[0])
    params_of = lambda st, per_, h: jax.vmap(one_params)(st, per_[0], per_[1], h)
  jparams = jax.jit(params_of)
  best = jax.jit(jax.vmap(early_stopping.init))(jparams(state, per, hyper))
  # SGLD groups: the running sum of the heads' predictive probabilities on every test split
  # over the evaluations after burn-in (the posterior-averaged prediction); else just a count
  sgld = "_sgld" in split_modifiers(group)[1]
  predictive = _predictive_fn(model.apply_fn, splits, np.asarray(seed_of))
  avg = dict(count=jnp.zeros((batch,), jnp.float32))
  if sgld:
    avg["probs"] = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype),
                                jax.eval_shape(predictive, jparams(state, per, hyper)))
  avg = put_global(avg, sharding)  # sharded like the runs: a restored checkpoint is committed

  def batched(one):
    """A per-run (state, data, params0, hyper, step) function over the whole sharded batch."""
    def fn(full, s):
      st, (d, p0, k), h, *records = full
      new, m = jax.vmap(one, in_axes=(0, 0, 0, 0, None))(st, d, p0, h, s)
      metrics = jax.lax.with_sharding_constraint(_per_arm(m, arms, S), replicated)
      return (new, (d, p0, k), h, *records), metrics
    return fn

  score = _heldout_score(model.apply_fn, splits["heldout"])
  seeds = jnp.asarray(seed_of)

  consistency = jax.vmap(lambda p, d: post.consistency(
      p, model.apply_fn, d.x_small, divergence=(tcfg or pcfg).divergence))
  anneal = tcfg is not None and nested.annealing(tcfg)

  burnin = int(cfg.sgld.burnin * cfg.num_steps)

  def track_best(full, s):
    """Every eval_every steps: the held-out score of each run and its best so far; while λ
    anneals, a run is eligible once its C is at most lam_target (or λ at lam_max); SGLD groups
    add the predictions past burn-in to their average."""
    st, per_, h, b, av = full
    params = params_of(st, per_, h)
    if sgld:
      take = (s + 1 > burnin).astype(jnp.float32)
      av = dict(count=av["count"] + take, probs=jax.tree.map(
          lambda a, p: a + take * p, av["probs"], predictive(params)))
    value = jax.vmap(score)(params, seeds)
    ok = True
    if anneal:
      ok = (consistency(params, per_[0]) <= tcfg.lam_target) | (st.lam >= tcfg.lam_max)
    b = jax.vmap(early_stopping.update, in_axes=(0, 0, 0, None, 0 if anneal else None))(
        b, value, params, s + 1, ok)
    m = _per_arm(dict(heldout_log_lik=value, best_step=b.step.astype(jnp.float32)), arms, S)
    return (st, per_, h, b, av), jax.lax.with_sharding_constraint(m, replicated)

  periodic = [(cfg.eval_every, track_best)]
  on_row = None
  if tcfg is not None and nested.checks_enabled(tcfg):
    check_one = lambda st, d, p0, h, s: nested.make_check(problem(d, p0, h)[0], tcfg)(st, s)
    periodic.insert(0, (tcfg.logz_check_every, batched(check_one)))
  if tcfg is not None and nested.reanchors(tcfg):
    # one cond over the batch: a capped run's fresh SMC runs only on the steps that need it
    redo = batched(lambda st, d, p0, h, s: nested.make_reanchor(problem(d, p0, h)[0], tcfg)(
        st, s))
    skip = batched(lambda st, d, p0, h, s: (st, {"logz_reanchored": jnp.zeros(())}))
    periodic.insert(0, (1, lambda full, s: jax.lax.cond(
        jnp.any(full[0].track.num_capped > 0), redo, skip, full, s)))
  if tcfg is not None:
    on_row = nested.check_row(tcfg)
  # SGLD samples to num_steps (its selection is the average past burn-in, not a best step)
  stopped = lambda b: early_stopping.stopped(b, 0 if sgld else int(cfg.patience))
  stop_fn = lambda full: jnp.all(stopped(full[3]))

  evaluate, evaluate_logits = _eval_fn(model.apply_fn, splits, seeds, arms, S, replicated, opts)
  config = dict(group=group, arms=[a._asdict() for a in arms], seed=cfg.seed, num_seeds=S,
                world=cfg.world.to_dict(), model=cfg.model.to_dict(),
                train=(tcfg or pcfg).to_dict(), heldout_size=cfg.heldout_size,
                patience=cfg.patience, eval_every=cfg.eval_every,  # num_steps may grow
                **(dict(sgld_burnin=burnin) if sgld else {}))
  full, hist = fit((state, per, hyper, best, avg), batched(step_one), cfg.num_steps,
                   workdir=workdir,
                   config=config, eval_fn=lambda full: evaluate(jparams(*full[:3])),
                   eval_every=cfg.eval_every, checkpoint_every=cfg.checkpoint_every, desc=group,
                   compiler_options=opts, periodic=periodic, on_row=on_row, stop_fn=stop_fn)
  def summarise(full):
    st, per_, _, b, _ = full
    out = dict(best_step=b.step, stopped=stopped(b))
    if tcfg is not None:  # C per example at the best parameters; λ where training ended
      out.update(consistency=consistency(b.params, per_[0]), lam=st.lam,
                 eligible=b.score > -jnp.inf)
    return _per_arm(out, arms, S)

  b, av = full[3:]
  summary = jax.jit(summarise, out_shardings=replicated)(full)  # readable on any host
  if sgld:  # the posterior-averaged prediction: log of the mean probabilities past burn-in
    mean = jax.jit(lambda av: jax.tree.map(
        lambda p: jnp.log(p / av["count"][:, None, None]), av["probs"]))(av)
    final = {**evaluate_logits(mean), **summary}
  else:
    final = {**evaluate(b.params), **summary}
  final = {k: host_value(v) for k, v in final.items()}
  return {a.name: (_arm_history(hist, a.name),
                   {k.split("/", 1)[1]: v for k, v in final.items() if k.startswith(a.name + "/")})
          for a in arms}


def run(cfg, workdir: str) -> tuple[dict, dict, dict]:
  """Every group of `plan(cfg)`: (runs {variant: (history, final)}, sweeps {'lam': {λ: (history,
  final)}, 'kappa': {κ: ...}}, the simple labeler's accuracy on each test split).  The config is
  checked before any data are drawn; the groups' batches (`batches`) train
  `concurrent_groups` at a time, each run's numbers those it has alone."""
  groups = plan(cfg)
  data, splits, keys = seed_data(cfg)
  jobs = [(group, name, part) for group, arms in groups.items()
          for name, part in batches(group, arms, int(cfg.arms_per_batch))]
  # the groups with a log Z estimate first: the longest start first when two run at once
  jobs.sort(key=lambda j: j[0] in ONE_HEAD or group_train_config(cfg, j[0]).logz == "none")
  train = lambda job: run_group(cfg, job[0], job[2], data, splits, keys,
                                os.path.join(workdir, "runs", job[1]))
  # several processes must issue their collectives in one order: one group at a time there
  workers = int(cfg.concurrent_groups) if jax.process_count() == 1 else 1
  with ThreadPoolExecutor(workers) as pool:
    results = {k: v for out in pool.map(train, jobs) for k, v in out.items()}
  runs = {v: results[v] for v in cfg.variants.split(",")}
  sweeps = dict(lam={lam: results[sweep_name(cfg, lam)] for lam in cfg.lam_sweep or ()},
                kappa={k: results[kappa_name(cfg, k)] for k in cfg.kappa_sweep or ()})
  human = {n: float((splits[n].y_human == splits[n].y_true).mean())
           for n in TEST_SPLITS if n in splits}
  return runs, sweeps, human
