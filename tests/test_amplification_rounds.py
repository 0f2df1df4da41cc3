"""The post's step-5 loop: PointerChase (a task whose combine returns new subquestions), the
human's HCH tree with rounds, and amplification over it (rounds.py)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lprior.amplification import amplify, human, iterate, models, rounds, tasks
from lprior.xla import FAST_COMPILE

KEY = lambda i: jax.random.key(i, impl="rbg")
jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)


class OneRoundChase(tasks.PointerChase):
  """A mutant: the same task with the loop cut after the first combine."""
  rounds = 1


def _every_question(task):
  k, x = np.meshgrid(np.arange(task.max_steps + 1), np.arange(task.n), indexing="ij")
  return jnp.asarray(np.stack([k.ravel(), x.ravel()], 1), jnp.int32)


@functools.partial(jit, static_argnums=0)
def _hch(task, q):
  return jax.vmap(lambda x: human.hch(task, x, human.no_calls()))(q)


def test_chase_needs_the_loop_and_hch_counts_are_exact():
  task = tasks.PointerChase(n=8, max_steps=8, table_seed=1)
  q = _every_question(task)
  k = np.asarray(q[:, 0])
  truth = np.asarray(task.solve(q))
  # T**k by repeated lookup in the permutation (independent of the powers table).
  perm = np.asarray(task.powers[1])
  want = np.asarray(q[:, 1]).copy()
  for j in range(task.max_steps):
    want = np.where(k > j, perm[want], want)
  np.testing.assert_array_equal(truth, np.stack([k, want], 1))

  answer, calls = jax.device_get(_hch(task, q))
  np.testing.assert_array_equal(answer, truth)
  # asks(k) = 3 + asks(⌊k/2⌋) + asks(⌈k/2⌉), asks(1) = 1; combines(k) = 2 + the same, 0.
  np.testing.assert_array_equal(calls.ask, np.where(k >= 1, 4 * k - 3, 1))
  np.testing.assert_array_equal(calls.combine, np.where(k >= 1, 2 * k - 2, 0))

  # The first combine of a non-base question returns subquestions, the second answers.
  inner = k >= 2
  s1, s2 = task.decompose(q)
  first = jax.device_get(task.combine_step(q, task.solve(s1), task.solve(s2)))
  assert not first[0][inner].any()
  second = jax.device_get(task.combine_step(q, task.solve(first[2]), task.solve(first[3])))
  assert second[0][inner].all()
  np.testing.assert_array_equal(second[1][inner], truth[inner])
  # Cut after one round, the human answers with the first leg only: wrong wherever
  # T**⌊k/2⌋(x) ≠ T**k(x).
  cut = np.asarray(_hch(OneRoundChase(n=8, max_steps=8, table_seed=1), q)[0])
  assert np.mean(np.all(cut == truth, -1)[inner]) < 0.3


@functools.lru_cache(maxsize=None)
def _setup():
  task = tasks.PointerChase(n=8, max_steps=4, table_seed=2)
  fns, params = models.make_models(KEY(0), task, hidden=(16,), critic_hidden=(8,),
                                   imitate=False, compiler_options=FAST_COMPILE)
  oracle = fns._replace(m=lambda p, q: 30.0 * jax.nn.one_hot(task.solve(q), task.a_vocab))

  @functools.partial(jit, static_argnums=0)
  def run(use_oracle, key, policy, roots):
    return rounds.amplify_any_batch(key, task, oracle if use_oracle else fns, params, roots,
                                    policy)

  roots = task.sample(KEY(1), 128)
  return task, fns, params, run, roots


def test_amplify_rounds_counts_and_answers():
  task, _, _, run, roots = _setup()
  truth = np.asarray(task.solve(roots))
  slots = rounds.num_slots(task)
  assert slots == 21 and rounds.max_one_path(task) == 7

  tree = jax.device_get(run(False, KEY(2), amplify.make_policy("always"), roots))
  assert tree.questions.shape == (128, slots, 2)
  np.testing.assert_array_equal(tree.answers[:, 0], truth)  # the full HCH tree
  np.testing.assert_array_equal(tree.calls.ask, 13)         # 4k − 3, k = 4
  np.testing.assert_array_equal(tree.calls.combine, 6)      # 2k − 2
  np.testing.assert_array_equal(tree.expanded.sum(1), tree.calls.ask)
  np.testing.assert_array_equal(task.solve(tree.questions)[tree.expanded],
                                tree.answers[tree.expanded])

  # Untrained M without recursion: the root's second round asks about M's (wrong) first leg.
  tree = jax.device_get(run(False, KEY(2), amplify.make_policy("none"), roots))
  np.testing.assert_array_equal(tree.calls.ask, 1)
  assert np.mean(np.all(tree.answers[:, 0] == truth, -1)) < 0.5
  leg1, leg2 = 1, 1 + 2 * 5  # pre-order slots: subtrees of depth 1 hold 5 nodes
  second = tree.model_answers[:, 6, 0] == 0  # M's check answered "0 steps": it answered at once
  np.testing.assert_array_equal(tree.questions[~second, leg2, 1],
                                tree.model_answers[~second, leg1, 1])
  np.testing.assert_array_equal(tree.calls.combine, np.where(second, 1, 2))

  # A right M: every rule answers right; each asked internal node runs both rounds, the
  # second from where the first leg ends.
  k = np.asarray(roots[:, 0])
  second_leg = np.stack([k - k // 2, np.asarray(task.solve(task.decompose(roots)[0]))[:, 1]], 1)
  for rule in ("none", "random", "adversary", "coin"):
    tree = jax.device_get(run(True, KEY(3), amplify.make_policy(rule), roots))
    np.testing.assert_array_equal(tree.answers[:, 0], truth)
    asked_inner = tree.expanded & (np.asarray(task.level(tree.questions)) > 0)
    np.testing.assert_array_equal(tree.calls.combine, 2 * asked_inner.sum(1))
    np.testing.assert_array_equal(tree.expanded.sum(1), tree.calls.ask)
    np.testing.assert_array_equal(tree.questions[:, leg2], second_leg)
    if rule in ("random", "adversary"):
      assert tree.calls.ask.min() >= 3 and tree.calls.ask.max() <= 7
      assert len(np.unique(tree.calls.ask)) > 1


def test_loop_refusals_and_a_training_step():
  task, fns, params, _, _ = _setup()
  with pytest.raises(ValueError, match="step-5 loop"):
    iterate.Trainer(task, imitate=True, batch_size=4, learning_rate=1e-3, hidden=(8,),
                    critic_hidden=(8,))
  with pytest.raises(ValueError, match="new subquestions"):
    amplify.amplify(KEY(0), task, fns, params, task.sample(KEY(1), 1)[0],
                    amplify.make_policy("random"))
  tr = iterate.Trainer(task, imitate=False, batch_size=8, learning_rate=1e-2, hidden=(16,),
                       critic_hidden=(8,), fast_compile=True)
  keys = jax.random.split(KEY(4), 2)
  history = tr.run(keys, iterate.standard_methods()["adversary"], 4, 4,
                   task.sample(KEY(5), 64))
  assert history["step"][-1].tolist() == [4, 4]
  # Four batches of 8 roots (k = 4), each 1 to 7 asks and up to 2 combines per asked internal
  # node (one, where M's check answer ends the loop early).
  assert np.all((history["calls"][-1] >= 4 * 8 * 2) & (history["calls"][-1] <= 4 * 8 * 13))
  assert np.all(np.isfinite(history["m_loss"][-1]))
