"""Wall-clock timing for benchmarks: compile once, then the median of repeated calls."""

from __future__ import annotations

import resource
import time
from typing import Any, Callable

import jax
import numpy as np


def wall(fn: Callable[[], Any]) -> tuple[Any, float]:
  """(fn(), seconds), waiting for every array in the result."""
  t = time.perf_counter()
  out = jax.block_until_ready(fn())
  return out, time.perf_counter() - t


def median_wall(fn: Callable[[int], Any], repeats: int) -> tuple[list[Any], float, float]:
  """Call fn(0) once to compile (timed apart), then fn(1..repeats).
  Returns (the timed results, median seconds of the timed calls, seconds of the first call)."""
  _, first = wall(lambda: fn(0))
  outs, times = [], []
  for i in range(1, repeats + 1):
    out, t = wall(lambda: fn(i))
    outs.append(out)
    times.append(t)
  return outs, float(np.median(times)), first


def peak_rss_bytes() -> int:
  """This process's peak resident set size so far (Linux reports KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
