"""Table and plots of the honest-QA experiment."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.common.report import (fmt_mean_se, markdown_table, mean_se,  # noqa: E402
                                       save_figure, t95, write_json)
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
  for variant, (history, final) in runs.items():
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
    if "best_step" in final:
      row["best step"] = f"{np.mean(final['best_step']):.0f}"
      row["early-stopped"] = f"{int(np.sum(final['stopped']))}/{len(final['stopped'])}"
    if "consistency" in final:  # the two-head methods: C at the best step, λ where training ended
      row["C per example"] = fmt_mean_se(final["consistency"], 4)
      row["λ (end)"] = f"{np.mean(final['lam']):.4g}"
      last = next((r for r in reversed(history) if "log_z" in r), {})
      row["−log Z, L (last step)"] = (f"{-last['log_z']:.1f}, {last['log_likelihood']:.0f}"
                                      if last else "–")
    rows.append(row)
  return rows


def paired_difference(a: dict, b: dict, key: str) -> tuple[float, float]:
  """(mean, SE) over seeds of a[key] − b[key] (each seed one world: paired)."""
  return mean_se(np.asarray(a[key], np.float64) - np.asarray(b[key], np.float64))


def control_lines(runs: dict, human: dict, lam_target: float = 0.0) -> list[str]:
  """The controls that must come out as predicted before any other number is read (DESIGN §4):
  the ceiling beats plain; the κ → 0 arm reproduces plain (each judged on paired per-seed
  differences at Student's t 95% quantile); every arm converged (iid accuracy at
  least the human's and within 3 points of the ceiling); with λ annealed (`lam_target` > 0),
  which two-head arms' runs reached C ≤ lam_target at their best step."""
  lines = []
  if lam_target > 0:
    reached = {v: np.asarray(f["consistency"]) <= lam_target for v, (_, f) in runs.items()
               if "consistency" in f}
    if reached:
      lines.append(f"C ≤ {lam_target:g} per example at the best step (λ annealed): " + ", ".join(
          f"{v} {int(r.sum())}/{r.size}" for v, r in reached.items()))
  plain, ceiling = runs.get("a_plain", (None, None))[1], runs.get("a_ceiling", (None, None))[1]
  key = f"{PGR_SPLIT}/accuracy"
  if plain is not None and ceiling is not None:
    m, se = paired_difference(ceiling, plain, key)
    t = t95(len(plain[key]))
    lines.append(f"ceiling − plain on {PGR_SPLIT}: {m:+.3f} ± {se:.3f} "
                 f"({'holds' if m > t * se else 'FAILS'}: must be > 0 by t·SE = {t:.2f} SE)")
  if plain is not None and "c_kappa_control" in runs:
    for k in (key, "iid/accuracy"):
      m, se = paired_difference(runs["c_kappa_control"][1], plain, k)
      t = t95(len(plain[k]))
      lines.append(f"κ → 0 control − plain on {k.split('/')[0]}: {m:+.3f} ± {se:.3f} "
                   f"({'holds' if abs(m) <= t * se + 1e-9 else 'FAILS'}: must be 0 within "
                   f"t·SE = {t:.2f} SE)")
  if "d_designed" in runs and "a_plain_tight" in runs:  # the baseline that could explain it away
    m, se = paired_difference(runs["d_designed"][1], runs["a_plain_tight"][1], key)
    lines.append(f"designed partition − its prior alone (a_plain_tight) on {PGR_SPLIT}: "
                 f"{m:+.3f} ± {se:.3f} (what C and log Z add to the human model's tight prior)")
  if ceiling is not None and "iid" in human:
    top = float(np.mean(ceiling["iid/accuracy"]))
    bad = [v for v, (_, f) in runs.items()
           if not (np.mean(f["iid/accuracy"]) >= human["iid"] and
                   np.mean(f["iid/accuracy"]) >= top - 0.03)]
    lines.append(f"converged (iid ≥ human's {human['iid']:.3f} and ≥ ceiling's {top:.3f} − "
                 f"0.03): {'every arm' if not bad else 'NOT ' + ', '.join(bad)}")
    key_right = "iid/accuracy_where_human_right"
    if all(key_right in f for _, f in runs.values()):  # results from before the metric lack it
      top_right = float(np.mean(ceiling[key_right]))
      bad = [f"{v} ({np.mean(f[key_right]):.3f})" for v, (_, f) in runs.items()
             if not np.mean(f[key_right]) >= top_right - 0.03]
      lines.append(f"converged where L teaches the truth (iid, the human right: ≥ ceiling's "
                   f"{top_right:.3f} − 0.03; the rest of iid is the honesty question): "
                   f"{'every arm' if not bad else 'NOT ' + ', '.join(bad)}")
  return lines


def recent_gain(history: list[dict], window: int, key: str = "eval/iid/accuracy/seeds"
                ) -> np.ndarray | None:
  """(S,) per seed: the mean of `key` over the evaluations in the last `window` steps of a run's
  history minus its mean over the `window` steps before those (how much it still rose at the
  end); None where the run is shorter than the two windows."""
  ev = [(r["step"], r[key]) for r in history or () if key in r]
  if not ev:
    return None
  steps, vals = np.array([s for s, _ in ev]), np.array([v for _, v in ev], np.float64)
  end = steps[-1]
  last, before = steps > end - window, (steps > end - 2 * window) & (steps <= end - window)
  if end < 2 * window or not before.any():
    return None
  return vals[last].mean(0) - vals[before].mean(0)


def plateau_line(runs: dict, window: int, rising: float = 0.01) -> str | None:
  """How much each arm's iid accuracy still rose over the last `window` steps (mean ± SE over
  seeds; `recent_gain`): training has levelled off where the gain is under `rising`."""
  gains = {v: recent_gain(h, window) for v, (h, _) in runs.items()}
  gains = {v: g for v, g in gains.items() if g is not None}
  if not gains:
    return None
  still = [v for v, g in gains.items() if g.mean() > rising]
  return (f"iid accuracy gained over the last {window} steps (mean over its evaluations minus "
          f"the {window} before): " + ", ".join(f"{v} {fmt_mean_se(g)}" for v, g in gains.items())
          + f"; levelled off (< {rising:g}): "
          + ("every arm" if not still else "NOT " + ", ".join(still)))


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


def plot_identities(runs: dict, path: str) -> None:
  """Stacked bars: how many seeds' intended and instrumental heads are truth / human / complex /
  other, per arm."""
  names = [v for v, (_, f) in runs.items() if f"{PGR_SPLIT}/intended/agree_true" in f]
  fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(names) + 1.5), squeeze=False)
  for ax, head in zip(axes[0], HEADS):
    left = np.zeros(len(names))
    for ident in IDENTITIES:
      n = np.array([head_identity(runs[v][1], head).count(ident) for v in names], float)
      ax.barh(names, n, left=left, label=ident)
      left += n
    ax.set(title=f"{head} head is", xlabel="seeds")
    ax.invert_yaxis()
  axes[0][1].legend(fontsize=7)
  save_figure(fig, path)


def plot_pgr(sweeps: dict, plain: dict, ceiling: dict, path: str) -> None:
  """PGR on unseen_predictable against λ and against κ (chained), mean ± SE."""
  axes_of = [(n, v) for n, v in (("λ", sweeps.get("lam")), ("κ", sweeps.get("kappa"))) if v]
  fig, axes = plt.subplots(1, len(axes_of), figsize=(5 * len(axes_of), 4), squeeze=False)
  for ax, (name, sweep) in zip(axes[0], axes_of):
    xs = sorted(sweep)
    r = np.array([pgr(sweep[x][1], plain, ceiling) for x in xs])
    ax.errorbar(xs, r[:, 0], yerr=np.nan_to_num(r[:, 1]), fmt="-o", capsize=3)
    ax.axhline(0.0, color="k", lw=0.8, ls="--", label="plain (0)")
    ax.axhline(1.0, color="g", lw=0.8, ls="--", label="ceiling (1)")
    ax.set(xscale="log", xlabel=name, ylabel=f"PGR on {PGR_SPLIT}", title=f"PGR against {name}")
    ax.legend(fontsize=7)
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


def report(cfg, runs: dict, sweeps: dict, human: dict, workdir: str) -> str:
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
  controls = control_lines(runs, human, cfg.train.get("lam_target", 0.0))
  plateau = plateau_line(runs, max(int(cfg.num_steps) // 3, int(cfg.eval_every)))
  controls += [plateau] if plateau else []
  if controls:
    text += "\n\ncontrols:\n" + "\n".join(f"- {line}" for line in controls)
  with open(os.path.join(workdir, "table.md"), "w") as f:
    f.write(text + "\n")
  write_json(os.path.join(workdir, "results.json"), dict(
      preset=cfg.preset, config=cfg.to_dict(), human_accuracy=human,
      final={v: {k: np.asarray(x).tolist() for k, x in final.items()}
             for v, (_, final) in runs.items()},
      controls=controls,
      **{f"{name}_sweep": {str(x): {k: np.asarray(v).tolist() for k, v in f.items()}
                           for x, (_, f) in sweep.items()} for name, sweep in sweeps.items()}))
  plot_curves(runs, os.path.join(workdir, "learning_curves.png"))
  if "intended head is" in rows[0]:
    plot_identities(runs, os.path.join(workdir, "head_identities.png"))
  if sweeps.get("lam"):
    plot_lambda(sweeps["lam"], os.path.join(workdir, "honesty_vs_lambda.png"))
  if {"a_plain", "a_ceiling"} <= set(runs) and any(sweeps.values()):
    plot_pgr(sweeps, runs["a_plain"][1], runs["a_ceiling"][1],
             os.path.join(workdir, "pgr_vs_lambda_kappa.png"))
  return text
