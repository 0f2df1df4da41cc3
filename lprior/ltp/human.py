"""The simulated human: a Bayesian reasoner over a human-readable hypothesis space Z.

It holds a prior Prior_H(Z) (what a person believes before seeing D) and a forecast
P_H(y | x, Z) (what the person predicts for question x when told to take Z as given).  The prior
is a table of log-probabilities per field (its 1-way judgments) times, for groups of fields the
human judges together, a potential ψ_g built from bounded k-way judgments (`lprior.conjunction`):

    log Prior_H(Z) = Σ_k log P_H(Z_k) + Σ_g log ψ_g(Z_g),   Σ_{Z_g} Π_{k∈g} P_H(Z_k) ψ_g(Z_g) = 1,

so a one-field change is judged by reading that field and its group only.  A human with `reads`
= s reads at most s fields per question: those where x ≠ 0 (the forecast is the same computed
from those entries alone).  The learner may only *query* it:

    log_prior(Z)            the human's log Prior_H(Z)                      ('direct' mode)
    log_ratio(Z, Z′)        log Prior_H(Z′) − log Prior_H(Z)                ('ratio' mode)
    forecast(Z, x)          P_H(· | x, Z) as a prediction vector (lprior.ltp.family)

Exact Bayesian updating on D by enumerating Z is in `lprior.ltp.exact` (the ideal).

A method's queries are counted where they are made: `ask_prior`, `ask_ratio` and `ask_forecast`
answer like the functions above and add the number of queries put (the entries of the batch
where `where` holds) to a `Queries` value the caller threads through, as the amplification
human's `Calls`.  The uncounted functions are the simulator read directly (evaluation, the
exact ideal's arithmetic, diagnostics).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lprior.ltp.family import Family
from lprior.ltp.space import Space

# (values (..., K), x (..., dx)) -> prediction (..., P): the human's forecast given Z's values
ForecastFn = Callable[[jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class Human:
  """space, per-field log-prior tables (log_prior_table[k][l] = log P_H(Z_k = l)), the
  observation family and the forecast rule; optionally groups of fields judged together (all
  of one size, their fields of one level count L) with log ψ_g over the group's L^g joint levels
  (index Σ_j Z_{g_j} L^j: the first member fastest, as `lprior.conjunction`'s bitmasks), and
  `reads` (0: the forecast reads every field).  Hashable: a static argument of jitted code."""
  space: Space
  log_prior_table: tuple[tuple[float, ...], ...]
  family: Family
  forecast_fn: ForecastFn
  groups: tuple[tuple[int, ...], ...] = ()
  group_log_potential: tuple[tuple[float, ...], ...] = ()
  reads: int = 0

  def __post_init__(self):
    if len(self.log_prior_table) != self.space.num_fields or any(
        len(t) != n for t, n in zip(self.log_prior_table, self.space.levels)):
      raise ValueError(f"log_prior_table must have one entry per level {self.space.levels}")
    for f, t in zip(self.space.fields, self.log_prior_table):
      total = np.logaddexp.reduce(np.asarray(t, np.float64))
      if not np.all(np.isfinite(t)) or abs(total) > 1e-6:
        raise ValueError(f"field {f.name!r}: log-prior table must be finite and normalised "
                         f"(log Σ = {total:.3g})")
    if not 0 <= self.reads <= self.space.num_fields:
      raise ValueError(f"reads must be in [0, {self.space.num_fields}], got {self.reads}")
    if self.groups:
      self._check_groups()

  def _check_groups(self) -> None:
    fields = np.asarray(self.groups)
    if fields.ndim != 2 or len(set(map(len, self.groups))) != 1:
      raise ValueError(f"groups must all have one size, got sizes {sorted(set(map(len, self.groups)))}")
    if len(np.unique(fields)) != fields.size or fields.min() < 0 or \
        fields.max() >= self.space.num_fields:
      raise ValueError("groups must name distinct fields of the space, each in one group")
    lv = np.asarray(self.space.levels)[fields]
    if np.any(lv != lv.flat[0]):
      raise ValueError("the fields of the groups must all have the same number of levels")
    n_states = int(lv.flat[0]) ** fields.shape[1]
    if len(self.group_log_potential) != len(self.groups) or any(
        len(p) != n_states for p in self.group_log_potential):
      raise ValueError(f"group_log_potential needs one table of {n_states} joint levels per group")
    states = group_states(int(lv.flat[0]), fields.shape[1])               # (C, g)
    table = self.table()
    for g, (fs, pot) in enumerate(zip(fields, self.group_log_potential)):
      joint = table[fs[None, :], states].sum(-1) + np.asarray(pot, np.float64)
      total = np.logaddexp.reduce(joint)
      if not np.all(np.isfinite(pot)) or abs(total) > 1e-6:
        raise ValueError(f"group {g}: Π_k P_H(Z_k) ψ_g must be a normalised distribution "
                         f"with finite ψ (log Σ = {total:.3g})")

  def table(self) -> np.ndarray:
    """(K, L_max) log-prior table, −inf at levels a field lacks."""
    t = np.full((self.space.num_fields, self.space.max_levels), -np.inf)
    for k, row in enumerate(self.log_prior_table):
      t[k, :len(row)] = row
    return t


def group_states(num_levels: int, size: int) -> np.ndarray:
  """(L^g, g) the joint levels of a group in index order (the first member fastest)."""
  idx = np.arange(num_levels ** size)
  return (idx[:, None] // num_levels ** np.arange(size)[None, :]) % num_levels


def make_human(space: Space, prior_probs: Sequence[Sequence[float]], family: Family,
               forecast_fn: ForecastFn, log_prior_overrides: dict[str, Sequence[float]] | None
               = None, **grouping) -> Human:
  """A human from per-field prior probabilities (normalised here) or, for the fields named in
  `log_prior_overrides`, unnormalised log-weights (for beliefs held with near certainty);
  `grouping`: Human's groups, group_log_potential and reads."""
  tables = []
  for f, p in zip(space.fields, prior_probs):
    logw = (np.asarray(log_prior_overrides[f.name], np.float64)
            if log_prior_overrides and f.name in log_prior_overrides
            else np.log(np.asarray(p, np.float64)))
    tables.append(tuple(float(v) for v in logw - np.logaddexp.reduce(logw)))
  return Human(space, tuple(tables), family, forecast_fn, **grouping)


def _group_index(human: Human, z_levels: jax.Array) -> tuple[jax.Array, np.ndarray, int]:
  """Each group's joint-level index (..., G), its fields (G, g) and their level count L."""
  fields = np.asarray(human.groups)
  num = human.space.levels[fields[0, 0]]
  strides = num ** np.arange(fields.shape[1])
  return jnp.sum(z_levels[..., fields] * strides, -1), fields, num


def log_prior(human: Human, z_levels: jax.Array) -> jax.Array:
  """log Prior_H(Z) = Σ_k log P_H(Z_k) + Σ_g log ψ_g(Z_g)   (..., K) int -> (...,)."""
  human.space.check(z_levels)
  t = jnp.asarray(human.table())
  out = jnp.sum(t[jnp.arange(human.space.num_fields), z_levels], axis=-1)
  if human.groups:
    idx, _, _ = _group_index(human, z_levels)
    pot = jnp.asarray(human.group_log_potential)
    out = out + jnp.sum(pot[jnp.arange(len(human.groups)), idx], -1)
  return out


def neighbour_log_ratios(human: Human, z_levels: jax.Array) -> jax.Array:
  """log Prior_H(Z_{k←l}) − log Prior_H(Z) for every one-field change, read locally (field k's
  table and its group's ψ)   (..., K) int -> (..., K, L_max); 0 at Z itself and missing levels."""
  human.space.check(z_levels)
  t = jnp.asarray(human.table())
  k_ = human.space.num_fields
  own = t[jnp.arange(k_), z_levels]                                       # (..., K)
  d = t - own[..., None]
  if human.groups:
    idx, fields, num = _group_index(human, z_levels)                      # (..., G)
    strides = jnp.asarray(num ** np.arange(fields.shape[1]))              # (g,)
    lev = jnp.minimum(jnp.arange(human.space.max_levels), num - 1)        # (L,)
    moved = (idx[..., None, None]
             + (lev - z_levels[..., fields][..., None]) * strides[:, None])  # (..., G, g, L)
    pot = jnp.asarray(human.group_log_potential)                          # (G, C)
    g_ = jnp.arange(len(human.groups))
    dpot = pot[g_[:, None, None], moved] - pot[g_, idx][..., None, None]
    d = d.at[..., fields.reshape(-1), :].add(dpot.reshape(*dpot.shape[:-3], -1, dpot.shape[-1]))
  return jnp.where(jnp.asarray(human.space.level_mask()), d, 0.0)


def log_ratio(human: Human, z_levels: jax.Array, z_other: jax.Array) -> jax.Array:
  """The human's judgment log Prior_H(Z′)/Prior_H(Z) of Z′ against Z   ((..., K), (..., K)) -> (...,).

  What a person reports when shown two hypotheses: only which is more plausible and by how
  much, never an absolute probability."""
  return log_prior(human, z_other) - log_prior(human, z_levels)


def forecast(human: Human, z_levels: jax.Array, x: jax.Array) -> jax.Array:
  """P_H(· | x, Z) as a prediction   ((..., K) int, (..., dx)) -> (..., P)."""
  human.space.check(z_levels)
  return human.forecast_fn(human.space.values(z_levels), x)


class Queries(NamedTuple):
  """How often the human was asked (int32 scalars, or arrays under vmap)."""
  forecast: jax.Array  # P_H(· | x, Z) for one (x, Z)
  prior: jax.Array     # an absolute log Prior_H(Z)
  ratio: jax.Array     # a judgment log Prior_H(Z′)/Prior_H(Z)

  @property
  def judgments(self) -> jax.Array:
    """Prior queries of either kind."""
    return self.prior + self.ratio


def no_queries() -> Queries:
  return Queries(*(jnp.zeros((), jnp.int32) for _ in range(3)))


def _count(where, batch_shape: tuple[int, ...]) -> jax.Array:
  return jnp.sum(jnp.broadcast_to(jnp.asarray(where, bool), batch_shape)).astype(jnp.int32)


def ask_prior(human: Human, z_levels: jax.Array, queries: Queries, where=True
              ) -> tuple[jax.Array, Queries]:
  """`log_prior`, counting one query per entry of the batch where `where` holds."""
  n = _count(where, z_levels.shape[:-1])
  return log_prior(human, z_levels), queries._replace(prior=queries.prior + n)


def ask_ratio(human: Human, z_levels: jax.Array, z_other: jax.Array, queries: Queries,
              where=True) -> tuple[jax.Array, Queries]:
  """`log_ratio`, counting one judgment per entry of the (broadcast) batch where `where` holds."""
  shape = jnp.broadcast_shapes(z_levels.shape[:-1], z_other.shape[:-1])
  return (log_ratio(human, z_levels, z_other),
          queries._replace(ratio=queries.ratio + _count(where, shape)))


def ask_forecast(human: Human, z_levels: jax.Array, x: jax.Array, queries: Queries, where=True
                 ) -> tuple[jax.Array, Queries]:
  """`forecast`, counting one query per (Z, x) pair of the broadcast batch where `where` holds."""
  shape = jnp.broadcast_shapes(z_levels.shape[:-1], x.shape[:-1])
  return (forecast(human, z_levels, x),
          queries._replace(forecast=queries.forecast + _count(where, shape)))


def read(human: Human, x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The fields a question reads and its entries there (the `reads` largest |x|; a question with
  fewer non-zero entries reads zeros)   (..., K) -> ((..., s) int32, (..., s))."""
  if not human.reads:
    raise ValueError("this human reads every field of a question (reads = 0)")
  _, idx = jax.lax.top_k(jnp.abs(x), human.reads)
  return idx.astype(jnp.int32), jnp.take_along_axis(x, idx, -1)


def forecast_at(human: Human, idx: jax.Array, levels: jax.Array, vals: jax.Array) -> jax.Array:
  """P_H(· | x, Z) from what it reads: the fields idx at `levels`, x's entries vals there
  ((..., s) int, (..., s) int, (..., s)) -> (..., P)."""
  table = jnp.asarray(human.space.value_table())
  return human.forecast_fn(table[idx, levels], vals)


def ask_forecast_at(human: Human, idx: jax.Array, levels: jax.Array, vals: jax.Array,
                    queries: Queries) -> tuple[jax.Array, Queries]:
  """`forecast_at`, counting one query per (Z, x) pair of the broadcast batch."""
  shape = jnp.broadcast_shapes(idx.shape[:-1], levels.shape[:-1], vals.shape[:-1])
  return (forecast_at(human, idx, levels, vals),
          queries._replace(forecast=queries.forecast + _count(True, shape)))


def log_lik(human: Human, z_levels: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
  """log P_H(y | x, Z)   ((..., K), (..., dx), (...,)) -> (...,)."""
  return human.family.log_prob(forecast(human, z_levels, x), y)


def ask_neighbours(human: Human, z_levels: jax.Array, queries: Queries, *, absolute: bool
                   ) -> tuple[jax.Array, Queries]:
  """`neighbour_log_ratios`, asked: per hypothesis its Σ_k (L_k − 1) one-field changes, each
  one judgment (absolute False) or one absolute answer, plus one for Z (absolute True)."""
  other = jnp.asarray(human.space.level_mask()) & (
      jnp.arange(human.space.max_levels) != z_levels[..., None])          # (..., K, L)
  n = _count(other, other.shape)
  if absolute:
    queries = queries._replace(prior=queries.prior + n + _count(True, z_levels.shape[:-1]))
  else:
    queries = queries._replace(ratio=queries.ratio + n)
  return neighbour_log_ratios(human, z_levels), queries

