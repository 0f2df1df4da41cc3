"""The simulated human: a Bayesian reasoner over a human-readable hypothesis space Z.

It holds a prior Prior_H(Z) (what a person believes before seeing D: a table of log-probabilities
per field, so the prior is a product over fields) and a forecast P_H(y | x, Z) (what the person
predicts for question x when told to take Z as given).  The learner may only *query* it:

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
  observation family and the forecast rule.  Hashable: a static argument of jitted code."""
  space: Space
  log_prior_table: tuple[tuple[float, ...], ...]
  family: Family
  forecast_fn: ForecastFn

  def __post_init__(self):
    if len(self.log_prior_table) != self.space.num_fields or any(
        len(t) != n for t, n in zip(self.log_prior_table, self.space.levels)):
      raise ValueError(f"log_prior_table must have one entry per level {self.space.levels}")
    for f, t in zip(self.space.fields, self.log_prior_table):
      total = np.logaddexp.reduce(np.asarray(t, np.float64))
      if not np.all(np.isfinite(t)) or abs(total) > 1e-6:
        raise ValueError(f"field {f.name!r}: log-prior table must be finite and normalised "
                         f"(log Σ = {total:.3g})")

  def table(self) -> np.ndarray:
    """(K, L_max) log-prior table, −inf at levels a field lacks."""
    t = np.full((self.space.num_fields, self.space.max_levels), -np.inf)
    for k, row in enumerate(self.log_prior_table):
      t[k, :len(row)] = row
    return t


def make_human(space: Space, prior_probs: Sequence[Sequence[float]], family: Family,
               forecast_fn: ForecastFn, log_prior_overrides: dict[str, Sequence[float]] | None
               = None) -> Human:
  """A human from per-field prior probabilities (normalised here) or, for the fields named in
  `log_prior_overrides`, unnormalised log-weights (for beliefs held with near certainty)."""
  tables = []
  for f, p in zip(space.fields, prior_probs):
    logw = (np.asarray(log_prior_overrides[f.name], np.float64)
            if log_prior_overrides and f.name in log_prior_overrides
            else np.log(np.asarray(p, np.float64)))
    tables.append(tuple(float(v) for v in logw - np.logaddexp.reduce(logw)))
  return Human(space, tuple(tables), family, forecast_fn)


def log_prior(human: Human, z_levels: jax.Array) -> jax.Array:
  """log Prior_H(Z) = Σ_k log P_H(Z_k)   (..., K) int -> (...,)."""
  human.space.check(z_levels)
  t = jnp.asarray(human.table())
  return jnp.sum(t[jnp.arange(human.space.num_fields), z_levels], axis=-1)


def log_ratio(human: Human, z_levels: jax.Array, z_other: jax.Array) -> jax.Array:
  """The human's judgment log Prior_H(Z′)/Prior_H(Z) of Z′ against Z   ((..., K), (..., K)) -> (...,).

  What a person reports when shown two hypotheses: only which is more plausible and by how
  much, never an absolute probability."""
  human.space.check(z_levels)
  human.space.check(z_other)
  t = jnp.asarray(human.table())
  k = jnp.arange(human.space.num_fields)
  return jnp.sum(t[k, z_other] - t[k, z_levels], axis=-1)


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


def log_lik(human: Human, z_levels: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
  """log P_H(y | x, Z)   ((..., K), (..., dx), (...,)) -> (...,)."""
  return human.family.log_prob(forecast(human, z_levels, x), y)
