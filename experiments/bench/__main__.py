"""Every benchmark of issue 4 in one command; prints the tables, writes results.json, table.md
and plots into --workdir (default results/bench).

  python -m experiments.bench [--quick] [--config.benchmarks=logz,training] [--config.repeats=5 ...]
"""

import datetime
import os
import platform
import sys
import time

from absl import app

from experiments.common.launch import define_flags

def _expand_quick(argv: list[str]) -> list[str]:
  """--quick is short for --config=<bench config>:quick."""
  if "--quick" not in argv:
    return argv
  path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs", "bench.py")
  rest = [a for a in argv[1:] if a != "--quick"]
  return [argv[0], f"--config={path}:quick", *rest]  # before any --config.key override


# config_flags reads the --config.key overrides from sys.argv when the flag is defined
sys.argv[:] = _expand_quick(sys.argv)
_CONFIG, _WORKDIR = define_flags("bench", "where the tables, JSON and plots go")


def main(argv):
  del argv
  from experiments.bench import (coverage, logz_accuracy, logz_network, memory, report, scaling,
                                 tracking_feedback, tracking_network, training_overhead)
  from experiments.common.report import write_json

  cfg = _CONFIG.value
  only = cfg.benchmarks.split(",")
  runners = dict(logz=lambda: logz_accuracy.run(cfg),
                 multimodal=lambda: logz_accuracy.run(cfg.multimodal),
                 coverage=lambda: coverage.run(cfg),
                 tracking=lambda: logz_accuracy.tracking_vs_fresh(cfg),
                 tracking_feedback=lambda: tracking_feedback.run(cfg),
                 training=lambda: training_overhead.run(cfg),
                 scaling=lambda: scaling.run(cfg), memory=lambda: memory.run(cfg),
                 tracking_network=lambda: tracking_network.run(cfg),
                 logz_network=lambda: logz_network.run(cfg))
  unknown = set(only) - set(runners)
  if unknown:
    raise ValueError(f"config.benchmarks names unknown benchmarks {sorted(unknown)}; "
                     f"choose from {sorted(runners)}")
  results = dict(preset=cfg.preset, date=datetime.date.today().isoformat(),
                 machine=f"{platform.node()}, {os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}",
                 config=cfg.to_dict())
  os.makedirs(_WORKDIR.value, exist_ok=True)
  for name in only:
    print(f"== {name}", flush=True)
    t0 = time.perf_counter()
    results[name] = runners[name]()
    print(f"== {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    write_json(os.path.join(_WORKDIR.value, "results.json"), results)  # partial results kept
  text = report.tables(results)
  with open(os.path.join(_WORKDIR.value, "table.md"), "w") as f:
    f.write(text + "\n")
  report.figures(results, _WORKDIR.value)
  print(text)


if __name__ == "__main__":
  app.run(main)
