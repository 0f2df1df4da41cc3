"""Summaries over seeds (mean ± standard error), markdown tables, and result files."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.stats


def mean_se(values: Sequence[float]) -> tuple[float, float]:
  """(mean, standard error of the mean); the SE is nan for fewer than two values."""
  x = np.asarray(values, dtype=np.float64)
  if x.size < 2:
    return float(x.mean()) if x.size else float("nan"), float("nan")
  return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size))


def t95(n: int) -> float:
  """The two-sided 95% quantile of Student's t with n − 1 degrees of freedom: a mean of n seeds
  is resolved from 0 beyond t95(n)·SE (2.78 at 5 seeds, 2.26 at 10; ±2 SE is 88% at 5)."""
  return float(scipy.stats.t.ppf(0.975, max(int(n) - 1, 1)))


def fmt_mean_se(values: Sequence[float], digits: int = 3) -> str:
  m, s = mean_se(values)
  return f"{m:.{digits}f} ± {s:.{digits}f}"


def markdown_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str] | None = None
                   ) -> str:
  """A GitHub markdown table of `rows` (dicts); columns default to the first row's keys."""
  if not rows:
    return "(no rows)"
  columns = list(columns or rows[0].keys())
  cell = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
  return "\n".join(lines)


def write_json(path: str, obj) -> None:
  """Write `obj` as indented JSON (numpy scalars and arrays converted), creating parent dirs."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

  def default(o):
    if isinstance(o, np.ndarray) or hasattr(o, "__array__"):
      return np.asarray(o).tolist()
    if isinstance(o, (np.floating, np.integer)):
      return o.item()
    raise TypeError(f"not JSON serialisable: {type(o)}")

  with open(path, "w") as f:
    json.dump(obj, f, indent=2, default=default)


def save_figure(fig, path: str | None, dpi: int = 120):
  """tight_layout, then (given a path) write the PNG and close the figure; returns `fig` (left
  open without a path, for notebooks to display)."""
  fig.tight_layout()
  if path is not None:
    import matplotlib.pyplot as plt
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
  return fig
