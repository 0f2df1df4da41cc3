"""The honest-QA experiment (issue 3 §6): every method on the same worlds, seeds vmapped so one
compilation serves all seeds of a variant; resumable through `lprior.train.fit`."""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lprior.honest_qa import make_datasets, make_model, world_spec
from lprior.honest_qa.splits import rates
from lprior.train import fit, nested, plain

TEST_SPLITS = ("iid", "human_wrong_seen", "human_wrong_unseen")


def variant_train_config(cfg, variant: str, lam: float | None = None):
  """The trainer config of one variant (None for method (a))."""
  if variant.startswith("a_"):
    return None
  t = cfg.train.copy_and_resolve_references()
  t.stop_intended = variant.endswith("_stop")
  if variant.startswith("b_"):
    t.form, t.logz = "chained", "none"
  elif variant.startswith("c_"):
    t.form = "chained"
  elif variant.startswith("d_"):
    t.form = "partitioned"
  else:
    raise ValueError(f"unknown variant {variant!r}")
  if lam is not None:
    t.lam = lam
  return t


def seed_data(cfg) -> tuple[Any, dict, jax.Array]:
  """Per-seed worlds stacked on a leading seed axis: (Data, splits, seed keys)."""
  keys = jax.random.split(jax.random.key(cfg.seed), cfg.num_seeds)
  per = [make_datasets(jax.random.fold_in(k, 0), cfg.world) for k in keys]
  stack = lambda *xs: jnp.stack(xs)
  data = jax.tree.map(stack, *[p[0] for p in per])
  splits = {n: jax.tree.map(stack, *[p[1][n] for p in per]) for n in per[0][1]}
  return data, splits, keys


def _eval_fn(apply_fn, splits, params_of):
  names = [n for n in TEST_SPLITS if n in splits]

  def one(params, sp):
    out = {}
    for n in names:
      logits = apply_fn(params, sp[n].x)[0]
      r = rates(logits, sp[n].y_true, sp[n].y_human)
      out.update({f"{n}/{k}": r[k] for k in ("accuracy", "repeats_human_error")})
    return out

  batched = jax.jit(jax.vmap(one))
  return lambda state: batched(params_of(state[0]), {n: splits[n] for n in names})


def run_variant(cfg, variant: str, data, splits, keys, workdir: str, lam: float | None = None):
  """Train one variant on every seed; returns (history, final eval {metric: (S,) array})."""
  tcfg = variant_train_config(cfg, variant, lam)
  model = make_model(world_spec(cfg.world).n_answers, cfg.model, one_head=tcfg is None)
  x0 = data.x_small[0]
  params0 = jax.vmap(lambda k: model.init(jax.random.fold_in(k, 1), x0))(keys)
  if tcfg is None:
    pcfg = cfg.train
    state = jax.vmap(lambda k, p: plain.init(k, p, pcfg))(keys, params0)
    step = lambda st, d, s: plain.make_step(model.apply_fn, d, pcfg)(st, s)
    params_of = lambda st: st.params
    config = dict(variant=variant, train=cfg.train.to_dict())
  else:
    def init_one(k, p0, d):
      problem, t1, t2 = nested.make_problem(model.apply_fn, p0, d, tcfg)
      return nested.init(jax.random.fold_in(k, 2), problem, t1, t2, tcfg)

    state = jax.vmap(init_one)(keys, params0, data)

    def step(st, d, s, p0):
      problem, _, _ = nested.make_problem(model.apply_fn, p0, d, tcfg)
      return nested.make_step(problem, d, tcfg)(st, s)

    params_of = lambda st: nested.model_params(st, tcfg.form)
    config = dict(variant=variant, train=tcfg.to_dict())

  def step_fn(full, s):
    st, d, p0 = full
    if tcfg is None:
      new, m = jax.vmap(step, in_axes=(0, 0, None))(st, d, s)
    else:
      new, m = jax.vmap(step, in_axes=(0, 0, None, 0))(st, d, s, p0)
    return (new, d, p0), m

  evaluate = _eval_fn(model.apply_fn, splits, params_of)
  full = (state, data, params0)
  config.update(seed=cfg.seed, num_seeds=cfg.num_seeds, world=cfg.world.to_dict(),
                model=cfg.model.to_dict(), num_steps=cfg.num_steps)
  full, hist = fit(full, step_fn, cfg.num_steps, workdir=workdir, config=config,
                   eval_fn=evaluate, eval_every=cfg.eval_every,
                   checkpoint_every=cfg.checkpoint_every, desc=variant)
  final = {k: np.asarray(v) for k, v in evaluate(full).items()}
  return hist, final
