"""Searching for Z* = argmax_Z J(Z),  J(Z) = log Prior_H(Z) + Σ_{(x,y)∈D} w log P_H(y | x, Z),
at a count of human queries: in Z directly, with the human's own edits, or in Mz's latent.

Every search is a Metropolis chain at temperature 1 whose best visited hypothesis is its answer
(learning the prior's MAP z*).  Queries are counted where they are asked: a forecast for each
example of D that reads a changed field (the others' answers are remembered), a prior judgment
for each unit (group of fields the human judges together, or lone field) a move touches, a
proposal for each hypothesis the human writes down.

  site     flip one field, chosen uniformly, to another level (no knowledge of the human)
  edits    the human's edit (`explorer.edit`: one unit redrawn from the belief about it) as the
           proposal; its density ratio is the prior ratio of that unit, so acceptance needs the
           likelihood ratio only (no prior judgment asked)
  latent   preconditioned Crank–Nicolson in Mz's latent u: u′ = √(1−β²) u + β ε, Z = Z(u′), target
           ∝ N(u) exp J(Z(u)) (a search: Mz's own prior over Z counts beside Prior_H); Mz's
           training proposals are charged to it by the caller
  latent_site  half the moves a site flip in Z, half a latent move applied as a block edit: the
           fields where Z(u′) differs from Z(u) take Z(u′)'s levels, the rest of Z (its
           site-level refinements) is kept (Mz for the coarse structure, Z for the detail)
  fresh    the best of independent fresh proposals (blind exploration, the same count)

Each chain records per step its cumulative queries, the best J so far and that hypothesis's D*
score, so a method's result at any budget is read off one run (`at_budget`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lprior.ltp import explorer
from lprior.ltp import human as hm
from lprior.ltp import mz as mzlib
from lprior.ltp.human import Human

METHODS = ("site", "edits", "latent", "latent_site", "fresh")


class Problem(NamedTuple):
  """D (x (n, K), y (n,), w (n,): weights, 0 = padding) and the D* questions with answers."""
  x: jax.Array
  y: jax.Array
  w: jax.Array
  x_test: jax.Array
  y_test: jax.Array


class Trace(NamedTuple):
  """Per step (T,): cumulative queries of each kind, the best J so far and its D* score; the
  acceptance rate; the best hypothesis at the end."""
  forecasts: jax.Array
  judgments: jax.Array
  proposals: jax.Array
  best_j: jax.Array
  best_score: jax.Array
  accept: jax.Array
  best: jax.Array

  @property
  def queries(self) -> jax.Array:
    return self.forecasts + self.judgments + self.proposals


def _unit_of(human: Human) -> np.ndarray:
  """(K,) the unit (explorer.units' row) each field belongs to."""
  fields, _ = explorer.units(human)
  out = np.empty(human.space.num_fields, np.int32)
  for u, row in enumerate(fields):
    out[row[row >= 0]] = u
  return out


class Scorer(NamedTuple):
  j: Callable[[jax.Array], jax.Array]        # (K,) -> J
  score: Callable[[jax.Array], jax.Array]    # (K,) -> D* score
  # (changed (K,) bool) -> (forecasts, judgments) asked to compare the two hypotheses
  asked: Callable[[jax.Array], tuple[jax.Array, jax.Array]]


def check_problem(human: Human, prob: Problem) -> None:
  """ValueError naming the array whose shape does not fit or that holds NaN (host-side; traced
  values are left to the caller)."""
  if any(isinstance(a, jax.core.Tracer) for a in prob):
    return
  k_ = human.space.num_fields
  n, m = np.shape(prob.x)[0], np.shape(prob.x_test)[0]
  want = dict(x=(n, k_), y=(n,), w=(n,), x_test=(m, k_), y_test=(m,))
  for name, shape in want.items():
    a = np.asarray(getattr(prob, name))
    if a.shape != shape:
      raise ValueError(f"Problem.{name} must have shape {shape}, got {a.shape}")
    if np.isnan(a).any():
      raise ValueError(f"Problem.{name} holds NaN")


def scorer(human: Human, prob: Problem) -> Scorer:
  """J, the D* score, and the queries a change costs, for one problem."""
  check_problem(human, prob)
  idx, vals = hm.read(human, prob.x)                                     # (n, s)
  idx_t, vals_t = hm.read(human, prob.x_test)
  fam = human.family
  unit_np = _unit_of(human)
  unit_of, num_units = jnp.asarray(unit_np), int(unit_np.max()) + 1
  live = prob.w != 0

  def j(z):
    ll = fam.log_prob(hm.forecast_at(human, idx, z[idx], vals), prob.y)
    return hm.log_prior(human, z) + jnp.sum(prob.w * ll)

  def score(z):
    pred = hm.forecast_at(human, idx_t, z[idx_t], vals_t)
    return fam.score(fam.target(pred[:, None, :]), prob.y_test)

  def asked(changed):
    f = jnp.sum(live & jnp.any(changed[idx], -1)).astype(jnp.int32)
    touched = jnp.zeros(num_units, bool).at[unit_of].max(changed)
    return f, jnp.sum(touched).astype(jnp.int32)

  return Scorer(j, score, asked)


def _chain(key: jax.Array, sc: Scorer, state0, z0: jax.Array, propose, steps: int,
           cost0=(0, 0, 0)) -> Trace:
  """The Metropolis loop shared by the methods: propose(key, state, z) -> (state′, z′, log
  correction, (forecasts, judgments, proposals) asked); accept with min(1, exp(ΔJ + corr))."""
  j0 = sc.j(z0)
  carry0 = (state0, z0, j0, z0, j0, sc.score(z0), jnp.asarray(cost0, jnp.int32))

  def step(carry, k):
    state, z, jz, best, bj, bs, cost = carry
    k_p, k_a = jax.random.split(k)
    state2, z2, corr, asked = propose(k_p, state, z)
    j2 = sc.j(z2)
    acc = jnp.log(jax.random.uniform(k_a)) < j2 - jz + corr
    state, z, jz = jax.tree.map(lambda a, b: jnp.where(acc, a, b), (state2, z2, j2),
                                (state, z, jz))
    better = jz > bj
    best, bj = jnp.where(better, z, best), jnp.where(better, jz, bj)
    bs = jax.lax.cond(better, sc.score, lambda _: bs, z)  # D* only when the best changes
    cost = cost + jnp.stack(asked)
    return (state, z, jz, best, bj, bs, cost), (cost, bj, bs, acc)

  (*_, best, _, _, _), (cost, bj, bs, acc) = jax.lax.scan(step, carry0,
                                                         jax.random.split(key, steps))
  return Trace(cost[:, 0], cost[:, 1], cost[:, 2], bj, bs, acc.astype(jnp.float32), best)


def _site_move(human: Human, sc: Scorer, k: jax.Array, z: jax.Array):
  """One field, chosen uniformly, to another level chosen uniformly -> (z′, queries asked)."""
  levels = jnp.asarray(human.space.levels)
  k_f, k_l = jax.random.split(k)
  f = jax.random.randint(k_f, (), 0, human.space.num_fields)
  z2 = z.at[f].set((z[f] + jax.random.randint(k_l, (), 1, levels[f])) % levels[f])
  fc, jc = sc.asked(z2 != z)
  return z2, (fc, jc, jnp.zeros((), jnp.int32))


def site(key: jax.Array, human: Human, prob: Problem, z0: jax.Array, steps: int) -> Trace:
  """Metropolis with one-field changes, field and new level uniform."""
  sc = scorer(human, prob)

  def propose(k, state, z):
    z2, asked = _site_move(human, sc, k, z)
    return state, z2, 0.0, asked

  return _chain(key, sc, (), z0, propose, steps)


def edits(key: jax.Array, human: Human, prob: Problem, z0: jax.Array, steps: int) -> Trace:
  """Metropolis with the human's edits as proposals (one proposal each, no prior judgment:
  the edit's density ratio cancels the prior ratio of the unit it redraws)."""
  sc = scorer(human, prob)

  def propose(k, state, z):
    z2, _ = explorer.edit(k, human, z, jnp.zeros((), jnp.int32))
    fc, _ = sc.asked(z2 != z)
    return state, z2, -(hm.log_prior(human, z2) - hm.log_prior(human, z)), (
        fc, jnp.zeros((), jnp.int32), jnp.ones((), jnp.int32))

  return _chain(key, sc, (), z0, propose, steps)


def latent(key: jax.Array, human: Human, prob: Problem, mz: mzlib.Mz, u0: jax.Array,
           steps: int, beta: float, proposals: int = 0, with_site: bool = False) -> Trace:
  """pCN in Mz's latent from u0 (d,); Z = Z(u), or (with_site: `latent_site`) Z edited by site
  flips and by the blocks where Z(u) changes; `proposals`: Mz's training proposals (charged at
  the start)."""
  if not 0 < beta <= 1:
    raise ValueError(f"beta must be in (0, 1], got {beta}")
  sc = scorer(human, prob)

  def move_u(k, state, z):  # state: (u, Z(u)), the decoding carried rather than redone
    u, zu = state
    u2 = jnp.sqrt(1 - beta ** 2) * u + beta * jax.random.normal(k, u.shape)
    new = mzlib.decode_hard(mz, u2)
    z2 = jnp.where(new != zu, new, z) if with_site else new
    fc, jc = sc.asked(z2 != z)
    return (u2, new), z2, 0.0, (fc, jc, jnp.zeros((), jnp.int32))

  def move_z(k, state, z):
    z2, asked = _site_move(human, sc, k, z)
    return state, z2, 0.0, asked

  def propose(k, state, z):
    if not with_site:
      return move_u(k, state, z)
    k_c, k_m = jax.random.split(k)
    return jax.lax.cond(jax.random.bernoulli(k_c), move_u, move_z, k_m, state, z)

  z0 = mzlib.decode_hard(mz, u0)
  return _chain(key, sc, (u0, z0), z0, propose, steps, (0, 0, proposals))


def fresh(key: jax.Array, human: Human, prob: Problem, steps: int) -> Trace:
  """The best of `steps` + 1 fresh proposals, each scored (one judgment against the best so
  far, a forecast per example of D)."""
  sc = scorer(human, prob)
  k0, key = jax.random.split(key)
  n_live = jnp.sum(prob.w != 0).astype(jnp.int32)

  def propose(k, state, z):
    z2, _ = explorer.fresh(k, human, 1, jnp.zeros((), jnp.int32))
    # accept always (corr = +inf): the chain's state is the latest proposal, `best` the answer
    return state, z2[0], jnp.inf, (n_live, jnp.ones((), jnp.int32), jnp.ones((), jnp.int32))

  z0, _ = explorer.fresh(k0, human, 1, jnp.zeros((), jnp.int32))
  return _chain(key, sc, (), z0[0], propose, steps, (0, 0, 1))


def at_budget(trace: Trace, budget) -> dict:
  """The best J and its D* score after the last step whose cumulative queries ≤ budget (NaN when
  even the first step costs more)."""
  q = np.asarray(trace.queries)
  i = np.searchsorted(q, budget, side="right") - 1
  if i < 0:
    return dict(best_j=np.nan, score=np.nan, queries=int(q[0]))
  return dict(best_j=float(trace.best_j[i]), score=float(trace.best_score[i]), queries=int(q[i]))
