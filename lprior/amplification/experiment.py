"""The experiment of issue 7 as data: accuracy against human calls for every method and task,
and the planted-error search costs against tree size.  No files, no plots (see the launcher).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from lprior.amplification import iterate, transparency
from lprior.amplification.tasks import TASKS, Task, make_task
from lprior.xla import compiler_options

OnEval = Callable[[int, Mapping[str, np.ndarray]], Any]  # (step, {name: (num_seeds,)})


def _check(config) -> None:
  if config.num_seeds < 1:
    raise ValueError(f"num_seeds must be >= 1, got {config.num_seeds}")
  for name in config.methods.split(","):
    if name not in iterate.standard_methods():
      raise ValueError(f"unknown method {name!r}; expected some of "
                       f"{sorted(iterate.standard_methods())}")


def seed_keys(config, stream: int) -> jax.Array:
  """(num_seeds,) keys of one independent stream of the experiment."""
  root = jax.random.fold_in(jax.random.key(config.seed, impl=config.prng_impl), stream)
  return jax.random.split(root, config.num_seeds)


def num_steps(config, task: Task) -> int:
  """Training steps for a task (config.num_steps is {task kind: steps})."""
  return int(config.num_steps[task.kind])


def methods(config) -> dict[str, iterate.Method]:
  return iterate.standard_methods(alpha=config.alpha, temperature=config.temperature,
                                  coin_alpha=(config.coin_alpha_start, config.coin_alpha_end),
                                  iterate_warmup=config.iterate_warmup,
                                  cold_temperature=config.cold_temperature)


def train_methods(config, task: Task, stream: int,
                  on_eval: Callable[[str], OnEval | None] = lambda name: None
                  ) -> dict[str, dict[str, np.ndarray]]:
  """{method: history} (arrays (num_evals, num_seeds)) for the methods in config.methods."""
  _check(config)
  keys = seed_keys(config, stream)
  eval_q = task.sample(iterate.fold_keys(keys, 10 ** 6)[0], config.num_eval)
  trainers: dict[bool, iterate.Trainer] = {}
  out = {}
  for name in config.methods.split(","):
    method = methods(config)[name]
    if method.imitate not in trainers:
      trainers[method.imitate] = iterate.Trainer(
          task, imitate=method.imitate, batch_size=config.batch_size,
          learning_rate=config.learning_rate, hidden=tuple(config.hidden),
          critic_hidden=tuple(config.critic_hidden),
          imitator_hidden=tuple(config.imitator_hidden), fast_compile=config.fast_compile)
    out[name] = trainers[method.imitate].run(keys, method, num_steps(config, task),
                                             config.eval_every, eval_q, on_eval(name))
  return out


def transparency_costs(config, kind: str, stream: int) -> dict[str, np.ndarray]:
  """On the transparency task of this kind: one critic per seed, then planted errors and
  unfoldings: arrays (num_seeds, num_trees) and 'critic_loss' (num_seeds,) (the mean of the
  last 100 steps)."""
  tc = config.transparency
  task = make_task(kind, **tc[kind].to_dict())
  keys = seed_keys(config, stream)
  opts = compiler_options(config.fast_compile)
  k_critic, k_search = iterate.fold_keys(keys, 0), iterate.fold_keys(keys, 1)
  critic, params, losses = transparency.train_critic(
      k_critic, task, steps=tc.critic_steps, batch_size=tc.critic_batch,
      hidden=tuple(tc.critic_hidden), learning_rate=config.learning_rate, compiler_options=opts)
  def search(key, p):
    k_plant, k_order = jax.random.split(key)
    trees = transparency.plant_errors(k_plant, task, tc.num_trees, at=tc.at)
    return transparency.search_costs(k_order, task, trees, critic, p)

  costs = jax.device_get(jax.jit(jax.vmap(search), compiler_options=opts)(k_search, params))
  return dict(costs, critic_loss=np.asarray(losses)[:, -100:].mean(1))


def _kinds(names: str) -> list[str]:
  kinds = [k for k in names.split(",") if k]
  for k in kinds:
    if k not in TASKS:
      raise ValueError(f"unknown task {k!r}; expected some of {sorted(TASKS)}")
  return kinds


def run(config, on_eval: Callable[[Task, str], OnEval | None] = lambda task, method: None
        ) -> dict[str, Any]:
  """{'tasks': {task name: {method: history}}, 'transparency': {task name: costs}}."""
  _check(config)
  results: dict[str, Any] = {"tasks": {}, "transparency": {}}
  for i, kind in enumerate(_kinds(config.tasks)):
    task = make_task(kind, **config[kind].to_dict())
    results["tasks"][task.name] = train_methods(config, task, stream=1 + i,
                                                on_eval=lambda m, t=task: on_eval(t, m))
  results["transparency"] = all_transparency_costs(config)
  return results


def all_transparency_costs(config) -> dict[str, dict[str, np.ndarray]]:
  """{task name: transparency_costs} for the kinds in config.transparency.tasks."""
  out = {}
  for i, kind in enumerate(_kinds(config.transparency.tasks)):
    name = make_task(kind, **config.transparency[kind].to_dict()).name
    out[name] = transparency_costs(config, kind, stream=100 + i)
  return out
