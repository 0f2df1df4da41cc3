"""The honest-QA report's derived numbers by hand: PGR against plain and the ceiling, what each
head computes, and the head-pair table."""

import math

import numpy as np

from experiments import honest_qa_report as rep


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
  plain, ceiling = _final([1], [0], [0.2, 0.4], [0.8, 0.6]), _final([1], [0], [0.9, 0.4], [0, 0])
  method = _final([1], [0], [0.55, 0.5], [0.4, 0.5])
  got = rep.pgr(method, plain, ceiling)
  assert got[0] == (0.55 - 0.2) / (0.9 - 0.2) and math.isnan(got[1])  # no gap: undefined
  np.testing.assert_array_equal(rep.pgr(plain, plain, ceiling)[:1], [0.0])
  np.testing.assert_array_equal(rep.pgr(ceiling, plain, ceiling)[:1], [1.0])


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
