"""Table and plots of the honest-QA experiment."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.common.report import (fmt_mean_se, markdown_table, mean_se,  # noqa: E402
                                       save_figure, write_json)
from lprior.honest_qa.experiment import TEST_SPLITS  # noqa: E402


def table_rows(runs: dict) -> list[dict]:
  rows = []
  for variant, (_, final) in runs.items():
    row = {"method": variant}
    for s in TEST_SPLITS:
      if f"{s}/accuracy" in final:
        row[f"acc {s}"] = fmt_mean_se(final[f"{s}/accuracy"])
        if s != "iid":
          row[f"repeats human {s}"] = fmt_mean_se(final[f"{s}/repeats_human_error"])
    rows.append(row)
  return rows


def plot_curves(runs: dict, path: str) -> None:
  splits = [s for s in TEST_SPLITS if any(f"eval/{s}/accuracy" in r for r in
                                          next(iter(runs.values()))[0])]
  fig, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 4), squeeze=False)
  for ax, s in zip(axes[0], splits):
    for variant, (hist, _) in runs.items():
      rows = [r for r in hist if f"eval/{s}/accuracy/seeds" in r]
      steps = [r["step"] for r in rows]
      m_se = [mean_se(r[f"eval/{s}/accuracy/seeds"]) for r in rows]
      m = np.array([x[0] for x in m_se])
      se = np.nan_to_num(np.array([x[1] for x in m_se]))
      ax.plot(steps, m, label=variant)
      ax.fill_between(steps, m - se, m + se, alpha=0.2)
    ax.set(title=f"intended head accuracy: {s}", xlabel="step", ylabel="accuracy")
  axes[0][0].legend(fontsize=7)
  save_figure(fig, path)


def plot_lambda(sweep: dict, path: str) -> None:
  lams = sorted(sweep)
  fig, ax = plt.subplots(figsize=(5, 4))
  for s in TEST_SPLITS[1:]:
    for metric, style in (("accuracy", "-o"), ("repeats_human_error", "--x")):
      key = f"{s}/{metric}"
      if key not in sweep[lams[0]][1]:
        continue
      m_se = [mean_se(sweep[l][1][key]) for l in lams]
      ax.errorbar(lams, [x[0] for x in m_se], yerr=np.nan_to_num([x[1] for x in m_se]),
                  fmt=style, label=f"{metric} ({s})", capsize=3)
  ax.set(xscale="log", xlabel="λ", ylabel="share of examples",
         title="nested (chained): honesty where the human is wrong")
  ax.legend(fontsize=7)
  save_figure(fig, path)


def report(cfg, runs: dict, sweep: dict, human: dict, workdir: str) -> str:
  os.makedirs(workdir, exist_ok=True)
  rows = table_rows(runs)
  table = markdown_table(rows)
  human_line = ", ".join(f"{k} {v:.3f}" for k, v in human.items())
  text = (f"honest-QA ({cfg.preset}, {cfg.num_seeds} seeds, {cfg.num_steps} steps; mean ± SE)\n"
          f"{table}\n(simple labeler's accuracy: {human_line})")
  with open(os.path.join(workdir, "table.md"), "w") as f:
    f.write(text + "\n")
  write_json(os.path.join(workdir, "results.json"), dict(
      preset=cfg.preset, config=cfg.to_dict(), human_accuracy=human,
      final={v: {k: np.asarray(x).tolist() for k, x in final.items()}
             for v, (_, final) in runs.items()},
      lam_sweep={str(l): {k: np.asarray(x).tolist() for k, x in f.items()}
                 for l, (_, f) in sweep.items()}))
  plot_curves(runs, os.path.join(workdir, "learning_curves.png"))
  if sweep:
    plot_lambda(sweep, os.path.join(workdir, "honesty_vs_lambda.png"))
  return text
