"""The flags every launcher takes (--config=experiments/configs/<name>.py[:preset], --workdir)
and the runtime set-up before any computation (jax.distributed for multi-host runs)."""

import os

import ml_collections
from absl import flags
from ml_collections import config_dict, config_flags


def define_flags(name: str, workdir_help: str = "where results go"):
  """(config flag, workdir flag) for the experiment `name` (its config file and default workdir)."""
  config = config_flags.DEFINE_config_file(
      "config", os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs", f"{name}.py"),
      "experiment config (path[:preset])")
  workdir = flags.DEFINE_string("workdir", f"results/{name}", workdir_help)
  return config, workdir


def distributed_config() -> ml_collections.ConfigDict:
  """Arguments of `jax.distributed.initialize` when `multihost` is set.  Left unset they are
  auto-detected (TPU pods, SLURM); local CPU processes give all three and cpu_collectives='gloo'."""
  return ml_collections.ConfigDict(dict(
      coordinator_address=config_dict.placeholder(str),  # "host:port" of process 0
      num_processes=config_dict.placeholder(int),
      process_id=config_dict.placeholder(int),
      cpu_collectives=config_dict.placeholder(str)))  # 'gloo' for CPU processes


def setup_runtime(cfg) -> None:
  """Before any computation: `cfg.multihost` starts jax.distributed with `cfg.distributed`."""
  if cfg.get("multihost"):
    from lprior import distributed
    d = cfg.get("distributed") or distributed_config()
    distributed.initialize(d.coordinator_address, d.num_processes, d.process_id,
                           cpu_collectives=d.cpu_collectives)


def is_main_process() -> bool:
  """Process 0 writes the reports (every process computes them)."""
  import jax
  return jax.process_index() == 0
