"""Tables (markdown) and plots of the benchmarks, and the targets of issue 4 checked against them."""

from __future__ import annotations

import os
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.common.report import markdown_table, save_figure  # noqa: E402


def plot_logz(summary: list[dict], path: str | None):
  dims = sorted({s["d"] for s in summary})
  lams = sorted({s["lam"] for s in summary})
  fig, axes = plt.subplots(len(dims), len(lams), figsize=(3.6 * len(lams), 3 * len(dims)),
                           squeeze=False)
  methods = sorted({s["method"] for s in summary})
  for i, d in enumerate(dims):
    for j, lam in enumerate(lams):
      ax = axes[i, j]
      for m in methods:
        pts = sorted((s["grad_evals"], s["abs_error"]) for s in summary
                     if s["d"] == d and s["lam"] == lam and s["method"] == m)
        if pts:
          x, y = zip(*pts)
          ax.plot(np.maximum(x, 1), np.maximum(y, 1e-3), "o-", label=m)
      ax.set(xscale="log", yscale="log", title=f"d={d}, λ={lam:g}",
             xlabel="gradient evaluations", ylabel="median |error| (nats)")
  axes[0, 0].legend(fontsize=7)
  return save_figure(fig, path)


def plot_scaling(scaling: dict, path: str | None):
  rows = scaling["rows"]
  fig, ax = plt.subplots(figsize=(5, 3.5))
  single = [r for r in rows if r["processes"] == 1]
  ax.plot([r["devices"] for r in single], [r["efficiency"] for r in single], "o-",
          label="1 process")
  for r in rows:
    if r["processes"] > 1:
      ax.plot([r["devices"]], [r["efficiency"]], "s", label=f"{r['processes']} processes")
  ax.axvline(scaling["cores"], color="gray", ls=":", label="CPU cores")
  ax.set(xscale="log", xlabel="devices", ylabel="parallel efficiency", ylim=(0, 1.2),
         title="particle-gradient throughput")
  ax.legend()
  return save_figure(fig, path)


def plot_memory(memory: dict, path: str | None):
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for n in sorted({g["num_particles"] for g in memory["grid"]}):
    pts = sorted((g["particle_bytes"], g["peak_bytes"]) for g in memory["grid"]
                 if g["num_particles"] == n)
    x, y = zip(*pts)
    ax.plot(x, y, "o-", label=f"N={n}")
  lim = np.array([min(g["particle_bytes"] for g in memory["grid"]),
                  max(g["particle_bytes"] for g in memory["grid"])])
  ax.plot(lim, lim, "k:", label="N·d·4 bytes")
  ax.set(xscale="log", yscale="log", xlabel="N·d·4 bytes", ylabel="peak bytes (XLA analysis)",
         title="tracking update: peak memory")
  ax.legend()
  return save_figure(fig, path)


def tables(results: dict) -> str:
  """The markdown report of whatever benchmarks ran."""
  parts = [f"# Benchmarks ({results['preset']}; {results['machine']})"]
  if "logz" in results:
    parts += ["## log Z: our SMC against BlackJAX's adaptive tempered SMC (median over repeats)",
              markdown_table(results["logz"]["vs_blackjax"]),
              "## log Z: every estimator", markdown_table(results["logz"]["summary"])]
  if "tracking" in results:
    t = results["tracking"]
    parts += ["## Tracking against fresh SMC of equal accuracy",
              markdown_table([dict(t["tracking"], estimator="tracking (per outer step)")]
                             + [dict(f, estimator="fresh SMC") for f in t["fresh"]]),
              f"cost ratio per outer step: wall {t['wall_ratio']:.3f}, gradient evaluations "
              f"{t['grad_ratio']:.3f} (reference N={t['reference']['num_particles']}"
              + ("" if t["reached"] else ", the most accurate fresh run, still less accurate")
              + ")"]
  if "training" in results:
    tr = results["training"]
    parts += [f"## Training overhead (honest-QA, {tr['preset']} sizes: {tr['n_large']} labelled, "
              f"{tr['n_small']} consistency inputs, batch {tr['batch_size']})",
              markdown_table([{k: v for k, v in r.items() if k != "curve"} for r in tr["runs"]])]
  if "scaling" in results:
    sc = results["scaling"]
    parts += [f"## Scaling (d={sc['dim']}, N={sc['num_particles']}, {sc['cores']} CPU cores)",
              markdown_table(sc["rows"])]
  if "memory" in results:
    mem = results["memory"]
    parts += ["## Memory of one tracking update", markdown_table(mem["grid"]),
              markdown_table(mem["measured"]) if mem["measured"] else "",
              f"largest problem in {mem['budget_gib']:g} GiB:", markdown_table(mem["largest"])]
  return "\n\n".join(p for p in parts if p)


def figures(results: dict, workdir: str) -> list[str]:
  made = []
  for key, fn, arg in (("logz", plot_logz, lambda r: r["logz"]["summary"]),
                       ("scaling", plot_scaling, lambda r: r["scaling"]),
                       ("memory", plot_memory, lambda r: r["memory"])):
    if key in results:
      path = os.path.join(workdir, f"{key}.png")
      fn(arg(results), path)
      made.append(path)
  return made
