"""Tables and the plot of the latent-search experiment (`lprior.ltp.search_experiment`); each
task is a stored row (`experiments.common.resume`), so a rerun computes only missing tasks."""

from __future__ import annotations

import os

import numpy as np

from experiments.common.report import fmt_mean_se, markdown_table, mean_se, save_figure, write_json
from experiments.common.resume import open_stores
from lprior.ltp import search_experiment as se
from lprior.ltp.latent_search import METHODS

GROWABLE = ("tasks",)


def identity(cfg) -> dict:
  return {k: v for k, v in cfg.to_dict().items() if k not in GROWABLE}


def compute(cfg, workdir: str) -> dict[str, dict]:
  names = se.check(cfg)
  store = open_stores(os.path.join(workdir, "rows"), dict(tasks=identity(cfg)))["tasks"]
  return {n: store.row(dict(task=n), lambda n=n: se.run_task(cfg, n)) for n in names}


def _paired(a, b) -> str:
  """mean ± SE of the per-seed difference a − b."""
  m, s = mean_se(np.asarray(a) - np.asarray(b))
  return f"{m:+.1f} ± {s:.1f}"


def task_table(row: dict, budgets) -> str:
  rows = []
  for m in METHODS:
    r = row["methods"][m]
    line = {"method": m}
    for b in budgets:
      cell = r["budgets"][str(int(b))]
      line[f"J at ≤ {int(b):,} q"] = fmt_mean_se([c["best_j"] for c in cell], 1)
      line[f"D* acc at ≤ {int(b):,} q"] = fmt_mean_se([c["score"] for c in cell], 3)
    line["queries used"] = f"{int(np.mean([f['queries'] for f in r['final']])):,}"
    line["acceptance"] = f"{np.mean([f['accept'] for f in r['final']]):.3f}"
    rows.append(line)
  g, t = row["gold"], row["truth"]
  last = f"J at ≤ {int(budgets[-1]):,} q"
  rows.append({"method": "block Gibbs told the groups (best visited; reference)",
               last: fmt_mean_se(g["best_j"], 1),
               f"D* acc at ≤ {int(budgets[-1]):,} q": fmt_mean_se(g["score"], 3)
               + f" (posterior mean {fmt_mean_se(g['posterior_score'], 3)})",
               "queries used": f"{int(np.mean(g['queries'])):,}"})
  rows.append({"method": "the generating Z", last: fmt_mean_se(t["best_j"], 1),
               f"D* acc at ≤ {int(budgets[-1]):,} q": fmt_mean_se(t["score"], 3)})
  return markdown_table(rows, list(rows[0].keys()))


def _short(row: dict, budget) -> str:
  """A note naming the searches that ended (their steps spent) below 98% of the largest budget."""
  short = [f"{m} ({int(np.mean([f['queries'] for f in r['final']])):,})"
           for m, r in row["methods"].items()
           if np.mean([f["queries"] for f in r["final"]]) < 0.98 * budget]
  return ("\n\nEnded below the largest budget (their steps spent; queries used): "
          + ", ".join(short)) if short else ""


def effect_table(rows: dict, budgets) -> str:
  """Per task and budget: the latent searches' best J minus the one-field search's, paired over
  seeds (positive: the latent search found a better hypothesis at that many queries)."""
  out = []
  for name, row in rows.items():
    at = lambda m, b: [c["best_j"] for c in row["methods"][m]["budgets"][str(int(b))]]
    for b in budgets:
      out.append({"task": name, "budget (queries)": f"{int(b):,}",
                  "latent − site": _paired(at("latent", b), at("site", b)),
                  "latent_site − site": _paired(at("latent_site", b), at("site", b)),
                  "edits − site": _paired(at("edits", b), at("site", b))})
  return markdown_table(out)


def _mean_curve(curve) -> np.ndarray:
  """Mean over seeds of best-J curves (NaN where a budget is below every seed's first step)."""
  c = np.asarray(curve, np.float64)
  n = np.sum(~np.isnan(c), 0)
  return np.where(n > 0, np.nansum(c, 0) / np.maximum(n, 1), np.nan)


def plot(rows: dict, path: str | None):
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, len(rows), figsize=(5 * len(rows), 4), squeeze=False)
  for ax, (name, row) in zip(axes[0], rows.items()):
    grid = np.asarray(row["grid"])
    for m in METHODS:
      ax.plot(grid, _mean_curve(row["methods"][m]["curve"]), label=m)
    g = np.asarray(row["gold"]["best_j"])
    ax.axhline(g.mean(), color="k", ls="--", lw=1, label="block Gibbs (best visited)")
    ax.axhline(np.mean(row["truth"]["best_j"]), color="grey", ls=":", lw=1, label="generating Z")
    ax.set_xscale("log")
    ax.set_xlabel("human queries (forecasts + judgments + proposals)")
    ax.set_ylabel("best J found (mean over seeds)")
    lo = min(_mean_curve(row["methods"][m]["curve"])[-1] for m in METHODS)
    ax.set_ylim(min(lo, g.mean()) - 50, max(g.mean(), np.max(row["truth"]["best_j"])) + 20)
    ax.set_title(name)
  axes[0][0].legend(fontsize=7)
  return save_figure(fig, path)


def run(cfg, workdir: str) -> str:
  rows = compute(cfg, workdir)
  budgets = tuple(cfg.budgets)
  text = []
  for name, row in rows.items():
    mz = row["mz"]
    text.append(f"### {name}: best J = log Prior_H + Σ_D log P_H found within a budget of human "
                f"queries, and its D* accuracy (chance, the majority label: "
                f"{np.mean(row['chance']):.3f}); mean ± SE over {cfg.num_seeds} "
                f"seeds\n\nMz: {mz['proposals']:,} proposals (charged to latent and latent_site), "
                f"{mz['steps']} steps, held-out ELBO {mz['held_out_elbo']:.1f} nats per "
                f"hypothesis (independent fair coins: −{mz['independent_nats']:.1f})\n\n"
                + task_table(row, budgets) + _short(row, budgets[-1]))
  text.append("### Effect sizes: best J minus the one-field search's at equal queries (paired "
              "over seeds, nats)\n\n" + effect_table(rows, budgets))
  out = "\n\n".join(text) + f"\n\npreset {cfg.preset}\n"
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "table.md"), "w") as f:
    f.write(out)
  write_json(os.path.join(workdir, "results.json"), dict(config=cfg.to_dict(), tasks=rows))
  plot(rows, os.path.join(workdir, "search_curves.png"))
  return out
