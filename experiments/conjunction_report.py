"""Runs the conjunction experiment (lprior.conjunction.experiment) and reports it: tables
(printed and table.md), results.json and plots in the workdir.

Resumable by rows: each finished row is appended to workdir/rows/<part>.jsonl (die, smooth,
exchangeable, debater; `experiments.common.resume`) with the identity of its part
(`experiment.identities`: the preset, the seed and the part's config but its growable sweeps and
report-only keys), so a crash loses only the row in progress and a rerun computes only the rows
it lacks: none for a finished command (it re-reports), the new ones for a grown sweep
(smooth.ns up to smooth.pad_to, more seeds, kernels, debater.ms …).  Rows stored under another
identity are refused (CheckpointError naming the keys) before anything is computed.  Rows are
reported in the order of the current sweeps; stored rows outside them are kept, not reported.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from experiments.common.report import (fmt_mean_se, markdown_table, mean_se, save_figure,
                                       write_json)
from experiments.common.resume import RowStore, open_stores
from lprior.conjunction import experiment
from lprior.progress import Progress

ESTIMATORS = ("independence", "maxent", "bethe", "chow_liu")


def _fmt(x: float, digits: int = 3) -> str:
  return "–" if x is None or np.isnan(x) else "∞" if np.isinf(x) else f"{x:.{digits}g}"


def _group(rows, *keys):
  out = {}
  for r in rows:
    out.setdefault(tuple(r[k] for k in keys), []).append(r)
  return out


def die_table(rows) -> str:
  cols = ["family", "truth", *ESTIMATORS, "2-way bounds", "2-way LP", "3-way LP"]
  return markdown_table([{
      "family": r["family"], "truth": _fmt(r["truth"]),
      **{e: _fmt(r[e]) for e in ESTIMATORS},
      "2-way bounds": f"[{_fmt(r['lo'])}, {_fmt(r['hi'])}]",
      "2-way LP": f"[{_fmt(r['lp_lo'])}, {_fmt(r['lp_hi'])}]",
      "3-way LP": f"[{_fmt(r['lp3_lo'])}, {_fmt(r['lp3_hi'])}]"} for r in rows], cols)


def smooth_table(rows, windows) -> str:
  names = [*ESTIMATORS] + [f"window{w}" for w in windows]
  out = []
  for (kernel, ell, n), sel in _group(rows, "kernel", "lengthscale", "n").items():
    row = {"kernel": kernel, "ℓ": ell, "n": n, "log P(all)": fmt_mean_se([r["truth"] for r in sel], 2)}
    for name in names:
      errs = [r[f"err_{name}"] for r in sel if f"err_{name}" in r]
      row[name] = fmt_mean_se(errs, 2) if errs and not np.isnan(errs).any() else "–"
    lo = [r["lo"] for r in sel]
    row["log bounds"] = (f"[{'−∞' if min(lo) == 0 else _fmt(np.mean(np.log(lo)))}, "
                         f"{_fmt(np.mean(np.log([r['hi'] for r in sel])))}]")
    out.append(row)
  return markdown_table(out)


def cutoff_table(rows, windows) -> str:
  return markdown_table([{"kernel": r["kernel"], "ℓ": r["lengthscale"], "n": r["n"],
                          **{f"w={w}": _fmt(r.get(f"err_window{w}", np.nan), 2) for w in windows},
                          "w*": _fmt(r["w_star"]) if not np.isnan(r["w_star"]) else f"> {max(windows)}"}
                         for r in rows])


def exchangeable_table(rows) -> str:
  return markdown_table([{"k": r["order"], "m": r["m"], "min P": _fmt(r["lo"]),
                          "q^m (every estimator)": _fmt(r["estimate"]), "max P": _fmt(r["hi"]),
                          "worst log error": _fmt(r["worst_log_error"]),
                          "minimax log error": _fmt(r["minimax_log_error"])} for r in rows])


def debater_table(rows) -> str:
  return markdown_table([{"m": r["m"], "truth": f"{r['truth']:.3f} ± {r['truth_se']:.3f}",
                          "debater min": _fmt(r["lo"], 4), "debater max": _fmt(r["hi"], 4),
                          "global": "yes" if r["optimal"] else "no (budget)",
                          **{f"worst {e}": _fmt(r.get(f"worst_{e}", np.nan), 2)
                             for e in ESTIMATORS}} for r in rows])


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def plot_smooth(rows, cfg, path) -> None:
  plt = _pyplot()
  names = [*ESTIMATORS] + [f"window{w}" for w in cfg.windows]
  kernels, ells = list(cfg.kernels), list(cfg.lengthscales)
  fig, axes = plt.subplots(len(kernels), len(ells), figsize=(5 * len(ells), 3.2 * len(kernels)),
                           squeeze=False, sharex=True)
  for (i, kernel), (j, ell) in ((a, b) for a in enumerate(kernels) for b in enumerate(ells)):
    ax = axes[i, j]
    groups = _group([r for r in rows if r["kernel"] == kernel and r["lengthscale"] == ell], "n")
    ns = sorted(n for (n,) in groups)
    for c, name in enumerate(names):
      pts = [(n, *mean_se([r[f"err_{name}"] for r in groups[(n,)]])) for n in ns
             if all(f"err_{name}" in r for r in groups[(n,)])]
      pts = [p for p in pts if np.isfinite(p[1])]
      if pts:
        x, m, s = map(np.array, zip(*pts))
        ax.errorbar(x, m, yerr=np.nan_to_num(2 * s), marker="o", ms=3, lw=1, color=f"C{c}",
                    label=name, ls="--" if name.startswith("window") else "-")
    lo = [np.mean([np.log(max(r["lo"], 1e-300)) - r["truth"] for r in groups[(n,)]]) for n in ns]
    hi = [np.mean([np.log(r["hi"]) - r["truth"] for r in groups[(n,)]]) for n in ns]
    ax.fill_between(ns, np.maximum(lo, -50), hi, color="0.85", label="closed-form bounds")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xscale("log", base=2)
    ax.set_yscale("symlog", linthresh=0.05)
    ax.set_yticks([-10, -1, -0.1, 0, 0.1, 1, 10, 100])
    ax.set_yticklabels(["−10", "−1", "−0.1", "0", "0.1", "1", "10", "100"])
    ax.set_title(f"{kernel}, ℓ = {ell}")
    ax.set_xlabel("n statements on the path")
    ax.set_ylabel("error in log P(all) (nats)")
  axes[0, -1].legend(fontsize=7, loc="lower left")
  save_figure(fig, path, dpi=110)


def plot_cutoff(cut_rows, cfg, path) -> None:
  plt = _pyplot()
  kernels, ells = list(cfg.kernels), list(cfg.lengthscales)
  fig, axes = plt.subplots(len(kernels), len(ells), figsize=(4 * len(ells), 3 * len(kernels)),
                           squeeze=False)
  for ax, (kernel, ell) in zip(axes.flat, [(k, e) for k in kernels for e in ells]):
    for c, r in enumerate(r for r in cut_rows if (r["kernel"], r["lengthscale"]) == (kernel, ell)):
      ws = [w for w in cfg.windows if f"err_window{w}" in r]
      ax.plot(ws, [abs(r[f"err_window{w}"]) + 1e-4 for w in ws], marker="o", color=f"C{c}",
              label=f"n = {r['n']}")
    ax.axhline(cfg.cutoff_tol, color="k", ls=":", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("w (neighbours conditioned on)")
    ax.set_title(f"{kernel}, ℓ = {ell}")
  for ax in axes[:, 0]:
    ax.set_ylabel("|error| of w-neighbour est. (nats)")
  axes[0, -1].legend(fontsize=7)
  save_figure(fig, path, dpi=110)


def plot_debater(ex_rows, deb_rows, path) -> None:
  plt = _pyplot()
  fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
  ax = axes[0]
  for c, (order,) in enumerate(sorted(_group(ex_rows, "order"))):
    sel = [r for r in ex_rows if r["order"] == order]
    m = [r["m"] for r in sel]
    ax.plot(m, [r["hi"] for r in sel], color=f"C{c}", label=f"max P(all), k = {order}")
    ax.plot(m, [max(r["lo"], 1e-9) for r in sel], color=f"C{c}", ls="--",
            label=f"min P(all), k = {order}")
  ax.plot(m, [r["estimate"] for r in sel], "k-", label="q^m (any estimator)")
  ax.set_yscale("log")
  ax.set_ylim(1e-6, 1.2)
  ax.set_xlabel("m statements (P = 0.95 each, k-way marginals as if independent)")
  ax.set_ylabel("P(all true)")
  ax.legend(fontsize=6, ncol=2)
  ax = axes[1]
  m = [r["m"] for r in deb_rows]
  ax.fill_between(m, [r["lo"] for r in deb_rows], [r["hi"] for r in deb_rows], color="0.8",
                  label="debater's range (same 2-way marginals)")
  ax.errorbar(m, [r["truth"] for r in deb_rows], yerr=[2 * r["truth_se"] for r in deb_rows],
              color="k", marker="o", ms=3, label="truth")
  for c, e in enumerate(ESTIMATORS):
    if all(f"est_{e}" in r for r in deb_rows):
      ax.plot(m, [r[f"est_{e}"] for r in deb_rows], marker=".", color=f"C{c}", label=e)
  ax.set_yscale("log")
  ax.set_xlabel("m smooth statements")
  ax.set_ylabel("P(all true)")
  ax.legend(fontsize=7)
  ax = axes[2]
  for c, r in enumerate(deb_rows):
    h = np.array(r["history_lo"], float)
    ax.plot(np.arange(1, len(h) + 1), h, color=plt.cm.viridis(c / max(len(deb_rows) - 1, 1)),
            label=f"m = {r['m']}")
  ax.set_xlabel("debater budget (master LPs)")
  ax.set_ylabel("lowest P(all) found")
  ax.legend(fontsize=7, ncol=2)
  save_figure(fig, path, dpi=110)


def _cached(store: RowStore, progress: Progress | None = None):
  """cache(unit, fn) for the experiment's row functions: the stored row, or fn()'s, stored
  first, ticking `progress`."""
  done = [0]

  def cache(unit: dict, fn):
    fresh = not store.has(unit)
    row = store.row(unit, fn)
    if fresh and progress is not None:
      done[0] += 1
      progress.update(done[0], **{k: v for k, v in unit.items() if k in ("n", "m")})
    return row
  return cache


def _missing(store: RowStore, units) -> int:
  return sum(not store.has(u) for u in units)


def compute(cfg, workdir: str) -> tuple[dict, float]:
  """Every part's rows (stored ones read back, missing ones computed and stored), and the
  seconds their computation took (summed over the runs that computed them)."""
  experiment.check(cfg)
  stores = open_stores(os.path.join(workdir, "rows"), experiment.identities(cfg))
  jax.config.update("jax_enable_x64", True)
  key = jax.random.key(cfg.seed)
  s, d = cfg.smooth, cfg.debater
  out = dict(die=stores["die"].row({}, lambda: dict(rows=experiment.die_rows()))["rows"])
  units = experiment.smooth_units(s)
  prog = Progress(_missing(stores["smooth"], units), "smooth")
  out["smooth"] = experiment.smooth_rows(s, jax.random.fold_in(key, 1),
                                         cache=_cached(stores["smooth"], prog))
  prog.close()
  out["exchangeable"] = experiment.exchangeable_rows(
      d.exchangeable_q, d.exchangeable_ms, d.exchangeable_orders,
      cache=_cached(stores["exchangeable"]))
  prog = Progress(_missing(stores["debater"], [dict(m=m) for m in d.ms]), "debater")
  out["debater"] = experiment.debater_rows(d, jax.random.fold_in(key, 2),
                                           cache=_cached(stores["debater"], prog))
  prog.close()
  used = [({}, "die")] + [(u, "smooth") for u in units] + [
      (u, "exchangeable") for u in experiment.exchangeable_units(
          d.exchangeable_ms, d.exchangeable_orders)] + [(dict(m=m), "debater") for m in d.ms]
  return out, sum(stores[part].seconds(u) for u, part in used)


def run(cfg, workdir: str) -> str:
  """Run (or resume) every part of the experiment; write results.json, table.md and plots;
  return the text."""
  rows, seconds = compute(cfg, workdir)
  os.makedirs(workdir, exist_ok=True)
  die, smooth_rows, ex, deb = rows["die"], rows["smooth"], rows["exchangeable"], rows["debater"]
  s, d = cfg.smooth, cfg.debater
  cut = experiment.cutoff_rows(smooth_rows, s.windows, s.cutoff_tol)
  sections = [
      ("Four-sided die: P(A∧B∧C) and what 2-way marginals allow", die_table(die)),
      ("Smooth latent statements: error of each estimate of log P(all), nats (mean ± SE over "
       "seeds)", smooth_table(smooth_rows, s.windows)),
      (f"No neighbour cut-off: mean error of the w-neighbour estimate; w* = smallest w with "
       f"|error| ≤ {s.cutoff_tol} nats", cutoff_table(cut, s.windows)),
      (f"Dishonest debater, exchangeable: P(A_i) = {d.exchangeable_q}, every k-way marginal as "
       "if independent (exact LP)", exchangeable_table(ex)),
      (f"Dishonest debater, smooth statements ({d.kernel}, ℓ = {d.lengthscale}): range of "
       "P(all) with the same 2-way marginals; worst |log error| of each estimate",
       debater_table(deb)),
  ]
  text = "\n\n".join(f"### {title}\n\n{table}" for title, table in sections)
  text += (f"\n\npreset {cfg.preset}, {seconds:.0f} s of computation, "
           f"{jax.device_count()} device(s)\n")
  with open(os.path.join(workdir, "table.md"), "w") as f:
    f.write(text)
  write_json(os.path.join(workdir, "results.json"),
             dict(config=cfg.to_dict(), seconds=seconds, die=die, smooth=smooth_rows, cutoff=cut,
                  exchangeable=ex, debater=deb))
  plot_smooth(smooth_rows, s, os.path.join(workdir, "smooth_errors.png"))
  plot_cutoff(cut, s, os.path.join(workdir, "window_cutoff.png"))
  plot_debater(ex, deb, os.path.join(workdir, "debater.png"))
  return text
