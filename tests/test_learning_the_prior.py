"""Learning the prior (DESIGN §5, issue 5): the simulated human, the exact ideal, Mz, the prior
modes' gradient estimator, the objectives, the joint trainer and the launcher.

Estimators are held against exact values: the human's posterior by brute-force Bayes over a
small Z space, the Rao–Blackwellised prior gradient in expectation by enumerating its samples,
the Gaussian KL by quadrature, the ELBO with antithetic points."""

import functools
import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import integrate, stats

from experiments.configs import learning_the_prior as ltp_config
from lprior.ltp import decoder, exact, experiment, objective, prior, tasks, train
from lprior.ltp import family as fam
from lprior.ltp import human as hm
from lprior.ltp.space import Field, Space
from lprior.xla import FAST_COMPILE

jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)
KEY = lambda i: jax.random.key(i, impl="rbg")  # compiles far faster than threefry on CPU


def _draw(sampler, key, n):
  """A task's sampler, jitted (its ops one by one would each compile)."""
  return jit(sampler, static_argnums=1)(key, n)


def _tiny_binary() -> hm.Human:
  """Z = (w, b): P_H(y = 1 | x, Z) = σ(w x₀ + b); 3 × 2 hypotheses."""
  space = Space((Field("w", (-1.0, 0.0, 1.0), ("against", "none", "for")),
                 Field("b", (-0.5, 0.5), ("low", "high"))))
  return hm.make_human(space, ((0.2, 0.5, 0.3), (0.6, 0.4)), fam.BINARY,
                       lambda v, x: (v[..., 0] * x[..., 0] + v[..., 1])[..., None])


def _tiny_gaussian() -> hm.Human:
  """Z = (slope, noise): P_H(y | x, Z) = N(slope·x, noise²); 3 × 2 hypotheses."""
  space = Space((Field("slope", (0.0, 1.0, 2.0), ("flat", "one", "two")),
                 Field("noise", (0.5, 1.0), ("small", "large"))))

  def forecast(v, x):
    mean = v[..., 0] * x[..., 0]
    return jnp.stack([mean, jnp.broadcast_to(jnp.log(v[..., 1]), mean.shape)], -1)

  return hm.make_human(space, ((0.3, 0.4, 0.3), (0.5, 0.5)), fam.GAUSSIAN, forecast)


def _brute_force_posterior(human, x, y):
  """Bayes' rule with explicit loops (numpy, float64)."""
  zs = human.space.enumerate()
  table = human.table()
  vals = human.space.value_table()
  logp = []
  for z in zs:
    lp = sum(table[k, z[k]] for k in range(len(z)))
    v = np.array([vals[k, z[k]] for k in range(len(z))])
    for xi, yi in zip(np.asarray(x, np.float64), np.asarray(y, np.float64)):
      if human.family.name == "binary":
        p = 1 / (1 + math.exp(-(v[0] * xi[0] + v[1])))
        lp += math.log(p if yi > 0.5 else 1 - p)
      else:
        lp += stats.norm.logpdf(yi, v[0] * xi[0], v[1])
    logp.append(lp)
  logp = np.array(logp)
  return logp - np.logaddexp.reduce(logp)


# ------------------------------------------------------------------ space and human
def test_space_enumerates_every_hypothesis_once_and_reads_it():
  space = tasks.trend().human.space
  zs = space.enumerate()
  assert zs.shape == (space.size, 5) and space.size == 3 * 4 * 5 * 5 * 3
  assert len({tuple(z) for z in zs}) == space.size
  np.testing.assert_array_equal(space.index(zs), np.arange(space.size))
  text = space.describe(tasks.TREND_TRUTH)
  assert "shape: levels off toward a ceiling (S-curve)" in text and "noise: ±0.2" in text
  with pytest.raises(ValueError, match="out of range"):
    space.describe([0, 0, 9, 0, 0])
  with pytest.raises(ValueError, match="distinct"):
    Space((Field("a", (0.0, 1.0), ("x", "y")), Field("a", (0.0, 1.0), ("x", "y"))))


def test_human_prior_is_normalised_and_ratios_are_differences(x64):
  for human in (tasks.spurious().human, tasks.trend().human, _tiny_binary()):
    zs = jnp.asarray(human.space.enumerate())
    lp, ratio, other = jit(lambda zs: (hm.log_prior(human, zs), hm.log_ratio(human, zs, zs[::-1]),
                                       hm.log_prior(human, zs[::-1])))(zs)
    assert abs(float(jax.nn.logsumexp(lp))) < 1e-12
    np.testing.assert_allclose(ratio, other - lp, atol=1e-12)
  # the human is sure the background does not decide the breed
  h = tasks.spurious(background_cost=1000.0).human
  z = jnp.asarray(tasks.SPURIOUS_TRUTH)
  assert float(hm.log_ratio(h, z, z.at[4].set(4))) == pytest.approx(-1000.0)
  with pytest.raises(ValueError, match="normalised"):
    hm.Human(h.space, ((0.0,) * 5,) * 5, fam.BINARY, lambda v, x: x)


def test_human_forecasts_follow_the_named_rules():
  h = tasks.spurious().human
  x = jnp.array([[1.0, 0.5, -1.0, 2.0, 3.0]])
  z = jnp.array([4, 3, 1, 2, 2])  # +2, +1, −1, 0, 0
  np.testing.assert_allclose(hm.forecast(h, z, x)[0, 0], 2 + 0.5 + 1.0, rtol=1e-6)
  t = tasks.trend().human
  v = t.space.values(jnp.asarray(tasks.TREND_TRUTH))  # S-curve, level 1, rate 2, ceiling 4
  pred = hm.forecast(t, jnp.asarray(tasks.TREND_TRUTH), jnp.array([[0.0], [1.0]]))
  np.testing.assert_allclose(pred[:, 0], [1.0, 4 / (1 + 3 * math.exp(-2))], rtol=1e-6)
  np.testing.assert_allclose(pred[:, 1], math.log(float(v[4])), rtol=1e-6)


def test_tasks_shift_from_d_to_d_star():
  s = tasks.spurious()
  x, y = _draw(s.sample_train, KEY(0), 4000)
  np.testing.assert_array_equal(np.sign(x[:, 4]), 2 * np.asarray(y) - 1)  # perfect in D
  xs, ys = _draw(s.sample_shifted, KEY(1), 4000)
  agree = float(np.mean(np.sign(xs[:, 4]) == 2 * np.asarray(ys) - 1))
  assert abs(agree - 0.5) < 0.03  # chance in D*
  t = tasks.trend()
  x, _ = _draw(t.sample_train, KEY(0), 1000)
  xs, _ = _draw(t.sample_shifted, KEY(1), 1000)
  assert float(x.min()) >= 0 and float(x.max()) < 1 and float(xs.min()) >= 1 and float(xs.max()) < 2
  with pytest.raises(ValueError, match="unknown task"):
    tasks.make_task("weather")


# ------------------------------------------------------------------------- the ideal
@pytest.mark.parametrize("make", [_tiny_binary, _tiny_gaussian])
def test_exact_posterior_equals_brute_force_bayes(make, x64):
  human = make()
  key = jax.random.key(3)
  x = jax.random.normal(key, (7, 1))
  y = (jax.random.uniform(jax.random.fold_in(key, 1), (7,)) < 0.6).astype(float) \
      if human.family.name == "binary" else 1.3 * x[:, 0] + jax.random.normal(key, (7,))
  lp = jit(lambda x, y: exact.log_posterior(human, x, y))(x, y)
  np.testing.assert_allclose(lp, _brute_force_posterior(human, x, y), atol=1e-10)
  # the predictive is the posterior mixture; padding (weight 0) changes nothing
  xq = jnp.array([[0.3], [-1.2]])
  yq = jnp.array([1.0, 0.0]) if human.family.name == "binary" else jnp.array([0.1, -2.0])
  per_z = jit(jax.vmap(lambda z: hm.log_lik(human, z, xq, yq)))(jnp.asarray(human.space.enumerate()))
  want = np.log(np.sum(np.exp(np.asarray(lp))[:, None] * np.exp(np.asarray(per_z)), 0))
  xp = jnp.concatenate([x, jnp.ones((3, 1))])
  yp = jnp.concatenate([y, jnp.ones(3)])
  w = jnp.concatenate([jnp.ones(7), jnp.zeros(3)])
  pred, padded, marg = jit(lambda lp: (exact.log_predictive(human, lp, xq, yq),
                                       exact.log_posterior(human, xp, yp, w),
                                       exact.field_marginals(human, lp)))(lp)
  np.testing.assert_allclose(pred, want, atol=1e-10)
  np.testing.assert_allclose(padded, lp, atol=1e-12)
  np.testing.assert_allclose(marg.sum(1), 1.0, atol=1e-12)


def test_ideal_recovers_the_generating_hypothesis_and_ignores_the_background():
  for task in (tasks.spurious(), tasks.trend()):
    x, y = _draw(task.sample_train, KEY(0), 256)
    lp = jit(lambda x, y: exact.log_posterior(task.human, x, y))(x, y)
    np.testing.assert_array_equal(exact.map_hypothesis(task.human, lp), task.truth)
  # a merely confident human (10 nats) is talked into the background by 256 perfect examples
  t = tasks.spurious(background_cost=10.0)
  lp = jit(lambda x, y: exact.log_posterior(t.human, x, y))(*_draw(t.sample_train, KEY(0), 256))
  assert int(exact.map_hypothesis(t.human, lp)[4]) != 2


# ------------------------------------------------------------------------------- Mz
def test_decoder_cells_have_equal_mass_and_the_blur_is_exact(x64):
  space = tasks.trend().human.space
  e = decoder.edges(space)
  for k, n in enumerate(space.levels):
    np.testing.assert_allclose(np.diff(stats.norm.cdf(e[k, :n + 1])), 1 / n, atol=1e-12)
  # exp(log Prior(z)) with the hard decode gives every cell exactly its human prior mass:
  # ∫_cell N(z; 0, I) |Z| Prior_H(Z) dz = Prior_H(Z)
  h = tasks.trend().human
  for z in h.space.enumerate()[[0, 17, 450]]:
    gauss = np.prod([stats.norm.cdf(e[k, l + 1]) - stats.norm.cdf(e[k, l]) for k, l in enumerate(z)])
    prior_h = float(np.exp(hm.log_prior(h, jnp.asarray(z))))
    assert gauss * math.exp(decoder.log_num_cells(space)) * prior_h == pytest.approx(prior_h,
                                                                                     rel=1e-12)
  zz = jnp.array([0.1, -0.2, 0.9, 1.7, -3.0])
  zs = jnp.asarray(space.enumerate())
  q, total, hard, sharp, back = jit(lambda zz: (
      decoder.level_probs(space, zz, 0.3), decoder.hypothesis_probs(space, zz, 0.3).sum(),
      decoder.hard(space, zz), decoder.level_probs(space, zz, 1e-6),
      decoder.hard(space, decoder.encode(space, zs))))(zz)
  for k, n in enumerate(space.levels):
    want = stats.norm.cdf((e[k, 1:n + 1] - zz[k]) / 0.3) - stats.norm.cdf((e[k, :n] - zz[k]) / 0.3)
    np.testing.assert_allclose(q[k, :n], want, atol=1e-12)
    assert np.all(np.asarray(q[k, n:]) == 0)
  np.testing.assert_allclose(total, 1.0, atol=1e-12)
  # τ → 0 is the hard decode, and encode/hard invert each other
  np.testing.assert_allclose(sharp, jax.nn.one_hot(hard, space.max_levels) * space.level_mask(),
                             atol=1e-9)
  np.testing.assert_array_equal(back, zs)


def test_decoder_samples_follow_level_probs():
  space = tasks.spurious().human.space
  z = jnp.array([0.2, -0.9, 1.3, 0.0, 0.26])
  samples = decoder.sample(jax.random.key(0), space, z, 0.4, 20000)
  q = np.asarray(decoder.level_probs(space, z, 0.4), np.float64)
  for k in range(5):
    counts = np.bincount(np.asarray(samples[:, k]), minlength=5).astype(np.float64)
    assert stats.chisquare(counts, counts.sum() * q[k] / q[k].sum()).pvalue > 1e-3


# ------------------------------------------------------------------- prior modes
def test_prior_gradient_estimator_is_unbiased_exactly(x64):
  """E over every outcome of one hypothesis Z ~ Mz(·, z) of ∇ surrogate = the exact gradient of
  E_{Mz(z)} log Prior_H, with Δ from the human's absolute answers ('direct') and from its ratio
  judgments ('ratio'); and of E_{Mz(z)}[log Prior_H + Σ_D log P] with the data term's Δ from
  `score_deltas` (what the joint step does with f)."""
  space = Space((Field("a", (0.0, 1.0, 2.0), ("a0", "a1", "a2")), Field("b", (0.0, 1.0), ("b0", "b1")),
                 Field("c", (0.0, 1.0, 2.0, 3.0), ("c0", "c1", "c2", "c3"))))
  human = hm.make_human(space, ((0.2, 0.5, 0.3), (0.9, 0.1), (0.1, 0.2, 0.3, 0.4)), fam.BINARY,
                        lambda v, x: (v[..., 0] * x[..., 0] + v[..., 1] - 0.3 * v[..., 2])[..., None])
  z, tau = jnp.array([-0.3, 0.4, 0.05]), 0.35
  x, y = jnp.array([[0.5], [-1.0], [2.0]]), jnp.array([1.0, 0.0, 1.0])
  zs = jnp.asarray(space.enumerate())
  lik = jax.vmap(lambda zz: jnp.sum(hm.log_lik(human, zz, x, y)))

  @jit
  def estimates(z):
    p = decoder.hypothesis_probs(space, z, tau)
    out = []
    for mode in ("direct", "ratio", "data"):
      def delta(zz):
        d = prior.human_deltas(human, zz[None], "ratio" if mode == "data" else mode)
        return d + prior.score_deltas(lik, space, zz[None]) if mode == "data" else d
      g = jax.vmap(lambda zz: jax.grad(prior.surrogate, argnums=1)(space, z, tau, delta(zz)))(zs)
      out.append(jnp.sum(p[:, None] * g, 0))
    exact_prior = jax.grad(lambda zz: prior.expected_log_prior(human, zz, tau))(z)
    exact_all = jax.grad(lambda zz: prior.expected_log_prior(human, zz, tau)
                         + decoder.hypothesis_probs(space, zz, tau) @ lik(zs))(z)
    return out, exact_prior, exact_all

  (direct, ratio, data), exact_prior, exact_all = estimates(z)
  np.testing.assert_allclose(direct, exact_prior, atol=1e-12)
  np.testing.assert_allclose(ratio, exact_prior, atol=1e-12)
  np.testing.assert_allclose(data, exact_all, atol=1e-12)
  assert float(jnp.linalg.norm(exact_prior)) > 0.1
  assert float(jnp.linalg.norm(exact_all - exact_prior)) > 0.1


def test_human_deltas_count_each_distinct_question_once():
  """Per hypothesis, 'ratio' asks one judgment per one-field neighbour (Σ_k (L_k − 1)) and
  'direct' one absolute prior per neighbour and one for Z itself: the distinct hypotheses a
  person would be shown, counted by listing them."""
  human = tasks.trend().human
  zs = decoder.sample(KEY(3), human.space, jnp.zeros(5), 0.5, 6)          # (6, K)
  listed = 0
  for z in np.asarray(zs):
    seen = {tuple(z)}
    for k, n in enumerate(human.space.levels):
      for level in range(n):
        seen.add(tuple(np.where(np.arange(len(z)) == k, level, z)))
    listed += len(seen)
  _, q_direct = prior.human_deltas(human, zs, "direct", hm.no_queries())
  _, q_ratio = prior.human_deltas(human, zs, "ratio", hm.no_queries())
  assert jax.device_get(q_direct) == hm.Queries(0, listed, 0)
  assert jax.device_get(q_ratio) == hm.Queries(0, 0, listed - len(zs))


def test_enumeration_counts_a_forecast_per_hypothesis_and_example():
  human = _tiny_binary()
  x = jnp.linspace(-1, 1, 10)[:, None]
  y = (x[:, 0] > 0).astype(jnp.float32)
  w = (jnp.arange(10) < 7).astype(jnp.float32)
  lj, q = exact.log_joint_counted(human, x, y, w)
  ll, q_flat = exact.log_joint_counted(human, x, y, w, flat=True)
  assert jax.device_get(q) == hm.Queries(6 * 7, 6, 0)
  assert jax.device_get(q_flat) == hm.Queries(6 * 7, 0, 0)
  np.testing.assert_allclose(lj - ll, hm.log_prior(human, jnp.asarray(human.space.enumerate())),
                             rtol=1e-6)


def test_the_human_prior_decides_where_a_flat_one_does_not():
  """Spurious task, |D| = 64: the flat prior's maximum-likelihood hypothesis (and its posterior)
  differ from the human's MAP and read the background, so D* accuracy drops to near chance; the
  comparison of learning the prior with the ideal could therefore fail on the prior alone."""
  c = ltp_config.get_config("smoke")
  c.num_seeds, c.sizes, c.main_size, c.n_test = 4, (64,), 64, 400
  task = experiment.task_of(c, "spurious")
  out = experiment.ideal(task, c, experiment.make_data(task, c))[64]
  assert not np.any(np.all(out["flat_mle_z_map"] == out["z_map"], -1))
  assert np.all(out["score"] > 0.7) and np.all(out["flat_mle_score"] < 0.7)
  assert np.all(out["flat_bayes_score"] < 0.7)
  assert np.all(out["q_forecast"] == task.human.space.size * 64)


def test_direct_ratio_and_a_perfect_predictor_give_the_same_deltas(x64):
  human = tasks.spurious().human
  space = human.space
  zs = jnp.asarray(space.enumerate()[::97])
  # a predictor equal to log Prior_H / scale: zero loss on any judged pair and the same deltas
  g = lambda params, z: hm.log_prior(human, z) / params

  @jit
  def parts(zs):
    other = prior.ratio_pairs(KEY(0), space, zs)
    return (prior.human_deltas(human, zs, "direct"), prior.human_deltas(human, zs, "ratio"),
            prior.learned_deltas(g, 10.0, space, zs, 10.0), other,
            prior.ratio_loss(g, 10.0, zs, other, hm.log_ratio(human, zs, other), 10.0))

  d_direct, d_ratio, d_learned, other, loss = parts(zs)
  np.testing.assert_allclose(d_ratio, d_direct, atol=1e-9)
  np.testing.assert_allclose(d_learned, d_direct, atol=1e-9)
  assert np.all(np.sum(np.asarray(other != zs), 1) == 1)  # one field changed, to another level
  assert float(loss) < 1e-20
  with pytest.raises(ValueError, match="unknown prior mode"):
    prior.check_mode("oracle")
  np.testing.assert_array_equal(prior.neighbours(space, zs)[3, 2, 4], zs[3].at[2].set(4))


# ------------------------------------------------------------------- objectives
def test_gaussian_kl_matches_quadrature(x64):
  mu, log_sigma = jnp.array([0.7, -1.2]), jnp.array([-0.5, 0.4])
  want = 0.0
  for m, s in zip([0.7, -1.2], np.exp([-0.5, 0.4])):
    q = stats.norm(m, s)
    want += integrate.quad(lambda z: q.pdf(z) * (q.logpdf(z) - stats.norm.logpdf(z)),
                           -30, 30, epsabs=1e-13)[0]
  assert float(objective.gaussian_kl(mu, log_sigma)) == pytest.approx(want, abs=1e-10)


def test_elbo_and_objective_assemble_their_terms(x64):
  space = tasks.spurious().human.space
  family = fam.BINARY
  f = lambda params, x, z: jnp.broadcast_to(params, x.shape[:-1] + (1,))  # constant logit
  x, y = jnp.zeros((3, 2)), jnp.array([1.0, 0.0, 1.0])
  lp = lambda z: -0.5 * jnp.sum(z ** 2)
  mu, log_sigma = jnp.array([0.3, -0.1, 0.2, 0.0, 1.0]), jnp.log(jnp.full(5, 0.4))
  eps = jnp.stack([jnp.ones(5), -jnp.ones(5)])  # antithetic: E‖μ + σε‖² = ‖μ‖² + ‖σ‖² exactly
  data = 2 * math.log(1 / (1 + math.exp(-0.7))) + math.log(1 - 1 / (1 + math.exp(-0.7)))
  want = (data - 0.5 * float(jnp.sum(mu ** 2) + 5 * 0.16) + decoder.log_num_cells(space)
          - float(objective.gaussian_kl(mu, log_sigma)))
  got = objective.elbo(mu, log_sigma, eps, f=f, f_params=jnp.array(0.7), x=x, y=y, family=family,
                       space=space, log_prior_h=lp)
  assert float(got) == pytest.approx(want, abs=1e-10)
  j = objective.objective(mu, f=f, f_params=jnp.array(0.7), x=x, y=y, family=family, space=space,
                          log_prior_h=lp)
  want_j = (data + float(decoder.log_base(mu)) + float(lp(mu)) + decoder.log_num_cells(space))
  assert float(j) == pytest.approx(want_j, abs=1e-10)


def test_families_score_answers_exactly(x64):
  m, log_s = 0.4, math.log(0.7)
  pred = jnp.array([m, log_s])
  assert float(fam.GAUSSIAN.log_prob(pred, jnp.array(1.3))) == pytest.approx(
      stats.norm.logpdf(1.3, m, 0.7), abs=1e-12)
  # cross-entropy against a gaussian target = its quadrature, and linear in the target
  tm, ts = -0.2, 1.5
  want = integrate.quad(lambda y: -stats.norm.pdf(y, tm, ts) * stats.norm.logpdf(y, m, 0.7),
                        -40, 40, epsabs=1e-12)[0]
  preds = jnp.array([[tm, math.log(ts)]])
  assert float(fam.GAUSSIAN.cross_entropy(fam.GAUSSIAN.target(preds), pred)) == pytest.approx(
      want, abs=1e-9)
  two = jnp.array([[0.5, -1.0], [-1.0, 0.3]])
  avg = 0.5 * sum(fam.GAUSSIAN.cross_entropy(fam.GAUSSIAN.target(two[i:i + 1]), pred)
                  for i in range(2))
  assert float(fam.GAUSSIAN.cross_entropy(fam.GAUSSIAN.target(two), pred)) == pytest.approx(
      float(avg), abs=1e-12)
  logit = jnp.array([0.8])
  assert float(fam.BINARY.log_prob(logit, jnp.array(0.0))) == pytest.approx(
      math.log(1 - 1 / (1 + math.exp(-0.8))), abs=1e-12)
  np.testing.assert_allclose(
      fam.BINARY.mixture_log_prob(jnp.array([[[0.8]], [[-2.0]]]), jnp.array([1.0])),
      [math.log(0.5 / (1 + math.exp(-0.8)) + 0.5 / (1 + math.exp(2.0)))], atol=1e-12)
  with pytest.raises(ValueError, match="unknown family"):
    fam.get("poisson")


# ----------------------------------------------------------------------- training
def _tiny_cfg(mode: str) -> ml_collections.ConfigDict:
  c = ltp_config.ltp_config()
  c.update(prior_mode=mode, f_hidden=(8,), f_steps=1, f_batch=8, human_samples=2, z_batch=8,
           z_samples=2, prior_samples=2, z_warmup=2, anneal_steps=12, g_batch=4, g_hidden=(4,))
  return c


def _run_steps(mode: str, steps: int = 12, with_history: bool = False, task=None, cfg=None):
  task = task or tasks.spurious()
  cfg = cfg or _tiny_cfg(mode)
  x, y = _draw(task.sample_train, KEY(0), 32)
  xs, _ = _draw(task.sample_shifted, KEY(1), 16)
  data = train.LTPData(x, y, (jnp.arange(32) < 20).astype(jnp.float32), xs, jnp.asarray(1.0),
                       jnp.zeros(5, jnp.int32))
  state0 = state = jit(lambda k: train.init_ltp(k, task, cfg, jnp.zeros(5)))(KEY(2))
  step = jit(train.make_ltp_step(task, cfg))
  mus, history = [], []
  for i in range(steps):
    state, metrics = step(state, data, jnp.asarray(i))
    mus.append(np.asarray(state.mu))
    history.append(metrics)
  out = np.stack(mus), state, metrics
  return out + (history, state0) if with_history else out


def test_joint_step_holds_z_in_warm_up_then_moves_it_with_a_learned_prior():
  """The whole joint step (f updates, the predictor on ratio judgments, the z ascent) in
  'learned' mode: z holds still during the warm-up, then takes Adam's first step; the predictor
  trains; τ is annealed."""
  mu, state, metrics, history, state0 = _run_steps("learned", with_history=True)
  np.testing.assert_array_equal(mu[:2], 0.0)
  # the first step after the 2 warm-up steps (Adam counted them with zero gradients, so its
  # bias corrections are those of step 3): every coordinate by lr·(1−b1)/(1−b1³)·√((1−b2³)/(1−b2))
  cfg = _tiny_cfg("learned")
  b1, b2 = 0.9, cfg.z_b2
  first = cfg.lr_z * (1 - b1) / (1 - b1 ** 3) * math.sqrt((1 - b2 ** 3) / (1 - b2))
  np.testing.assert_allclose(np.abs(mu[2] - mu[1]), first, rtol=1e-5)
  assert not np.allclose(np.abs(mu[3] - mu[2]), first, rtol=1e-2)  # then by the gradients' sizes
  moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), state.g_params, state0.g_params)
  # (the output bias cancels in every log-ratio, so it alone stays put)
  assert moved["params"]["Dense_0"]["kernel"] > 0 and moved["params"]["Dense_1"]["kernel"] > 0
  assert all(np.isfinite(float(m["g_loss"])) for m in history)
  assert float(metrics["tau"]) == pytest.approx(0.5 * 0.1 ** (11 / 12), rel=1e-5)
  # Queries counted at the call, against a hand count of 12 steps: f_steps 1 × f_batch 8 ×
  # human_samples 2 forecasts and g_batch 4 ratio judgments per step; no absolute prior.
  assert jax.device_get(state.queries) == hm.Queries(12 * 16, 0, 12 * 4)


@pytest.mark.slow
def test_learned_predictor_matches_the_humans_judgments_near_z():
  """After 300 joint steps on the trend task the predictor's log-ratios between neighbouring
  hypotheses near z agree with the human's to 0.1 nats."""
  task = tasks.trend()
  cfg = _tiny_cfg("learned")
  cfg.update(g_batch=32, g_hidden=(32,), lr_g=1e-2, anneal_steps=300)
  _, state, _ = _run_steps("learned", steps=300, task=task, cfg=cfg)
  from lprior.ltp.models import make_prior_net
  _, g_apply = make_prior_net(5, task.human.space.max_levels, cfg.g_hidden)
  zs = decoder.sample(jax.random.key(9), task.human.space, state.mu, 0.3, 64)
  got = prior.learned_deltas(g_apply, state.g_params, task.human.space, zs, cfg.ratio_scale)
  want = prior.human_deltas(task.human, zs, "ratio")
  assert float(jnp.abs(got - want).max()) < 0.1


@pytest.mark.slow
def test_joint_step_direct_and_ratio_follow_the_same_path_at_different_costs():
  """The z-step only needs ratios: 'direct' and 'ratio' give the same trajectory (a refactoring
  guard: they are algebraically one), but 'direct' pays one more absolute answer per hypothesis
  (Z itself) than 'ratio' pays judgments, counted where asked."""
  mu_d, state_d, _ = _run_steps("direct")
  mu_r, state_r, _ = _run_steps("ratio")
  np.testing.assert_allclose(mu_d, mu_r, atol=1e-6)
  q_d, q_r = jax.device_get(state_d.queries), jax.device_get(state_r.queries)
  assert q_d.forecast == q_r.forecast == 12 * 16 and q_d.ratio == q_r.prior == 0
  assert q_d.prior - q_r.ratio == 12 * 2 * 2  # steps × z_samples × prior_samples


def test_bad_inputs_raise_clear_errors():
  task = tasks.spurious()
  cfg = _tiny_cfg("ratio")
  cfg.prior_mode = "psychic"
  with pytest.raises(ValueError, match="unknown prior mode"):
    train.make_ltp_step(task, cfg)
  cfg = _tiny_cfg("ratio")
  cfg.f_input = "text"
  with pytest.raises(ValueError, match="f_input"):
    train.make_f(task, cfg)
  with pytest.raises(ValueError, match="unknown preset"):
    ltp_config.get_config("huge")
  c = ltp_config.get_config("smoke")
  c.main_size = 1000
  with pytest.raises(ValueError, match="main_size"):
    experiment.run(c, None)
  with pytest.raises(ValueError, match="shape"):
    decoder.hard(task.human.space, jnp.zeros(3))
  with pytest.raises(ValueError, match="NaN"):
    exact.log_posterior(task.human, jnp.full((2, 5), jnp.nan), jnp.zeros(2))
  with pytest.raises(ValueError, match="need x"):
    exact.log_posterior(task.human, jnp.zeros((2, 5)), jnp.zeros(3))
  with pytest.raises(ValueError, match="out of range"):  # a gather would wrap it silently
    hm.log_prior(task.human, jnp.array([0, 0, 0, 0, 7]))
  with pytest.raises(ValueError, match="out of range"):
    hm.forecast(task.human, jnp.array([-1, 0, 0, 0, 0]), jnp.zeros((1, 5)))
  cfg = _tiny_cfg("ratio")
  cfg.anneal_steps = 0
  with pytest.raises(ValueError, match="anneal_steps"):
    train.make_ltp_step(task, cfg)
  c = ltp_config.get_config("smoke")
  c.compare_prior_modes = "learnd"  # caught before the main batch runs
  with pytest.raises(ValueError, match="unknown prior mode"):
    experiment.run(c, None)
  c = ltp_config.get_config("smoke")
  c.ltp_overrides.trend.restarts = 0
  with pytest.raises(ValueError, match="ltp_overrides.trend"):
    experiment.run(c, None)


def test_per_task_z_init_override_is_used():
  c = ltp_config.get_config("smoke")
  c.ltp_overrides.trend.z_init = "prior_mode"
  task = tasks.trend()
  lc = experiment.ltp_config_for(c, "trend")
  np.testing.assert_allclose(experiment.z_init(task, lc), decoder.encode(
      task.human.space, jnp.asarray([int(np.argmax(t)) for t in task.human.log_prior_table])))
  assert not np.any(np.asarray(experiment.z_init(task, experiment.ltp_config_for(c, "spurious"))))


def test_presets_load():
  for p in ("smoke", "default", "full"):
    c = ltp_config.get_config(p)
    assert c.main_size in c.sizes and c.preset == p
  assert ltp_config.get_config("default").num_seeds >= 5


@pytest.mark.slow
def test_learning_the_prior_recovers_the_exact_map_and_beats_the_direct_net():
  """Spurious task, |D| = 256, 3 seeds, the default joint step: Z* is the exact MAP hypothesis of
  the human updated on D in every seed, f at Z* is within 0.01 of the ideal's D* accuracy, and
  the network fit on D is near chance (it reads the background)."""
  c = ltp_config.get_config("default")
  c.num_seeds, c.sizes, c.main_size, c.n_test = 3, (256,), 256, 2000
  task = experiment.task_of(c, "spurious")
  data = experiment.make_data(task, c)
  ideal = experiment.ideal(task, c, data)
  final, _, extra = experiment.run_ltp(task, c, data, None, plan=[("ltp_map", 256)])
  np.testing.assert_array_equal(extra["arrays"]["ltp_map/n256/z_star"], ideal[256]["z_map"])
  # … which the human's prior decides: without it (maximum likelihood) Z* reads the background
  assert not np.any(np.all(ideal[256]["flat_mle_z_map"] == ideal[256]["z_map"], -1))
  assert np.all(np.abs(final["ltp_map/n256/score"] - ideal[256]["score"]) < 0.01)
  sup, _, _ = experiment.run_supervised(task, c, data, ideal, None)
  assert np.all(sup["direct/n256/score"] < 0.6)


@pytest.mark.slow
def test_launcher_smoke_preset(tmp_path):
  """The CLI end to end at the smoke preset: tables, decoded Z* and files."""
  out = subprocess.run(
      [sys.executable, "-m", "experiments.learning_the_prior",
       "--config=experiments/configs/learning_the_prior.py:smoke", f"--workdir={tmp_path}"],
      capture_output=True, text=True, timeout=600,
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert out.returncode == 0, out.stderr[-3000:]
  assert "learning the prior, MAP z*" in out.stdout and "snowy background:" in out.stdout
  for f in ("results.json", "table.md", "dstar_performance.png", "data_efficiency.png",
            "trend_extrapolation.png"):
    assert (tmp_path / f).exists(), f
  r = json.loads((tmp_path / "results.json").read_text())
  assert set(r["tasks"]) == {"spurious", "trend"}
