"""The experiment of issue 7 as data: accuracy against human calls for every method and task,
and the planted-error search costs against tree size.  No files, no plots (see the launcher).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import jax
import numpy as np

from lprior.amplification import iterate, real_errors, transparency
from lprior.amplification.tasks import TASKS, Task, make_task
from lprior.xla import compiler_options

OnEval = Callable[[int, Mapping[str, np.ndarray]], Any]  # (step, {name: (num_seeds,)})
Costs = dict[str, np.ndarray]
AT = ("leaf", "any")  # where transparency plants its error


class Store(Protocol):
  """Where a run keeps its state between invocations (the launcher's checkpoints)."""

  def restore(self, task: Task, method: str, like: iterate.Learner, num_steps: int
              ) -> tuple[iterate.Learner, iterate.History] | None:
    """The saved (learners, history) of (task, method), or None; raises past num_steps."""

  def save(self, task: Task, method: str, learner: iterate.Learner,
           history: iterate.History) -> None:
    """Keeps (learners, history) of (task, method) after a chunk."""

  def transparency(self, name: str, compute: Callable[[], Costs]) -> Costs:
    """The costs of the transparency task `name`: saved ones, or compute() (then saved)."""


def _require(ok: bool, key: str, value: Any, what: str) -> None:
  """Raises ValueError naming config.key and its value unless ok."""
  if not ok:
    raise ValueError(f"config.{key} must be {what}, got {value!r}")


def _check_steps(config) -> None:
  """num_steps and anneal_steps of every kind in config.tasks (≥ 1; num_steps a multiple of
  eval_every)."""
  every = config.eval_every
  _require(isinstance(every, int) and every >= 1, "eval_every", every, "an int >= 1")
  for kind in _kinds(config.tasks, "tasks"):
    for name in ("num_steps", "anneal_steps"):
      _require(kind in config[name], f"{name}.{kind}", None, "set (task kind in config.tasks)")
      _require(isinstance(config[name][kind], int) and config[name][kind] >= 1,
               f"{name}.{kind}", config[name][kind], "an int >= 1")
    n = config.num_steps[kind]
    _require(n % every == 0, f"num_steps.{kind}", n, f"a multiple of eval_every={every}")


def _check_transparency(tc) -> None:
  """The transparency part of the config."""
  _kinds(tc.tasks, "transparency.tasks")
  for key in ("num_trees", "critic_steps", "critic_batch"):
    _require(isinstance(tc[key], int) and tc[key] >= 1, f"transparency.{key}", tc[key],
             "an int >= 1")
  _require(tc.at in AT, "transparency.at", tc.at, f"one of {AT}")


def check_config(config) -> None:
  """Raises ValueError naming the first invalid config value (before any computation)."""
  _require(isinstance(config.num_seeds, int) and config.num_seeds >= 1, "num_seeds",
           config.num_seeds, "an int >= 1")
  _check_steps(config)
  for key in ("batch_size", "num_eval"):
    _require(isinstance(config[key], int) and config[key] >= 1, key, config[key], "an int >= 1")
  for key in ("learning_rate", "temperature", "cold_temperature"):
    _require(config[key] > 0, key, config[key], "> 0")
  _require(0 <= config.iterate_warmup < 1, "iterate_warmup", config.iterate_warmup, "in [0, 1)")
  _require(0 < config.target_accuracy <= 1, "target_accuracy", config.target_accuracy,
           "in (0, 1]")
  _require(0 < config.target_accuracy_high <= 1, "target_accuracy_high",
           config.target_accuracy_high, "in (0, 1]")
  widths = tuple(config.adv_widths)
  _require(all(isinstance(w, int) and w >= 1 for w in widths), "adv_widths", widths,
           "a tuple of ints >= 1")
  known = methods(config)
  for name in config.methods.split(","):
    if name not in known:
      raise ValueError(f"unknown method {name!r} in config.methods; expected some of "
                       f"{sorted(known)}")
  _check_transparency(config.transparency)
  for name in config.real_errors.methods.split(","):
    if name and name not in config.methods.split(","):
      raise ValueError(f"config.real_errors.methods names {name!r}, which is not in "
                       f"config.methods ({config.methods!r})")
  n = config.real_errors.num_trees
  _require(isinstance(n, int) and n >= 1, "real_errors.num_trees", n, "an int >= 1")


def run_identity(config) -> dict[str, Any]:
  """The config a run's checkpoints must match: all of it except num_steps (which may be raised
  to extend a run; the α schedule follows anneal_steps instead)."""
  return {k: v for k, v in config.to_dict().items() if k != "num_steps"}


def seed_keys(config, stream: int) -> jax.Array:
  """(num_seeds,) keys of one independent stream of the experiment."""
  root = jax.random.fold_in(jax.random.key(config.seed, impl=config.prng_impl), stream)
  return jax.random.split(root, config.num_seeds)


def num_steps(config, task: Task) -> int:
  """Training steps for a task (config.num_steps is {task kind: steps})."""
  return int(config.num_steps[task.kind])


def anneal_steps(config, task: Task) -> int:
  """Length of the α schedule for a task (config.anneal_steps is {task kind: steps})."""
  return int(config.anneal_steps[task.kind])


def methods(config) -> dict[str, iterate.Method]:
  """The standard methods with this config's α, temperatures and warm-up, and Adv's size sweep:
  'adversary_w<w>' is the adversary whose Adv has config.critic_hidden's depth at width w."""
  out = iterate.standard_methods(alpha=config.alpha, temperature=config.temperature,
                                 coin_alpha=(config.coin_alpha_start, config.coin_alpha_end),
                                 iterate_warmup=config.iterate_warmup,
                                 cold_temperature=config.cold_temperature)
  for w in config.adv_widths:
    name = f"adversary_w{w}"
    out[name] = dataclasses.replace(out["adversary"], name=name,
                                    critic_hidden=(w,) * len(config.critic_hidden))
  return out


@functools.lru_cache(maxsize=8)
def trainer(task: Task, **kwargs) -> iterate.Trainer:
  """iterate.Trainer(task, **kwargs), cached: runs of one process share its compilations."""
  return iterate.Trainer(task, **kwargs)


def not_runnable(method: iterate.Method, task: Task) -> str | None:
  """Why `method` cannot run on `task`, or None: the step-5 loop (task.rounds > 1) has no
  imitators, so distillation and H′ are not defined on it."""
  if task.rounds > 1 and method.imitate:
    return (f"needs imitators; {task.name} uses the step-5 loop (a combine that returns "
            "subquestions), which has none")
  return None


def train_methods(config, task: Task, stream: int,
                  on_eval: Callable[[str], OnEval | None] = lambda name: None,
                  store: Store | None = None, learners: dict | None = None,
                  not_run: dict | None = None) -> dict[str, iterate.History]:
  """{method: history} (arrays (num_evals, num_seeds)) for the methods in config.methods that
  can run on the task (`not_runnable`; a `not_run` dict receives {method: why not}); with a
  store, each resumes from and saves to it; a `learners` dict receives {method: (its model
  functions, its final learners)}."""
  check_config(config)
  keys = seed_keys(config, stream)
  eval_q = task.sample(iterate.fold_keys(keys, 10 ** 6)[0], config.num_eval)
  steps, out = num_steps(config, task), {}
  for name in config.methods.split(","):
    method = methods(config)[name]
    why = not_runnable(method, task)
    if why is not None:
      if not_run is not None:
        not_run[name] = why
      continue
    tr = trainer(task, imitate=method.imitate, batch_size=config.batch_size,
                 learning_rate=config.learning_rate, hidden=tuple(config.hidden),
                 critic_hidden=tuple(method.critic_hidden or config.critic_hidden),
                 imitator_hidden=tuple(config.imitator_hidden), adv_reads=method.adv_reads,
                 shared=method.shared, fast_compile=config.fast_compile)
    kept = {} if store is None else dict(
        restore=lambda like, m=name: store.restore(task, m, like, steps),
        save=lambda learner, history, m=name: store.save(task, m, learner, history))
    out[name], final = tr.run(keys, method, steps, config.eval_every, eval_q, on_eval(name),
                              anneal_steps=anneal_steps(config, task), return_learner=True,
                              **kept)
    if learners is not None:
      learners[name] = (tr.fns, final)
  return out


def real_error_costs(config, task: Task, fns, learner: iterate.Learner, stream: int) -> Costs:
  """`real_errors.search_costs` in M's own trees of config.real_errors.num_trees questions of
  every level, for each seed's trained (M, Adv): arrays (num_seeds, num_trees)."""
  keys = seed_keys(config, stream)
  n = config.real_errors.num_trees

  def one(key, params):
    k_q, k_order = jax.random.split(key)
    return real_errors.search_costs(k_order, task, fns, params,
                                    task.sample(k_q, n, all_levels=True))

  opts = compiler_options(config.fast_compile)
  return jax.device_get(jax.jit(jax.vmap(one), compiler_options=opts)(keys, learner.params))


def transparency_costs(config, kind: str, stream: int) -> Costs:
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


def _kinds(names: str, key: str = "tasks") -> list[str]:
  """The task kinds of a comma-separated list; ValueError naming config.key on an unknown one."""
  kinds = [k for k in names.split(",") if k]
  for k in kinds:
    if k not in TASKS:
      raise ValueError(f"unknown task {k!r} in config.{key}; expected some of {sorted(TASKS)}")
  return kinds


def run(config, on_eval: Callable[[Task, str], OnEval | None] = lambda task, method: None,
        store: Store | None = None) -> dict[str, Any]:
  """{'tasks': {task name: {method: history}}, 'real_errors': {task name: {method: costs}}
  (M's real errors searched with the methods' trained Adv, `real_error_costs`), 'transparency':
  {task name: costs}, 'not_run': {task name: {what: why}}}; the config is checked first; with a
  store, training resumes from it and both searches are cached in it (the real-error one per
  number of training steps)."""
  check_config(config)
  results: dict[str, Any] = {"tasks": {}, "transparency": {}, "real_errors": {}, "not_run": {}}
  searched = [m for m in config.real_errors.methods.split(",") if m]
  for i, kind in enumerate(_kinds(config.tasks)):
    task = make_task(kind, **config[kind].to_dict())
    learners, not_run = {}, {}
    results["tasks"][task.name] = train_methods(config, task, stream=1 + i,
                                                on_eval=lambda m, t=task: on_eval(t, m),
                                                store=store, learners=learners, not_run=not_run)
    found = {}
    for m in searched:
      if m not in learners:
        continue  # not run on this task (its reason is in not_run)
      if task.rounds > 1:
        not_run[f"real_errors of {m}"] = ("the search reads one-round question trees; "
                                          f"{task.name} uses the step-5 loop")
        continue
      compute = functools.partial(real_error_costs, config, task, *learners[m], stream=200 + i)
      name = f"{task.name}-{m}-real_errors-step{num_steps(config, task)}"
      found[m] = compute() if store is None else store.transparency(name, compute)
    results["real_errors"][task.name] = found
    if not_run:
      results["not_run"][task.name] = not_run
  results["transparency"] = all_transparency_costs(config, store)
  return results


def all_transparency_costs(config, store: Store | None = None) -> dict[str, Costs]:
  """{task name: transparency_costs} for the kinds in config.transparency.tasks (from the store
  when it has them)."""
  out = {}
  for i, kind in enumerate(_kinds(config.transparency.tasks, "transparency.tasks")):
    name = make_task(kind, **config.transparency[kind].to_dict()).name
    compute = functools.partial(transparency_costs, config, kind, stream=100 + i)
    out[name] = compute() if store is None else store.transparency(name, compute)
  return out
