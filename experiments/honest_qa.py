"""The main job: the honest-QA experiment (issue 3).  Trains every variant on `num_seeds` worlds,
prints the table of honesty per method (truth rates per split, PGR, both heads' identities;
mean ± SE over seeds) and writes
results.json, table.md, learning_curves.png and honesty_vs_lambda.png into --workdir.

  python3 -m experiments.honest_qa --config=experiments/configs/honest_qa.py:default \
      --workdir=results/honest_qa [--config.num_seeds=3 ...]
Rerunning the same command resumes from the checkpoints in --workdir.  Multi-process (every
process runs the same command with its own process_id; the workdir is shared; process 0 reports):
  ... --config.multihost=True [--config.distributed.coordinator_address=HOST:PORT
      --config.distributed.num_processes=N --config.distributed.process_id=I
      --config.distributed.cpu_collectives=gloo]
"""

from absl import app, logging

from experiments.common.launch import define_flags, is_main_process, setup_runtime

_CONFIG, _WORKDIR = define_flags("honest_qa", "where results and checkpoints go")


def main(argv):
  del argv
  cfg = _CONFIG.value
  setup_runtime(cfg)
  from experiments.honest_qa_report import report
  from lprior.honest_qa import experiment

  logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint step at INFO
  runs, sweep, human = experiment.run(cfg, _WORKDIR.value)
  if is_main_process():
    print(report(cfg, runs, sweep, human, _WORKDIR.value))


if __name__ == "__main__":
  app.run(main)
