"""The amplification experiment's checkpoints in a workdir (an `experiment.Store`): per (task,
method) the learners of every seed (orbax, DIR/runs/<task>/<method>/checkpoints) and their
history rows beside them (history/<step>.npz, written before that step's checkpoint, so the
latest checkpoint always has its rows); the transparency costs in DIR/runs/transparency/<task>.npz.
Every part is tied to the run identity: a mismatch raises CheckpointError naming the keys.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from lprior.train.checkpoint import (Checkpointer, CheckpointError, config_diff, load_npz,
                                     save_npz)

KEEP = 2  # checkpoints kept per (task, method)


class CheckpointStore:
  """`experiment.Store` in workdir/runs (module docstring) for the run `identity`."""

  def __init__(self, workdir: str, identity: dict):
    self.root, self.identity, self._open = os.path.join(workdir, "runs"), identity, {}

  def _dir(self, task, method: str) -> str:
    return os.path.join(self.root, task.name, method)

  def _history(self, task, method: str, step: int) -> str:
    return os.path.join(self._dir(task, method), "history", f"{step}.npz")

  def _checkpointer(self, task, method: str):
    if (task.name, method) not in self._open:
      self._open[task.name, method] = Checkpointer(
          os.path.join(self._dir(task, method), "checkpoints"), keep=KEEP, config=self.identity)
    return self._open[task.name, method]

  def restore(self, task, method: str, like, num_steps: int):
    """(learners, history) of the latest checkpoint of (task, method), or None."""
    ckpt = self._checkpointer(task, method)
    restored = ckpt.restore(like)
    if restored is None:
      return None
    step, learner = restored
    if step > num_steps:
      raise CheckpointError(f"the checkpoint in {ckpt.directory} is at step {step}, past "
                            f"num_steps.{task.kind}={num_steps}: raise num_steps or use a fresh "
                            "--workdir")
    path = self._history(task, method, step)
    if not os.path.exists(path):
      raise CheckpointError(f"the history of step {step} ({path}) is missing; use a fresh "
                            "--workdir, or delete the checkpoints to start over")
    return learner, load_npz(path)[0]

  def save(self, task, method: str, learner, history) -> None:
    """The history first, then the learners' checkpoint of the same step; old histories go."""
    step = int(history["step"][-1, 0])
    save_npz(self._history(task, method, step), history)
    self._checkpointer(task, method).save(step, learner)
    folder = os.path.dirname(self._history(task, method, step))
    steps = sorted(int(f[:-4]) for f in os.listdir(folder) if f.endswith(".npz"))
    for old in steps[:-(KEEP + 1)]:  # KEEP + 1: the newest checkpoint may still be in flight
      os.remove(self._history(task, method, old))

  def transparency(self, name: str, compute: Callable[[], dict]) -> dict:
    """The cached costs of transparency task `name`, or compute() (then cached)."""
    path = os.path.join(self.root, "transparency", f"{name}.npz")
    if not os.path.exists(path):
      costs = compute()
      save_npz(path, costs, self.identity)
      return costs
    costs, saved = load_npz(path)
    diff = config_diff(saved or {}, self.identity)
    if diff:
      raise CheckpointError(f"{path} was written with a different config: {'; '.join(diff)}. "
                            "Use a fresh --workdir to run the new config.")
    return costs

  def close(self) -> None:
    """Waits for every checkpoint in flight."""
    for ckpt in self._open.values():
      ckpt.close()
    self._open.clear()
