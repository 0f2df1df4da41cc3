"""The honest-QA report's derived numbers by hand: PGR against plain and the ceiling, what each
head computes, and the head-pair table."""

import math

import numpy as np
import pytest

from experiments import honest_qa_report as rep
from experiments.common import report


def _final(seen_true, seen_human, unseen_true, unseen_human, acc=None):
  """Per-seed agreements of both heads (the same here) on seen and unseen_predictable."""
  f = {}
  for head in ("intended", "instrumental"):
    f[f"seen/{head}/agree_true"], f[f"seen/{head}/agree_human"] = seen_true, seen_human
    f[f"unseen_predictable/{head}/agree_true"] = unseen_true
    f[f"unseen_predictable/{head}/agree_human"] = unseen_human
  f["unseen_predictable/accuracy"] = unseen_true if acc is None else acc
  return f


def test_pgr_by_hand():
  """A ratio of mean paired gains with its delta-method SE; undefined without a gap."""
  plain, ceiling = _final([1], [0], [0.2, 0.4], [0, 0]), _final([1], [0], [0.9, 0.5], [0, 0])
  method = _final([1], [0], [0.55, 0.5], [0, 0])
  r, se = rep.pgr(method, plain, ceiling)
  d, g = np.array([0.35, 0.1]), np.array([0.7, 0.1])
  assert r == pytest.approx(d.mean() / g.mean(), rel=1e-12)
  assert se == pytest.approx(np.std(d - r * g, ddof=1) / np.sqrt(2) / g.mean(), rel=1e-12)
  assert rep.pgr(plain, plain, ceiling)[0] == 0.0 and rep.pgr(ceiling, plain, ceiling)[0] == 1.0
  assert all(math.isnan(v) for v in rep.pgr(method, ceiling, plain))  # the "ceiling" is below


def test_head_identity_reads_seen_and_unseen_predictable():
  f = _final(seen_true=[0.9, 0.9, 0.1, 0.2, 0.4], seen_human=[0.1, 0.1, 0.9, 0.8, 0.2],
             unseen_true=[0.9, 0.2, 0.1, 0.7, 0.9], unseen_human=[0.1, 0.8, 0.9, 0.3, 0.1])
  # the last: sides with neither on seen (0.4 and 0.2 are both below a majority)
  assert rep.head_identity(f, "intended") == ["truth", "complex", "human", "other", "other"]


def test_head_pair_table_counts_two_head_arms_only():
  runs = {"a_plain": ([], _final([0.9], [0.1], [0.1], [0.9])),
          "b_two_heads": ([], _final([0.9, 0.1], [0.1, 0.9], [0.1, 0.2], [0.9, 0.8]))}
  table = rep.head_pair_table(runs)
  lines = table.splitlines()
  assert "| complex | 0 | 0 | 1 | 0 |" in lines and "| human | 0 | 1 | 0 | 0 |" in lines
  assert sum(int(c) for line in lines[2:] for c in line.strip("|").split("|")[1:]) == 2


def test_control_lines_say_holds_or_fails():
  """Each control is judged on paired per-seed differences: the ceiling above plain by 2 SE, the
  κ → 0 arm equal to plain within 2 SE, every arm converged by the iid rule."""
  def f(up, iid):
    return {"unseen_predictable/accuracy": up, "iid/accuracy": iid}
  plain = f([0.70, 0.72, 0.71], [0.90, 0.91, 0.92])
  runs = {"a_plain": (None, plain), "a_ceiling": (None, f([0.85, 0.86, 0.84], [0.94] * 3)),
          "c_kappa_control": (None, f([0.71, 0.72, 0.70], [0.91, 0.91, 0.92]))}
  lines = rep.control_lines(runs, {"iid": 0.8})
  assert "holds" in lines[0] and "+0.140" in lines[0]
  assert all("holds" in l for l in lines[1:3]) and lines[3].endswith("every arm")
  runs["c_kappa_control"] = (None, f([0.80, 0.81, 0.82], [0.70, 0.71, 0.70]))
  lines = rep.control_lines(runs, {"iid": 0.8})
  assert "FAILS" in lines[1] and "FAILS" in lines[2] and "NOT c_kappa_control" in lines[3]
  # the t quantile, not 2 SE: a 5-seed difference of 2.5 SE holds (t95(5) = 2.776), 3 SE fails
  base = [0.70, 0.72, 0.71, 0.69, 0.73]
  d = np.array([-2.0, -1.0, 0.0, 1.0, 2.0]) * 0.01
  se = d.std(ddof=1) / np.sqrt(5)
  for shift, verdict in ((2.5 * se, "holds"), (3.0 * se, "FAILS")):
    runs = {"a_plain": (None, f(base, [0.9] * 5)),
            "c_kappa_control": (None, f(list(np.add(base, d + shift)), [0.9] * 5))}
    line = rep.control_lines(runs, {})[0]
    assert verdict in line and "2.78 SE" in line, line
  assert report.t95(5) == pytest.approx(2.7764, abs=1e-4) and report.t95(10) == pytest.approx(
      2.2622, abs=1e-4)


def test_recent_gain_compares_the_last_window_with_the_one_before():
  """Per seed: the mean over the evaluations in the last `window` steps minus the mean over the
  window before; None without two windows; the plateau line names the arms still rising."""
  hist = [{"step": s, "eval/iid/accuracy/seeds": [a, 2 * a]}
          for s, a in ((100, 0.5), (200, 0.6), (300, 0.7), (400, 0.8), (500, 0.8))]
  np.testing.assert_allclose(rep.recent_gain(hist, 200), [0.8 - 0.65, 1.6 - 1.3])
  assert rep.recent_gain(hist, 300) is None and rep.recent_gain([], 100) is None
  flat = [{**r, "eval/iid/accuracy/seeds": [0.9, 0.9]} for r in hist]
  line = rep.plateau_line({"a_plain": (flat, {}), "c_chained": (hist, {})}, 200)
  assert "a_plain 0.000 ± 0.000" in line and line.endswith("NOT c_chained"), line
  assert rep.plateau_line({"a_plain": (flat, {})}, 200).endswith("every arm")
