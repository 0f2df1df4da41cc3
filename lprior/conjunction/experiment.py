"""The conjunction experiments (issue 6) as functions of a config: the die example, estimator
errors on smooth latent statements, and the dishonest debater.  Each returns rows of plain
floats; `experiments/conjunction_report.py` turns them into tables and plots.

Every row is a function of its own parameters (`*_units`) and of the config keys its part
depends on (`identities`), never of the rest of a sweep: statements are padded to the fixed
`pad_to`, not to the largest n, so a sweep may grow without changing the rows it already has.
`cache(unit, compute)` (default: compute) lets a caller keep finished rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lprior.conjunction import (bethe, bounds, debater, die, independence, lp, maxent, smooth,
                                window)
from lprior.conjunction import marginals as marg

TWO_WAY_ESTIMATORS = {"independence": independence.log_p_independent,
                      "bethe": bethe.log_p_bethe, "chow_liu": bethe.log_p_chow_liu}
# sweeps whose values are rows (they may grow on a workdir), and keys only the report reads
SMOOTH_SWEEPS = ("kernels", "lengthscales", "ns", "num_seeds")
DEBATER_SWEEPS = ("ms", "exchangeable_ms", "exchangeable_orders")
REPORT_ONLY = ("cutoff_tol",)
MIN_STATEMENTS = 2  # a single statement breaks the pairwise estimators' shapes
Cache = Callable[[dict, Callable[[], dict]], dict]


def _compute(unit: dict, fn: Callable[[], dict]) -> dict:
  del unit
  return fn()


# ------------------------------------------------------------------------------ checks
def _need(ok: bool, key: str, value: Any, rule: str) -> None:
  if not ok:
    raise ValueError(f"{key} must be {rule}, got {value!r}")


def _check_sweep(values: Sequence, key: str, low: float, *, integer: bool = True) -> None:
  """A non-empty sweep of distinct values ≥ low (integers unless told)."""
  vals = tuple(values) if isinstance(values, (tuple, list)) else (values,)
  _need(len(vals) > 0, key, values, "a non-empty tuple")
  _need(len(set(vals)) == len(vals), key, values, "distinct values")
  for v in vals:
    ok = isinstance(v, (int, np.integer)) if integer else isinstance(v, (int, float))
    _need(ok and not isinstance(v, bool) and v >= low, key, values,
          f"{'integers' if integer else 'numbers'} >= {low}")


def _check_statements(c, prefix: str) -> None:
  """The keys `make_statements` reads: 0 < p_low < p_high < 1, a path, a latent dimension."""
  _need(0 < c.p_low < 1, f"{prefix}.p_low", c.p_low, "in (0, 1)")
  _need(0 < c.p_high < 1, f"{prefix}.p_high", c.p_high, "in (0, 1)")
  _need(c.p_low < c.p_high, f"{prefix}.p_low", c.p_low, f"< {prefix}.p_high ({c.p_high})")
  _need(c.path_length > 0, f"{prefix}.path_length", c.path_length, "> 0")
  _need(int(c.latent_dim) >= 1, f"{prefix}.latent_dim", c.latent_dim, ">= 1")


def _check_smooth(s) -> None:
  kernels = tuple(s.kernels)
  _need(len(kernels) > 0 and len(set(kernels)) == len(kernels)
        and all(k in smooth.KERNELS for k in kernels), "smooth.kernels", kernels,
        f"a non-empty tuple of distinct kernels from {smooth.KERNELS}")
  _check_sweep(s.lengthscales, "smooth.lengthscales", 0, integer=False)
  _need(min(s.lengthscales) > 0, "smooth.lengthscales", tuple(s.lengthscales), "> 0")
  _check_sweep(s.ns, "smooth.ns", MIN_STATEMENTS)
  _need(max(s.ns) <= s.pad_to, "smooth.ns", s.ns,
        f"<= smooth.pad_to ({s.pad_to}; raising it recomputes every row)")
  _check_sweep(s.windows, "smooth.windows", 1)
  _need(int(s.num_seeds) >= 1, "smooth.num_seeds", s.num_seeds, ">= 1")
  _check_statements(s, "smooth")
  _need(0 <= s.max_exact_n <= maxent.MAX_N, "smooth.max_exact_n", s.max_exact_n,
        f"in [0, {maxent.MAX_N}] (max-ent enumerates 2^n states)")
  _need(0 <= s.max_lp_n <= lp.MAX_N, "smooth.max_lp_n", s.max_lp_n, f"in [0, {lp.MAX_N}]")
  for k in ("truth_samples", "window_samples"):
    _need(int(s[k]) >= 2, f"smooth.{k}", s[k], ">= 2 (a standard error needs two)")
  _need(s.cutoff_tol >= 0, "smooth.cutoff_tol", s.cutoff_tol, ">= 0")


def _check_debater(d) -> None:
  _need(d.kernel in smooth.KERNELS, "debater.kernel", d.kernel, f"one of {smooth.KERNELS}")
  _need(d.lengthscale > 0, "debater.lengthscale", d.lengthscale, "> 0")
  _check_statements(d, "debater")
  _check_sweep(d.ms, "debater.ms", MIN_STATEMENTS)
  _need(max(d.ms) <= d.pad_to, "debater.ms", d.ms,
        f"<= debater.pad_to ({d.pad_to}; raising it recomputes every row)")
  for k in ("num_rounds", "init_worlds"):
    _need(int(d[k]) >= 1, f"debater.{k}", d[k], ">= 1")
  _need(int(d.truth_samples) >= 2, "debater.truth_samples", d.truth_samples,
        ">= 2 (a standard error needs two)")
  _need(0 <= d.max_exact_n <= maxent.MAX_N, "debater.max_exact_n", d.max_exact_n,
        f"in [0, {maxent.MAX_N}] (max-ent enumerates 2^n states)")
  _need(0 < d.exchangeable_q < 1, "debater.exchangeable_q", d.exchangeable_q, "in (0, 1)")
  _check_sweep(d.exchangeable_ms, "debater.exchangeable_ms", 1)
  _check_sweep(d.exchangeable_orders, "debater.exchangeable_orders", 1)
  _need(max(d.exchangeable_orders) <= max(d.exchangeable_ms), "debater.exchangeable_orders",
        d.exchangeable_orders, f"<= max(debater.exchangeable_ms) = {max(d.exchangeable_ms)}")


def check(cfg) -> None:
  """ValueError naming the key of the first nonsensical value (before anything is computed)."""
  _need(isinstance(cfg.seed, int), "seed", cfg.seed, "an integer")
  _check_smooth(cfg.smooth)
  _check_debater(cfg.debater)


def _without(c, keys: Sequence[str]) -> dict:
  return {k: v for k, v in c.to_dict().items() if k not in keys}


def identities(cfg) -> dict[str, dict]:
  """Per part, the config its rows depend on besides their own parameters (the preset, the
  seed, the part's keys but its growable sweeps and report-only keys)."""
  preset, d = cfg.get("preset"), cfg.debater
  return dict(
      die=dict(preset=preset),
      smooth=dict(preset=preset, seed=cfg.seed,
                  smooth=_without(cfg.smooth, SMOOTH_SWEEPS + REPORT_ONLY)),
      exchangeable=dict(preset=preset, exchangeable_q=d.exchangeable_q),
      debater=dict(preset=preset, seed=cfg.seed,
                   debater=_without(d, DEBATER_SWEEPS + ("exchangeable_q",))))


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


def smooth_units(cfg) -> list[dict]:
  """The rows of `smooth_rows` by their own parameters, in the order of the tables."""
  return [dict(kernel=kernel, lengthscale=ell, n=n, seed=seed) for kernel in cfg.kernels
          for ell in cfg.lengthscales for n in cfg.ns for seed in range(cfg.num_seeds)]


def smooth_row(cfg, key: jax.Array, kernel: str, lengthscale: float, n: int, seed: int
               ) -> dict:
  """One (kernel, lengthscale, n, seed): the truth (GHK ± SE), every estimate and its error,
  the closed-form and LP bounds.  key: the part's; statements padded to cfg.pad_to."""
  k = jax.random.fold_in(key, seed)
  st = smooth.pad(make_statements(cfg, kernel, lengthscale, n, k), cfg.pad_to)  # one shape
  kw = smooth.pairwise(st)
  truth, truth_se = smooth.log_p_all(jax.random.fold_in(k, 1), st, cfg.truth_samples)
  row = dict(kernel=kernel, lengthscale=lengthscale, n=n, seed=seed, truth=float(truth),
             truth_se=float(truth_se))
  est = two_way_estimates(kw, cfg.max_exact_n, n)
  for w in cfg.windows:
    if w < n:
      v, se = smooth.log_p_window(jax.random.fold_in(k, 2 + w), st, w, cfg.window_samples,
                                  max_w=max(cfg.windows))
      est[f"window{w}"] = float(v)
      row[f"se_window{w}"] = float(se)
  row |= {f"err_{name}": v - row["truth"] for name, v in est.items()}
  row |= {f"est_{name}": v for name, v in est.items()}
  return row | _bound_fields(kw, cfg.max_lp_n, n)


def smooth_rows(cfg, key: jax.Array, progress=None, cache: Cache = _compute) -> list[dict]:
  """`smooth_row` for every unit of `smooth_units`.  progress: optional
  lprior.progress.Progress; cache(unit, compute) -> row (e.g. a store of finished rows)."""
  rows = []
  for i, unit in enumerate(smooth_units(cfg)):
    rows.append(cache(unit, lambda u=unit: smooth_row(cfg, key, **u)))
    if progress is not None:
      progress.update(i + 1, n=unit["n"])
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


def exchangeable_units(ms, orders) -> list[dict]:
  """The (order, m) of `exchangeable_rows` (m ≥ order)."""
  return [dict(order=order, m=m) for order in orders for m in ms if m >= order]


def exchangeable_row(q: float, order: int, m: int) -> dict:
  """The exact worst case at (order, m) (see `exchangeable_rows`)."""
  lo, hi = lp.exchangeable_lp_bounds(m, [q ** j for j in range(1, order + 1)])
  est = m * np.log(q)
  with np.errstate(divide="ignore"):
    midpoint = 0.5 * np.log(hi * lo)
  return dict(order=order, m=m, lo=lo, estimate=float(np.exp(est)), hi=hi,
              worst_log_error=debater.worst_log_error(est, lo, hi),
              minimax_log_error=(debater.worst_log_error(midpoint, lo, hi) if lo > 0
                                 else float("inf")))


def exchangeable_rows(q: float, ms, orders, cache: Cache = _compute) -> list[dict]:
  """Exact worst cases when every k-way marginal (k ≤ order) equals that of independent
  statements with P(A_i) = q: then every estimator built from them says q^m.  The minimax error
  is that of the best possible function of the marginals, the geometric midpoint √(lo·hi)."""
  return [cache(u, lambda u=u: exchangeable_row(q, **u)) for u in exchangeable_units(ms, orders)]


def debater_row(cfg, key: jax.Array, m: int) -> dict:
  """Smooth statements (cfg.kernel, cfg.lengthscale) at m: the debater's lowest and highest
  P(all true) with the same 2-way marginals, each estimator's worst error, the truth (GHK)."""
  k = jax.random.fold_in(key, m)
  st = make_statements(cfg, cfg.kernel, cfg.lengthscale, m, k)
  kw = smooth.pairwise(st)
  padded = smooth.pad(st, cfg.pad_to)  # one compiled shape for every m
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
  return row


def debater_rows(cfg, key: jax.Array, progress=None, cache: Cache = _compute) -> list[dict]:
  """`debater_row` at each m of cfg.ms (progress, cache: as in `smooth_rows`)."""
  rows = []
  for i, m in enumerate(cfg.ms):
    rows.append(cache(dict(m=m), lambda m=m: debater_row(cfg, key, m)))
    if progress is not None:
      progress.update(i + 1, m=m)
  return rows
