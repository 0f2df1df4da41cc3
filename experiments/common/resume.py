"""Resuming launchers that train nothing: each finished unit of work (a row) is appended to
DIR/<part>.jsonl with the identity of the config it depends on, so a crash loses only the row in
progress, a re-run computes only the rows it lacks, and a workdir written under a different
config is refused (CheckpointError naming the differing keys) before anything is computed.

A line is {"key": the row's own parameters, "identity": the config it depends on, "seconds": its
compute time, "row": the row}.  A torn last line (a crash mid-write) is dropped.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping

from lprior.train.checkpoint import CheckpointError, config_diff, normalise


def _key(key: Mapping) -> str:
  return json.dumps(normalise(dict(key)), sort_keys=True)


def _read(path: str) -> list[dict]:
  """The records of a row file; a torn last line (no newline: a crash mid-write) is cut off."""
  if not os.path.exists(path):
    return []
  with open(path, "rb") as f:
    data = f.read()
  body, newline, tail = data.rpartition(b"\n")
  if tail:
    with open(path, "r+b") as f:
      f.truncate(len(body) + len(newline))
  records = []
  for i, line in enumerate(body.split(b"\n") if newline else []):
    if not line.strip():
      continue
    try:
      records.append(json.loads(line))
    except ValueError as e:
      raise CheckpointError(f"{path}: line {i + 1} cannot be read ({e}); delete the file to "
                            "recompute its rows") from e
  return records


class RowStore:
  """The finished rows of one part of an experiment, in `path` (JSON lines), all computed under
  `identity`; `.row(key, fn)` returns the stored row or computes, stores and returns it."""

  def __init__(self, path: str, identity: Mapping):
    self.path = path
    self.identity = normalise(dict(identity))
    self._rows: dict[str, dict] = {}
    self.mismatch: list[str] = []  # what differs from the stored identity (empty: none)
    for rec in _read(path):
      if not self.mismatch:
        self.mismatch = config_diff(rec["identity"], self.identity)
      self._rows[_key(rec["key"])] = rec

  def has(self, key: Mapping) -> bool:
    return _key(key) in self._rows

  def seconds(self, key: Mapping) -> float:
    """Compute time of a stored row."""
    return float(self._rows[_key(key)]["seconds"])

  def row(self, key: Mapping, fn: Callable[[], dict]) -> dict:
    """The stored row of `key`, or fn()'s, appended to the file (flushed and synced) first."""
    if self.mismatch:
      raise CheckpointError(f"{self.path} was written with a different config: "
                            f"{'; '.join(self.mismatch)}")
    k = _key(key)
    if k not in self._rows:
      t0 = time.perf_counter()
      row = fn()
      rec = dict(key=normalise(dict(key)), identity=self.identity,
                 seconds=time.perf_counter() - t0, row=normalise(row))
      os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
      with open(self.path, "a") as f:
        f.write(json.dumps(rec) + "\n")
        f.flush()
        os.fsync(f.fileno())
      self._rows[k] = rec
    return self._rows[k]["row"]


def open_stores(directory: str, identities: Mapping[str, Mapping]) -> dict[str, RowStore]:
  """{part: RowStore(directory/<part>.jsonl, identity)}; CheckpointError naming every differing
  key of every part whose stored rows were computed under another identity."""
  stores = {part: RowStore(os.path.join(directory, f"{part}.jsonl"), ident)
            for part, ident in identities.items()}
  bad = [f"{part}: {'; '.join(s.mismatch)}" for part, s in stores.items() if s.mismatch]
  if bad:
    raise CheckpointError(
        f"the rows in {directory} were computed with a different config — " + " | ".join(bad)
        + ". Use a fresh --workdir to run this config (or delete those files to recompute).")
  return stores

