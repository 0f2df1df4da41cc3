"""The flags every launcher takes: --config=experiments/configs/<name>.py[:preset] and --workdir."""

import os

from absl import flags
from ml_collections import config_flags


def define_flags(name: str, workdir_help: str = "where results go"):
  """(config flag, workdir flag) for the experiment `name` (its config file and default workdir)."""
  config = config_flags.DEFINE_config_file(
      "config", os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs", f"{name}.py"),
      "experiment config (path[:preset])")
  workdir = flags.DEFINE_string("workdir", f"results/{name}", workdir_help)
  return config, workdir


def setup_runtime(cfg) -> None:
  """Before any computation: `cfg.multihost` starts jax.distributed (TPU pods, SLURM)."""
  if cfg.get("multihost"):
    from lprior import distributed
    distributed.initialize()
