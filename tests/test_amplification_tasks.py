"""The amplification tasks with uneven difficulty: ChainSum, ZipfLookup, PooledLookup, MixedOps
(tasks.py)."""

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lprior.amplification import human, tasks
from lprior.xla import FAST_COMPILE

KEY = lambda i: jax.random.key(i, impl="rbg")
jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)  # compiling dominates

NEW_TASKS = [tasks.ChainSum(m=3, length=5),
             tasks.ZipfLookup(m=5, log2_len=3, num_keys=16, zipf_a=1.2, table_seed=3),
             tasks.PooledLookup(m=5, log2_len=2, num_keys=64, common_keys=4, table_seed=3),
             tasks.MixedOps(m=7, log2_len=3, p_easy=0.5)]


@functools.partial(jit, static_argnums=(0, 2, 3))
def _sample(task, key, n, all_levels=False):
  return task.sample(key, n, all_levels=all_levels)


@functools.partial(jit, static_argnums=0)
def _some_and_full(task, key):
  k1, k2 = jax.random.split(key)
  return task.sample(k1, 600, all_levels=True), task.sample(k2, 200)


@functools.partial(jit, static_argnums=0)
def _decompose_solve(task, q):
  return task.decompose(q), task.base_answer(q), task.solve(q)


@functools.partial(jit, static_argnums=0)
def _parts(task, q):
  s1, s2 = task.decompose(q)
  return dict(truth=task.solve(q), hch=human.hch(task, q, human.no_calls())[0],
              combined=task.combine(q, task.solve(s1), task.solve(s2)), base=task.is_base(q),
              base_answer=task.base_answer(q), level=task.level(q), level1=task.level(s1),
              level2=task.level(s2), s1=s1, s2=s2)


def _check(task, q):
  """solve == HCH; combine(solved subquestions) == solve; base answers are true; subquestions
  are one level down (ChainSum: the first one is a base case); every token is in range."""
  q = jnp.asarray(q, jnp.int32)
  r = jax.device_get(_parts(task, q))
  base, level = r["base"], r["level"]
  assert r["truth"].shape == (len(q), task.answer_len)
  np.testing.assert_array_equal(r["hch"], r["truth"])
  np.testing.assert_array_equal(r["combined"][~base], r["truth"][~base])
  np.testing.assert_array_equal(r["base_answer"][base], r["truth"][base])
  want1 = 0 if isinstance(task, tasks.ChainSum) else level[~base] - 1
  np.testing.assert_array_equal(r["level1"][~base], want1)
  np.testing.assert_array_equal(r["level2"][~base], level[~base] - 1)
  for a in (np.asarray(q), r["s1"], r["s2"]):  # also on base questions' (unused) subquestions
    assert a.shape == (len(q), task.question_len)
    assert a.min() >= 0 and a.max() < task.q_vocab
  assert r["truth"].min() >= 0 and r["truth"].max() < task.a_vocab
  assert level.min() >= 0 and level.max() <= task.depth
  return r


@pytest.mark.parametrize("task", NEW_TASKS, ids=lambda t: t.name)
def test_decompositions_exact_random(task):
  some, full = _some_and_full(task, KEY(0))
  r = _check(task, jnp.concatenate([some, full]))
  np.testing.assert_array_equal(np.unique(r["level"][:600]), np.arange(task.depth + 1))
  np.testing.assert_array_equal(r["level"][600:], task.depth)
  assert full.shape == (200, task.question_len) and full.dtype == jnp.int32


def _chain_brute(q):
  return sum(q[1:1 + q[0]]) % 2


def _mixed_brute(x, ops, m, s, n):
  """The value of the segment [s, s + n) of the expression, by its definition."""
  if n == 1:
    return x[s]
  h = n // 2
  a1, a2 = _mixed_brute(x, ops, m, s, h), _mixed_brute(x, ops, m, s + h, h)
  return {0: a1, 1: (a1 + a2) % m, 2: (a1 * a2) % m}[ops[s + h - 1]]


def test_decompositions_exhaustive():
  t = tasks.ChainSum(m=2, length=3)
  q = np.array([[k, *x, *[0] * (3 - k)] for k in range(1, 4)
                for x in itertools.product(range(2), repeat=k)])
  r = _check(t, q)
  np.testing.assert_array_equal(r["truth"][:, 0], [_chain_brute(row) for row in q])
  np.testing.assert_array_equal(r["level"], q[:, 0] - 1)

  m, size = 3, 4
  t = tasks.MixedOps(m=m, log2_len=2, p_easy=0.3)
  q = []
  for level in range(3):
    n = 2 ** level
    for x in itertools.product(range(m), repeat=n):
      for ops in itertools.product(range(3), repeat=n - 1):
        q.append([level, *x, *[0] * (size - n), *ops, *[0] * (size - n + 1)])
  q = np.array(q)
  r = _check(t, q)
  want = [_mixed_brute(row[1:1 + size], row[1 + size:], m, 0, 2 ** row[0]) for row in q]
  np.testing.assert_array_equal(r["truth"][:, 0], want)
  assert len(q) == 3 + 9 * 3 + 81 * 27

  t = tasks.ZipfLookup(m=3, log2_len=1, num_keys=4, table_seed=7)
  table = np.random.default_rng(7).integers(0, 3, 4)
  q = np.array([[0, k, 0] for k in range(4)] + [[1, a, b] for a in range(4) for b in range(4)])
  r = _check(t, q)
  want = [(table[a] + (table[b] if level == 1 else 0)) % 3 for level, a, b in q]
  np.testing.assert_array_equal(r["truth"][:, 0], want)


def test_chain_levels_and_sizes():
  t = tasks.ChainSum(m=4, length=5)
  assert (t.question_len, t.q_vocab, t.a_vocab, t.depth, t.answer_len) == (6, 6, 4, 4, 1)
  full = np.asarray(_sample(t, KEY(2), 50))
  assert np.all(full[:, 0] == 5)
  q = np.asarray(_sample(t, KEY(3), 400, True))
  assert set(q[:, 0]) == {1, 2, 3, 4, 5}
  assert np.all(q[:, 1:][np.arange(5) >= q[:, :1]] == 0)  # entries at i >= k are 0
  (s1, s2), _, _ = jax.device_get(_decompose_solve(t, jnp.asarray(q)))
  np.testing.assert_array_equal(s1[:, :2], np.stack([np.ones(400), q[:, 1]], 1))
  assert np.all(s1[:, 2:] == 0)  # the trivial part: [1, x_0, 0, …]
  deep = q[:, 0] > 1
  np.testing.assert_array_equal(s2[deep, 0], q[deep, 0] - 1)
  np.testing.assert_array_equal(s2[deep, 1:-1], q[deep, 2:])  # [k-1, x_1, …, x_{k-1}, 0, …]
  assert tasks.ChainSum(length=1).depth == 0


def test_zipf_key_frequencies():
  t = tasks.ZipfLookup(m=5, log2_len=2, num_keys=16, zipf_a=1.2)
  q = np.asarray(_sample(t, KEY(4), 5000))  # 20k keys
  keys = q[:, 1:].ravel()
  n = keys.size
  counts = np.bincount(keys, minlength=16)
  p = t.key_probs()
  assert p.shape == (16,) and math.isclose(p.sum(), 1.0)
  assert np.all(np.diff(p) < 0)
  np.testing.assert_allclose(np.exp(np.asarray(t.key_log_probs())), p, rtol=1e-5)
  np.testing.assert_allclose(p / p[0], np.arange(1, 17) ** -1.2)
  se = np.sqrt(n * p * (1 - p))
  assert np.all(np.abs(counts - n * p) < 4 * se), (counts, n * p)
  np.testing.assert_allclose(tasks.ZipfLookup(zipf_a=0).key_probs(), np.full(64, 1 / 64))


def test_pooled_key_frequencies_and_table():
  """Each position draws the common pool with probability common_share, then a key uniformly
  in its pool (binomial bounds at 4 SE); the table is the one ZipfLookup keys with that seed."""
  t = tasks.PooledLookup(m=5, log2_len=2, num_keys=40, common_keys=8, common_share=0.7)
  keys = np.asarray(_sample(t, KEY(5), 5000))[:, 1:].ravel()  # 20k keys
  p = t.key_probs()
  np.testing.assert_allclose(p[:8], 0.7 / 8)
  np.testing.assert_allclose(p[8:], 0.3 / 32)
  np.testing.assert_allclose(np.exp(np.asarray(t.key_log_probs())), p, rtol=1e-5)
  counts, n = np.bincount(keys, minlength=40), keys.size
  assert np.all(np.abs(counts - n * p) < 4 * np.sqrt(n * p * (1 - p))), (counts, n * p)
  rare = (keys >= 8).mean()
  assert abs(rare - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n)
  np.testing.assert_array_equal(np.asarray(t.table), np.asarray(
      tasks.ZipfLookup(m=5, num_keys=40, table_seed=0).table))
  assert t.name == "pooled_mod5_len4_keys40_common8x0.7_seed0"
  for bad in (dict(common_keys=40), dict(common_keys=0), dict(common_share=1.5)):
    with pytest.raises(ValueError, match=next(iter(bad))):
      tasks.PooledLookup(num_keys=40, **bad)


def test_zipf_table_and_base_answer():
  t = tasks.ZipfLookup(m=7, num_keys=50, table_seed=11)
  table = np.asarray(t.table)
  np.testing.assert_array_equal(table, np.random.default_rng(11).integers(0, 7, 50))
  np.testing.assert_array_equal(np.asarray(tasks.ZipfLookup(m=7, num_keys=50,
                                                            table_seed=11).table), table)
  other = np.asarray(tasks.ZipfLookup(m=7, num_keys=50, table_seed=12).table)
  assert (other != table).any()
  assert t == tasks.ZipfLookup(m=7, num_keys=50, table_seed=11)
  assert hash(t) == hash(tasks.ZipfLookup(m=7, num_keys=50, table_seed=11))
  assert t != tasks.ZipfLookup(m=7, num_keys=50, table_seed=12)
  assert table.min() >= 0 and table.max() < 7
  q = _sample(t, KEY(5), 300, True)
  assert int(q.max()) < t.q_vocab
  base = np.asarray(q[q[:, 0] == 0])
  assert len(base)
  _, answer, truth = jax.device_get(_decompose_solve(t, jnp.asarray(base)))
  np.testing.assert_array_equal(answer[:, 0], table[base[:, 1]])
  np.testing.assert_array_equal(truth[:, 0], table[base[:, 1]])
  assert np.all(np.asarray(q)[:, 1:][np.arange(4) >= 2 ** np.asarray(q)[:, :1]] == 0)


def test_mixed_sampling():
  t = tasks.MixedOps(m=5, log2_len=3, p_easy=0.3)
  t1, t0 = tasks.MixedOps(m=5, log2_len=3, p_easy=1.0), tasks.MixedOps(m=5, log2_len=3, p_easy=0)

  @jit
  def draw(key):
    k = jax.random.split(key, 4)
    ones = t1.sample(k[2], 100, all_levels=True)
    return (t.sample(k[0], 2000), t.sample(k[1], 500, all_levels=True), ones, t1.solve(ones),
            t0.sample(k[3], 100))

  q, some, ones, ones_answer, zeros = jax.device_get(draw(KEY(6)))
  x, ops = q[:, 1:9], q[:, 9:]
  assert np.all(ops[:, 7] == 0) and x.max() < 5
  inner = ops[:, :7].ravel()
  assert abs(np.mean(inner == 0) - 0.3) < 0.02
  assert abs(np.mean(inner == 1) - 0.35) < 0.02 and abs(np.mean(inner == 2) - 0.35) < 0.02
  q = some
  n = 2 ** q[:, :1]
  assert np.all(q[:, 1:9][np.arange(8) >= n] == 0) and np.all(q[:, 9:][np.arange(8) >= n - 1] == 0)
  # all "left": the answer is x_0; no "left": every op is add or mul
  np.testing.assert_array_equal(ones_answer, ones[:, 1:2])
  assert np.all(ones[:, 9:] == 0) and np.all(zeros[:, 9:16] > 0)


@pytest.mark.parametrize("cls,kwargs,field", [
    (tasks.ChainSum, dict(m=1), "m"), (tasks.ChainSum, dict(length=0), "length"),
    (tasks.ChainSum, dict(length=17), "length"), (tasks.ChainSum, dict(m=2.0), "m"),
    (tasks.ZipfLookup, dict(num_keys=1), "num_keys"), (tasks.ZipfLookup, dict(m=1), "m"),
    (tasks.ZipfLookup, dict(zipf_a=-0.5), "zipf_a"), (tasks.ZipfLookup, dict(zipf_a="1"), "zipf_a"),
    (tasks.ZipfLookup, dict(zipf_a=float("nan")), "zipf_a"),
    (tasks.ZipfLookup, dict(table_seed=-1), "table_seed"),
    (tasks.ZipfLookup, dict(log2_len=13), "log2_len"),
    (tasks.MixedOps, dict(p_easy=1.5), "p_easy"), (tasks.MixedOps, dict(p_easy=-0.1), "p_easy"),
    (tasks.MixedOps, dict(p_easy=True), "p_easy"), (tasks.MixedOps, dict(m=50000), "m"),
    (tasks.MixedOps, dict(log2_len=13), "log2_len")])
def test_bad_parameters(cls, kwargs, field):
  with pytest.raises(ValueError, match=field):
    cls(**kwargs)


def test_make_task():
  assert tasks.make_task("chain", m=2, length=4) == tasks.ChainSum(2, 4)
  assert tasks.make_task("lookup", num_keys=8, zipf_a=2.0) == tasks.ZipfLookup(num_keys=8,
                                                                               zipf_a=2.0)
  assert tasks.make_task("mixed", m=3, p_easy=0.1) == tasks.MixedOps(m=3, p_easy=0.1)
  for kind in ("chain", "lookup", "mixed"):
    t = tasks.make_task(kind)
    assert t.kind == kind and tasks.TASKS[kind] is type(t) and isinstance(t.name, str)
    assert t.vocab >= max(t.q_vocab, t.a_vocab)
  with pytest.raises(ValueError, match="unknown task"):
    tasks.make_task("nope")
