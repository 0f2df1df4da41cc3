"""Learning the prior with a Z too large to read whole (issue 16 item 3): the human's prior over
groups of fields from bounded k-way judgments, questions that read a few fields, the sparse
neighbour differences, and the block-Gibbs gold, each held against enumeration on a small
instance of the same task."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lprior import conjunction
from lprior.ltp import exact, gibbs, prior, tasks, train
from lprior.ltp import human as hm
from lprior.xla import FAST_COMPILE

jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)
KEY = lambda i: jax.random.key(i, impl="rbg")


def _small(**kw):
  """3 synonym sets of 3 words, 2 seen: 9 fields, 512 hypotheses (enumerable)."""
  return tasks.synonyms(**{"num_sets": 3, "set_size": 3, "seen": 2, "reads": 2, **kw})


def _draw(task, key, n, shifted=False):
  sampler = task.sample_shifted if shifted else task.sample_train
  return jit(sampler, static_argnums=1)(key, n)


def test_grouped_prior_is_normalised_and_read_locally(x64):
  h = _small().human
  zs = jnp.asarray(h.space.enumerate())
  lp = hm.log_prior(h, zs)
  assert abs(float(jax.nn.logsumexp(lp))) < 1e-9
  # a one-field change read from the field and its group equals the difference of two priors
  nb = prior.neighbours(h.space, zs)                                      # (|Z|, K, L, K)
  full = hm.log_prior(h, nb) - lp[:, None, None]
  np.testing.assert_allclose(hm.neighbour_log_ratios(h, zs), full, atol=1e-9)
  # the human believes synonyms agree: all-agreeing sets are the most probable
  best = h.space.enumerate()[int(jnp.argmax(lp))].reshape(3, 3)
  assert np.all(best == best[:, :1])


def test_synonym_prior_keeps_the_humans_two_way_judgments_and_no_more(x64):
  """The max-ent completion matches every 1- and 2-way marginal of the human's belief (and the
  3-way ones, fixed here by the belief's symmetry under flipping every word) but not P(all four
  words positive): bounded judgments do not fix it.  Order 1 is the independence product."""
  g, agree = 4, 0.9
  belief = tasks.synonym_belief(g, agree)
  pot = tasks.synonym_log_potential(g, agree, 2)
  joint = np.exp(pot - g * np.log(2.0))
  assert abs(joint.sum() - 1) < 1e-9
  got = conjunction.from_joint(jnp.asarray(joint), 3)
  want = conjunction.from_joint(jnp.asarray(belief), 3)
  for order in (0, 1, 2):
    np.testing.assert_allclose(got.tensors[order], want.tensors[order], atol=1e-8)
  assert abs(joint[-1] - belief[-1]) > 1e-3  # P(all four true): 0.3281 believed, 0.3340 max-ent
  assert np.all(tasks.synonym_log_potential(g, agree, 1) == 0)


def test_questions_read_few_fields_and_d_star_reads_only_unseen_words():
  task = tasks.synonyms()
  h = task.human
  assert h.space.size > 2 ** 500 and h.space.log10_size > 150
  x, y = _draw(task, KEY(0), 256)
  xs, _ = _draw(task, KEY(1), 256, shifted=True)
  assert np.all((np.asarray(x) != 0).sum(1) == h.reads)
  seen = np.zeros((128, 4), bool)
  seen[:, :2] = True
  read_d, read_star = np.abs(x).max(0) > 0, np.abs(xs).max(0) > 0
  assert read_d[~seen.reshape(-1)].sum() == 0 and read_star[seen.reshape(-1)].sum() == 0
  # the forecast from what the human reads equals the forecast from the whole question
  z = jnp.asarray(task.truth)
  idx, vals = hm.read(h, x)
  np.testing.assert_allclose(hm.forecast_at(h, idx, z[idx], vals), hm.forecast(h, z, x),
                             rtol=1e-5, atol=1e-5)
  # premise: the generating Z mostly agrees within a set (the prior is right where D is silent)
  sets = np.asarray(task.truth).reshape(128, 4)
  agree = (sets == (sets.mean(1, keepdims=True) > 0.5)).mean()
  assert 0.8 < agree < 0.97


def test_sparse_neighbour_differences_equal_the_dense_ones(x64):
  """For a score that reads only each example's fields, `read_score_deltas` equals
  `score_deltas` over every one-field neighbour."""
  task = _small()
  h = task.human
  x, y = _draw(task, KEY(2), 16)
  idx, vals = hm.read(h, x)
  w = jnp.linspace(0.5, 1.5, 16)
  per_example = lambda lev: w * h.family.log_prob(hm.forecast_at(h, idx, lev, vals), y)
  total = lambda zs: jax.vmap(lambda z: jnp.sum(per_example(z[idx])))(zs)
  for z in h.space.enumerate()[[0, 77, 300, 511]]:
    z = jnp.asarray(z)
    np.testing.assert_allclose(prior.read_score_deltas(per_example, h.space, idx, z),
                               prior.score_deltas(total, h.space, z[None])[0], atol=1e-9)


def _gibbs_vs_exact(flat: bool):
  task = _small()
  h = task.human
  x, y = _draw(task, KEY(3), 24)
  xe, ye = _draw(task, KEY(4), 40, shifted=True)
  w = jnp.ones(24)
  inc = jnp.asarray(gibbs.incidence(h, np.asarray(x)).examples)
  lj = exact.log_joint(h, x, y, w, flat=flat)
  lp = lj - jax.nn.logsumexp(lj)
  run = jit(jax.vmap(lambda k: gibbs.run(k, h, x, y, w, inc, xe, ye, jnp.zeros(9, jnp.int32),
                                         sweeps=800, burn=50, flat=flat)))
  out = run(jax.random.split(KEY(5), 16))
  return h, lp, out, x, w, inc, xe


@pytest.mark.parametrize("flat", [False, True])
def test_block_gibbs_matches_enumeration_within_its_standard_error(flat):
  """16 independent chains: field marginals and D* predictive within 4.5 SE (across chains) of
  the exact posterior's."""
  h, lp, out, *_, xe = _gibbs_vs_exact(flat)
  for got, want in ((out.marginals[..., 1], exact.field_marginals(h, lp)[:, 1]),
                    (out.target[..., 0], exact.predictive_target(h, lp, xe)[:, 0])):
    got, want = np.asarray(got), np.asarray(want)
    se = got.std(0, ddof=1) / np.sqrt(got.shape[0])
    ok = (want > 0.02) & (want < 0.98)  # rare levels: too few visits for a normal SE
    z = np.abs(got.mean(0) - want)[ok] / np.maximum(se[ok], 1e-4)
    assert ok.sum() >= 3 and z.max() < 4.5, z


def test_block_gibbs_counts_its_queries_and_icm_stops_at_a_local_maximum(x64):
  task = _small()
  h = task.human
  x, y = _draw(task, KEY(6), 20)
  w = jnp.where(jnp.arange(20) < 15, 1.0, 0.0)  # the last 5 are padding
  inc = gibbs.incidence(h, np.asarray(x)).examples
  out = gibbs.run(KEY(7), h, x, y, w, jnp.asarray(inc), x[:3], y[:3],
                  jnp.asarray([0, 1, 0, 1, 0, 1, 0, 1, 0]), sweeps=7, burn=0, temperature=0.0)
  reading = sum(int(((row >= 0) & (row < 15)).sum()) for row in inc)   # valid readers per sweep
  assert int(out.queries.forecast) == 7 * 8 * reading                   # 2³ joint levels
  assert int(out.queries.prior) == 7 * 3 * 8
  # no single block change raises the log joint
  z = np.asarray(out.last)
  states = hm.group_states(2, 3)
  base = float(exact.log_joint(h, x, y, w)[h.space.index(z)])
  for block in h.groups:
    for st in states:
      other = z.copy()
      other[list(block)] = st
      assert float(exact.log_joint(h, x, y, w)[h.space.index(other)]) <= base + 1e-9


def test_f_reading_a_few_fields_trains_and_its_step_counts_forecasts():
  """The joint step with f_input 'read' on the 512-field task: f's loss falls and every f update
  asks f_batch × human_samples forecasts."""
  from experiments.configs import learning_the_prior as ltp_config
  from lprior.ltp import experiment
  cfg = ltp_config.get_config("smoke")
  lc = experiment.ltp_config_for(cfg, "synonyms")
  lc.anneal_steps, lc.f_input, lc.z_warmup = 25, "read", 5
  task = tasks.synonyms()
  x, y = _draw(task, KEY(8), 64)
  xs, _ = _draw(task, KEY(9), 64, shifted=True)
  data = train.LTPData(x, y, jnp.ones(64), xs, jnp.asarray(0.0),
                       jnp.zeros(512, jnp.int32))
  state = train.init_ltp(KEY(10), task, lc, jnp.zeros(512))
  step = jit(train.make_ltp_step(task, lc))
  losses = []
  for i in range(25):
    state, m = step(state, data, jnp.asarray(i))
    losses.append(float(m["f_loss"]))
  assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
  assert int(state.queries.forecast) == 25 * lc.f_steps * lc.f_batch * lc.human_samples


def test_f_input_read_needs_a_human_who_reads_few_fields():
  from experiments.configs import learning_the_prior as ltp_config
  lc = ltp_config.ltp_config()
  lc.f_input = "read"
  with pytest.raises(ValueError, match="reads a few fields"):
    train.make_f(tasks.make_task("spurious"), lc)
  with pytest.raises(ValueError, match="groups cover every field"):
    gibbs.check_blocks(tasks.make_task("spurious").human)
