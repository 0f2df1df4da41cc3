"""Multi-process helpers: start `jax.distributed`, place a value every process holds onto a
global sharding, and read replicated outputs on any host."""

from __future__ import annotations

import jax
import numpy as np


def host_value(x):
  """A replicated jax.Array as a host numpy value, also when it spans several processes (then it
  is not fully addressable and `np.asarray(x)` would fail); other values pass through."""
  if isinstance(x, jax.Array):
    return np.asarray(x if x.is_fully_addressable else x.addressable_data(0))
  return x


def put_global(tree, sharding: jax.sharding.Sharding):
  """`jax.device_put(tree, sharding)` also when the sharding spans several processes: every
  process passes the same value (JAX checks it) and keeps its own shards.  PRNG key arrays are
  moved as their key data and re-wrapped."""
  def one(x):
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      data = jax.device_put(np.asarray(jax.random.key_data(x)), sharding)
      return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    return jax.device_put(np.asarray(x), sharding)
  if sharding.is_fully_addressable:
    return jax.device_put(tree, sharding)
  return jax.tree.map(one, tree)


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, cpu_collectives: str | None = None) -> None:
  """`jax.distributed.initialize` (arguments None: auto-detected on TPU pods and SLURM); on CPU
  pass cpu_collectives='gloo' so cross-process collectives work."""
  if cpu_collectives:
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id)
