"""Tables and plots of the learning-the-prior experiment (issue 5): every method on D* per task,
the data-efficiency curve over |D|, the prior modes, the decoded Z* in words, and the trend
task's extrapolation.  Used by the launcher and the notebook."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np

from experiments.common.report import (fmt_mean_se, markdown_table, mean_se, save_figure,
                                       write_json)

LABELS = {"direct": "network fit on D", "warmup2": "warm-up 2 (human read all of D)",
          "warmup2_reads": "warm-up 2 (human read {reads} of D)",
          "ltp_map": "learning the prior, MAP z*", "ltp_posterior": "learning the prior, q(z)",
          "ideal": "human prior updated exactly on D",
          "flat_bayes": "flat prior over the human's hypotheses, updated exactly on D",
          "flat_mle": "maximum likelihood over the human's hypotheses"}
STYLE = {"direct": "C3", "warmup2": "C1", "warmup2_reads": "C5", "ltp_map": "C0",
         "ltp_posterior": "C9", "ideal": "k", "flat_bayes": "C7", "flat_mle": "C8"}
METHODS = tuple(LABELS)


# where Z is too large to enumerate (`space_size` None) the exact methods are Gibbs chains
GOLD_LABELS = {"ideal": "human prior, gold posterior (long-run block Gibbs)",
               "flat_bayes": "flat prior over the human's hypotheses (block Gibbs)",
               "flat_mle": "maximum likelihood over the human's hypotheses (coordinate ascent)",
               "warmup2": "warm-up 2 (human's gold posterior on all of D)"}


def enumerable(task: dict) -> bool:
  return task.get("space_size") is not None


def label(method: str, config=None, task: dict | None = None) -> str:
  reads = config.warmup2.human_reads if config is not None else "some"
  if task is not None and not enumerable(task) and method in GOLD_LABELS:
    return GOLD_LABELS[method]
  return LABELS[method].format(reads=reads)


def _agree(task: dict, method: str, size: int) -> str:
  """How many seeds' decoded Z* equal the exact MAP hypothesis of the human updated on D."""
  got = task["methods"][method]["z_star"][size]
  ref = task["methods"]["ideal"]["z_star"][size]
  return f"{sum(list(a) == list(b) for a, b in zip(got, ref))}/{len(ref)}"


def queries_text(q: dict | None) -> str:
  """Human queries of a run as 'forecasts / prior judgments (absolute, ratios)'."""
  if not q:
    return "—"
  judged = q["prior"] + q["ratio"]
  kinds = [k for k in ("prior", "ratio") if q[k]]
  return f"{q['forecast']:,} / {judged:,}" + (f" ({', '.join(kinds)})" if kinds else "")


def main_rows(results: dict, config=None) -> list[dict]:
  """Per task and method at the main |D|: D* score and log-likelihood per question (mean ± SE
  over seeds), the human queries the method put (counted where made); for learning the prior
  also the human reading the decoded Z* directly; how often Z* is the exact MAP hypothesis."""
  rows = []
  for name, t in results.items():
    n = t["main_size"]
    for m in METHODS:
      d = t["methods"][m]
      row = {"task": name, "method": label(m, config, t), "D* score": fmt_mean_se(d["score"][n]),
             "D* log-lik / question": fmt_mean_se(d["log_lik"][n]),
             "human queries: forecasts / prior": queries_text(d.get("queries", {}).get(n))}
      row["human reading Z*: score"] = (fmt_mean_se(d["human_at_z_score"][n])
                                        if m.startswith("ltp") else "—")
      row["Z* = exact MAP"] = (_agree(t, m, n) if "z_star" in d and m != "ideal" and enumerable(t)
                               else "—")
      row["Z* = generating Z"] = (f"{sum(list(z) == list(t['truth']) for z in d['z_star'][n])}"
                                  f"/{len(d['z_star'][n])}" if "z_star" in d else "—")
      rows.append(row)
  return rows


def efficiency_rows(results: dict, config=None) -> list[dict]:
  """D* score per method against |D| (mean ± SE over seeds)."""
  rows = []
  for name, t in results.items():
    for m in METHODS:
      row = {"task": name, "method": label(m, config, t)}
      for n in t["sizes"]:
        got = t["methods"][m]["score"].get(n)
        row[f"n = {n}"] = fmt_mean_se(got) if got is not None else "—"
      rows.append(row)
  return rows


AGREEMENT = {"all fields": "all fields", "read by D": "fields D reads",
             "not read by D": "fields only D* reads (or none)"}


def agreement_rows(results: dict, config=None) -> list[dict]:
  """Per task and method with a decoded hypothesis, at the main |D|: the share of fields where
  it equals the generating Z, over the fields D reads and over the rest (mean ± SE)."""
  rows = []
  for name, t in results.items():
    n = t["main_size"]
    for m, per_size in t.get("truth_agreement", {}).items():
      if n in per_size:
        a = per_size[n]
        rows.append({"task": name, "method": label(m, config, t),
                     **{col: fmt_mean_se(a[k]) if k in a else "—" for k, col in AGREEMENT.items()}})
  return rows


def scale_rows(results: dict) -> list[dict]:
  """Tasks too large to enumerate: what enumeration would ask at the main |D| (|Z|·|D|
  forecasts), what learning the prior and the gold chains asked, and the gold's chain gap."""
  rows = []
  for name, t in results.items():
    if enumerable(t):
      continue
    n = t["main_size"]
    log10_enum = t["log10_space_size"] + np.log10(n)
    q = t["methods"]["ltp_map"]["queries"][n]
    asked = q["forecast"] + q["prior"] + q["ratio"]
    rows.append({"task": name, "|Z|": f"10^{t['log10_space_size']:.1f}",
                 "enumeration: forecasts": f"10^{log10_enum:.1f}",
                 "learning the prior: queries": f"{asked:,}",
                 "ratio to enumeration": f"10^{np.log10(asked) - log10_enum:.1f}",
                 "gold chains: queries": queries_text(t["methods"]["ideal"]["queries"][n]),
                 "gold: D* score gap between chains": fmt_mean_se(t["gold_chain_gap"][n])})
  return rows


def prior_mode_rows(results: dict) -> list[dict]:
  """Learning the prior (MAP, one start each, the same keys) at the main |D| under each Prior
  mode, with the human queries of one run."""
  rows = []
  for name, t in results.items():
    n = t["main_size"]
    ref = t["methods"]["ideal"]["z_star"][n]
    for mode, d in t["prior_modes"].items():
      q = t["queries"][mode]
      agree = sum(list(a) == list(b) for a, b in zip(d["z_star"], ref))
      rows.append({"task": name, "prior mode": mode, "D* score": fmt_mean_se(d["score"]),
                   "D* log-lik / question": fmt_mean_se(d["log_lik"]),
                   "Z* = exact MAP": f"{agree}/{len(ref)}" if enumerable(t) else "—",
                   "human queries: forecasts / prior": queries_text(q)})
  return rows


def readable(results: dict) -> str:
  """The decoded Z* in words (seed 0, main |D|) next to the truth and the exact posterior."""
  out = []
  for name, t in results.items():
    r = t["readable"]
    out.append(f"### {name} (|D| = {t['main_size']}, seed 0)\n")
    out.append("Learned Z* (MAP z*, decoded by Mz):\n```\n" + r["ltp_map"] + "\n```")
    out.append("Learned posterior q(z), decoded field by field (probabilities):\n```\n"
               + r["ltp_posterior"] + "\n```")
    out.append("The human updated exactly on D (MAP hypothesis, [posterior probability of that "
               "level]):\n```\n" + r["ideal"] + "\n```")
    out.append("The hypothesis that generated the data:\n```\n" + r["truth"] + "\n```")
  return "\n".join(out)


def plot_dstar(results: dict, path: str | None = None, config=None):
  """D* score per method at the main |D|, one panel per task (mean ± SE over seeds)."""
  names = list(results)
  fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
  for ax, name in zip(axes[0], names):
    t = results[name]
    n = t["main_size"]
    ms = [mean_se(t["methods"][m]["score"][n]) for m in METHODS]
    ax.bar(range(len(METHODS)), [m for m, _ in ms], yerr=[s if np.isfinite(s) else 0 for _, s in ms],
           color=[STYLE[m] for m in METHODS], capsize=3)
    ax.set_xticks(range(len(METHODS)))
    ax.set_xticklabels([label(m, config, t) for m in METHODS], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(f"D* {t['score_name']} ({'higher' if t['score_name'] == 'accuracy' else 'lower'}"
                  " is better)")
    ax.set_title(f"{name}: |D| = {n}")
    ax.grid(alpha=0.3, axis="y")
  return save_figure(fig, path)


def plot_efficiency(results: dict, path: str | None = None, config=None):
  """D* score against |D| per method (mean ± SE band), one panel per task."""
  names = list(results)
  fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
  for ax, name in zip(axes[0], names):
    t = results[name]
    for m in METHODS:
      got = t["methods"][m]["score"]
      sizes = np.asarray([n for n in t["sizes"] if n in got])
      ms = np.array([mean_se(got[n]) for n in sizes])
      se = np.nan_to_num(ms[:, 1])
      ax.plot(sizes, ms[:, 0], "o-", ms=3, color=STYLE[m], label=label(m, config, t))
      ax.fill_between(sizes, ms[:, 0] - se, ms[:, 0] + se, color=STYLE[m], alpha=0.2)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("|D|")
    ax.set_ylabel(f"D* {t['score_name']}")
    ax.set_title(name)
    ax.grid(alpha=0.3)
  axes[0][0].legend(fontsize=7)
  return save_figure(fig, path)


def plot_extrapolation(results: dict, path: str | None = None, config=None):
  """Trend task, seed 0 at the main |D|: D, D*, the true curve and every method's forecast
  (mean ± 1 sd) over t ∈ [0, 2]."""
  g = results["trend"]["grid"]
  t = np.asarray(g["t"])
  fig, ax = plt.subplots(figsize=(7, 4.5))
  ax.scatter(g["D"]["x"], g["D"]["y"], s=6, color="0.5", label="D")
  ax.scatter(g["D_star"]["x"], g["D_star"]["y"], s=6, color="0.8", label="D* (held out)")
  ax.plot(t, g["truth"], "k--", lw=1, label="true curve")
  for m in METHODS:
    if m in g:
      mean, sd = np.asarray(g[m]["mean"]), np.asarray(g[m]["sd"])
      ax.plot(t, mean, color=STYLE[m], label=label(m, config))
      ax.fill_between(t, mean - sd, mean + sd, color=STYLE[m], alpha=0.12)
  ax.axvline(1.0, color="0.6", lw=0.8)
  top = max(np.max(g["truth"]), np.max(g["D"]["y"])) * 1.8
  ax.set_ylim(min(0.0, np.min(g["D"]["y"])), top)
  ax.set_xlabel("t   (D: t < 1; D*: t > 1)")
  ax.set_ylabel("y")
  ax.set_title(f"trend extrapolation, |D| = {results['trend']['main_size']}, seed 0")
  ax.legend(fontsize=7, loc="upper left")
  ax.grid(alpha=0.3)
  return save_figure(fig, path)


def tables(results: dict, config=None) -> str:
  """Every table and the decoded Z* as markdown."""
  seeds = len(next(iter(results.values()))["methods"]["ideal"]["score"][
      next(iter(results.values()))["main_size"]])
  scores = ", ".join(f"{n}: {t['score_name']}" for n, t in results.items())
  parts = [f"## Learning the prior on D* ({seeds} seeds, mean ± SE; score = {scores})\n",
           markdown_table(main_rows(results, config)),
           *(["\n## Z too large to enumerate (main |D|)\n", markdown_table(scale_rows(results))]
             if scale_rows(results) else []),
           "\n## Data efficiency: D* score against n = |D|\n", markdown_table(efficiency_rows(results, config)),
           "\n## Decoded Z* against the generating Z, field by field (main |D|)\n",
           markdown_table(agreement_rows(results, config)),
           "\n## Prior modes (MAP z*, main |D|, one start per run, paired keys)\n", markdown_table(prior_mode_rows(results)),
           "\n## Decoded Z*\n", readable(results)]
  return "\n".join(parts)


def write_report(results: dict, config, workdir: str) -> str:
  """Write results.json, table.md and the plots into workdir; return the tables."""
  os.makedirs(workdir, exist_ok=True)
  slim = {n: {k: v for k, v in t.items() if k != "history"} for n, t in results.items()}
  write_json(os.path.join(workdir, "results.json"), dict(config=config.to_dict(), tasks=slim))
  text = tables(results, config)
  with open(os.path.join(workdir, "table.md"), "w") as f:
    f.write(text + "\n")
  plot_dstar(results, os.path.join(workdir, "dstar_performance.png"), config)
  plot_efficiency(results, os.path.join(workdir, "data_efficiency.png"), config)
  if "trend" in results:
    plot_extrapolation(results, os.path.join(workdir, "trend_extrapolation.png"), config)
  return text
