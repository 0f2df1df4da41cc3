"""Amplification with an adversary (DESIGN §7): tasks, the simulated human, amplification trees,
the Gumbel-max and coin choices, distillation, the planted-error search, the launcher."""

import functools
import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from lprior.amplification import amplify, distill, human, iterate, models, tasks, transparency
from lprior.xla import FAST_COMPILE

KEY = lambda i: jax.random.key(i, impl="rbg")
jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)  # compiling dominates
make_models = functools.partial(models.make_models, compiler_options=FAST_COMPILE)


def _chisquare_p(observed, probs):
  """p-value of Pearson's chi-square test of counts against probabilities."""
  observed = np.asarray(observed, np.float64)
  probs = np.asarray(probs, np.float64)
  return stats.chisquare(observed, observed.sum() * probs / probs.sum()).pvalue


@functools.partial(jit, static_argnums=0)
def _decomposition_parts(task, q):
  s1, s2 = task.decompose(q)
  return dict(base=task.is_base(q), combined=task.combine(q, task.solve(s1), task.solve(s2)),
              truth=task.solve(q), base_answer=task.base_answer(q), level=task.level(q),
              sub_level=jnp.maximum(task.level(s1), task.level(s2)))


def _check_decompositions(task, q):
  """combine(true answers of the subquestions) == true answer; subquestions are one level down;
  base answers are true."""
  r = jax.device_get(_decomposition_parts(task, q))
  base = r["base"]
  np.testing.assert_array_equal(r["combined"][~base], r["truth"][~base])
  np.testing.assert_array_equal(r["base_answer"][base], r["truth"][base])
  assert np.all(r["sub_level"][~base] == r["level"][~base] - 1)
  assert base.any() and (~base).any()
  return r


def test_decompositions_exact_exhaustive():
  t = tasks.SumMod(m=3, log2_len=2)
  lists = np.array(list(itertools.product(range(3), repeat=4)))
  top = np.concatenate([np.full((len(lists), 1), 2), lists], 1)
  half = np.concatenate([np.full((len(lists), 1), 1), lists[:, :2], 0 * lists[:, 2:]], 1)
  one = np.array([[0, v, 0, 0, 0] for v in range(3)])  # base cases
  r = _check_decompositions(t, jnp.asarray(np.concatenate([top, half, one]), jnp.int32))
  np.testing.assert_array_equal(r["truth"][:len(lists), 0], lists.sum(1) % 3)

  t = tasks.PermPower(n=4, max_power=9)
  perms = np.array(list(itertools.permutations(range(4))))
  q = np.array([[k, *p] for k in range(1, 10) for p in perms], np.int32)
  r = _check_decompositions(t, jnp.asarray(q))
  want = np.tile(np.arange(4), (len(q), 1))  # p applied k times, plainly
  for step in range(9):
    want = np.where(q[:, :1] > step, np.take_along_axis(q[:, 1:], want, 1), want)
  np.testing.assert_array_equal(r["truth"], want)


@pytest.mark.parametrize("task", [tasks.SumMod(7, 6), tasks.PermPower(6, 100)],
                         ids=lambda t: t.name)
def test_decompositions_exact_random(task):
  q = task.sample(KEY(0), 3000, all_levels=True)
  r = _check_decompositions(task, q)
  assert r["level"].max() == task.depth


@functools.partial(jit, static_argnums=0)
def _hch_each(task, q):
  """The HCH answer and calls of each question separately."""
  return jax.vmap(lambda x: human.hch(task, x, human.no_calls()))(q)


def test_hch_call_counts_exact():
  task = tasks.SumMod(m=5, log2_len=2)
  q = task.sample(KEY(1), 200, all_levels=True)
  answer, calls = _hch_each(task, q)
  np.testing.assert_array_equal(answer, task.solve(q))
  k = np.asarray(q[:, 0])
  np.testing.assert_array_equal(calls.ask, 2 ** (k + 1) - 1)  # every node of the full tree
  np.testing.assert_array_equal(calls.combine, 2 ** k - 1)    # every internal node
  assert len(np.unique(k)) == 3

  task = tasks.PermPower(n=5, max_power=4)
  q = task.sample(KEY(2), 200)
  answer, calls = _hch_each(task, q)
  np.testing.assert_array_equal(answer, task.solve(q))
  k = np.asarray(q[:, 0])  # the tree of p**k has k leaves (all p**1)
  np.testing.assert_array_equal(calls.ask, 2 * k - 1)
  np.testing.assert_array_equal(calls.combine, k - 1)


@functools.lru_cache(maxsize=None)
def _amplifier(task, imitate):
  """(fns, params, jitted (key, params, policy, alpha, roots) -> (roots, their Tree, true
  answers at every slot, base-case mask)) for a task; roots=None: 200 fresh ones."""
  fns, params = make_models(KEY(10), task, hidden=(16,), critic_hidden=(8,), imitate=imitate)

  def run(key, params, policy, alpha, roots):
    tree = amplify.amplify_batch(key, task, fns, params, roots, policy, alpha)
    return roots, tree, task.solve(tree.questions), task.is_base(tree.questions)

  sample = jit(lambda key: task.sample(key, 200))
  return fns, params, lambda k, p, pol, a, r=None: jit(run)(
      k, p, pol, a, sample(jax.random.fold_in(k, 1)) if r is None else r)


def _amplify(task, rule, seed=0, imitate=False, params=None, alpha=0.0, roots=None, **kw):
  """(roots, Tree, true answers, base mask) as numpy."""
  _, params0, run = _amplifier(task, imitate)
  return jax.device_get(run(KEY(seed), params or params0, amplify.make_policy(rule, **kw),
                            jnp.float32(alpha), roots))


def _constant_critic(params, value):
  """Adv parameters whose score is `value` everywhere (last layer: zero weights, bias value)."""
  adv = jax.tree.map(lambda x: x, params["adv"])
  last = max(adv["params"], key=lambda name: int(name.split("_")[-1]))
  adv["params"][last] = dict(kernel=0 * adv["params"][last]["kernel"],
                             bias=0 * adv["params"][last]["bias"] + value)
  return {**params, "adv": adv}


def test_amplify_calls_and_answers():
  task = tasks.SumMod(m=3, log2_len=3)
  roots, tree, truth, base = _amplify(task, "always")
  np.testing.assert_array_equal(tree.answers, np.where(tree.valid[..., None], truth, tree.answers))
  assert tree.valid.all() and tree.expanded.all()  # the full HCH tree, all true
  np.testing.assert_array_equal(tree.calls.ask, 15)      # = human.hch's count (tested above)
  np.testing.assert_array_equal(tree.calls.combine, 7)
  for rule, (asks, combines) in {"adversary": (4, 3), "random": (4, 3), "none": (1, 1)}.items():
    _, tree, truth, base = _amplify(task, rule)
    np.testing.assert_array_equal(tree.calls.ask, asks)
    np.testing.assert_array_equal(tree.calls.combine, combines)
    assert np.all(tree.expanded.sum(1) == asks) and np.all(tree.expanded[:, 0])
    # An asked node's answer combines its children's answers (recursed on, or M's).
    internal = tree.expanded & ~base
    kids = (tree.answers[:, 1::2][:, :7] + tree.answers[:, 2::2][:, :7]) % 3
    np.testing.assert_array_equal(tree.answers[:, :7][internal[:, :7]], kids[internal[:, :7]])
    # Leaves that were asked hold the human's (true) answer; others hold M's.
    np.testing.assert_array_equal(tree.answers[tree.expanded & base], truth[tree.expanded & base])
    np.testing.assert_array_equal(tree.answers[~tree.expanded], tree.model_answers[~tree.expanded])
  _, tree, _, _ = _amplify(task, "coin", temperature=0.5)
  total = tree.calls.total
  assert total.min() >= 2 and total.max() <= 22 and len(np.unique(total)) > 2


def test_iteration_threshold_stops_recursion():
  task = tasks.SumMod(m=3, log2_len=3)
  params = _amplifier(task, False)[1]
  run = lambda score: _amplify(task, "adversary", params=_constant_critic(params, score),
                               stop_if_confident=True, temperature=0.1)[1]
  sure = run(5.0)  # Adv: M is surely right, so no subquestion is recursed on
  np.testing.assert_array_equal(sure.calls.ask, 1)
  np.testing.assert_array_equal(sure.calls.combine, 1)
  np.testing.assert_array_equal(run(-5.0).calls.total, 7)
  # At S = α the coin is fair: each chosen subquestion is kept with probability 1/2.
  depth_reached = run(0.0).calls.ask - 1  # 0..3
  for d, p in [(1, 0.5), (2, 0.25)]:
    frac = np.mean(depth_reached >= d)
    assert abs(frac - p) < 5 * np.sqrt(p * (1 - p) / 200), (d, frac)


def test_gumbel_choice_samples_boltzmann():
  scores = jnp.array([0.0, -1.0, 0.5, -2.0])
  t, n = 0.7, 40_000
  picks = jit(amplify.gumbel_choice)(KEY(3), jnp.broadcast_to(scores, (n, 4)), t)
  observed = np.bincount(np.asarray(picks), minlength=4)
  probs = jax.nn.softmax(-scores / t)
  assert _chisquare_p(observed, probs) > 1e-4, (observed, probs)


def test_biased_coin_probability():
  s = jnp.array([-2.0, -0.5, 0.0, 1.0])
  alpha, t, n = -0.3, 0.4, 40_000
  flips = jit(amplify.biased_coin)(KEY(4), jnp.broadcast_to(s, (n, 4)), alpha, t)
  p = np.asarray(jax.nn.sigmoid((alpha - s) / t))
  se = np.sqrt(p * (1 - p) / n)
  assert np.all(np.abs(np.asarray(flips).mean(0) - p) < 5 * se + 1e-9)


def test_amplify_recurses_where_adversary_scores_low():
  """Through amplify: the root's recursed child follows softmax(-S/T) over Adv's scores."""
  task = tasks.SumMod(m=3, log2_len=3)
  params = _amplifier(task, False)[1]
  # An Adv that scores a subquestion -x0/2, x0 its first list entry: one hidden unit reads the
  # one-hot of token 1 (its value), the output takes -1/2 of it.
  adv = jax.tree.map(jnp.zeros_like, params["adv"])
  v = task.vocab
  adv["params"]["Dense_0"]["kernel"] = adv["params"]["Dense_0"]["kernel"].at[
      v:2 * v, 0].set(jnp.arange(v, dtype=jnp.float32))
  adv["params"]["Dense_1"]["kernel"] = adv["params"]["Dense_1"]["kernel"].at[0, 0].set(-0.5)
  root = jnp.array([3, 0, 1, 1, 1, 2, 0, 0, 0], jnp.int32)  # halves start with 0 and 2
  roots = jnp.broadcast_to(root, (200, task.question_len))
  t = 0.8
  counts = sum(_amplify(task, "adversary", seed=s, params={**params, "adv": adv}, roots=roots,
                        temperature=t)[1].expanded[:, 1:3].sum(0) for s in range(10))
  assert counts.sum() == 2000
  probs = jax.nn.softmax(-jnp.array([0.0, -1.0]) / t)
  assert _chisquare_p(counts, probs) > 1e-4, (counts, probs)


def test_distillation_uses_imitators_only():
  task = tasks.SumMod(m=3, log2_len=1)
  fns, params, _ = _amplifier(task, True)
  tree = jit(lambda k, p: distill.distill(k, task, fns, p, task.sample(k, 8, all_levels=True)))(
      KEY(2), params)
  assert int(tree.calls.total.sum()) == 0  # H′ = the imitators throughout
  assert np.all(np.asarray(tree.expanded) == (np.arange(3) == 0))  # one level, root asked
  with pytest.raises(ValueError, match="imitators"):
    distill.distill(KEY(2), task, fns._replace(dec=None), params, tree.questions[:, 0])


def test_planted_error_search():
  task, n = tasks.SumMod(3, 5), 64
  critic, params, losses = transparency.train_critic(KEY(8)[None], task, steps=5, batch_size=8,
                                                     hidden=(8,),
                                                     compiler_options=FAST_COMPILE)
  assert losses.shape == (1, 5) and np.all(np.isfinite(losses))
  params = jax.tree.map(lambda x: x[0], params)

  @jit
  def plant_and_search(key):
    trees = transparency.plant_errors(key, task, n)
    return (trees, task.solve(trees.questions),
            transparency.search_costs(jax.random.fold_in(key, 1), task, trees, critic, params))

  trees, truth, costs = jax.device_get(plant_and_search(KEY(7)))
  wrong = np.any(trees.answers != truth, -1) & trees.valid
  err, depth, size = trees.error, costs["error_depth"], costs["size"]
  assert np.all(wrong[:, 0]) and np.all(wrong[np.arange(n), err])
  np.testing.assert_array_equal(depth, np.floor(np.log2(err + 1)))
  assert np.all(wrong.sum(1) == depth + 1)  # exactly the path root → error is wrong
  np.testing.assert_array_equal(costs["oracle"], depth + 1)  # straight down that path
  for name in ("critic", "random"):  # any order finds it, after its ancestors, within n
    assert np.all((costs[name] >= depth + 1) & (costs[name] <= size)), name
  assert size.max() == 63 and np.mean(costs["random"]) > np.mean(costs["oracle"]) + 1


def test_bad_config_raises():
  with pytest.raises(ValueError, match="rule"):
    amplify.make_policy("greedy")
  with pytest.raises(ValueError, match="m must be an int"):
    tasks.SumMod(m=1)
  with pytest.raises(ValueError, match="unknown task"):
    tasks.make_task("sort")
  with pytest.raises(ValueError, match="imitators"):
    iterate.Trainer(tasks.SumMod(3, 1), imitate=False, batch_size=4, learning_rate=1e-3,
                    hidden=(8,), critic_hidden=(8,)).run(
                        jax.random.split(KEY(0), 2), iterate.standard_methods()["iterate"], 2, 1,
                        tasks.SumMod(3, 1).sample(KEY(1), 4))


def test_launcher_smoke(tmp_path):
  from experiments.amplification import run
  from experiments.configs.amplification import get_config

  c = get_config("smoke")
  c.methods, c.tasks, c.num_steps.sum, c.eval_every, c.num_eval = "adversary", "sum", 20, 10, 100
  c.transparency.tasks = ""  # tested on its own above
  text = run(c, str(tmp_path))
  for name in ("results.json", "table.md", "accuracy_vs_calls.png", "metrics.jsonl"):
    assert (tmp_path / name).stat().st_size > 0, name
  assert "| sum_mod3_len4 | adversary |" in text
  res = json.loads((tmp_path / "results.json").read_text())
  runs = res["tasks"]["sum_mod3_len4"]
  # Calls per step: 16 questions, each a list of 4 costing 3 asks + 2 combines on one path.
  np.testing.assert_array_equal(np.asarray(runs["adversary"]["calls"]), [[0, 0], [800, 800],
                                                                         [1600, 1600]])
