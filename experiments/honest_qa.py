"""The main job: the honest-QA experiment (issue 3).  Trains every variant on `num_seeds` worlds,
prints the table of the intended head's honesty (mean ± SE over seeds) and writes
results.json, table.md, learning_curves.png and honesty_vs_lambda.png into --workdir.

  python3 -m experiments.honest_qa --config=experiments/configs/honest_qa.py:default \
      --workdir=results/honest_qa [--config.num_seeds=3 ...]
Rerunning the same command resumes from the checkpoints in --workdir.
"""

import os

from absl import app, logging

from experiments.common.launch import define_flags

_CONFIG, _WORKDIR = define_flags("honest_qa", "where results and checkpoints go")


def main(argv):
  del argv
  from experiments.honest_qa_report import report
  from lprior import distributed
  from lprior.honest_qa import experiment

  logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint step at INFO
  cfg = _CONFIG.value
  if cfg.multihost:
    distributed.initialize()
  data, splits, keys = experiment.seed_data(cfg)
  runs = {}
  for variant in cfg.variants.split(","):
    runs[variant] = experiment.run_variant(cfg, variant, data, splits, keys,
                                           os.path.join(_WORKDIR.value, "runs", variant))
  sweep = {}
  for lam in cfg.lam_sweep or ():
    name = f"c_chained_lam{lam:g}"
    sweep[lam] = (runs["c_chained"] if "c_chained" in runs and lam == cfg.train.lam else
                  experiment.run_variant(cfg, "c_chained", data, splits, keys,
                                         os.path.join(_WORKDIR.value, "runs", name), lam=lam))
  human = {n: float((splits[n].y_human == splits[n].y_true).mean())
           for n in experiment.TEST_SPLITS if n in splits}
  print(report(cfg, runs, sweep, human, _WORKDIR.value))


if __name__ == "__main__":
  app.run(main)
