"""Learning the prior (issue 5): on a spurious-correlation task and a trend-extrapolation task,
compares on D* a network fit on D, warm-up 2, learning the prior (MAP z* and full posterior) and
the human prior updated exactly on D, over seeds and |D|; prints the tables and the decoded Z*
in words, and writes results.json, table.md, dstar_performance.png, data_efficiency.png and
trend_extrapolation.png (+ metrics.jsonl, TensorBoard logs and checkpoints) into --workdir.

  python3 -m experiments.learning_the_prior --config=experiments/configs/learning_the_prior.py:smoke \
      --workdir=/tmp/ltp [--config.ltp.prior_mode=learned ...]
Rerunning the same command re-reports from --workdir/runs/<task>/result.json without computing;
raising --config.num_steps (or baseline.num_steps) continues every run from its checkpoints; any
other change to what a run trains is refused (CheckpointError naming the key).
"""

from absl import app, logging

from experiments.common.launch import define_flags, is_main_process, setup_runtime

_CONFIG, _WORKDIR = define_flags("learning_the_prior", "where results and checkpoints go")


def main(argv):
  del argv
  cfg = _CONFIG.value
  setup_runtime(cfg)
  import matplotlib
  matplotlib.use("Agg")
  from experiments.learning_the_prior_report import write_report
  from lprior.ltp import experiment

  logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint step at INFO
  results = experiment.run(cfg, _WORKDIR.value)
  if is_main_process():
    print(write_report(results, cfg, _WORKDIR.value))


if __name__ == "__main__":
  app.run(main)
