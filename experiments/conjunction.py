"""The conjunction experiment (issue 6): the four-sided die, estimator errors on statements from
a smooth latent space, and the dishonest debater.  Prints the tables and writes results.json,
table.md and PNG plots into --workdir.

  python3 -m experiments.conjunction --config=experiments/configs/conjunction.py:smoke \
      --workdir=/tmp/conj
Rerunning the same command computes only the rows missing from --workdir/rows (none once it has
finished: it re-reports); grown sweeps add their rows; any other config change is refused.
"""

from absl import app

from experiments.common.launch import define_flags

_CONFIG, _WORKDIR = define_flags("conjunction")


def main(argv):
  del argv
  from experiments.conjunction_report import run
  print(run(_CONFIG.value, _WORKDIR.value))


if __name__ == "__main__":
  app.run(main)
