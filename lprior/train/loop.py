"""The one training loop every experiment uses: jit'd steps, resumable checkpoints, JSONL and
TensorBoard metrics, periodic evaluation, and a progress line with an ETA.

`step_fn(state, step) -> (state, metrics)` is a pure function (the step index lets it fold the
step into its PRNG keys and pick its minibatch, so a resumed run repeats exactly what an
uninterrupted one would have done).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Callable

import jax
import numpy as np

from lprior.distributed import host_value
from lprior.metrics_writer import MetricsWriter, read_jsonl
from lprior.progress import Progress
from lprior.train.checkpoint import Checkpointer, CheckpointError

StepFn = Callable[[Any, jax.Array], tuple[Any, dict]]
EvalFn = Callable[[Any], dict]
Periodic = tuple[int, Callable[[Any, jax.Array], tuple[Any, dict]]]


def _scalars(metrics: dict) -> dict[str, Any]:
  """Scalars as floats; a (S,) metric (S vmapped seeds) as its mean, plus 'k/seeds': the list."""
  out = {}
  for k, v in metrics.items():
    v = np.asarray(host_value(v), np.float64)
    if v.ndim == 0:
      out[k] = float(v)
    elif v.ndim == 1:
      out[k], out[f"{k}/seeds"] = float(np.mean(v)), v.tolist()
  return out


def fit(state: Any, step_fn: StepFn, num_steps: int, *, workdir: str | None = None,
        config: dict | None = None, eval_fn: EvalFn | None = None, eval_every: int = 0,
        log_every: int = 1, checkpoint_every: int = 0, desc: str = "train",
        show_progress: bool = True, keep: int = 2,
        compiler_options: dict | None = None,
        periodic: Periodic | Sequence[Periodic] | None = None,
        on_row: Callable[[int, dict], None] | None = None,
        stop_fn: Callable[[Any], Any] | None = None) -> tuple[Any, list[dict]]:
  """Run `num_steps` steps from `state` (or from the latest checkpoint in workdir/checkpoints).

  Returns (final state, history): one dict of scalar metrics per logged step (eval metrics
  prefixed 'eval/'); a resumed run's history starts with the rows its metrics.jsonl kept, so it
  is the whole run's (on process 0, which writes them).  Only process 0 writes metrics and shows
  progress; every process takes part in checkpoints.  `num_steps` may be raised between runs
  (the run continues from its checkpoint); a checkpoint past `num_steps` raises CheckpointError.
  `compiler_options` go to the step's `jax.jit` (e.g. `lprior.xla.FAST_COMPILE`).
  `periodic=(K, fn)` or a list of them: after every K-th step, state, metrics = fn(state, step)
  (its own jit; e.g. the nested trainer's log Z check, an early-stopping record), in the order
  given, before that step's checkpoint, its metrics logged with the step's.  `on_row(step, row)`
  sees every logged row before its checkpoint and may raise.  `stop_fn(state)` (a scalar bool,
  jit'd) is asked after every step on which a periodic hook ran, and once on resume: when true
  the run checkpoints and ends there (e.g. `early_stopping.stopped`), and a rerun of it trains
  no further, whatever num_steps says.
  """
  ckpt = None
  start = 0
  if workdir is not None and checkpoint_every:
    ckpt = Checkpointer(f"{workdir}/checkpoints", keep=keep, config=config)
    restored = ckpt.restore(state)
    if restored is not None:
      start, state = restored
    if start > num_steps:
      raise CheckpointError(f"the checkpoint in {workdir}/checkpoints is at step {start}, past "
                            f"num_steps={num_steps}: raise num_steps or use a fresh workdir")
  writer = MetricsWriter(workdir, enabled=jax.process_index() == 0,
                         resume_step=start if start else None) if workdir else None
  history: list[dict] = []
  if writer is not None and writer.enabled and start and os.path.exists(writer.path):
    history = read_jsonl(writer.path)  # what the writer kept: the steps up to the checkpoint
  jstep = jax.jit(step_fn, compiler_options=compiler_options)
  if isinstance(periodic, tuple) and len(periodic) == 2 and callable(periodic[1]):
    periodic = [periodic]
  hooks = [(int(k), jax.jit(fn, compiler_options=compiler_options)) for k, fn in periodic or ()]
  if any(k < 1 for k, _ in hooks):
    raise ValueError(f"fit: every periodic hook needs K >= 1; got {[k for k, _ in hooks]}")
  jstop = None if stop_fn is None else jax.jit(stop_fn)
  is_stopped = lambda st: jstop is not None and bool(host_value(jstop(st)))
  show_progress = show_progress and jax.process_index() == 0
  progress = Progress(num_steps, desc, start=start) if show_progress else None
  stop_at = start if start and is_stopped(state) else None
  for step in range(start, num_steps if stop_at is None else start):
    state, metrics = jstep(state, jax.numpy.asarray(step))
    done = step + 1
    row = {}
    if log_every and (done % log_every == 0 or done == num_steps):
      row = _scalars(metrics)
    ran = [fn for k, fn in hooks if done % k == 0]
    for fn in ran:
      state, extra = fn(state, jax.numpy.asarray(step))
      row.update(_scalars(extra))
    if ran and is_stopped(state):
      stop_at = done
    if eval_fn is not None and eval_every and (done % eval_every == 0 or done == num_steps):
      row.update({f"eval/{k}": v for k, v in _scalars(eval_fn(state)).items()})
    if row:
      bad = [k for k, v in row.items()
             if isinstance(v, float) and not np.isfinite(v) and not k.startswith("eval/")]
      if bad:
        raise FloatingPointError(f"step {done}: non-finite metrics {bad}; last checkpoint kept")
      row = {"step": done, **row}
      if on_row is not None:
        on_row(done, row)
      history.append(row)
      if writer:
        writer.write(done, {k: v for k, v in row.items() if k != "step"})
    if ckpt is not None and (done % checkpoint_every == 0 or done == num_steps or
                             stop_at == done):
      ckpt.save(done, state)
    if progress:
      shown = {k: v for k, v in list(row.items())[1:6] if isinstance(v, float)}
      shown.update({k: v for k, v in row.items() if k.endswith("logz_check/gap")})
      progress.update(done, **shown)
    if stop_at == done:
      break
  if ckpt is not None:
    ckpt.close()
  if writer:
    writer.close()
  if progress:
    progress.close()
  if stop_at is not None and jax.process_index() == 0:
    print(f"{desc}: stopped at step {stop_at} of {num_steps} (stop_fn)", flush=True)
  return state, history
