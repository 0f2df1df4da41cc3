"""Tables and plots of the amplification experiment (issue 7): accuracy against human calls, and
planted-error search cost against tree size.  Used by the launcher and the notebook."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from experiments.common.report import fmt_mean_se, markdown_table, save_figure, write_json
from lprior.amplification.real_errors import SCORES

STYLE = {"adversary": "C3", "adversary_cold": "C5", "random": "C0", "always": "C2",
         "supervised": "k", "coin": "C1", "iterate": "C4", "confidence": "C6",
         "confidence_coin": "C8", "blind_coin": "C7", "adversary_answer": "C9",
         "adversary_roots": "C5"}
DASHED = ("confidence", "confidence_coin", "blind_coin")  # the controls, dashed in the plot
# The attribution of a saving in human calls to reach a target accuracy, each share
# (C[a] - C[b]) / (C[r] - C[k]) of per-seed calls C (see `attribution_rows`).
SHARES = (
    ("adversary over M's confidence", ("confidence", "adversary"), ("random", "adversary")),
    ("Adv reading M's distribution over its answer only", ("adversary_answer", "adversary"),
     ("random", "adversary")),
    ("coin: fewer recursions (blind coin)", ("random", "blind_coin"), ("random", "coin")),
    ("coin: where (coin over blind coin)", ("blind_coin", "coin"), ("random", "coin")),
    ("coin over M's confidence coin", ("confidence_coin", "coin"), ("random", "coin")),
)


def _at_calls(calls: np.ndarray, acc: np.ndarray, budget: float) -> float:
  """Accuracy at `budget` human calls by linear interpolation; nan past the curve's end."""
  return float(np.interp(budget, calls, acc)) if calls[-1] >= budget else float("nan")


def _first_reach(calls: np.ndarray, acc: np.ndarray, target: float) -> float:
  hit = np.nonzero(acc >= target)[0]
  return float(calls[hit[0]]) if hit.size else float("nan")


def _nanmean_over_evals(x: np.ndarray) -> np.ndarray:
  """Per seed, the mean over the evaluations where x is defined (nan where it never is)."""
  x = np.asarray(x, float)[1:]
  n = np.sum(~np.isnan(x), 0)
  return np.where(n > 0, np.nansum(x, 0) / np.maximum(n, 1), np.nan)


def _lift(h: Mapping[str, np.ndarray]) -> np.ndarray:
  """Per seed, over training: (share of recursed-on subquestions that M answers wrongly) /
  (share among all subquestions of asked questions); 1 is what a blind choice gets."""
  rec = np.nansum(np.asarray(h["recursed_on_error"], float)[1:], 0)
  base = np.nansum(np.asarray(h["subq_error"], float)[1:], 0)
  return np.where(base > 0, rec / np.maximum(base, 1e-12), np.nan)


def _fmt(values, digits=3) -> str:
  """mean ± SE over the seeds where a value is defined, '(n/N seeds)' when some are not; a
  single defined value has no SE."""
  v = np.asarray(values, float)
  ok = v[~np.isnan(v)]
  if ok.size == 0:
    return "—"
  text = f"{ok[0]:.{digits}f}" if ok.size == 1 else fmt_mean_se(ok, digits)
  return text if ok.size == v.size else f"{text} ({ok.size}/{v.size} seeds)"


def budget_of(histories: Mapping[str, Mapping[str, np.ndarray]]) -> float:
  """A task's common budget of human calls: the smallest total of any seed of any amplification
  method (so every one has a point there; supervised labels are not human-tree calls)."""
  amp = [h for m, h in histories.items() if m != "supervised"] or list(histories.values())
  return float(min(np.min(h["calls"][-1]) for h in amp))


def calls_to(h: Mapping[str, np.ndarray], target: float) -> np.ndarray:
  """Per seed, the human calls at the first evaluation with accuracy ≥ target (nan: never)."""
  calls, acc = np.asarray(h["calls"], float), np.asarray(h["accuracy"], float)
  return np.array([_first_reach(calls[:, s], acc[:, s], target) for s in range(calls.shape[1])])


def _picks(h: Mapping[str, np.ndarray], name: str) -> str:
  return _fmt(_nanmean_over_evals(h[name]), 2) if name in h else "—"


def accuracy_rows(results, targets: Sequence[float] = (0.8, 0.95)) -> list[dict]:
  """One row per (task, method), mean ± SE over seeds: final accuracy, calls, accuracy at the
  task's common budget of human calls (`budget_of`; — where a method stopped short of it),
  calls to first reach each target accuracy, how often Adv (and M's own confidence) points at
  M's error on held-out questions with one wrong subquestion, the share of such questions at
  the end (what is left to find; chance is 0.5 for the picks), and the recursion lift
  (`_lift`)."""
  rows = []
  for task, histories in results["tasks"].items():
    budget = budget_of(histories)
    for method, h in histories.items():
      calls, acc = np.asarray(h["calls"], float), np.asarray(h["accuracy"], float)
      seeds = range(calls.shape[1])
      amp = method != "supervised"
      rows.append({
          "task": task, "method": method,
          "accuracy": _fmt(acc[-1]),
          "human calls": f"{np.mean(calls[-1]):,.0f}",
          "calls / question": f"{np.mean(h['calls_per_question'][1:]):.2f}",
          "budget": f"{budget:,.0f}",
          "acc @ budget": _fmt([_at_calls(calls[:, s], acc[:, s], budget) for s in seeds]),
          **{f"calls to acc {t:g}": _fmt(calls_to(h, t), 0) for t in targets},
          "Adv picks M's error": _picks(h, "adv_pick") if amp else "—",
          "confidence picks": _picks(h, "conf_pick") if amp else "—",
          "one wrong at end": _fmt(np.asarray(h["one_wrong"])[-1], 3) if "one_wrong" in h
                              else "—",
          "recursion lift": _fmt(_lift(h), 2) if "recursed_on_error" in h else "—",
      })
  return rows


def share_of_saving(calls: Mapping[str, np.ndarray], numer: tuple[str, str],
                    denom: tuple[str, str], *, num_boot: int = 2000, seed: int = 0
                    ) -> tuple[float, float, int]:
  """(share, bootstrap SE over seeds, seeds used): mean(C[a] − C[b]) / mean(C[r] − C[k]) over
  the seeds where all four per-seed call counts are finite (every method reached the target);
  seeds are paired (the methods share each seed's keys and evaluation questions).  nan where no
  seed qualifies or the saving C[r] − C[k] is not resolved from 0 (its mean within 2 SE of 0:
  nothing to attribute; the ratio would be noise over noise)."""
  (a, b), (r, k) = numer, denom
  c = np.stack([np.asarray(calls[m], float) for m in (a, b, r, k)])
  c = c[:, np.all(np.isfinite(c), 0)]
  n = c.shape[1]
  saving = c[2] - c[3]
  saving_se = np.std(saving, ddof=1) / np.sqrt(n) if n > 1 else 0.0
  if n == 0 or abs(np.mean(saving)) <= 2 * saving_se:
    return float("nan"), float("nan"), n
  ratio = lambda x: np.mean(x[0] - x[1], -1) / np.mean(x[2] - x[3], -1)
  share = float(ratio(c))
  idx = np.random.default_rng(seed).integers(0, n, (num_boot, n))
  with np.errstate(divide="ignore", invalid="ignore"):
    boot = ratio(c[:, idx])  # (num_boot,)
  boot = boot[np.isfinite(boot)]
  se = float(np.std(boot, ddof=1)) if n > 1 and boot.size > 1 else float("nan")
  return share, se, n


def _share_cell(calls: Mapping[str, np.ndarray], numer, denom, num_seeds: int) -> str:
  """A share as 'x ± se', or why there is none: the methods that never reached the target, or
  no saving to attribute."""
  share, se, n = share_of_saving(calls, numer, denom)
  if n == 0:
    never = [m for m in dict.fromkeys(numer + denom) if not np.any(np.isfinite(calls[m]))]
    return f"— ({', '.join(never)} never reached)" if never else "— (no seed reached by all)"
  if np.isnan(share):
    return f"— (no saving of {denom[1]} over {denom[0]} beyond 2 SE)"
  return f"{share:.2f} ± {se:.2f}" + ("" if n == num_seeds else f" ({n}/{num_seeds} seeds)")


# Paired differences in calls to the target, defined whenever both methods reach it (also where
# random never does and the shares above are undefined).
DIFFERENCES = (("confidence", "adversary"), ("adversary_answer", "adversary"),
               ("blind_coin", "coin"), ("confidence_coin", "coin"))


def attribution_rows(results, targets: Sequence[float] = (0.8, 0.95)) -> list[dict]:
  """Per task and target accuracy, the saving in human calls over uniform choice of the
  adversary and of the coin (paired per seed, mean ± SE), the shares of `SHARES`: e.g.
  'adversary over M's confidence' = (C_confidence − C_adversary) / (C_random − C_adversary), the
  part of the adversary's saving that M's confidence does not also get, and the paired
  differences of `DIFFERENCES`.  — where a method is missing (or, with the reason, where a share
  is undefined); '(n/N seeds)' where some seeds never reached the target."""
  rows = []
  for task, histories in results["tasks"].items():
    num_seeds = np.asarray(next(iter(histories.values()))["calls"]).shape[1]
    for t in targets:
      calls = {m: calls_to(h, t) for m, h in histories.items()}
      row = {"task": task, "target": f"{t:g}"}
      for m in ("adversary", "coin"):
        if m in calls and "random" in calls:
          row[f"saving of {m}"] = _fmt(calls["random"] - calls[m], 0)
      for label, numer, denom in SHARES:
        if all(m in calls for m in numer + denom):
          row[label] = _share_cell(calls, numer, denom, num_seeds)
      for a, b in DIFFERENCES:
        if a in calls and b in calls:
          row[f"{a} − {b} (calls)"] = _fmt(calls[a] - calls[b], 0)
      rows.append(row)
  return rows


def growth_fit(size: np.ndarray, cost: np.ndarray) -> dict[str, float]:
  """Least-squares fits cost ≈ a + b·log2(size + 1) and cost ≈ a + b·size: slopes and R²
  (nan with fewer than two distinct sizes: no slope is defined)."""
  if np.unique(size).size < 2:
    return dict(log_slope=np.nan, log_r2=np.nan, lin_slope=np.nan, lin_r2=np.nan)
  out = {}
  for name, x in (("log", np.log2(size + 1.0)), ("lin", size.astype(float))):
    design = np.stack([np.ones_like(x), x], 1)
    coef, *_ = np.linalg.lstsq(design, cost, rcond=None)
    resid = cost - design @ coef
    out[f"{name}_slope"] = float(coef[1])
    out[f"{name}_r2"] = float(1 - resid.var() / max(cost.var(), 1e-12))
  return out


def transparency_rows(results) -> list[dict]:
  """Per task and adversary: unfoldings at the largest trees, and the two growth fits (each
  fitted per seed over all trees; mean ± SE over seeds)."""
  rows = []
  for task, tr in results["transparency"].items():
    size = np.asarray(tr["size"])
    big = size >= size.max() * 0.75
    for name in ("oracle", "critic", "random"):
      if name not in tr:
        continue
      cost = np.asarray(tr[name], float)
      seeds = range(size.shape[0])
      fits = [growth_fit(size[s], cost[s]) for s in seeds]
      rows.append({
          "task": task, "adversary": name,
          "largest trees (nodes)": f"{size[big].mean():.1f}",
          "unfoldings there": fmt_mean_se([cost[s][big[s]].mean() for s in seeds], 2),
          "per doubling (log fit)": fmt_mean_se([f["log_slope"] for f in fits], 2),
          "R² log": fmt_mean_se([f["log_r2"] for f in fits], 2),
          "per node (linear fit)": fmt_mean_se([f["lin_slope"] for f in fits], 3),
          "R² linear": fmt_mean_se([f["lin_r2"] for f in fits], 2),
      })
  return rows


def _mean_where(x: np.ndarray, w: np.ndarray) -> np.ndarray:
  """Per seed (rows), the mean of x over the trees (columns) where w holds (nan: none)."""
  w = np.asarray(w, bool)
  n = w.sum(-1)
  return np.where(n > 0, np.sum(np.where(w, x, 0.0), -1) / np.maximum(n, 1), np.nan)


def _per_size(cost: np.ndarray, size: np.ndarray, sizes: np.ndarray,
              where: np.ndarray | None = None) -> np.ndarray:
  """(seeds, len(sizes)): per seed, the mean cost over the trees of each size (and `where`);
  nan where there are none.   cost, size (seeds, trees)"""
  where = np.ones(size.shape, bool) if where is None else where
  return np.stack([_mean_where(cost, where & (size == v)) for v in sizes], 1)


def real_error_rows(results) -> list[dict]:
  """Per task, M of a trained method and search order (`real_errors.SCORES`): unfoldings to
  find a locally wrong node in M's own trees (over trees that have one; mean ± SE over seeds),
  on the trees whose errors cancel (right root), at the largest trees, and the growth per
  doubling of the tree (log fit over the trees with an error, per seed); the share of trees with
  an error and of cancelling ones."""
  rows = []
  for task, by_method in results.get("real_errors", {}).items():
    for method, c in by_method.items():
      err, cancels = np.asarray(c["has_error"], bool), np.asarray(c["cancels"], bool)
      size = np.asarray(c["size"])
      big = err & (size >= size.max() * 0.75)
      for score in SCORES:
        cost = np.asarray(c[score], float)
        fits = [growth_fit(size[s][err[s]], cost[s][err[s]]) for s in range(size.shape[0])]
        rows.append({
            "task": task, "M of": method, "search order": score,
            "trees with an error": _fmt(err.mean(-1), 3),
            "cancelling (right root)": _fmt(cancels.mean(-1), 3),
            "unfoldings": _fmt(_mean_where(cost, err), 2),
            "on cancelling": _fmt(_mean_where(cost, cancels), 2),
            "at the largest trees": _fmt(_mean_where(cost, big), 2),
            "per doubling (log fit)": _fmt([f["log_slope"] for f in fits], 2),
        })
  return rows


def plot_real_errors(results, path: str | None = None):
  """Unfoldings to find M's real error against tree size, by search order (mean over seeds of
  the per-size means over trees with an error), one panel per (task, M)."""
  panels = [(t, m, c) for t, by in results["real_errors"].items() for m, c in by.items()]
  fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
  colors = dict(zip(SCORES, ("C3", "C6", "C2", "k", "C0")))
  for ax, (task, method, c) in zip(axes[0], panels):
    size, err = np.asarray(c["size"]), np.asarray(c["has_error"], bool)
    sizes = np.unique(size[err])
    ax.set_title(f"M's real errors, {task} ({method})", fontsize=9)
    if not sizes.size:  # M was right at every node of every tree: nothing to find
      ax.text(0.5, 0.5, "no tree has an error", ha="center", va="center", transform=ax.transAxes)
      continue
    for score, color in colors.items():
      cost = np.asarray(c[score], float)
      ax.plot(sizes, np.nanmean(_per_size(cost, size, sizes, err), 0), "o-", ms=3,
              color=color, label=score)
    ax.plot(sizes, np.log2(sizes + 1), "k:", lw=1, label="log2(n + 1)")
    ax.set_xlabel("tree size n (nodes)")
    ax.set_ylabel("unfoldings to find M's error")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  return save_figure(fig, path)


def plot_accuracy(results, path: str | None = None):
  """M's accuracy against cumulative human calls, one panel per task (mean ± SE band)."""
  tasks = list(results["tasks"])
  fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
  for ax, task in zip(axes[0], tasks):
    for method, h in results["tasks"][task].items():
      calls = np.asarray(h["calls"], float).mean(1)
      acc = np.asarray(h["accuracy"], float)
      m = acc.mean(1)
      se = acc.std(1, ddof=1) / np.sqrt(acc.shape[1]) if acc.shape[1] > 1 else 0 * m
      ok = calls > 0
      ax.plot(calls[ok], m[ok], "o--" if method in DASHED else "o-", ms=3,
              color=STYLE.get(method), label=method)
      ax.fill_between(calls[ok], (m - se)[ok], (m + se)[ok], color=STYLE.get(method), alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("human calls (cumulative; supervised: one per label)")
    ax.set_ylabel("M's accuracy (exact answer)")
    ax.set_title(task)
    ax.grid(alpha=0.3)
  axes[0][0].legend(fontsize=8)
  return save_figure(fig, path)


def plot_transparency(results, path: str | None = None):
  """Unfoldings to find the planted error against tree size, by adversary (mean over seeds),
  one panel per task."""
  names = list(results["transparency"])
  fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
  for ax, task in zip(axes[0], names):
    tr = results["transparency"][task]
    size = np.asarray(tr["size"])
    sizes = np.unique(size)
    for name, color in (("oracle", "C2"), ("critic", "C3"), ("random", "C0")):
      if name not in tr:
        continue
      cost = np.asarray(tr[name], float)
      ax.plot(sizes, np.nanmean(_per_size(cost, size, sizes), 0), "o-", ms=3, color=color,
              label=name)
    ax.plot(sizes, np.log2(sizes + 1), "k:", lw=1, label="log2(n + 1)")
    ax.set_xlabel("tree size n (nodes)")
    ax.set_ylabel("unfoldings to find the planted error")
    ax.set_title(f"planted-error search, {task}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  return save_figure(fig, path)


def not_run_text(results) -> str:
  """What the config asked for that cannot run on a task, with the reason ('' if nothing)."""
  lines = [f"- {task}: {what}: {why}" for task, by in results.get("not_run", {}).items()
           for what, why in by.items()]
  return "\n## Not run\n\n" + "\n".join(lines) + "\n" if lines else ""


def write_report(results, config, workdir: str) -> str:
  """results.json, table.md, accuracy_vs_calls.png, real_errors.png, transparency.png; returns
  the table text."""
  os.makedirs(workdir, exist_ok=True)
  targets = (config.target_accuracy, config.target_accuracy_high)
  acc = markdown_table(accuracy_rows(results, targets))
  att = attribution_rows(results, targets)
  cols = list(dict.fromkeys(k for r in att for k in r))
  tra = markdown_table(transparency_rows(results))
  real = real_error_rows(results)
  text = (f"## Accuracy against human calls ({config.num_seeds} seeds, mean ± SE)\n\n{acc}\n\n"
          f"## Where the saving comes from (calls to the target; shares of the saving over "
          f"random, bootstrap SE over seeds)\n\n{markdown_table(att, cols)}\n\n"
          + (f"## M's real errors found by the trained adversary ({config.num_seeds} seeds × "
             f"{config.real_errors.num_trees} trees)\n\n{markdown_table(real)}\n\n"
             if real else "")
          + (f"## Planted-error search ({config.num_seeds} seeds × "
             f"{config.transparency.num_trees} trees)\n\n{tra}\n" if results["transparency"]
             else "") + not_run_text(results))
  with open(os.path.join(workdir, "table.md"), "w") as f:
    f.write(text)
  write_json(os.path.join(workdir, "results.json"),
             dict(config=config.to_dict(), **{k: v for k, v in results.items()}))
  if results["tasks"]:
    plot_accuracy(results, os.path.join(workdir, "accuracy_vs_calls.png"))
  if results["transparency"]:
    plot_transparency(results, os.path.join(workdir, "transparency.png"))
  if any(results.get("real_errors", {}).values()):
    plot_real_errors(results, os.path.join(workdir, "real_errors.png"))
  return text
