"""The experiment of issue 7 as data: accuracy against human calls for every method and task,
and the planted-error search costs against tree size.  No files, no plots (see the launcher).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from lprior.amplification import iterate, transparency
from lprior.amplification.tasks import Task, make_task

OnEval = Callable[[int, Mapping[str, np.ndarray]], Any]


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


def methods(config) -> dict[str, iterate.Method]:
  return iterate.standard_methods(alpha=config.alpha, temperature=config.temperature,
                                  coin_alpha=(config.coin_alpha_start, config.coin_alpha_end),
                                  iterate_warmup=config.iterate_warmup)


def train_methods(config, task: Task, stream: int,
                  on_eval: Callable[[str], OnEval | None] = lambda name: None
                  ) -> dict[str, dict[str, np.ndarray]]:
  """{method: history} (arrays (num_evals, num_seeds)) for the methods in config.methods."""
  _check(config)
  keys = seed_keys(config, stream)
  eval_q = task.sample(jax.random.fold_in(keys[0], 10 ** 6), config.num_eval)
  trainers: dict[bool, iterate.Trainer] = {}
  out = {}
  for name in config.methods.split(","):
    method = methods(config)[name]
    if method.imitate not in trainers:
      trainers[method.imitate] = iterate.Trainer(
          task, imitate=method.imitate, batch_size=config.batch_size,
          learning_rate=config.learning_rate, hidden=tuple(config.hidden),
          critic_hidden=tuple(config.critic_hidden), fast_compile=config.fast_compile)
    out[name] = trainers[method.imitate].run(keys, method, config.num_steps, config.eval_every,
                                             eval_q, on_eval(name))
  return out


def transparency_costs(config, stream: int) -> dict[str, np.ndarray]:
  """One critic per seed, then planted errors and unfoldings: arrays (num_seeds, num_trees) and
  'critic_loss' (num_seeds,) (the last 100 steps' mean)."""
  tc = config.transparency
  task = make_task(tc.task, **tc[tc.task].to_dict())
  keys = seed_keys(config, stream)
  critic, params, losses = transparency.train_critic(
      jax.vmap(lambda k: jax.random.fold_in(k, 0))(keys), task, steps=tc.critic_steps,
      batch_size=tc.critic_batch, hidden=tuple(tc.critic_hidden),
      learning_rate=config.learning_rate)
  search = jax.jit(jax.vmap(lambda k, p: transparency.search_costs(
      k, task, critic, p, tc.num_trees, at=tc.at)))
  costs = jax.device_get(search(jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys), params))
  return dict(costs, critic_loss=np.asarray(losses)[:, -100:].mean(1))


def run(config, on_eval: Callable[[str, str], OnEval | None] = lambda task, method: None
        ) -> dict[str, Any]:
  """{'tasks': {task name: {method: history}}, 'transparency': costs, 'task_names': …}."""
  _check(config)
  results: dict[str, Any] = {"tasks": {}}
  for i, name in enumerate(config.tasks.split(",")):
    if name not in ("sum", "perm"):
      raise ValueError(f"unknown task {name!r}; expected 'sum' or 'perm'")
    task = make_task(name, **config[name].to_dict())
    results["tasks"][task.name] = train_methods(config, task, stream=1 + i,
                                                on_eval=lambda m, t=task.name: on_eval(t, m))
  results["transparency"] = transparency_costs(config, stream=0)
  tc = config.transparency
  results["transparency_task"] = make_task(tc.task, **tc[tc.task].to_dict()).name
  return results
