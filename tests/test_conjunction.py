"""lprior.conjunction: estimators of log P(all true) from k-way marginals, bounds, the die
example, smooth latent statements, the dishonest debater, and the launcher at smoke size.

Exact references: brute-force sums over enumerated joints, closed forms for independent events,
scipy quadrature / MST / LP.  Stochastic checks (GHK) use tolerances from reported SEs.
"""

import itertools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.sparse.csgraph
import scipy.stats

from lprior.conjunction import (bethe, bounds, debater, die, independence, joint, lp, maxent,
                                orthant, smooth, tree, window)
from lprior.conjunction import marginals as marg

N = 5  # most exact tests share this n so that compiled shapes are reused


def _likely_joint(seed, n=N, concentration=0.5):
  """A random joint with fairly likely statements: a product joint (p_i ∈ [0.7, 0.97]) times a
  random positive reweighting, so bounds are not all trivial.  (numpy draws: nothing to compile)"""
  rng = np.random.default_rng(seed)
  bits = joint.state_bits(n)
  p1 = rng.uniform(0.7, 0.97, n)
  p = np.prod(np.where(bits == 1, p1, 1 - p1), axis=1) * rng.gamma(concentration, size=1 << n)
  return jnp.asarray(p / p.sum())


def _dirichlet_joint(seed, n=N, concentration=0.5):
  return jnp.asarray(np.random.default_rng(seed).dirichlet(np.full(1 << n, concentration)))


def _markov_chain_joint(seed, n=N):
  """A joint over a first-order Markov chain of binary statements (tree-structured)."""
  rng = np.random.default_rng(seed)
  p0, stay = rng.uniform(0.6, 0.9), rng.uniform(0.5, 0.95, (n - 1, 2))
  bits = joint.state_bits(n)
  p = np.where(bits[:, 0] == 1, p0, 1 - p0)
  for i in range(1, n):
    same = bits[:, i] == bits[:, i - 1]
    pr = stay[i - 1, bits[:, i - 1]]
    p = p * np.where(same, pr, 1 - pr)
  return jnp.asarray(p)


def test_zeta_transforms_against_brute_force(x64):
  p = _dirichlet_joint(0, 4, 0.7)
  bits = joint.state_bits(4)
  g, h = np.asarray(joint.superset_sums(p)), np.asarray(joint.subset_sums(p))
  x, pn = np.arange(16), np.asarray(p)
  for s in range(16):
    assert np.isclose(g[s], pn[(x & s) == s].sum(), atol=1e-14)
    assert np.isclose(h[s], pn[(x & s) == x].sum(), atol=1e-14)
  np.testing.assert_allclose(joint.superset_mobius(jnp.asarray(g)), p, atol=1e-14)
  assert bits[0b1010].tolist() == [0, 1, 0, 1]


def test_kway_from_joint_matches_enumeration(x64):
  p = np.asarray(_dirichlet_joint(1))
  kw = marg.from_joint(jnp.asarray(p), 3)
  marg.check_kway(kw)
  bits, t3 = joint.state_bits(N), np.asarray(kw.tensors[2])
  for s in itertools.product(range(N), repeat=3):
    assert np.isclose(t3[s], p[bits[:, list(s)].all(1)].sum(), atol=1e-14)
  assert np.allclose(np.diagonal(np.asarray(kw.p2)), np.asarray(kw.p1))
  s = marg.complement_binomial_moments(kw)  # Σ_{|S|=j} P(all of S false), by enumeration:
  for j in range(4):
    brute = sum(p[(bits[:, list(c)] == 0).all(1)].sum() for c in itertools.combinations(range(N), j))
    assert np.isclose(s[j], brute, atol=1e-12)


def test_kway_from_samples_is_the_empirical_joints(x64):
  """Sampled marginals equal the k-way marginals of the empirical joint of the same draws."""
  p = np.asarray(_dirichlet_joint(2))
  states = np.random.default_rng(0).choice(p.size, size=4000, p=p / p.sum())
  draws = joint.state_bits(N)[states].astype(bool)  # (S, n)
  empirical = np.bincount(states, minlength=p.size) / states.size
  got, want = marg.from_samples(jnp.asarray(draws), 3), marg.from_joint(jnp.asarray(empirical), 3)
  for a, b in zip(got.tensors, want.tensors):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-12)
  with pytest.raises(ValueError, match="order"):
    marg.from_samples(jnp.asarray(draws), N + 1)


def test_bad_inputs_raise_value_errors(x64):
  p1 = jnp.array([0.5, 0.6, 0.7])
  p2 = jnp.outer(p1, p1)
  with pytest.raises(ValueError, match="shape"):
    marg.from_pairwise(p1, p2[:2])
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    marg.from_pairwise(jnp.array([0.5, 1.2, 0.7]), p2)
  with pytest.raises(ValueError, match="NaN"):
    marg.from_pairwise(p1, p2.at[0, 1].set(jnp.nan).at[1, 0].set(jnp.nan))
  with pytest.raises(ValueError, match="symmetric"):
    marg.from_pairwise(p1, p2.at[0, 1].set(0.2))
  with pytest.raises(ValueError, match="inconsistent"):  # P(A∧B) > P(A)
    marg.from_pairwise(p1, p2.at[0, 1].set(0.55).at[1, 0].set(0.55))
  with pytest.raises(ValueError, match="inconsistent"):  # P(A∧B) < P(A) + P(B) − 1
    marg.from_pairwise(p1, p2.at[1, 2].set(0.2).at[2, 1].set(0.2))
  with pytest.raises(ValueError, match="sum to 1"):
    joint.log_p_all(jnp.full((8,), 0.2))
  with pytest.raises(ValueError, match="2\\^n"):
    joint.num_statements(jnp.ones(6))
  with pytest.raises(ValueError, match="supports"):
    maxent.fit_maxent(marg.KWay((jnp.full((23,), 0.5),)))
  with pytest.raises(ValueError, match="w must be"):
    window.log_p_window(marg.from_pairwise(p1, p2), 3)
  with pytest.raises(ValueError, match="order"):
    window.log_p_window(marg.from_pairwise(p1, p2), 2)
  with pytest.raises(ValueError, match="lengthscale"):
    smooth.kernel_corr(jnp.zeros((3, 1)), "se", -1.0)
  with pytest.raises(ValueError, match="kind"):
    smooth.kernel_corr(jnp.zeros((3, 1)), "rbf", 1.0)


def test_independent_statements_every_estimator_exact(x64):
  p1 = jnp.array([0.9, 0.8, 0.95, 0.7, 0.85])
  kw = marg.from_joint(joint.product_joint(p1), 2)
  exact = float(jnp.sum(jnp.log(p1)))
  for f in (independence.log_p_independent, bethe.log_p_bethe, bethe.log_p_chow_liu,
            maxent.log_p_maxent, lambda k: window.log_p_window(k, 1)):
    assert abs(float(f(kw)) - exact) < 1e-9
  lo, hi = bounds.best_bounds(kw)
  assert lo <= math.exp(exact) <= hi


def test_maxent_matches_marginals_and_has_no_higher_interactions(x64):
  p = _likely_joint(2)
  kw = marg.from_joint(p, 2)
  fit = maxent.fit_maxent(kw)
  assert fit.max_residual < 1e-10
  q = jnp.exp(fit.log_joint)
  np.testing.assert_allclose(marg.distinct_values(marg.from_joint(q, 2)),
                             marg.distinct_values(kw), atol=1e-9)
  # log q = Σ_{|S|≤2} θ_S [S ⊆ x]: the Möbius coefficients of log q vanish for |S| ≥ 3 ...
  coef = np.asarray(joint.superset_mobius(fit.log_joint[::-1])[::-1])  # subset Möbius
  sizes = joint.state_bits(N).sum(1)
  assert np.abs(coef[sizes >= 3]).max() < 1e-8
  assert np.abs(coef[sizes >= 3]).max() < np.abs(coef[sizes == 2]).max() / 1e4
  # ... and q has more entropy than the true joint, which has the same marginals.
  entropy = lambda r: -float(jnp.sum(jnp.where(r > 0, r * jnp.log(r), 0)))
  assert entropy(q) > entropy(p) + 1e-6
  ipf = maxent.fit_maxent(kw, method="ipf", tol=1e-9)
  assert abs(float(ipf.log_p_all) - float(fit.log_p_all)) < 1e-7


def test_maxent_on_the_boundary(x64):
  # A and B exclusive (P(A∧B) = 0): θ_AB → −∞; the damped Newton still matches the marginals.
  p = die.events_joint([{1, 2}, {3, 4}, {1, 3}], [0.25] * 4)
  fit = maxent.fit_maxent(marg.from_joint(p, 2))
  assert fit.max_residual < 1e-8
  assert float(fit.log_p_all) < -15  # P(all) = 0


def test_die_example_two_way_cannot_decide(x64):
  p_common, p_cyclic = die.die_joint("common"), die.die_joint("cyclic")
  kw_a, kw_b = marg.from_joint(p_common, 2), marg.from_joint(p_cyclic, 2)
  for a, b in zip(kw_a.tensors, kw_b.tensors):
    np.testing.assert_allclose(a, b, atol=1e-15)  # identical 1- and 2-way probabilities
  np.testing.assert_allclose(kw_a.p1, 0.5)
  np.testing.assert_allclose(kw_a.p2[0, 1], 0.25)
  assert float(p_common[-1]) == 0.25 and float(p_cyclic[-1]) == 0.0
  assert float(marg.from_joint(p_common, 3).tensors[2][0, 1, 2]) == 0.25
  assert float(marg.from_joint(p_cyclic, 3).tensors[2][0, 1, 2]) == 0.0
  for f in (independence.log_p_independent, bethe.log_p_bethe, bethe.log_p_chow_liu,
            maxent.log_p_maxent):
    assert abs(math.exp(float(f(kw_a))) - 0.125) < 1e-9  # the same answer for both families
  lo, hi = bounds.best_bounds(kw_a)
  assert float(lo) <= 0.0 and float(hi) >= 0.25 - 1e-12 and float(hi) <= 0.25 + 1e-12
  assert lp.lp_bounds(kw_a) == pytest.approx((0.0, 0.25), abs=1e-9)  # sharp: brackets both
  assert lp.lp_bounds(marg.from_joint(p_common, 3)) == pytest.approx((0.25, 0.25), abs=1e-9)
  assert lp.lp_bounds(marg.from_joint(p_cyclic, 3)) == pytest.approx((0.0, 0.0), abs=1e-9)


def test_bounds_bracket_truth_on_random_joints(x64):
  ps = [_likely_joint(100 + i) for i in range(24)]
  truth = np.array([float(p[-1]) for p in ps])
  for order in (2, 3):
    kws = [marg.from_joint(p, order) for p in ps]
    named = jax.tree.map(lambda *x: np.stack(x), *[bounds.closed_form_bounds(kw) for kw in kws])
    for name, (lo, hi) in named.items():
      assert (lo <= truth + 1e-12).all(), name
      assert (hi >= truth - 1e-12).all(), name
    if order == 2:
      assert (named["hunter"][0] >= named["kounias"][0] - 1e-12).all()
      assert (named["hunter"][0] > 0).mean() > 0.5  # non-trivial on most joints
    for i, kw in enumerate(kws[:3]):  # the LP is sharp: inside the closed-form bounds, around the truth
      lo, hi = bounds.best_bounds(kw)
      lp_lo, lp_hi = lp.lp_bounds(kw)
      assert float(lo) - 1e-7 <= lp_lo <= truth[i] + 1e-7 <= lp_hi + 2e-7 <= float(hi) + 3e-7


def test_exchangeable_lp_closed_forms(x64):
  q, m = 0.9, 12
  # k = 1: Fréchet, max(0, 1 − m(1 − q)) ≤ P ≤ q.
  assert lp.exchangeable_lp_bounds(m, [q]) == pytest.approx((max(0, 1 - m * (1 - q)), q))
  # k = 2: the sharp upper bound on the union from S₁, S₂ is S₁ − 2S₂/m (Kwerel).
  r = 0.85
  s1, s2 = m * (1 - q), math.comb(m, 2) * (1 - 2 * q + r)
  lo, hi = lp.exchangeable_lp_bounds(m, [q, r])
  assert lo == pytest.approx(max(0.0, 1 - (s1 - 2 * s2 / m)), abs=1e-9)
  # and it agrees with the full LP over 2^m states for a small m.
  m = 6
  p1 = jnp.full((m,), q)
  kw = marg.from_pairwise(p1, jnp.full((m, m), r))
  assert lp.lp_bounds(kw) == pytest.approx(lp.exchangeable_lp_bounds(m, [q, r]), abs=1e-8)
  with pytest.raises(ValueError, match="inconsistent"):  # pairwise disjoint, P = 0.4 each
    lp.exchangeable_lp_bounds(3, [0.6, 0.2])


def test_max_spanning_tree_matches_scipy():
  w = np.random.default_rng(4).uniform(size=(7, 7))
  w = w + w.T
  parent, total = tree.max_spanning_tree(jnp.asarray(w))
  ref = -scipy.sparse.csgraph.minimum_spanning_tree(-w).sum()
  assert float(total) == pytest.approx(ref, rel=1e-6)
  parent = np.asarray(parent)
  assert parent[0] == -1 and set(parent[1:]) <= set(range(7))
  for i in range(7):  # every vertex reaches the root: a spanning tree
    for _ in range(7):
      i = parent[i] if i > 0 else i
    assert i == 0
  assert float(total) == pytest.approx(sum(w[i, parent[i]] for i in range(1, 7)), rel=1e-6)


def test_tree_and_window_estimates_exact_where_assumptions_hold(x64):
  p = _markov_chain_joint(5)
  kw = marg.from_joint(p, 3)
  exact = float(jnp.log(p[-1]))
  assert abs(float(bethe.log_p_chow_liu(kw)) - exact) < 1e-9
  assert abs(float(window.log_p_window(kw, 1)) - exact) < 1e-9
  assert abs(float(bethe.log_p_bethe(kw)) - exact) > 1e-3  # loopy on a chain's complete graph
  # Any joint: w = n − 1 is exact; w = 2 (3-way windows) on a generic joint is not.
  q = _likely_joint(6)
  kq = marg.from_joint(q, N)
  assert abs(float(window.log_p_window(kq, N - 1)) - float(jnp.log(q[-1]))) < 1e-9
  assert abs(float(window.log_p_window(kq, 2)) - float(jnp.log(q[-1]))) > 1e-4


def test_bvn_upper_against_quadrature(x64):
  def ref(a, b, rho):
    f = lambda r: (np.exp(-(a * a + b * b - 2 * r * a * b) / (2 * (1 - r * r)))
                   / (2 * np.pi * np.sqrt(1 - r * r)))
    return (scipy.stats.norm.sf(a) * scipy.stats.norm.sf(b)
            + scipy.integrate.quad(f, 0, rho, epsabs=1e-14, epsrel=1e-12, limit=200)[0])

  cases = [(0.0, 0.0, 0.5), (-1.3, -1.2, 0.999), (1.0, 1.01, 0.9999), (-1.28, -1.5, -0.7),
           (2.0, -1.0, 0.3)]
  got = orthant.bvn_upper(*(jnp.array(c) for c in zip(*cases)))
  for g, c in zip(np.asarray(got), cases):
    assert abs(g - ref(*c)) < 1e-10
  assert float(orthant.bvn_upper(jnp.array(0.0), jnp.array(0.0), jnp.array(0.3))) == \
      pytest.approx(0.25 + math.asin(0.3) / (2 * math.pi), abs=1e-14)  # Sheppard
  assert float(orthant.bvn_upper(jnp.array(-jnp.inf), jnp.array(0.5), jnp.array(0.3))) == \
      pytest.approx(scipy.stats.norm.sf(0.5), abs=1e-14)


def test_ghk_against_exact_orthant_probabilities(x64):
  key = jax.random.key(7)
  # Equicorrelated ρ: P(all f_i > t) = ∫ φ(z) Φ((√ρ z − t)/√(1 − ρ))^n dz.
  n, rho, t = N, 0.6, -1.1  # shapes shared with the other tests (compilation dominates)
  corr = jnp.full((n, n), rho) + (1 - rho) * jnp.eye(n)
  integrand = lambda z: scipy.stats.norm.pdf(z) * scipy.stats.norm.cdf(
      (math.sqrt(rho) * z - t) / math.sqrt(1 - rho)) ** n
  exact = math.log(scipy.integrate.quad(integrand, -12, 12, epsabs=1e-14)[0])
  est, se = orthant.ghk_log_prob(key, corr, jnp.full((n,), t, jnp.float64), 2048)
  assert 0 < float(se) < 0.02
  assert abs(float(est) - exact) < 4 * float(se)
  # Independent: the product, with no variance at all.
  est, se = orthant.ghk_log_prob(key, jnp.eye(n), jnp.full((n,), t, jnp.float64), 2048)
  assert abs(float(est) - n * scipy.stats.norm.logsf(t)) < 1e-12 and float(se) < 1e-12
  # Trivariate, zero thresholds: 1/8 + (asin ρ₁₂ + asin ρ₁₃ + asin ρ₂₃)/(4π) (padded to n with
  # certain statements, to reuse the compiled shape).
  c = jnp.array([[1, .5, .3], [.5, 1, .4], [.3, .4, 1.]])
  exact = math.log(0.125 + (math.asin(.5) + math.asin(.3) + math.asin(.4)) / (4 * math.pi))
  st = smooth.pad(smooth.GaussianStatements(c, jnp.zeros(3)), n)
  est, se = orthant.ghk_log_prob(key, st.corr, st.thresholds, 2048)
  assert abs(float(est) - exact) < 4 * float(se)


def test_smooth_statements_marginals_and_decay(x64):
  z = smooth.latent_path(jnp.zeros(2), jnp.array([1.0, 0.0]), N)
  for kind in ("se", "matern12", "matern32", "decoder"):
    c = np.asarray(smooth.kernel_corr(z, kind, 0.3, key=jax.random.key(8)))
    assert np.allclose(np.diagonal(c), 1) and np.all(np.linalg.eigvalsh(c) > 0)
    assert c[0, 1] > c[0, 2] > c[0, 4] and c[0, 1] > 0.3, kind  # decays with latent distance
  st = smooth.statements(smooth.kernel_corr(z, "matern12", 0.3), jnp.linspace(0.8, 0.95, N))
  kw = smooth.pairwise(st)
  worlds = np.asarray(smooth.sample(jax.random.key(9), st, 20000), np.float64)
  freq2 = worlds.T @ worlds / worlds.shape[0]
  se = np.sqrt(freq2 * (1 - freq2) / worlds.shape[0])
  assert np.all(np.abs(freq2 - np.asarray(kw.p2)) < 4.5 * se + 1e-12)
  truth, truth_se = smooth.log_p_all(jax.random.key(10), st, 2048)
  freq = worlds.all(1).mean()
  assert abs(np.log(freq) - float(truth)) < 4 * (float(truth_se) + math.sqrt((1 - freq) / worlds.all(1).sum()))
  # The GHK window chain with w = n − 1 is the whole conjunction.
  full, full_se = smooth.log_p_window(jax.random.key(11), st, N - 1, 512)
  assert full_se > 0
  assert abs(float(full) - float(truth)) < 4 * math.hypot(float(full_se), float(truth_se))
  # Padding with certain statements changes no estimate, bound or window term.
  small = smooth.GaussianStatements(st.corr[:3, :3], st.thresholds[:3])
  kw_small = marg.KWay((kw.p1[:3], kw.p2[:3, :3]))
  kw_pad = smooth.pairwise(smooth.pad(small, N))
  for f in (independence.log_p_independent, bethe.log_p_bethe, bethe.log_p_chow_liu):
    assert abs(float(f(kw_pad)) - float(f(kw_small))) < 1e-10
  assert np.allclose(bounds.best_bounds(kw_pad), bounds.best_bounds(kw_small), atol=1e-12)
  # The chain estimate from GHK windows agrees with the exact window marginals' chain (w = 1:
  # 2-way marginals, exact by quadrature).
  for w in (0, 1):
    v, v_se = smooth.log_p_window(jax.random.key(12), st, w, 512, max_w=N - 1)
    assert abs(float(v) - float(window.log_p_window(kw, w))) < 4 * float(v_se) + 1e-12


@pytest.mark.slow  # ~8 s, mostly compiling GHK for n = 12; the launcher test covers the code
def test_no_neighbour_cutoff_on_rough_latent_paths(x64):
  """Matérn-1/2 world: the error of the 1-neighbour estimate grows as the same latent path is
  sampled more densely, and a wider window is needed for the same error (no fixed w suffices)."""
  errs, n_max = {}, 12
  for n in (4, n_max):
    z = smooth.latent_path(jnp.zeros(1), jnp.ones(1), n)
    st = smooth.pad(smooth.statements(smooth.kernel_corr(z, "matern12", 0.2),
                                      jnp.full((n,), 0.9)), n_max)
    truth, truth_se = smooth.log_p_all(jax.random.key(13), st, 2048)
    for w in (1, 4):
      v, se = smooth.log_p_window(jax.random.key(14), st, w, 2048, max_w=4)
      errs[n, w] = (float(v) - float(truth), math.hypot(float(se), float(truth_se)))
  (e4, s4), (e12, s12) = errs[4, 1], errs[n_max, 1]
  assert e12 < 0 and abs(e12) - 3 * s12 > 3 * (abs(e4) + 3 * s4)
  assert abs(errs[n_max, 4][0]) + 3 * errs[n_max, 4][1] < abs(e12) - 3 * s12


def test_debater_reaches_the_lp_optimum_with_a_real_joint(x64):
  m = N
  z = smooth.latent_path(jnp.zeros(2), jnp.array([1.0, 0.0]), m)
  st = smooth.statements(smooth.kernel_corr(z, "se", 0.3), jnp.linspace(0.8, 0.95, m))
  kw = smooth.pairwise(st)
  lo, hi = lp.lp_bounds(kw)
  for direction, target in (("down", lo), ("up", hi)):
    r = debater.search(jax.random.key(15), kw, direction=direction, num_rounds=30)
    assert r.optimal and abs(r.p_all - target) < 1e-7
    # its joint shows the judge exactly the given marginals
    x = jnp.zeros((1 << m,)).at[np.asarray(r.states) @ (1 << np.arange(m))].add(r.weights)
    shown = marg.from_joint(x / x.sum(), 2)
    np.testing.assert_allclose(marg.distinct_values(shown), marg.distinct_values(kw), atol=1e-7)
    assert abs(float(x[-1]) - target) < 1e-7
  assert debater.worst_log_error(math.log(0.5), 0.25, 0.5) == pytest.approx(math.log(2))
  assert debater.worst_log_error(math.log(0.5), 0.0, 0.5) == math.inf
  bad = marg.from_pairwise(jnp.full((3,), 0.6), jnp.full((3, 3), 0.2))  # complements disjoint
  assert not lp.is_consistent(bad)
  with pytest.raises(ValueError, match="inconsistent"):
    debater.search(jax.random.key(16), bad)


def test_launcher_smoke(tmp_path, x64):
  from experiments.configs.conjunction import get_config
  from experiments.conjunction_report import run

  cfg = get_config("smoke")  # shrunk further: the preset's own timing is in BUILD_NOTES
  s, d = cfg.smooth, cfg.debater
  s.kernels, s.ns, s.windows, s.num_seeds, s.max_exact_n, s.max_lp_n = (
      ("matern12",), (3, N), (1, N - 1), 2, N, 4)
  s.truth_samples, s.window_samples = 2048, 512
  d.ms, d.num_rounds, d.init_worlds, d.truth_samples, d.max_exact_n = (3, N), 10, 20000, 2048, N
  d.exchangeable_ms, d.exchangeable_orders = (3, 10, 20), (1, 2)
  text = run(cfg, str(tmp_path))
  assert "Four-sided die" in text and "w*" in text
  for name in ("results.json", "table.md", "smooth_errors.png", "window_cutoff.png",
               "debater.png"):
    assert (tmp_path / name).stat().st_size > 0
  res = json.loads((tmp_path / "results.json").read_text())
  assert [r["truth"] for r in res["die"]] == [0.25, 0.0]
  assert len(res["smooth"]) == 4 and all("err_window1" in r for r in res["smooth"])
  for r in res["smooth"]:  # w = n − 1 is the whole conjunction
    if r["n"] == N:
      assert abs(r[f"err_window{N - 1}"]) < 4 * math.hypot(r[f"se_window{N - 1}"], r["truth_se"])
  for r in res["smooth"]:
    assert r["lo"] - 1e-9 <= math.exp(r["truth"] - 4 * r["truth_se"])
    assert math.exp(r["truth"] + 4 * r["truth_se"]) >= r["lo"]
    assert math.exp(r["truth"] - 4 * r["truth_se"]) <= r["hi"] + 1e-9
  for r in res["debater"]:
    assert r["optimal"] and r["lo"] <= r["truth"] + 4 * r["truth_se"]
    assert r["truth"] - 4 * r["truth_se"] <= r["hi"]


@pytest.mark.slow  # the smoke preset itself, through the command line (~40 s on 2 cores)
def test_launcher_cli_smoke_preset(tmp_path):
  import subprocess
  import sys

  out = subprocess.run([sys.executable, "-m", "experiments.conjunction",
                        "--config=experiments/configs/conjunction.py:smoke",
                        f"--workdir={tmp_path}"], capture_output=True, text=True, check=True,
                       cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
  assert "Dishonest debater" in out.stdout
  res = json.loads((tmp_path / "results.json").read_text())
  assert res["config"]["preset"] == "smoke" and len(res["smooth"]) == 12
