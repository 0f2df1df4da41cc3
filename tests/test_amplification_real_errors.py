"""Transparency with the real adversary (issue 15 item 5): M's locally wrong nodes, cancelling
errors and the searches, on constructed Ms whose every answer is known."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from lprior.amplification import real_errors, tasks
from lprior.amplification.heap import heap
from lprior.amplification.models import Fns
from lprior.xla import FAST_COMPILE

jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)


def _fns(task, answer_of):
  """A constructed M answering answer_of(q) (confidently), and an Adv scoring nothing."""
  m = lambda params, q: 10.0 * jax.nn.one_hot(answer_of(q), task.a_vocab)
  return Fns(m=m, adv=lambda params, inputs: jnp.zeros(inputs[0].shape[:-1]))


def _sum_task_m(shift):
  """SumMod(3, 1) (a pair and its two single-element leaves) and an M that is right except on
  leaves, where it answers x + shift[x] mod 3."""
  t = tasks.SumMod(m=3, log2_len=1)
  shift = jnp.asarray(shift)

  def answer_of(q):
    x = q[..., 1:2]
    return jnp.where(t.is_base(q)[..., None], (x + shift[x]) % 3, t.solve(q))
  return t, _fns(t, answer_of)


@functools.partial(jit, static_argnums=(0, 1))
def _trees(task, fns, roots):
  return jax.vmap(lambda r: real_errors.model_tree(task, fns, {"m": None, "adv": None}, r))(roots)


def test_local_errors_and_cancellation_on_every_pair():
  """Leaves wrong by +1 on 0 and −1 on 1: every pair (a, b) against a hand count: a leaf is
  locally wrong iff shifted; the root (M right there) iff M's leaves do not sum to the truth."""
  shift = [1, -1, 0]
  t, fns = _sum_task_m(shift)
  pairs = list(itertools.product(range(3), repeat=2))
  roots = jnp.array([[1, a, b] for a, b in pairs], jnp.int32)
  tr = jax.device_get(_trees(t, fns, roots))
  for i, (a, b) in enumerate(pairs):
    leaf_wrong = [shift[a] != 0, shift[b] != 0]
    root_wrong = (a + shift[a] + b + shift[b]) % 3 != (a + b) % 3
    np.testing.assert_array_equal(tr.valid[i], [True, True, True])
    np.testing.assert_array_equal(tr.local_error[i], [root_wrong] + leaf_wrong)
    np.testing.assert_array_equal(tr.wrong[i], [False] + leaf_wrong)
  # (0, 1): +1 and −1 cancel, so the root is consistent with M's wrong leaves.
  i = pairs.index((0, 1))
  np.testing.assert_array_equal(tr.local_error[i], [False, True, True])
  costs = jax.device_get(jit(real_errors.search_costs, static_argnums=(1, 2))(
      jax.random.key(0), t, fns, {"m": None, "adv": None}, roots))
  assert costs["cancels"][i] and costs["has_error"][i] and not costs["root_wrong"][i]
  # (2, 2): nothing wrong anywhere; the search unfolds all 3 nodes.
  j = pairs.index((2, 2))
  assert not costs["has_error"][j] and all(costs[s][j] == 3 for s in real_errors.SCORES)
  # A locally wrong root is found at the first unfolding, by every order.
  k = pairs.index((0, 2))
  assert tr.local_error[k][0] and all(costs[s][k] == 1 for s in real_errors.SCORES)


def _random_m(task, salt):
  """An M right except where a hash of the question hits 1 in 4 (then off by one)."""
  def answer_of(q):
    h = jnp.sum(q * (jnp.arange(q.shape[-1]) * 7 + salt), -1) % 4 == 0
    return jnp.where(h[..., None], (task.solve(q) + 1) % task.a_vocab, task.solve(q))
  return _fns(task, answer_of)


def test_a_wrong_root_always_leaves_a_local_error_and_the_oracle_walks_down():
  """On the three uneven tasks (Σ mod m: the exhaustive pairs above): root wrong ⇒ some node
  locally wrong (induction from the leaves); the subtree oracle needs (level of what it finds)
  + 1 ≤ depth + 1 unfoldings; every search finds a locally wrong node when there is one."""
  for task in (tasks.ChainSum(m=3, length=6), tasks.ZipfLookup(m=5, log2_len=2),
               tasks.MixedOps(m=5, log2_len=3)):
    fns = _random_m(task, 3)
    roots = task.sample(jax.random.key(1), 400, all_levels=True)
    c = jax.device_get(jit(real_errors.search_costs, static_argnums=(1, 2))(
        jax.random.key(2), task, fns, {"m": None, "adv": None}, roots))
    tr = jax.device_get(_trees(task, fns, roots))
    assert np.all(c["has_error"][c["root_wrong"]]), task.name
    assert c["root_wrong"].any()
    e = c["has_error"]
    level = heap(task.depth).level
    for s in real_errors.SCORES:
      assert np.all(c[s][e] <= c["size"][e]), (task.name, s)
    assert np.all(c["oracle"][e] <= task.depth + 1), task.name
    # The oracle's count is one more than the level of a locally wrong node on the root's path:
    # never shallower than the shallowest locally wrong node.
    shallowest = np.where(tr.local_error, level, 99).min(-1)
    assert np.all(c["oracle"][e] >= shallowest[e] + 1), task.name
    assert np.all(c["size"] == tr.valid.sum(-1))


def test_an_error_in_an_irrelevant_half_cancels_on_mixed_ops():
  """MixedOps with the op 'left' (the right half is irrelevant): an M wrong only on the right
  leaf is right at the root and consistent there, yet the leaf is locally wrong: a cancelling
  error, which the subtree oracle and the truth order both reach at the second unfolding."""
  t = tasks.MixedOps(m=5, log2_len=1)
  n = t.question_len

  def answer_of(q):
    # Question layout [level, x0, x1, o0, o1]; the right leaf of a pair holds x1 at x0's place.
    right_leaf = t.is_base(q) & (q[..., 1] == 4)
    return jnp.where(right_leaf[..., None], (t.solve(q) + 1) % 5, t.solve(q))

  fns = _fns(t, answer_of)
  roots = jnp.array([[1, 2, 4, 0, 0]], jnp.int32)  # x0 = 2, x1 = 4, op 'left': answer 2
  assert n == 5 and int(t.solve(roots)[0, 0]) == 2
  tr = jax.device_get(_trees(t, fns, roots))
  np.testing.assert_array_equal(tr.local_error[0], [False, False, True])
  np.testing.assert_array_equal(tr.wrong[0], [False, False, True])
  c = jax.device_get(jit(real_errors.search_costs, static_argnums=(1, 2))(
      jax.random.key(0), t, fns, {"m": None, "adv": None}, roots))
  assert c["cancels"][0] and c["oracle"][0] == 2 and c["truth"][0] == 2


def test_report_averages_over_trees_with_an_error():
  """real_error_rows: unfoldings averaged per seed over the trees with an error only, then
  mean ± SE over seeds; the cancelling share and its own average."""
  from experiments import amplification_report as report
  ones = np.ones((2, 4))
  costs = {s: np.array([[1, 2, 3, 99], [3, 4, 5, 99]], float) for s in real_errors.SCORES}
  costs.update(size=np.array([[3, 3, 7, 7], [3, 3, 7, 7]]),
               has_error=np.array([[1, 1, 1, 0], [1, 1, 1, 0]], bool),
               cancels=np.array([[1, 0, 0, 0], [0, 0, 1, 0]], bool), root_wrong=0 * ones)
  rows = report.real_error_rows({"real_errors": {"t": {"adversary": costs}}})
  assert [r["search order"] for r in rows] == ["adversary", "confidence", "truth", "oracle",
                                                "random"]
  r = rows[0]
  assert r["unfoldings"] == "3.00 ± 1.00"      # seeds: mean(1, 2, 3) = 2, mean(3, 4, 5) = 4
  assert r["on cancelling"] == "3.00 ± 2.00"   # seeds: 1 and 5
  assert r["trees with an error"] == "0.750 ± 0.000"


def test_report_of_an_m_without_errors_plots_and_tabulates(tmp_path):
  """An M right at every node of every tree (a task it has learnt): the rows say 0 trees with an
  error and '—' unfoldings, and the plot says so instead of failing on an empty size list."""
  from experiments import amplification_report as report
  costs = {s: np.full((2, 3), 1.0) for s in real_errors.SCORES}
  costs.update(size=np.full((2, 3), 3), has_error=np.zeros((2, 3), bool),
               cancels=np.zeros((2, 3), bool), root_wrong=np.zeros((2, 3)))
  results = {"real_errors": {"t": {"adversary": costs}}}
  rows = report.real_error_rows(results)
  assert rows[0]["trees with an error"] == "0.000 ± 0.000" and rows[0]["unfoldings"] == "—"
  report.plot_real_errors(results, str(tmp_path / "real_errors.png"))
  assert (tmp_path / "real_errors.png").stat().st_size > 0
