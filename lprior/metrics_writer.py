"""Per-step scalars to a JSONL file and TensorBoard event files (via tensorboardX, no TF needed)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping

import numpy as np


def _scalar(v) -> float:
  return float(np.asarray(v))


def _to_json(x: float):
  return x if math.isfinite(x) else repr(x)


def _from_json(v):
  """Floats written by `_to_json` (non-finite ones as 'nan', 'inf', '-inf'), lists of them."""
  if isinstance(v, list):
    return [_from_json(x) for x in v]
  return float(v) if v in ("nan", "inf", "-inf") else v


class MetricsWriter:
  """`write(step, {name: scalar or list of scalars})` appends one JSON line (lists kept, e.g.
  per-seed values) and one TensorBoard scalar per scalar name.

  Only process 0 of a multi-process run should construct one with `enabled=True`. Reopening a
  workdir (a resumed run) drops JSONL lines with step > `resume_step`, so a restarted run's log
  has each step once.
  """

  def __init__(self, workdir: str, *, enabled: bool = True, resume_step: int | None = None,
               tensorboard: bool = True):
    self.enabled = enabled
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb = None
    if not enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    if resume_step is not None and os.path.exists(self.path):
      with open(self.path) as f:
        keep = [l for l in f if l.strip() and json.loads(l)["step"] <= resume_step]
      with open(self.path, "w") as f:
        f.writelines(keep)
    elif resume_step is None and os.path.exists(self.path):
      os.remove(self.path)
    if tensorboard:
      from tensorboardX import SummaryWriter  # imported lazily: optional for library users
      self._tb = SummaryWriter(os.path.join(workdir, "tb"), purge_step=resume_step)

  def write(self, step: int, scalars: Mapping[str, object]) -> None:
    if not self.enabled:
      return
    row = {"step": int(step)}
    for k, v in scalars.items():
      if isinstance(v, (list, tuple)):
        row[k] = [_to_json(_scalar(x)) for x in v]
        continue
      x = _scalar(v)
      row[k] = _to_json(x)
      if self._tb is not None:
        self._tb.add_scalar(k, x, int(step))
    with open(self.path, "a") as f:
      f.write(json.dumps(row) + "\n")

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def read_jsonl(path: str) -> list[dict]:
  """The rows a MetricsWriter wrote (non-finite values back as floats)."""
  with open(path) as f:
    return [{k: _from_json(v) for k, v in json.loads(l).items()} for l in f if l.strip()]
