"""The two data sets of the nested posterior (DESIGN §1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax


class Data(NamedTuple):
  """Small (consistency) inputs define C; large inputs and integer labels define L.

  x_small: inputs for C, leading axis n_small (any pytree `apply_fn` accepts).
  x_large: inputs for L, leading axis n_large.
  y_large: (n_large, ...) integer answer indices, the shape of the logits without the last axis.
  w_large: optional per-example weights of L, the shape of y_large (None: all ones).
  """
  x_small: Any
  x_large: Any
  y_large: jax.Array
  w_large: jax.Array | None = None


def as_data(data: Data | Mapping) -> Data:
  """`data` as a `Data` (accepts a Data, any object with its fields, or a mapping)."""
  if isinstance(data, Data):
    return data
  if isinstance(data, Mapping):
    fields = dict(data)
  else:
    fields = {f: getattr(data, f) for f in Data._fields if hasattr(data, f)}
  missing = [f for f in ("x_small", "x_large", "y_large") if f not in fields]
  unknown = [f for f in fields if f not in Data._fields]
  if missing or unknown:
    raise ValueError(f"data: missing fields {missing}, unknown fields {unknown}; "
                     f"expected {list(Data._fields)}")
  return Data(**fields)
