"""The human exploring Z (the seed's notes): a person who writes hypotheses down, either at random
or as an edit of the one in front of them, without scoring them against D.

A fresh proposal draws every group of fields the human judges together (and every field outside
a group) from the human's belief about it, ∝ Π_{k∈g} P_H(Z_k) ψ_g(Z_g); an edit redraws one
group (or lone field) of the current Z the same way.  An exploration walk is a fresh proposal
followed by edits: each written-down hypothesis is one counted proposal, like every other query
(`lprior.ltp.human`).  What the walks record is what Mz (`lprior.ltp.mz`) is trained on.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lprior.ltp import human as hm
from lprior.ltp.human import Human


def units(human: Human) -> tuple[np.ndarray, np.ndarray]:
  """What the human thinks about at once: (U, g) field indices per unit (groups first, then each
  lone field padded with −1) and (U, C) log-weights over each unit's joint levels (index Σ_j
  Z_{u_j} L^j; −inf where a padded member would take a level ≠ 0).  Every unit's L is the same."""
  levels = set(human.space.levels)
  if len(levels) != 1:
    raise ValueError(f"exploration needs fields with one level count, got {sorted(levels)}")
  num = levels.pop()
  table = human.table()
  size = len(human.groups[0]) if human.groups else 1
  states = hm.group_states(num, size)                                      # (C, g)
  grouped = set(np.asarray(human.groups).reshape(-1).tolist()) if human.groups else set()
  fields, logw = [], []
  for g, members in enumerate(human.groups):
    fields.append(list(members))
    logw.append(table[list(members)][np.arange(size), states].sum(-1)
                + np.asarray(human.group_log_potential[g]))
  for k in range(human.space.num_fields):
    if k not in grouped:
      fields.append([k] + [-1] * (size - 1))
      w = table[k][states[:, 0]]
      logw.append(np.where(np.all(states[:, 1:] == 0, -1), w, -np.inf))
  return np.asarray(fields, np.int32), np.asarray(logw, np.float64)


def _write(z: jax.Array, fields: jax.Array, states: jax.Array, c: jax.Array) -> jax.Array:
  """z (K,) with the unit `fields` (..., g) set to joint levels c (...,) (padding −1 dropped)."""
  safe = jnp.where(fields >= 0, fields, z.shape[-1])                       # out of range: dropped
  return z.at[safe.reshape(-1)].set(states[c].reshape(-1).astype(z.dtype), mode="drop")


def fresh(key: jax.Array, human: Human, num: int, proposals: jax.Array
          ) -> tuple[jax.Array, jax.Array]:
  """num hypotheses written down at random, each unit from the human's belief about it
  -> ((num, K) int32, proposals + num)."""
  fields, logw = units(human)
  states = jnp.asarray(hm.group_states(human.space.levels[0], fields.shape[1]))
  c = jax.random.categorical(key, jnp.asarray(logw, jnp.float32), shape=(num, len(fields)))
  z = jnp.zeros((num, human.space.num_fields), jnp.int32)
  return jax.vmap(lambda zi, ci: _write(zi, jnp.asarray(fields), states, ci))(z, c), proposals + num


def edit(key: jax.Array, human: Human, z: jax.Array, proposals: jax.Array
         ) -> tuple[jax.Array, jax.Array]:
  """The human's edit of z (K,): one unit, chosen uniformly, redrawn from the belief about it
  -> (z′, proposals + 1)."""
  fields, logw = units(human)
  states = jnp.asarray(hm.group_states(human.space.levels[0], fields.shape[1]))
  k_u, k_c = jax.random.split(key)
  u = jax.random.randint(k_u, (), 0, len(fields))
  c = jax.random.categorical(k_c, jnp.asarray(logw, jnp.float32)[u])
  return _write(z, jnp.asarray(fields)[u], states, c), proposals + 1


def walks(key: jax.Array, human: Human, num_walks: int, length: int, proposals: jax.Array
          ) -> tuple[jax.Array, jax.Array]:
  """num_walks exploration walks of `length` hypotheses (a fresh one, then length − 1 edits)
  -> ((num_walks · length, K) int32, proposals + num_walks · length)."""
  if num_walks < 1 or length < 1:
    raise ValueError(f"need num_walks >= 1 and length >= 1, got {num_walks=}, {length=}")
  k0, k1 = jax.random.split(key)
  start, proposals = fresh(k0, human, num_walks, proposals)

  def one(z, k):
    def step(zc, kk):
      z2, _ = edit(kk, human, zc, jnp.zeros((), jnp.int32))
      return z2, z2
    _, rest = jax.lax.scan(step, z, jax.random.split(k, length - 1))
    return jnp.concatenate([z[None], rest])

  out = jax.vmap(one)(start, jax.random.split(k1, num_walks))             # (W, length, K)
  return out.reshape(-1, human.space.num_fields), proposals + num_walks * (length - 1)
