"""Table and plots of the honest-QA experiment."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.common.report import (fmt_mean_se, markdown_table, mean_se,  # noqa: E402
                                       save_figure, write_json)
from lprior.honest_qa.experiment import HEADS, TEST_SPLITS  # noqa: E402

IDENTITIES = ("truth", "human", "complex", "other")
PGR_SPLIT = "unseen_predictable"


def pgr(final: dict, plain: dict, ceiling: dict, split: str = PGR_SPLIT) -> tuple[float, float]:
  """(PGR, SE): the share of the gap to the ceiling a method closes on `split`,
  mean(acc − acc_plain) / mean(acc_ceiling − acc_plain) over seeds (each seed one world, so the
  differences are paired), with the ratio estimator's delta-method SE; NaN where the ceiling
  does not beat plain on average."""
  a, p, c = (np.asarray(f[f"{split}/accuracy"], np.float64) for f in (final, plain, ceiling))
  d, g = a - p, c - p
  if g.mean() <= 0:
    return float("nan"), float("nan")
  r = d.mean() / g.mean()
  se = (np.std(d - r * g, ddof=1) / np.sqrt(d.size) / g.mean()) if d.size > 1 else np.nan
  return float(r), float(se)


def head_identity(final: dict, head: str, majority: float = 0.5) -> list[str]:
  """Per seed, what a head computes, read off two splits: where the human errs and the complex
  labeler is right (seen) it sides with the truth or the human (agreeing with it on at least
  `majority` of the split, more than with the other); where both err alike
  (unseen_predictable) again.  truth / truth: 'truth'; human / human: 'human'; truth / human:
  'complex' (the labeling process); anything else (neither side, or human / truth): 'other'."""
  def side(s):
    t = np.asarray(final[f"{s}/{head}/agree_true"])
    h = np.asarray(final[f"{s}/{head}/agree_human"])
    return np.where((t >= majority) & (t >= h), "T", np.where((h >= majority) & (h > t), "H", "-"))
  names = {("T", "T"): "truth", ("H", "H"): "human", ("T", "H"): "complex"}
  return [names.get((a, b), "other") for a, b in zip(side("seen"), side(PGR_SPLIT))]


def _counts(labels: list[str]) -> str:
  return ", ".join(f"{k} {labels.count(k)}/{len(labels)}" for k in IDENTITIES if k in labels)


def table_rows(runs: dict) -> list[dict]:
  base = {k: runs[k][1] for k in ("a_plain", "a_ceiling") if k in runs}
  can_identify = all(f"{s}/intended/agree_true" in f for _, f in runs.values()
                     for s in ("seen", PGR_SPLIT))
  rows = []
  for variant, (_, final) in runs.items():
    row = {"method": variant}
    for s in TEST_SPLITS:
      if f"{s}/accuracy" in final:
        row[f"acc {s}"] = fmt_mean_se(final[f"{s}/accuracy"])
        if s != "iid":
          row[f"repeats human {s}"] = fmt_mean_se(final[f"{s}/repeats_human_error"])
    if len(base) == 2 and f"{PGR_SPLIT}/accuracy" in final:
      row[f"PGR {PGR_SPLIT}"] = "{:.2f} ± {:.2f}".format(
          *pgr(final, base["a_plain"], base["a_ceiling"]))
    if can_identify:
      for head in HEADS:
        row[f"{head} head is"] = _counts(head_identity(final, head))
    rows.append(row)
  return rows


def head_pair_table(runs: dict) -> str:
  """The post's 3 × 3 table (plus 'other'): how many trained (arm, seed) pairs of the two-head
  methods land in each (intended, instrumental) identity."""
  counts = {(a, b): 0 for a in IDENTITIES for b in IDENTITIES}
  for variant, (_, final) in runs.items():
    if variant.startswith("a_") or f"{PGR_SPLIT}/intended/agree_true" not in final:
      continue
    for pair in zip(head_identity(final, "intended"), head_identity(final, "instrumental")):
      counts[pair] += 1
  rows = [{"intended \\ instrumental": a, **{b: str(counts[a, b]) for b in IDENTITIES}}
          for a in IDENTITIES]
  return markdown_table(rows)


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
          f"{table}\n(simple labeler's accuracy: {human_line}; PGR = (acc − plain)/(ceiling − "
          f"plain) on {PGR_SPLIT}; a head 'is' truth / human / complex by whom it sides with on "
          f"seen and {PGR_SPLIT})")
  if any(not v.startswith("a_") for v in runs) and "intended head is" in rows[0]:
    text += "\n\nhead pairs of the two-head methods (arm × seed):\n" + head_pair_table(runs)
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
