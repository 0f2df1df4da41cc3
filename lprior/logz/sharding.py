"""Running a per-device particle function over a 1-D mesh with `jax.shard_map`."""

from __future__ import annotations

from typing import Callable

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P


def particle_axis(mesh: Mesh | None) -> str | None:
  """The mesh's one axis name (the particle axis), or None without a mesh."""
  if mesh is None:
    return None
  if len(mesh.axis_names) != 1:
    raise ValueError(f"mesh must be 1-D (its one axis is the particle axis); got axes "
                     f"{dict(mesh.shape)}")
  return mesh.axis_names[0]


def check_divisible(num_particles: int, mesh: Mesh | None) -> int:
  """Particles per device; num_particles must split evenly over the mesh."""
  shards = 1 if mesh is None else mesh.devices.size
  if num_particles <= 0 or num_particles % shards:
    raise ValueError(f"num_particles={num_particles} must be a positive multiple of the "
                     f"{shards} devices of the mesh")
  return num_particles // shards


def constrain(x, mesh: Mesh, spec: P):
  """Place x (inside jit) with `spec` on `mesh`, for Explicit or Auto mesh axes."""
  sharding = NamedSharding(mesh, spec)
  if all(t == AxisType.Explicit for t in mesh.axis_types):
    return jax.tree.map(lambda a: jax.sharding.reshard(a, sharding), x)
  return jax.lax.with_sharding_constraint(x, sharding)


def run(fn: Callable, mesh: Mesh | None, num_particles: int, replicated: tuple, sharded: tuple):
  """fn(axis, n_local, *replicated, *sharded) -> (replicated_out, sharded_out), per device.

  `sharded` inputs carry the particle axis first (or are None); outputs are (values equal on
  every device, per-particle values with the particle axis first)."""
  n_local = check_divisible(num_particles, mesh)
  axis = particle_axis(mesh)
  if mesh is None:
    return fn(None, n_local, *replicated, *sharded)
  sharded = constrain(sharded, mesh, P(axis))
  body = lambda *args: fn(axis, n_local, *args)
  in_specs = (P(),) * len(replicated) + (P(axis),) * len(sharded)
  return jax.shard_map(body, mesh=mesh, in_specs=in_specs, out_specs=(P(), P(axis)))(
      *replicated, *sharded)
