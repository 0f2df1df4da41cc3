"""Terminal progress for long runs: steps done, rate and ETA, at most a few lines a second."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
  seconds = max(0, int(round(seconds)))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


class Progress:
  """`Progress(total, desc)`; call `.update(step, **scalars)` after each step, `.close()` at the end.

  The ETA is from the mean time per step since the first update (so compilation in step 1 does
  not inflate it). On a terminal the line is redrawn in place; otherwise a line is printed every
  `every_s` seconds, so logs of batch jobs stay short.
  """

  def __init__(self, total: int, desc: str = "", *, every_s: float = 5.0,
               stream: TextIO | None = None, start: int = 0):
    self.total, self.desc, self.every_s = int(total), desc, every_s
    self.stream = stream if stream is not None else sys.stderr
    self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
    self._t0 = None  # time of the first update
    self._s0 = start
    self._last = -float("inf")

  def line(self, step: int, **scalars) -> str:
    """The progress line for `step` (also used by tests)."""
    now = time.perf_counter()
    done = step - self._s0
    if self._t0 is None or done <= 0:
      rate, eta = float("nan"), "?"
    else:
      rate = done / max(now - self._t0, 1e-9)
      eta = _clock((self.total - step) / rate)
    vals = " ".join(f"{k}={float(v):.4g}" for k, v in scalars.items())
    return (f"{self.desc} {step}/{self.total} [{100.0 * step / max(self.total, 1):5.1f}%] "
            f"{rate:.2f} it/s ETA {eta} {vals}").strip()

  def update(self, step: int, **scalars) -> None:
    now = time.perf_counter()
    if self._t0 is None:
      self._t0, self._s0 = now, step
    last_step = step >= self.total
    if not last_step and now - self._last < (0.2 if self.tty else self.every_s):
      return
    self._last = now
    text = self.line(step, **scalars)
    if self.tty:
      self.stream.write("\r" + text + "\033[K" + ("\n" if last_step else ""))
    else:
      self.stream.write(text + "\n")
    self.stream.flush()

  def close(self) -> None:
    if self.tty:
      self.stream.write("\n")
      self.stream.flush()
