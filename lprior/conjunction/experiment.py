"""The conjunction experiments (issue 6) as functions of a config: the die example, estimator
errors on smooth latent statements, and the dishonest debater.  Each returns rows of plain
floats; `experiments/conjunction_report.py` turns them into tables and plots."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lprior.conjunction import (bethe, bounds, debater, die, independence, lp, maxent, smooth,
                                window)
from lprior.conjunction import marginals as marg

TWO_WAY_ESTIMATORS = {"independence": independence.log_p_independent,
                      "bethe": bethe.log_p_bethe, "chow_liu": bethe.log_p_chow_liu}


def two_way_estimates(kw: marg.KWay, max_exact_n: int, n: int | None = None) -> dict[str, float]:
  """log P(all) by every estimator that needs at most 2-way marginals (max-ent if n ≤ max).

  n: the number of real statements when kw is padded with certain ones (`smooth.pad`); max-ent
  enumerates states, so it gets the first n only.
  """
  out = {name: float(f(kw)) for name, f in TWO_WAY_ESTIMATORS.items()}
  n = kw.n if n is None else n
  if n <= max_exact_n:
    fit = maxent.fit_maxent(_first(kw, n))
    out["maxent"] = float(fit.log_p_all) if float(fit.max_residual) < 1e-6 else float("nan")
  return out


def _first(kw: marg.KWay, n: int) -> marg.KWay:
  """The marginals of the first n statements."""
  return marg.KWay(tuple(t[(slice(0, n),) * t.ndim] for t in kw.tensors))


def _bound_fields(kw: marg.KWay, max_lp_n: int, n: int | None = None) -> dict[str, float]:
  lo, hi = bounds.best_bounds(kw)
  out = {"lo": float(lo), "hi": float(hi)}
  n = kw.n if n is None else n
  if n <= max_lp_n:
    out["lp_lo"], out["lp_hi"] = lp.lp_bounds(_first(kw, n))
  return out


def die_rows() -> list[dict]:
  """Both die families: exact P(A∧B∧C), every 2-way estimate, the 2-way bounds, the LP bounds
  from 2-way and from 3-way marginals."""
  rows = []
  for family in die.FAMILIES:
    p = die.die_joint(family)
    kw2, kw3 = marg.from_joint(p, 2), marg.from_joint(p, 3)
    est = {k: float(np.exp(v)) for k, v in two_way_estimates(kw2, 3).items()}
    b = {k: float(v) for k, v in _bound_fields(kw2, 3).items()}
    lo3, hi3 = lp.lp_bounds(kw3)
    rows.append(dict(family=family, truth=float(p[-1]), **est, **b, lp3_lo=lo3, lp3_hi=hi3))
  return rows


def make_statements(cfg, kernel: str, lengthscale: float, n: int, key: jax.Array
                    ) -> smooth.GaussianStatements:
  """n statements evenly spaced on a straight latent path of length cfg.path_length, with
  P(A_i) ~ U(cfg.p_low, cfg.p_high) drawn from key (which also draws a decoder's weights)."""
  kp, kd = jax.random.split(key)
  dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
  start = jnp.zeros((cfg.latent_dim,), dtype)
  end = start.at[0].set(cfg.path_length)
  z = smooth.latent_path(start, end, n)
  corr = smooth.kernel_corr(z, kernel, lengthscale, key=kd)
  p = jax.random.uniform(kp, (n,), dtype, cfg.p_low, cfg.p_high)
  return smooth.statements(corr, p)


def smooth_rows(cfg, key: jax.Array, progress=None) -> list[dict]:
  """For every (kernel, lengthscale, n, seed): the truth (GHK ± SE), every estimate and its
  error, the closed-form and LP bounds.  progress: optional lprior.progress.Progress."""
  rows, step, size = [], 0, max(cfg.ns)
  for kernel in cfg.kernels:
    for ell in cfg.lengthscales:
      for n in cfg.ns:
        for seed in range(cfg.num_seeds):
          k = jax.random.fold_in(key, seed)
          st = smooth.pad(make_statements(cfg, kernel, ell, n, k), size)  # one shape for all n
          kw = smooth.pairwise(st)
          truth, truth_se = smooth.log_p_all(jax.random.fold_in(k, 1), st, cfg.truth_samples)
          row = dict(kernel=kernel, lengthscale=ell, n=n, seed=seed, truth=float(truth),
                     truth_se=float(truth_se))
          est = two_way_estimates(kw, cfg.max_exact_n, n)
          for w in cfg.windows:
            if w < n:
              v, se = smooth.log_p_window(jax.random.fold_in(k, 2 + w), st, w,
                                          cfg.window_samples, max_w=max(cfg.windows))
              est[f"window{w}"] = float(v)
              row[f"se_window{w}"] = float(se)
          row |= {f"err_{name}": v - row["truth"] for name, v in est.items()}
          row |= {f"est_{name}": v for name, v in est.items()}
          row |= _bound_fields(kw, cfg.max_lp_n, n)
          rows.append(row)
          step += 1
          if progress is not None:
            progress.update(step, n=n)
  return rows


def cutoff_rows(rows: list[dict], windows, tol: float) -> list[dict]:
  """Per (kernel, lengthscale, n): the mean error of each w-neighbour estimate over seeds and
  w* = the smallest w whose |mean error| ≤ tol + 2 SE (NaN if none of the windows tried)."""
  out = []
  keys = sorted({(r["kernel"], r["lengthscale"], r["n"]) for r in rows},
                key=lambda t: (t[0], t[1], t[2]))
  for kernel, ell, n in keys:
    sel = [r for r in rows if (r["kernel"], r["lengthscale"], r["n"]) == (kernel, ell, n)]
    row = dict(kernel=kernel, lengthscale=ell, n=n, w_star=float("nan"))
    for w in windows:
      errs = [r[f"err_window{w}"] for r in sel if f"err_window{w}" in r]
      if not errs:
        continue
      ses = [np.hypot(r[f"se_window{w}"], r["truth_se"]) for r in sel]
      mean, se = float(np.mean(errs)), float(np.sqrt(np.sum(np.square(ses)))) / len(errs)
      row[f"err_window{w}"] = mean
      if np.isnan(row["w_star"]) and abs(mean) <= tol + 2 * se:
        row["w_star"] = float(w)
    out.append(row)
  return out


def exchangeable_rows(q: float, ms, orders) -> list[dict]:
  """Exact worst cases when every k-way marginal (k ≤ order) equals that of independent
  statements with P(A_i) = q: then every estimator built from them says q^m.  The minimax error
  is that of the best possible function of the marginals, the geometric midpoint √(lo·hi)."""
  rows = []
  for order in orders:
    for m in ms:
      if m < order:
        continue
      lo, hi = lp.exchangeable_lp_bounds(m, [q ** j for j in range(1, order + 1)])
      est = m * np.log(q)
      with np.errstate(divide="ignore"):
        midpoint = 0.5 * np.log(hi * lo)
      rows.append(dict(order=order, m=m, lo=lo, estimate=float(np.exp(est)), hi=hi,
                       worst_log_error=debater.worst_log_error(est, lo, hi),
                       minimax_log_error=(debater.worst_log_error(midpoint, lo, hi) if lo > 0
                                          else float("inf"))))
  return rows


def debater_rows(cfg, key: jax.Array, progress=None) -> list[dict]:
  """Smooth statements (cfg.kernel, cfg.lengthscale) at each m: the debater's lowest and highest
  P(all true) with the same 2-way marginals, each estimator's worst error, the truth (GHK)."""
  rows = []
  for i, m in enumerate(cfg.ms):
    k = jax.random.fold_in(key, m)
    st = make_statements(cfg, cfg.kernel, cfg.lengthscale, m, k)
    kw = smooth.pairwise(st)
    padded = smooth.pad(st, max(cfg.ms))  # one compiled shape for every m
    truth, truth_se = smooth.log_p_all(jax.random.fold_in(k, 1), padded, cfg.truth_samples)
    init = np.asarray(smooth.sample(jax.random.fold_in(k, 2), padded, cfg.init_worlds))[:, :m]
    found = {d: debater.search(jax.random.fold_in(k, 3), kw, direction=d,
                               num_rounds=cfg.num_rounds, init_states=init)
             for d in ("down", "up")}
    row = dict(m=m, truth=float(np.exp(truth)), truth_se=float(np.exp(truth) * truth_se),
               lo=found["down"].p_all, hi=found["up"].p_all,
               rounds=found["down"].num_rounds + found["up"].num_rounds,
               optimal=bool(found["down"].optimal and found["up"].optimal),
               history_lo=found["down"].history.tolist(), history_hi=found["up"].history.tolist())
    for name, v in two_way_estimates(kw, cfg.max_exact_n).items():
      row[f"est_{name}"] = float(np.exp(v))
      row[f"worst_{name}"] = debater.worst_log_error(v, row["lo"], row["hi"])
    rows.append(row)
    if progress is not None:
      progress.update(i + 1, m=m)
  return rows
