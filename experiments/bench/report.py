"""Tables (markdown) and plots of the benchmarks, and the targets of issue 4 checked against them."""

from __future__ import annotations

import os
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.common.report import markdown_table, save_figure  # noqa: E402


def plot_logz(summary: list[dict], path: str | None):
  """Median |error| against gradient evaluations, a panel per (target, d) row and λ column."""
  rows = sorted({(s.get("target", "quadratic"), s["d"]) for s in summary})
  lams = sorted({s["lam"] for s in summary})
  fig, axes = plt.subplots(len(rows), len(lams), figsize=(3.6 * len(lams), 3 * len(rows)),
                           squeeze=False)
  methods = sorted({s["method"] for s in summary})
  for i, (target, d) in enumerate(rows):
    for j, lam in enumerate(lams):
      ax = axes[i, j]
      for m in methods:
        pts = sorted((s["grad_evals"], s["abs_error"]) for s in summary
                     if (s.get("target", "quadratic"), s["d"]) == (target, d)
                     and s["lam"] == lam and s["method"] == m)
        if pts:
          x, y = zip(*pts)
          ax.plot(np.maximum(x, 1), np.maximum(y, 1e-3), "o-", label=m)
      ax.set(xscale="log", yscale="log", title=f"{target}, d={d}, λ={lam:g}",
             xlabel="gradient evaluations", ylabel="median |error| (nats)")
  axes[0, 0].legend(fontsize=7)
  return save_figure(fig, path)


def plot_errors(rows: list[dict], path: str | None):
  """Every repeat's error (nats) per method, a panel per (target, d, λ); the dotted line is
  log 0.1, where a run that misses a mode of 90% of Z sits."""
  cells = sorted({(r["target"], r["d"], r["lam"]) for r in rows})
  methods = sorted({r["method"] for r in rows})
  cols = min(4, len(cells))
  nrow = -(-len(cells) // cols)
  fig, axes = plt.subplots(nrow, cols, figsize=(3.4 * cols, 3 * nrow), squeeze=False)
  for ax, cell in zip(axes.flat, cells):
    for i, m in enumerate(methods):
      e = [r["error"] for r in rows if (r["target"], r["d"], r["lam"]) == cell
           and r["method"] == m]
      ax.plot(np.full(len(e), i) + np.linspace(-0.15, 0.15, len(e)), e, ".", alpha=0.7)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.axhline(np.log(0.1), color="gray", ls=":")
    ax.set_xticks(range(len(methods)), methods, rotation=45, fontsize=7)
    ax.set(title=f"{cell[0]}, d={cell[1]}, λ={cell[2]:g}", ylabel="error (nats)")
  for ax in list(axes.flat)[len(cells):]:
    ax.axis("off")
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


def _cell_name(cell: dict) -> str:
  k = f", κ={cell['kappa']:g}" if "kappa" in cell else ""
  return f"{cell['form']} λ={cell['lam']:g}{k}"


def plot_tracking_network(tn: dict, path: str | None):
  """Gap (tracked − reference, with the tolerance band) and gradient cosine against step."""
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
  for r in tn["cells"]:
    rows = r["rows"]
    steps = [x["step"] for x in rows]
    line, = ax1.plot(steps, [x["gap"] for x in rows], "o-", label=_cell_name(r["cell"]))
    ax1.fill_between(steps, [-x["tol"] for x in rows], [x["tol"] for x in rows],
                     color=line.get_color(), alpha=0.1)
    ax2.plot(steps, [x["cosine"] for x in rows], "o-", color=line.get_color())
    if "replay" in r:  # the same path replayed without feedback: dashed
      rp = r["replay"]["rows"]
      ax1.plot([x["step"] for x in rp], [x["gap"] for x in rp], "x--", color=line.get_color())
      ax2.plot([x["step"] for x in rp], [x["cosine"] for x in rp], "x--",
               color=line.get_color())
  ax1.axhline(0, color="k", lw=0.5)
  ax1.set(xlabel="training step", ylabel="tracked − reference log Z (nats)",
          title="log Z gap (band: max(1, 3 SE); dashed: replayed path)")
  ax2.axhline(0.9, color="gray", ls=":")
  ax2.set(xlabel="training step", ylabel="cosine(∇ tracked, ∇ reference)", ylim=(0, 1.02),
          title="∇θ₁ log Z")
  ax1.legend(fontsize=7)
  return save_figure(fig, path)


def tracking_network_rows(tn: dict) -> tuple[list[dict], list[dict]]:
  """(one row per comparison, one row per cell) for the markdown report."""
  per, cells = [], []
  for r in tn["cells"]:
    name = _cell_name(r["cell"])
    for x in r["rows"]:
      per.append(dict(cell=name, step=x["step"], tracked=x["tracked"],
                      ref_a=x["ref_a"], ref_b=x["ref_b"], ref_n=x["ref_particles"],
                      gap=x["gap"], tol=x["tol"], cosine=x["cosine"],
                      ref_self_cosine=x["ref_self_cosine"], estimator=x["estimator"],
                      status=x["status"]))
    for x in r.get("replay", {}).get("rows", []):
      per.append(dict(cell=name + " (replayed path)", step=x["step"], tracked=x["tracked"],
                      gap=x["gap"], tol=x["tol"], cosine=x["cosine"], status=x["status"]))
    rows = r["rows"]
    cells.append(dict(cell=name, passed=r["passed"], unverified=r["unverified"],
                      max_abs_gap=max(abs(x["gap"]) for x in rows),
                      min_cosine=min(x["cosine"] for x in rows),
                      ms_per_step=1e3 * r["amortised_step_s"], x_plain=r["step_ratio"],
                      check_s=r["check_s"], substeps=r["substeps_mean"],
                      substeps_max=r["substeps_max"], moves=r["moves_mean"],
                      reanchored=r.get("reanchored", 0),
                      final_lam_c=r["final"]["lam_consistency"]))
  return per, cells


def logz_network_rows(res: dict) -> list[dict]:
  """Per (λ, step, method): mean error ± SE over repeats, median reported SE, coverage of
  ±2 SE (own and the references' combined), share flagged unreliable, median wall."""
  out = []
  for cell in res["cells"]:
    by = {}
    for r in cell["rows"]:
      by.setdefault(r["method"], []).append(r)
    for name, rs in by.items():
      err = np.array([r["error"] for r in rs])
      out.append(dict(lam=cell["lam"], step=cell["step"], d=cell["dim"], method=name,
                      ref=cell["ref"], ref_se=cell["ref_se"], refs_agree=cell["refs_agree"],
                      mean_error=float(err.mean()),
                      error_se=float(err.std(ddof=1) / np.sqrt(len(err))) if len(err) > 1
                      else float("nan"),
                      median_stderr=float(np.median([r["stderr"] for r in rs])),
                      covered=float(np.mean([abs(r["z"]) <= 2 for r in rs])),
                      unreliable=float(np.mean([not r["reliable"] for r in rs]))
                      if rs[0]["reliable"] is not None else float("nan"),  # no flag (laplace)
                      wall_s=float(np.median([r["wall_s"] for r in rs])),
                      choice=rs[0]["choice"]))
  return out


def tables(results: dict) -> str:
  """The markdown report of whatever benchmarks ran."""
  parts = [f"# Benchmarks ({results['preset']}; {results['machine']})"]
  if "logz" in results:
    parts += ["## log Z: our SMC against BlackJAX's adaptive tempered SMC (median over repeats)",
              markdown_table(results["logz"]["vs_blackjax"]),
              "## log Z: every estimator", markdown_table(results["logz"]["summary"])]
  if "multimodal" in results:
    parts += ["## log Z on multimodal and phase-transition targets: tempered SMC against nested "
              "sampling (bias = mean error ± SE over repeats; a missed mode costs log of the "
              "found modes' share)", markdown_table(
                  [{k: s[k] for k in ("target", "d", "lam", "method", "N", "bias", "bias_se",
                                      "mean_abs_error", "stderr", "grad_evals", "energy_evals",
                                      "wall_s")} for s in results["multimodal"]["summary"]])]
  if "coverage" in results:
    parts += ["## Error bars: ±2 SE coverage where not flagged unreliable (target 0.9–0.99), "
              "and the share of the misses (|error| > 2 SE) flagged (target ≥ 0.9)",
              markdown_table([{k: v for k, v in r.items() if k != "reasons"}
                              for r in results["coverage"]["rows"]])]
  if "tracking" in results:
    t = results["tracking"]
    parts += ["## Tracking against fresh SMC of equal accuracy",
              markdown_table([dict(t["tracking"], estimator="tracking (per outer step)")]
                             + [dict(f, estimator="fresh SMC") for f in t["fresh"]]),
              f"cost ratio per outer step: wall {t['wall_ratio']:.3f}, gradient evaluations "
              f"{t['grad_ratio']:.3f} (reference N={t['reference']['num_particles']}"
              + ("" if t["reached"] else ", the most accurate fresh run, still less accurate")
              + ")"]
  if "tracking_feedback" in results:
    parts += ["## Tracker drift from its own ∇ choosing the step (chooser) against a shadow "
              "tracker on the same path (closed-form quadratic; drift = slope of tracked − exact "
              "log Z over the second half, nats per step)",
              markdown_table([{k: v for k, v in r.items() if k != "rows"}
                              for r in results["tracking_feedback"]["paths"]])]
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
  if "tracking_network" in results:
    per, cells = tracking_network_rows(results["tracking_network"])
    parts += ["## Tracked log Z and ∇θ₁ log Z on the honest-QA network, against two fresh SMC "
              f"references (plain SGD {1e3 * results['tracking_network']['plain_step_s']:.2f} "
              "ms/step)", markdown_table(cells), markdown_table(per)]
  if "logz_network" in results:
    parts += ["## Every log Z estimator on the honest-QA network's energy, against two agreeing "
              "fresh SMC references (mean error ± SE over repeats; covered: |z| ≤ 2)",
              markdown_table(logz_network_rows(results["logz_network"]))]
  return "\n\n".join(p for p in parts if p)


def figures(results: dict, workdir: str) -> list[str]:
  made = []
  for key, fn, arg in (("logz", plot_logz, lambda r: r["logz"]["summary"]),
                       ("multimodal", plot_errors, lambda r: r["multimodal"]["rows"]),
                       ("scaling", plot_scaling, lambda r: r["scaling"]),
                       ("memory", plot_memory, lambda r: r["memory"]),
                       ("tracking_network", plot_tracking_network,
                        lambda r: r["tracking_network"])):
    if key in results:
      path = os.path.join(workdir, f"{key}.png")
      fn(arg(results), path)
      made.append(path)
  return made
