"""The controls of the amplification experiment (issue 15): score sources (M's confidence, a
blind constant), Adv reading only M's answer, adversarial roots, the pick and lift metrics on
constructed cases, the α schedule as trained with, and call counts recounted at each call."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import amplification_report as report
from lprior.amplification import amplify, human, iterate, models, tasks
from lprior.xla import FAST_COMPILE

KEY = lambda i: jax.random.key(i, impl="rbg")
jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)


def test_pick_rate_exact():
  wrong = jnp.array([[True, False], [False, True], [True, True], [False, False], [True, False],
                     [False, True]])
  scores = jnp.array([[-1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, -2.0], [3.0, 1.0]])
  where = jnp.array([True, True, True, True, True, False])
  # One-wrong rows among `where`: 0 (picked right), 1 (wrong pick), 4 (wrong pick).
  assert float(iterate.pick_rate(wrong, scores, where)) == pytest.approx(1 / 3)
  assert np.isnan(float(iterate.pick_rate(wrong, scores, jnp.zeros(6, bool))))


def test_targeting_and_lift_exact():
  """recursed_on_error / subq_error on a constructed tree, and the report's lift from them."""
  task = tasks.SumMod(m=3, log2_len=1)  # slots: root, two leaves
  q = jnp.array([[1, 1, 2], [0, 1, 0], [0, 2, 0]], jnp.int32)
  truth = task.solve(q)
  model = truth.at[2].set((truth[2] + 1) % 3)  # M wrong on the second leaf only
  zeros = jnp.zeros((3,), bool)
  tree = amplify.Tree(questions=q, valid=jnp.ones(3, bool), expanded=jnp.array([1, 1, 0], bool),
                      answers=model, model_answers=model, scores=jnp.zeros(3),
                      human_reply=jnp.zeros((3, 1), jnp.int32), asked_human=zeros,
                      combine_inputs=jnp.zeros((3, 1), jnp.int32),
                      human_combined=jnp.zeros((3, 1), jnp.int32), combined_human=zeros,
                      calls=human.no_calls())
  t = iterate.targeting(task, tree)
  assert float(t["recursed_on_error"]) == 0.0 and float(t["subq_error"]) == 0.5
  tree2 = tree._replace(expanded=jnp.array([1, 0, 1], bool))
  assert float(iterate.targeting(task, tree2)["recursed_on_error"]) == 1.0
  # Over two training chunks (row 0 is step 0): lift = Σ recursed-on-error / Σ subq-error.
  h = dict(recursed_on_error=np.array([[np.nan], [1.0], [0.0]]),
           subq_error=np.array([[np.nan], [0.5], [0.5]]))
  np.testing.assert_allclose(report._lift(h), [1.0])


def test_policy_scores_exact():
  adv = jnp.array([0.5, -1.0, -3.0, 7.0])
  logits = jnp.log(jnp.array([[[0.5, 0.25, 0.25]], [[0.1, 0.8, 0.1]], [[0.2, 0.2, 0.6]],
                              [[1 / 3, 1 / 3, 1 / 3]]]))
  sub = jnp.array([False, True, True, False])
  score = lambda src: np.asarray(amplify.policy_scores(amplify.make_policy(source=src), adv,
                                                       logits, sub))
  np.testing.assert_allclose(score("adversary"), adv)
  np.testing.assert_allclose(score("confidence"), np.log([0.5, 0.8, 0.6, 1 / 3]), rtol=1e-6)
  np.testing.assert_allclose(score("blind"), np.full(4, -2.0))
  with pytest.raises(ValueError, match="score source"):
    amplify.make_policy(source="oracle")


def _first_entry_adv(x):
  """A stand-in Adv: the score of a SumMod question is −x·(its first list entry)."""
  return lambda params, inputs: -x * inputs[0][..., 1].astype(jnp.float32)


@functools.lru_cache(maxsize=None)
def _sum_models():
  task = tasks.SumMod(m=3, log2_len=3)
  fns, params = models.make_models(KEY(10), task, hidden=(16,), critic_hidden=(8,),
                                   compiler_options=FAST_COMPILE)
  return task, fns, params


def _coin_trees(source, n=4000):
  """Coin trees over one root whose halves start with 0 and 2, Adv = −first entry."""
  task, fns, params = _sum_models()
  fns = fns._replace(adv=_first_entry_adv(1.0))
  root = jnp.array([3, 0, 1, 1, 1, 2, 0, 0, 0], jnp.int32)
  policy = amplify.make_policy("coin", temperature=0.5, source=source)
  run = jit(lambda k: amplify.amplify_batch(k, task, fns, params,
                                            jnp.broadcast_to(root, (n, 9)), policy, -1.0))
  return jax.device_get(run(KEY(5)))


def test_blind_coin_recurses_as_often_but_not_where():
  """The adversary's coin recurses more on the half Adv scores low; the blind coin (the tree's
  mean score at every slot) on both halves equally."""
  adv, blind = _coin_trees("adversary"), _coin_trees("blind")
  n = adv.expanded.shape[0]
  se = lambda p: np.sqrt(p * (1 - p) / n)
  a1, a2 = adv.expanded[:, 1].mean(), adv.expanded[:, 2].mean()
  p1, p2 = jax.nn.sigmoid((-1.0 - 0.0) / 0.5), jax.nn.sigmoid((-1.0 + 2.0) / 0.5)
  assert abs(a1 - p1) < 5 * se(p1) and abs(a2 - p2) < 5 * se(p2)
  b1, b2 = blind.expanded[:, 1].mean(), blind.expanded[:, 2].mean()
  assert abs(b1 - b2) < 5 * np.sqrt(2) * se(0.5)
  # The blind score is the mean of Adv's scores over the tree's subquestions, everywhere.
  assert np.all(blind.scores == blind.scores[:, :1])


def test_adv_reading_answer_only_ignores_the_distribution():
  task = tasks.SumMod(m=3, log2_len=2)
  q = task.sample(KEY(1), 6)
  p1 = jax.nn.softmax(jax.random.normal(KEY(2), (6, 1, 3)) + 5 * jax.nn.one_hot(0, 3))
  p2 = jax.nn.softmax(jax.random.normal(KEY(3), (6, 1, 3)) + 5 * jax.nn.one_hot(0, 3))
  out = {}
  for reads in models.ADV_READS:
    fns, params = models.make_models(KEY(0), task, hidden=(8,), critic_hidden=(8,),
                                     adv_reads=reads, compiler_options=FAST_COMPILE)
    out[reads] = [np.asarray(fns.adv(params["adv"], (q, p))) for p in (p1, p2)]
  np.testing.assert_allclose(out["answer"][0], out["answer"][1])  # same argmax everywhere
  assert np.max(np.abs(out["distribution"][0] - out["distribution"][1])) > 1e-3
  with pytest.raises(ValueError, match="adv_reads"):
    models.build_models(task, adv_reads="logits")


def test_adversarial_roots_are_the_lowest_scored():
  task, fns, params = _sum_models()
  fns = fns._replace(adv=_first_entry_adv(1.0))
  cand = task.sample(KEY(4), 64)
  pick = lambda source: iterate.adversarial_roots(
      KEY(5), fns, params, cand, 16, amplify.make_policy(temperature=1e-4, source=source))
  expect = np.sort(-np.asarray(cand[:, 1]))[:16]
  np.testing.assert_array_equal(np.sort(-np.asarray(pick("adversary")[:, 1])), expect)
  # M's confidence as the score (confidence_roots): the least confident candidates.
  logits = fns.m(params["m"], cand)
  conf = np.asarray(models.quality(logits, models.decode(logits)))
  rows = lambda a: sorted(map(tuple, np.asarray(a).tolist()))
  assert rows(pick("confidence")) == rows(np.asarray(cand)[np.argsort(conf)[:16]])


def _recount(task, tree, i):
  """Walk tree i from its root calling the human on every asked question, one at a time:
  (root answer, asks, combines).  Unasked subquestions take M's answer."""
  counts = [0, 0]

  def walk(j):
    q = tree.questions[i, j]
    reply, _ = human.ask(task, jnp.asarray(q), human.no_calls())
    counts[0] += 1
    if bool(reply.is_answer):
      return np.asarray(reply.answer)
    kids = [2 * j + 1, 2 * j + 2]
    np.testing.assert_array_equal(tree.questions[i, kids], np.stack([reply.sub1, reply.sub2]))
    a = [walk(k) if tree.expanded[i, k] else tree.model_answers[i, k] for k in kids]
    counts[1] += 1
    return np.asarray(task.combine(jnp.asarray(q), jnp.asarray(a[0]), jnp.asarray(a[1])))

  return walk(0), counts[0], counts[1]


@pytest.mark.parametrize("rule", ["adversary", "coin", "random"])
def test_call_counts_recounted_at_each_call(rule):
  task, fns, params = _sum_models()
  roots = task.sample(KEY(6), 12)
  tree = jax.device_get(jit(lambda k: amplify.amplify_batch(
      k, task, fns, params, roots, amplify.make_policy(rule), -0.5))(KEY(7)))
  for i in range(12):
    answer, asks, combines = _recount(task, tree, i)
    np.testing.assert_array_equal(tree.answers[i, 0], answer)
    assert (int(tree.calls.ask[i]), int(tree.calls.combine[i])) == (asks, combines)


def test_trained_alpha_follows_the_schedule():
  """The α each step trains with (logged as the chunk mean) is `alpha_at` of its step: a
  warm-up then a linear ramp, and iterate's jump."""
  m = iterate.Method("c", "coin", alpha_start=1.0, alpha_end=-1.0, alpha_warmup=0.25)
  at = lambda step, meth, n=9: float(iterate.alpha_at(jnp.asarray(step), meth.alphas, n))
  assert [at(s, m) for s in (0, 2, 5, 8, 20)] == pytest.approx([1.0, 1.0, 0.0, -1.0, -1.0])
  jump = iterate.standard_methods(alpha=-0.3, iterate_warmup=0.5)["iterate"]
  assert at(3, jump) == iterate.NEVER_CONFIDENT and at(4, jump) == pytest.approx(-0.3)
  task = tasks.SumMod(m=3, log2_len=1)
  tr = iterate.Trainer(task, imitate=False, batch_size=4, learning_rate=1e-3, hidden=(8,),
                       critic_hidden=(8,), fast_compile=True)
  h = tr.run(jax.random.split(KEY(8), 1), m, 8, 4, task.sample(KEY(9), 16), anneal_steps=9)
  want = [np.mean([at(s, m) for s in range(c, c + 4)]) for c in (0, 4)]
  np.testing.assert_allclose(h["alpha"][1:, 0], want, rtol=1e-6)


def _reaching(calls_per_seed, reached=True):
  """A history whose accuracy jumps to 1 (or stays 0) at the given per-seed calls."""
  c = np.asarray(calls_per_seed, float)
  return dict(calls=np.stack([0 * c, c]), accuracy=np.stack([0 * c, 0 * c + float(reached)]),
              calls_per_question=np.ones((2, c.size)))


def test_attribution_shares_exact():
  """Shares and paired differences of calls to the target on constructed histories: the exact
  ratio of mean differences; an undefined share says why."""
  h = dict(random=_reaching([100, 120]), adversary=_reaching([40, 60]),
           confidence=_reaching([70, 70]), coin=_reaching([80, 80]),
           blind_coin=_reaching([80, 80]), confidence_coin=_reaching([9, 9], reached=False))
  share, se, n = report.share_of_saving({m: report.calls_to(x, 0.8) for m, x in h.items()},
                                        ("confidence", "adversary"), ("random", "adversary"))
  assert n == 2 and share == pytest.approx(20 / 60) and np.isfinite(se)
  row = report.attribution_rows({"tasks": {"t": h}}, (0.8,))[0]
  assert row["adversary over M's confidence"].startswith("0.33 ± ")
  assert row["confidence − adversary (calls)"].startswith("20 ± 10")
  assert row["coin over M's confidence coin"] == "— (confidence_coin never reached)"
  assert row["coin: where (coin over blind coin)"] == "0.00 ± 0.00"
  # No saving of the adversary over random: nothing to attribute.
  h["adversary"] = h["confidence"] = _reaching([100, 120])
  row = report.attribution_rows({"tasks": {"t": h}}, (0.8,))[0]
  assert row["adversary over M's confidence"] == "— (no saving of adversary over random beyond 2 SE)"
  # A saving within 2 SE of 0 (+10 and −5 calls): the share would be noise over noise.
  h["adversary"] = _reaching([90, 125])
  share, _, n = report.share_of_saving({m: report.calls_to(x, 0.8) for m, x in h.items()},
                                       ("confidence", "adversary"), ("random", "adversary"))
  assert n == 2 and np.isnan(share)


def test_adv_picks_m_s_error_above_chance_after_training_and_at_chance_before():
  """On Σ8 mod 3 (halves exchangeable), over held-out questions with exactly one wrong
  subquestion: at initialisation every seed's pick rate is within 4 binomial SEs of 0.5; after
  200 steps of adversary amplification every seed's is above that band, and Adv beats M's own
  confidence (paired over 8 seeds, by more than 3 SE)."""
  task = tasks.SumMod(m=3, log2_len=3)
  tr = iterate.Trainer(task, imitate=False, batch_size=32, learning_rate=3e-3, hidden=(64,),
                       critic_hidden=(64,), fast_compile=True)
  n_eval = 1000
  h = tr.run(jax.random.split(KEY(0), 8), iterate.standard_methods()["adversary"], 200, 100,
             task.sample(KEY(1), n_eval))
  band = 4 * np.sqrt(0.25 / (h["one_wrong"] * n_eval))  # 4 binomial SEs per seed
  before, after = h["adv_pick"][0], h["adv_pick"][-1]
  assert np.all(np.abs(before - 0.5) < band[0]), (before, band[0])
  assert np.all(after > 0.5 + band[-1]), (after, band[-1])
  gain = after - h["conf_pick"][-1]
  assert gain.mean() > 3 * gain.std(ddof=1) / np.sqrt(gain.size), gain
