"""The gold reference where Z is too large to enumerate: a long-run block-Gibbs chain on the
human's posterior  Post(Z | D) ∝ Prior_H(Z) Π_i P_H(y_i | x_i, Z)^{w_i}.

Blocks are the human's groups (the fields judged together; every field is in one).  A block's
conditional is exact: its L^g joint levels are scored by the block's prior factor and by the
examples that read one of its fields (`Human.reads`: each question reads a few fields), so a
sweep costs Σ_b L^g · |examples reading b| forecasts, not |Z|.  `temperature` 0 turns a sweep
into coordinate ascent (iterated conditional modes; ties keep the current levels): with
`flat`, maximum likelihood.  Exact against enumeration on small spaces (tests).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lprior.ltp import human as hm
from lprior.ltp.human import Human


class Incidence(NamedTuple):
  """Which examples read each block: (B, m) example indices, −1 padding."""
  examples: np.ndarray


def check_blocks(human: Human) -> np.ndarray:
  """(B, g) the blocks: the human's groups, which must cover every field."""
  if not human.groups or len(np.unique(human.groups)) != human.space.num_fields:
    raise ValueError("block Gibbs needs a human whose groups cover every field")
  if not human.reads:
    raise ValueError("block Gibbs needs a human who reads a few fields per question (reads > 0)")
  return np.asarray(human.groups)


def incidence(human: Human, x: np.ndarray) -> Incidence:
  """Host-side: per block, the examples of x (n, K) that read one of its fields."""
  blocks = check_blocks(human)
  block_of = np.empty(human.space.num_fields, np.int64)
  block_of[blocks.reshape(-1)] = np.repeat(np.arange(len(blocks)), blocks.shape[1])
  idx = np.asarray(hm.read(human, jnp.asarray(x))[0])
  lists = [[] for _ in blocks]
  for i, row in enumerate(idx):
    for b in set(block_of[row].tolist()):
      lists[b].append(i)
  m = max(1, max(map(len, lists)))
  return Incidence(np.array([li + [-1] * (m - len(li)) for li in lists], np.int32))


class GibbsOut(NamedTuple):
  target: jax.Array     # (m, Q) the posterior predictive at the evaluation questions
  log_pred: jax.Array   # (m,) log P(y_eval | x_eval, D), the mixture over kept sweeps
  marginals: jax.Array  # (K, L_max) P(Z_k = l | D) over kept sweeps
  best: jax.Array       # (K,) the visited hypothesis of highest log joint
  best_log_joint: jax.Array
  last: jax.Array       # (K,) the final state (to continue or to start ICM from)
  queries: hm.Queries


def run(key: jax.Array, human: Human, x: jax.Array, y: jax.Array, w: jax.Array,
        inc: jax.Array, x_eval: jax.Array, y_eval: jax.Array, z0: jax.Array, *,
        sweeps: int, burn: int, flat=False, temperature: float = 1.0) -> GibbsOut:
  """`sweeps` block sweeps from z0 (K,), the last `sweeps − burn` kept; x (n, K), y (n,), w (n,)
  (0: padding), inc (B, m) from `incidence` on x; the kept states' forecasts averaged at x_eval.
  flat (a bool, or a traced one to batch chains of both kinds): without the prior.
  Queries counted: L^g forecasts per (block, reading example of weight ≠ 0) and (unless flat)
  L^g prior judgments per block, each sweep."""
  blocks_np = check_blocks(human)
  blocks = jnp.asarray(blocks_np)
  num = human.space.levels[int(blocks_np[0, 0])]
  states = jnp.asarray(hm.group_states(num, blocks.shape[1]))              # (C, g)
  table = jnp.asarray(human.table())
  pot = jnp.asarray(human.group_log_potential)                            # (B, C)
  member, block_of = (np.zeros(human.space.num_fields, np.int32) for _ in range(2))
  member[blocks_np.reshape(-1)] = np.tile(np.arange(blocks_np.shape[1]), blocks_np.shape[0])
  block_of[blocks_np.reshape(-1)] = np.repeat(np.arange(blocks_np.shape[0]), blocks_np.shape[1])
  member, block_of = jnp.asarray(member), jnp.asarray(block_of)
  idx, vals = hm.read(human, x)                                           # (n, s)
  idx_e, vals_e = hm.read(human, x_eval)
  fam = human.family
  c_ = states.shape[0]

  prior_on = 1.0 - jnp.asarray(flat, jnp.float32)

  def log_joint(z):
    return prior_on * hm.log_prior(human, z) + jnp.sum(w * fam.log_prob(hm.forecast_at(human, idx, z[idx], vals), y))

  def block(carry, a):
    z, q = carry
    b, gumbel = a
    ex = inc[b]
    valid = (ex >= 0) & (w[jnp.maximum(ex, 0)] != 0)
    e = jnp.maximum(ex, 0)
    ie = idx[e]                                                           # (m, s)
    inside = block_of[ie] == b
    lev = jnp.where(inside[None], states[:, member[ie]], z[ie][None])    # (C, m, s)
    ll = jnp.sum(jnp.where(valid, w[e] * fam.log_prob(
        hm.forecast_at(human, ie[None], lev, vals[e][None]), y[e][None]), 0.0), -1)  # (C,)
    fields = blocks[b]
    score = ll + prior_on * (table[fields, states].sum(-1) + pot[b])
    if temperature == 0:
      now = jnp.all(states == z[fields], -1)
      c = jnp.argmax(score + 1e-6 * now)
    else:  # a categorical draw by the Gumbel-max trick (the noise drawn once per sweep)
      c = jnp.argmax(score / temperature + gumbel)
    q = q._replace(forecast=q.forecast + c_ * jnp.sum(valid).astype(jnp.int32),
                   prior=q.prior + c_ * prior_on.astype(jnp.int32))
    return (z.at[fields].set(states[c].astype(z.dtype)), q), None

  def sweep(carry, i):
    z, key, q, acc = carry
    key, k = jax.random.split(key)
    gumbel = jax.random.gumbel(k, (blocks.shape[0], c_))
    (z, q), _ = jax.lax.scan(block, (z, q), (jnp.arange(blocks.shape[0]), gumbel))
    keep = i >= burn
    pred = hm.forecast_at(human, idx_e, z[idx_e], vals_e)                 # (m, P)
    lj = log_joint(z)
    better = keep & (lj > acc["best_lj"])
    acc = dict(
        target=acc["target"] + keep * fam.target(pred[:, None, :]),
        log_pred=jnp.where(keep, jnp.logaddexp(acc["log_pred"], fam.log_prob(pred, y_eval)),
                           acc["log_pred"]),
        marg=acc["marg"] + keep * jax.nn.one_hot(z, human.space.max_levels),
        best=jnp.where(better, z, acc["best"]), best_lj=jnp.where(better, lj, acc["best_lj"]))
    return (z, key, q, acc), None

  q_dim = fam.target(hm.forecast_at(human, idx_e[:1], z0[idx_e[:1]], vals_e[:1])[:, None]).shape
  acc0 = dict(target=jnp.zeros((x_eval.shape[0], q_dim[-1])),
              log_pred=jnp.full((x_eval.shape[0],), -jnp.inf),
              marg=jnp.zeros((human.space.num_fields, human.space.max_levels)),
              best=z0, best_lj=jnp.asarray(-jnp.inf))
  (z, _, q, acc), _ = jax.lax.scan(sweep, (z0, key, hm.no_queries(), acc0), jnp.arange(sweeps))
  kept = sweeps - burn
  return GibbsOut(acc["target"] / kept, acc["log_pred"] - jnp.log(kept), acc["marg"] / kept,
                  acc["best"], acc["best_lj"], z, q)
