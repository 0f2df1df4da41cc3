"""Amplification with an adversary (issue 7): trains M by every method on every task for
`num_seeds` seeds, measures the planted-error search, prints the tables (mean ± SE over seeds)
and writes results.json, table.md, accuracy_vs_calls.png, transparency.png and metrics.jsonl
(+ TensorBoard) into --workdir.

  python3 -m experiments.amplification --config=experiments/configs/amplification.py:smoke \
      --workdir=/tmp/amp [--config.num_seeds=5 ...]
"""

from absl import app

from experiments.common.launch import define_flags

_CONFIG, _WORKDIR = define_flags("amplification")


def run(config, workdir: str) -> str:
  """The whole experiment; returns the printed tables."""
  import matplotlib
  matplotlib.use("Agg")
  from experiments.amplification_report import write_report
  from lprior.amplification import experiment
  from lprior.metrics_writer import MetricsWriter
  from lprior.progress import Progress

  writer = MetricsWriter(workdir)

  def on_eval(task, method):
    steps, tag = experiment.num_steps(config, task), f"{task.name}/{method}"
    bar = Progress(steps, tag)

    def callback(step, row):
      acc, calls = float(row["accuracy"].mean()), float(row["calls"].mean())
      writer.write(step, {f"{tag}/accuracy": acc, f"{tag}/calls": calls})
      bar.update(step, acc=acc, calls=calls)
      if step >= steps:
        bar.close()

    return callback

  results = experiment.run(config, on_eval)
  writer.close()
  return write_report(results, config, workdir)


def main(argv):
  del argv
  print(run(_CONFIG.value, _WORKDIR.value))


if __name__ == "__main__":
  app.run(main)
