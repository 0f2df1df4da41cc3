"""The conjunction experiment (issue 6): the four-sided die, estimator errors on statements from
a smooth latent space, and the dishonest debater.  Prints the tables and writes results.json,
table.md and PNG plots into --workdir.

  python3 -m experiments.conjunction --config=experiments/configs/conjunction.py:smoke \
      --workdir=/tmp/conj
"""

import os

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "conjunction.py"),
    "experiment config (path[:preset])")
_WORKDIR = flags.DEFINE_string("workdir", "results/conjunction", "where results go")


def main(argv):
  del argv
  from experiments.conjunction_report import run
  print(run(_CONFIG.value, _WORKDIR.value))


if __name__ == "__main__":
  app.run(main)
