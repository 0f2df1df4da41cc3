"""Issue 16 item 4 as data: search for Z* in Mz's latent (Mz fit to the human's exploration)
against search directly in Z, at equal counts of human queries, on the synonyms tasks.

Per task: the human's exploration walks (`explorer.walks`), Mz fit to them once (it models the
human, not D, so every seed's search shares it and is charged its proposals); per seed a D of
`size` reviews, D* questions, one fresh proposal as every chain's start; the chains of
`latent_search.METHODS`; and references: block Gibbs told the human's groups (its best visited
hypothesis, with its query count) and the generating Z.  Results: per method and budget, the
best J found and its D* score over seeds, and J-against-queries curves for the plot.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lprior.ltp import explorer, gibbs
from lprior.ltp import latent_search as ls
from lprior.ltp import mz as mzlib
from lprior.ltp import tasks
from lprior.ltp.tasks import Task

CURVE_POINTS = 48  # budgets on a log grid for the curves


def check(cfg) -> list[str]:
  """The task names, after every value is checked (ValueError naming the key)."""
  names = [t for t in str(cfg.tasks).split(",") if t]
  bad = [t for t in names if t not in tasks.TASKS or not t.startswith("synonyms")]
  if not names or bad:
    raise ValueError(f"tasks: need synonyms tasks (Z read a few fields at a time) from "
                     f"{[t for t in tasks.TASKS if t.startswith('synonyms')]}, got {cfg.tasks!r}")
  if set(cfg.steps) != set(ls.METHODS):
    raise ValueError(f"steps: need one entry per method {ls.METHODS}, got {sorted(cfg.steps)}")
  rules = [("num_seeds", cfg.num_seeds >= 1), ("size", cfg.size >= 1), ("n_test", cfg.n_test >= 1),
           ("steps", min(cfg.steps.values()) >= 1), ("beta", 0 < cfg.beta <= 1),
           ("budgets", len(cfg.budgets) >= 1 and min(cfg.budgets) > 0),
           ("explore.walks", cfg.explore.walks >= 2), ("explore.length", cfg.explore.length >= 1),
           ("mz.latent", cfg.mz.latent >= 1), ("mz.max_steps", cfg.mz.max_steps >= 1),
           ("gold.sweeps", cfg.gold.sweeps > cfg.gold.burn >= 0)]
  for key, ok in rules:
    if not ok:
      section, _, name = key.rpartition(".")
      raise ValueError(f"config.{key} = {(cfg[section] if section else cfg)[name]!r} is invalid")
  return names


def task_of(cfg, name: str) -> Task:
  return tasks.make_task(name, **(dict(cfg[name]) if name in cfg else {}))


def _data(task: Task, cfg, keys: jax.Array) -> ls.Problem:
  def one(k):
    x, y = task.sample_train(jax.random.fold_in(k, 0), cfg.size)
    xt, yt = task.sample_shifted(jax.random.fold_in(k, 2), cfg.n_test)
    return ls.Problem(x, y, jnp.ones(cfg.size), xt, yt)
  return jax.jit(jax.vmap(one))(keys)


def fit_mz(task: Task, cfg, key: jax.Array) -> tuple[mzlib.Mz, mzlib.FitInfo, int]:
  """Mz fit to the human's exploration walks -> (Mz, fit info, proposals asked)."""
  e = cfg.explore
  walks, asked = explorer.walks(jax.random.fold_in(key, 0), task.human, e.walks, e.length,
                                jnp.zeros((), jnp.int32))
  m = cfg.mz
  model, info = mzlib.fit(jax.random.fold_in(key, 1), mzlib.make(task.human.space, m.latent,
                                                                 m.hidden),
                          walks.reshape(e.walks, e.length, -1), batch=m.batch, lr=m.lr,
                          max_steps=m.max_steps, kl_warmup=m.kl_warmup)
  return model, info, int(asked)


def _traces(task: Task, cfg, model: mzlib.Mz, proposals: int, prob: ls.Problem,
            keys: jax.Array) -> dict[str, ls.Trace]:
  h, steps = task.human, {m: int(v) for m, v in cfg.steps.items()}
  z0 = jax.vmap(lambda k: explorer.fresh(k, h, 1, jnp.zeros((), jnp.int32))[0][0])(
      jax.vmap(lambda k: jax.random.fold_in(k, 3))(keys))
  u0 = mzlib.encode(model, z0)
  chain_keys = jax.vmap(lambda k: jax.random.fold_in(k, 4))(keys)
  calls = dict(
      site=lambda k, p, z, u: ls.site(k, h, p, z, steps["site"]),
      edits=lambda k, p, z, u: ls.edits(k, h, p, z, steps["edits"]),
      latent=lambda k, p, z, u: ls.latent(k, h, p, model, u, steps["latent"], cfg.beta,
                                          proposals),
      latent_site=lambda k, p, z, u: ls.latent(k, h, p, model, u, steps["latent_site"], cfg.beta,
                                               proposals, with_site=True),
      fresh=lambda k, p, z, u: ls.fresh(k, h, p, steps["fresh"]))
  assert set(calls) == set(ls.METHODS)
  # seeds one after another (lax.map): vmapped, the D* score's cond would run at every step
  return jax.block_until_ready({m: jax.jit(lambda *a, f=f: jax.lax.map(lambda t: f(*t), a))(
      chain_keys, prob, z0, u0) for m, f in calls.items()})


def _gold(task: Task, cfg, prob: ls.Problem, keys: jax.Array) -> dict[str, np.ndarray]:
  """Block Gibbs told the human's groups: per seed its best visited J, that hypothesis's D*
  score, the posterior predictive's D* score and the queries asked."""
  h, out = task.human, dict(best_j=[], score=[], posterior_score=[], queries=[])
  for s in range(keys.shape[0]):
    p = jax.tree.map(lambda a: a[s], prob)
    inc = jnp.asarray(gibbs.incidence(h, np.asarray(p.x)).examples)
    z0, _ = explorer.fresh(jax.random.fold_in(keys[s], 3), h, 1, jnp.zeros((), jnp.int32))
    g = gibbs.run(jax.random.fold_in(keys[s], 5), h, p.x, p.y, p.w, inc, p.x_test, p.y_test,
                  z0[0], sweeps=cfg.gold.sweeps, burn=cfg.gold.burn)
    sc = ls.scorer(h, p)
    out["best_j"].append(float(g.best_log_joint))
    out["score"].append(float(sc.score(g.best)))
    out["posterior_score"].append(float(h.family.score(g.target, p.y_test)))
    out["queries"].append(int(g.queries.forecast + g.queries.judgments))
  return {k: np.asarray(v) for k, v in out.items()}


def _truth(task: Task, prob: ls.Problem) -> dict[str, np.ndarray]:
  z = jnp.asarray(task.truth, jnp.int32)

  def one(p):
    sc = ls.scorer(task.human, p)
    return sc.j(z), sc.score(z)

  j, score = jax.vmap(one)(prob)
  return dict(best_j=np.asarray(j), score=np.asarray(score))


def _chance(prob: ls.Problem) -> list[float]:
  """Per seed, the D* accuracy of always answering the majority label (the chance level)."""
  y = np.asarray(prob.y_test)
  return np.maximum(y.mean(-1), 1 - y.mean(-1)).tolist()


def run_task(cfg, name: str, log=print) -> dict[str, Any]:
  """The comparison on one task, as plain data (lists and floats)."""
  task = task_of(cfg, name)
  root = jax.random.fold_in(jax.random.key(cfg.seed), tasks.TASKS.index(name))
  keys = jax.vmap(lambda s: jax.random.fold_in(root, s))(jnp.arange(cfg.num_seeds))
  t0 = time.perf_counter()
  model, info, proposals = fit_mz(task, cfg, jax.random.fold_in(root, 10 ** 6))
  log(f"[{name}] Mz fit on {proposals} proposals: {info.steps} steps, held-out ELBO "
      f"{info.held_out_elbo:.1f} nats ({time.perf_counter() - t0:.0f} s)")
  prob = _data(task, cfg, keys)
  t0 = time.perf_counter()
  traces = _traces(task, cfg, model, proposals, prob, keys)
  log(f"[{name}] {len(traces)} searches x {cfg.num_seeds} seeds, {dict(cfg.steps)} steps "
      f"({time.perf_counter() - t0:.0f} s)")
  t0 = time.perf_counter()
  gold_out = _gold(task, cfg, prob, keys)
  log(f"[{name}] block Gibbs reference ({time.perf_counter() - t0:.0f} s)")
  grid = np.unique(np.geomspace(1e3, max(max(cfg.budgets), 1e4), CURVE_POINTS).round())
  methods = {}
  for m, tr in traces.items():
    per_seed = [jax.tree.map(lambda a: a[s], tr) for s in range(cfg.num_seeds)]
    methods[m] = dict(
        budgets={str(int(b)): [ls.at_budget(t, b) for t in per_seed] for b in cfg.budgets},
        final=[dict(best_j=float(t.best_j[-1]), score=float(t.best_score[-1]),
                    queries=int(t.queries[-1]), accept=float(t.accept.mean())) for t in per_seed],
        curve=[[ls.at_budget(t, b)["best_j"] for b in grid] for t in per_seed])
  return dict(task=name, chance=_chance(prob), mz=dict(proposals=proposals, steps=info.steps,
                                 held_out_elbo=info.held_out_elbo, train_elbo=info.train_elbo,
                                 independent_nats=float(task.human.space.num_fields
                                                        * np.log(task.human.space.max_levels))),
              grid=grid.tolist(), methods=methods,
              gold={k: v.tolist() for k, v in gold_out.items()},
              truth={k: v.tolist() for k, v in _truth(task, prob).items()})
