"""Orbax checkpoints of a whole training state (any pytree, PRNG keys included) plus its config.

A checkpoint that cannot be read, or whose tree does not match the state this run builds,
raises `CheckpointError` naming the problem; a run never silently starts from scratch over an
existing checkpoint.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp


IDENTITY = "__identity__"  # the npz entry holding a file's run identity (JSON)


class CheckpointError(RuntimeError):
  """An existing checkpoint is corrupt or belongs to a different run."""


def _is_key(x) -> bool:
  return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_saveable(state: Any) -> Any:
  """Typed PRNG keys → their uint32 key data (what orbax can store)."""
  return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, state)


def from_saveable(saved: Any, like: Any) -> Any:
  """Inverse of `to_saveable`, using `like` (the freshly built state) to know which were keys."""
  return jax.tree.map(
      lambda s, l: jax.random.wrap_key_data(s, impl=jax.random.key_impl(l)) if _is_key(l) else s,
      saved, like)


class Checkpointer:
  """`Checkpointer(dir, keep=2)`; `.save(step, state, config)`, `.restore(like) -> (step, state)`."""

  def __init__(self, directory: str, *, keep: int = 2, config: dict | None = None):
    self.directory = os.path.abspath(directory)
    self.config = config
    self._mngr = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        item_names=("state", "config"))

  def latest_step(self) -> int | None:
    return self._mngr.latest_step()

  def save(self, step: int, state: Any) -> None:
    self._mngr.save(int(step), args=ocp.args.Composite(
        state=ocp.args.StandardSave(to_saveable(state)),
        config=ocp.args.JsonSave(self.config or {})))

  def wait(self) -> None:
    self._mngr.wait_until_finished()

  def restore(self, like: Any) -> tuple[int, Any] | None:
    """(step, state) of the latest checkpoint, restored into the structure of `like`, or None
    when there is none.  Raises CheckpointError on a corrupt or incompatible checkpoint."""
    step = self._mngr.latest_step()
    if step is None:
      return None
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, to_saveable(like))
    try:
      out = self._mngr.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(target), config=ocp.args.JsonRestore()))
    except Exception as e:  # orbax raises many types; all mean "cannot use this checkpoint"
      raise CheckpointError(
          f"checkpoint at step {step} in {self.directory} cannot be restored into this run's "
          f"state ({type(e).__name__}: {str(e)[:500]}). Use a fresh --workdir, or delete the "
          "checkpoint to start over.") from e
    saved_cfg = out["config"]
    diff = [] if self.config is None or saved_cfg is None else config_diff(saved_cfg, self.config)
    if diff:
      raise CheckpointError(
          f"checkpoint in {self.directory} was written with a different config: "
          f"{'; '.join(diff[:10])}. Use a fresh --workdir to run the new config.")
    return step, from_saveable(out["state"], like)

  def close(self) -> None:
    self._mngr.wait_until_finished()
    self._mngr.close()


def json_default(o):
  """`json.dumps` default: numpy (and JAX) scalars and arrays as plain Python values."""
  if hasattr(o, "__array__"):
    return np.asarray(o).tolist()
  return str(o)


def normalise(x: Any) -> Any:
  """`x` as JSON gives it back (tuples as lists, numpy as Python, keys sorted; NaN kept)."""
  return json.loads(json.dumps(x, sort_keys=True, default=json_default))


def _same(a, b) -> bool:
  """Equal, with NaN equal to NaN (normalised values)."""
  if isinstance(a, dict) and isinstance(b, dict):
    return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
  if isinstance(a, list) and isinstance(b, list):
    return len(a) == len(b) and all(map(_same, a, b))
  if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
    return True
  return a == b


def config_diff(stored: Any, now: Any) -> list[str]:
  """'key.path: stored (stored) vs now (now)' for every leaf where two configs differ (after
  `normalise`); empty when they agree."""
  out: list[str] = []

  def walk(x, y, path):
    if isinstance(x, dict) and isinstance(y, dict):
      for k in sorted(set(x) | set(y)):
        walk(x.get(k, "<absent>"), y.get(k, "<absent>"), f"{path}.{k}" if path else k)
    elif not _same(x, y):
      out.append(f"{path}: {x!r} (stored) vs {y!r} (now)")

  walk(normalise(stored), normalise(now), "")
  return out


def save_npz(path: str, arrays: dict[str, np.ndarray], identity: dict | None = None) -> None:
  """Write arrays (and the identity, as JSON) to `path` atomically: a synced temporary file,
  renamed."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  extra = {} if identity is None else {IDENTITY: np.array(json.dumps(normalise(identity)))}
  tmp = f"{path}.tmp"
  with open(tmp, "wb") as f:
    np.savez(f, **arrays, **extra)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def load_npz(path: str) -> tuple[dict[str, np.ndarray], dict | None]:
  """(arrays, identity or None) of a file written by `save_npz`, in the order written."""
  with np.load(path, allow_pickle=False) as z:
    arrays = {k: z[k] for k in z.files}
  identity = arrays.pop(IDENTITY, None)
  return arrays, None if identity is None else json.loads(str(identity))
