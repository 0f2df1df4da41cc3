"""Merging a config over its defaults, with clear errors for unknown keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ml_collections


def _check_known(given: Mapping, valid: Mapping, what: str) -> None:
  unknown = set(given) - set(valid)
  if unknown:
    raise ValueError(f"unknown {what} key(s) {sorted(unknown)}; valid: {sorted(valid)}")


def merged(default: ml_collections.ConfigDict, cfg: Any, overrides: Mapping, what: str,
           nested: tuple[str, ...] = ()) -> dict:
  """defaults ← cfg ← overrides as a plain dict; the `nested` sub-configs merge key by key.

  cfg: None, a ConfigDict or a mapping.  ValueError naming `what` on an unknown key.
  """
  d = default.to_dict()
  given = {} if cfg is None else (cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg))
  given.update(overrides)
  _check_known(given, d, f"{what} config")
  for sub in nested:
    part = dict(given.pop(sub, {}) or {})
    _check_known(part, d[sub], sub)
    d[sub].update(part)
  d.update(given)
  return d
