"""Amplification with an adversary (issue 7): trains M by every method on every task for
`num_seeds` seeds, measures the planted-error search, prints the tables (mean ± SE over seeds)
and writes results.json, table.md, accuracy_vs_calls.png, transparency.png and metrics.jsonl
(+ TensorBoard) into --workdir.

  python3 -m experiments.amplification --config=experiments/configs/amplification.py:smoke \
      --workdir=/tmp/amp [--config.num_seeds=5 ...]

Resumable: every eval chunk, each (task, method) checkpoints its learners and history rows, and
the transparency costs are kept (`lprior.amplification.checkpoints`).  Rerunning the same
command continues from there (a crash loses at most the chunk under way, and ends with exactly
the numbers of an uninterrupted run); rerunning a finished one re-reports without training.
The run's identity is the whole config except num_steps: raising num_steps extends a run (the
α schedule follows anneal_steps), any other change, or a num_steps below a checkpoint's step,
raises CheckpointError.
"""

from __future__ import annotations

import os
import shutil

from absl import app, logging

from experiments.common.launch import define_flags

_CONFIG, _WORKDIR = define_flags("amplification", "where results and checkpoints go")


def run(config, workdir: str) -> str:
  """The whole experiment (resuming from the checkpoints in workdir); returns the printed
  tables.  The config is checked before anything is computed or written."""
  from lprior.amplification import experiment
  experiment.check_config(config)
  import matplotlib
  matplotlib.use("Agg")
  from experiments.amplification_report import write_report
  from lprior.metrics_writer import MetricsWriter
  from lprior.progress import Progress

  writers = []

  def writer() -> MetricsWriter:
    """The metrics log, started afresh at the first row (so a refused run leaves the old one);
    every row, restored ones included, is logged again."""
    if not writers:
      shutil.rmtree(os.path.join(workdir, "tb"), ignore_errors=True)
      writers.append(MetricsWriter(workdir))
    return writers[0]

  def on_eval(task, method):
    steps, tag = experiment.num_steps(config, task), f"{task.name}/{method}"
    bar = Progress(steps, tag)

    def callback(step, row):
      acc, calls = float(row["accuracy"].mean()), float(row["calls"].mean())
      writer().write(step, {f"{tag}/accuracy": acc, f"{tag}/calls": calls})
      bar.update(step, acc=acc, calls=calls)
      if step >= steps:
        bar.close()

    return callback

  from lprior.amplification.checkpoints import CheckpointStore
  store = CheckpointStore(workdir, experiment.run_identity(config))
  try:
    results = experiment.run(config, on_eval, store)
  finally:
    store.close()
    for w in writers:
      w.close()
  return write_report(results, config, workdir)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint step at INFO
  print(run(_CONFIG.value, _WORKDIR.value))


if __name__ == "__main__":
  app.run(main)
