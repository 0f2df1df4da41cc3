"""The exact small universe: its sums against brute-force enumeration, the seed's nine-pair
table against the seed's arithmetic, and the relaxed energy's log Z against quadrature and
Monte Carlo."""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from lprior import logz
from lprior.honest_qa import exact_universe as eu

LN2 = math.log(2)


@pytest.fixture(scope="module")
def small():
  return eu.make_universe(eu.small_universe_config())


def _worlds(u):
  """Every stage-2 world: (n_worlds, n_x) entry indices and log p(w) = Σ_x log p(w_x)."""
  worlds = np.array(list(itertools.product(range(len(u.entries)), repeat=u.truth.size)))
  return worlds, u.entry_log_prior[worlds].sum(-1)


@functools.lru_cache
def _bruteforce_log_z(lam):
  """log Σ_w p(w) exp(−λ C(h1, h2; w)) over every world of the small universe, C = share of S
  where the heads differ.   -> (H, H)"""
  u = eu.make_universe(eu.small_universe_config(), lam=lam)
  worlds, log_pw = _worlds(u)
  out = np.take_along_axis(u.head_out[:, None, :, :], worlds[None, :, :, None], -1)[..., 0]
  out = out[..., u.small]  # (H, n_worlds, |S|)
  c = np.stack([(o[None] != out).mean(-1) for o in out])  # (H, H, n_worlds)
  with np.errstate(invalid="ignore"):
    lam_c = np.where(c > 0, lam * c, 0.0)
  return logsumexp(log_pw - lam_c, axis=-1)


def test_heads_and_world_prior_are_what_they_claim(small):
  u, m = small, small.answers
  eta, rho = u.entries[:, 0], u.entries[:, 1]
  assert np.exp(u.entry_log_prior).sum() == pytest.approx(1.0, abs=1e-12)
  np.testing.assert_allclose(np.exp(u.entry_log_prior),
                             np.where(rho == m, 1 - 0.2, 0.2 / m) / m)
  x = np.arange(u.truth.size)
  np.testing.assert_array_equal(u.head_out[u.index("intended")], np.tile((x % m)[:, None], 6))
  np.testing.assert_array_equal(u.head_out[u.index("simple")], np.tile(eta, (x.size, 1)))
  np.testing.assert_array_equal(u.head_out[u.index("complex")],
                                np.tile(np.where(rho == m, eta, rho), (x.size, 1)))
  np.testing.assert_array_equal(u.head_out[u.index("table_01101")][:, 0], [0, 1, 1, 0, 1])
  assert len(u.head_names) == 3 + 2 + 2**5
  # the actual world: the human right on S, wrong on E and U; the reviewer fixes E only
  act = u.entries[u.actual]
  np.testing.assert_array_equal(act[:, 0] == u.truth, [1, 1, 1, 0, 0])
  np.testing.assert_array_equal(act[:, 1], [m, m, m, u.truth[3], m])
  np.testing.assert_array_equal(u.labels[u.large], u.truth[u.large])


@pytest.mark.parametrize("lam", [math.inf, 0.0, 2.5])
def test_log_z_equals_bruteforce_enumeration(small, lam):
  u = eu.make_universe(eu.small_universe_config(), lam=lam)
  exact, brute = eu.log_z(u), _bruteforce_log_z(lam)
  finite = np.isfinite(brute)
  np.testing.assert_array_equal(finite, np.isfinite(exact))
  np.testing.assert_allclose(exact[finite], brute[finite], rtol=1e-10, atol=1e-12)
  if lam == 0.0:
    np.testing.assert_allclose(exact, 0.0, atol=1e-12)
  if lam == math.inf:
    assert not finite.all() and finite.any()


def _bruteforce_posterior(u, prior, lam):
  """Normalised log posterior over pairs, assembled from hand-written pieces."""
  h = len(u.head_names)
  bits = np.array([[u.head_bits[i] + (min(u.head_bits[i], u.copy_bits) if i == j
                                      else u.head_bits[j]) for j in range(h)] for i in range(h)])
  pred = np.array([[u.head_out[i, x, u.actual[x]] for x in range(u.truth.size)]
                   for i in range(h)])
  fits = np.all((pred == u.labels) | ~u.large, -1)
  lj = -bits * LN2 + np.where(fits, 0.0, -np.inf)[:, None]
  if prior == "two_stage":
    c = (pred[:, None, u.small] != pred[None, :, u.small]).mean(-1)
    lz = _bruteforce_log_z(lam)
    with np.errstate(invalid="ignore"):
      lj = np.where(np.isfinite(lz) & ((c == 0) | np.isfinite(lam)),
                    lj - np.where(c > 0, lam * c, 0) - np.where(np.isfinite(lz), lz, 0), -np.inf)
  return lj - logsumexp(lj)


@pytest.mark.parametrize("prior", ["plain", "two_stage"])
@pytest.mark.parametrize("lam", [math.inf, 2.5])
def test_posterior_over_pairs_equals_bruteforce(prior, lam):
  u = eu.make_universe(eu.small_universe_config(), lam=lam)
  exact, brute = eu.log_posterior(u, prior), _bruteforce_posterior(u, prior, lam)
  np.testing.assert_array_equal(np.isfinite(exact), np.isfinite(brute))
  ok = np.isfinite(brute)
  np.testing.assert_allclose(exact[ok], brute[ok], rtol=1e-9, atol=1e-9)
  assert np.exp(exact).sum() == pytest.approx(1.0, abs=1e-12)


def test_small_universe_reproduces_the_seed_ordering(small):
  """With the seed's head ratios (3 : 0.3 : 0.6 bits), the plain prior prefers imitating the
  labelers and the two-stage prior the (intended, simple) pair."""
  names = small.head_names
  best = lambda lp: tuple(names[i] for i in np.unravel_index(np.argmax(lp), lp.shape))
  assert best(eu.log_posterior(small, "plain")) == ("complex", "complex")
  assert best(eu.log_posterior(small, "two_stage")) == ("intended", "simple")


# -- the nine-pair table ------------------------------------------------------------------------


def _rows(acc):
  return {r.pair: r for r in acc.rows}


def test_nine_pair_table_reproduces_the_seed():
  acc = eu.bit_accounting()
  rows = _rows(acc)
  assert len(rows) == 9
  heads = {"intended": 10_000, "simple": 1_000, "complex": 2_000}
  q = 0.05
  saved_cs = -10_000 * math.log2(1 - q + q / 2)  # P(κ = η) per input = 1 − q + q/m
  for (a, b), r in rows.items():
    assert r.heads_bits == (heads[a] if a == b else heads[a] + heads[b])
    want_saved = 0.0 if a == b else (saved_cs if {a, b} == {"simple", "complex"} else 10_000)
    assert r.saved_bits == pytest.approx(want_saved, abs=1e-6)
    assert r.plain_bits == r.heads_bits
    assert r.two_stage_bits == pytest.approx(r.heads_bits - want_saved, abs=1e-6)
    assert math.isinf(r.misfit_bits) == (a == "simple")
    assert r.truthful_on_unseen == (a == "intended")
  # the seed's totals, N + ...
  seed = {("intended", "simple"): 1_000, ("intended", "complex"): 2_000,
          ("intended", "intended"): 10_000, ("complex", "complex"): 2_000,
          ("complex", "intended"): 2_000}
  for pair, bits in seed.items():
    assert rows[pair].two_stage_bits == pytest.approx(bits, abs=1e-6)
  assert rows[("complex", "simple")].two_stage_bits >= 2_000  # saved ≤ 1,000 bits
  assert acc.winner_two_stage == ("intended", "simple")
  assert acc.winner_plain == ("complex", "complex")
  assert rows[("intended", "simple")].share_two_stage == pytest.approx(1.0)
  assert rows[("complex", "complex")].share_two_stage == pytest.approx(2.0**-1000, rel=1e-6)
  assert "N+1,000.0" in acc.markdown()


def test_bit_accounting_follows_its_configuration():
  # a small set too poor to pin down the intended head saves only 5,000 bits: it loses
  poor = eu.bit_accounting(n_small=5_000)
  assert _rows(poor)[("intended", "simple")].two_stage_bits == pytest.approx(6_000, abs=1e-6)
  assert poor.winner_two_stage == ("complex", "complex")
  # a reviewer that overrides often makes (complex, simple) agreement rare: the seed's caveat
  rare = eu.bit_accounting(review_rate=0.5)
  saved = -10_000 * math.log2(0.75)
  assert _rows(rare)[("complex", "simple")].saved_bits == pytest.approx(saved, rel=1e-12)
  assert rare.winner_two_stage == ("complex", "simple")
  # dearer heads, a 1-bit copy, noisy labels
  acc = eu.bit_accounting(head_bits=dict(intended=20_000.0), copy_bits=1.0, label_noise=0.01,
                          n_extra=100)
  rows = _rows(acc)
  assert rows[("intended", "simple")].two_stage_bits == pytest.approx(1_000, abs=1e-6)
  assert rows[("intended", "intended")].heads_bits == 20_001
  dear_copy = _rows(eu.bit_accounting(copy_bits=1_500.0))  # a copy dearer than re-stating
  assert dear_copy[("simple", "simple")].heads_bits == 2_000
  assert dear_copy[("complex", "complex")].heads_bits == 3_500
  n_lab = 20_000 + 100
  assert rows[("intended", "simple")].misfit_bits == pytest.approx(-n_lab * math.log2(0.99))
  assert rows[("simple", "simple")].misfit_bits == pytest.approx(
      -(20_000 * math.log2(0.99) + 100 * math.log2(0.01)))


@pytest.mark.parametrize("bad, match", [
    (dict(review_rate=1.5), "review_rate"),
    (dict(head_bits=dict(intended=10_000.5)), "not an integer"),
    (dict(head_bits=dict(oracle=5.0)), "unknown head_bits"),
    (dict(extra_heads="all"), "extra_heads"),
    (dict(extra_heads="tables"), "tables"),
    (dict(world_bits=1_000.0), "world_bits"),
    (dict(colour=3), "unknown universe config"),
    (dict(answers=1), "answers"),
])
def test_bad_universe_config_raises(bad, match):
  with pytest.raises(ValueError, match=match):
    eu.make_universe(**bad)


# -- the relaxed energy: a ground truth for the log Z estimators --------------------------------


def _relaxed(dtype=jnp.float32):
  u = eu.make_universe(eu.small_universe_config(), lam=2.5)
  mean = np.random.default_rng(0).normal(size=(3, 2))
  return u, eu.relaxed_problem(u, ("intended", "simple"), sigma=0.7, kappa=4.0, radius=1.5,
                               mean=mean, dtype=dtype), mean


def _log_a(u):
  """log a_{x,e} = log p(e) − (λ/|S|)[intended(x,e) ≠ simple(x,e)] by hand (S = x 0..2)."""
  eta = u.entries[:, 0]
  d = (np.arange(3) % 2)[:, None] != eta[None]
  return u.entry_log_prior[None] - 2.5 / 3 * d


def _centres(n_e, r):
  ang = 2 * np.pi * np.arange(n_e) / n_e
  return np.stack([r * np.cos(ang), r * np.sin(ang)], -1)


def test_relaxed_energy_and_log_z_against_quadrature(x64):
  u, prob, mean = _relaxed(jnp.float64)
  la, c, s, kap = _log_a(u), _centres(6, 1.5), 0.7, 4.0
  theta = np.random.default_rng(1).normal(size=(3, 2))
  sq = ((theta[:, None] - c[None]) ** 2).sum(-1)
  want_e = -logsumexp(la - 0.5 * kap * sq, axis=-1).sum()
  assert float(prob.energy_fn({"world": jnp.asarray(theta)})) == pytest.approx(want_e, rel=1e-12)
  # per input, ∫ N(θ; μ, σ²I) Σ_e a e^{−κ/2‖θ−c_e‖²} dθ on a grid, and its score E[θ − μ]/σ²
  g = np.linspace(-7 * s, 7 * s, 301)
  h = g[1] - g[0]
  total, score = 0.0, []
  for x in range(3):
    t1, t2 = np.meshgrid(mean[x, 0] + g, mean[x, 1] + g, indexing="ij")
    pts = np.stack([t1, t2], -1)  # (G, G, 2)
    log_base = -((pts - mean[x]) ** 2).sum(-1) / (2 * s * s) - math.log(2 * math.pi * s * s)
    sq = ((pts[..., None, :] - c) ** 2).sum(-1)  # (G, G, n_e)
    w = np.exp(log_base + logsumexp(la[x] - 0.5 * kap * sq, axis=-1)) * h * h
    total += math.log(w.sum())
    score.append([(w * (pts[..., k] - mean[x, k])).sum() / w.sum() / s**2 for k in range(2)])
  assert prob.log_z == pytest.approx(total, abs=1e-8)
  assert float(prob.log_z_fn(prob.mean)) == pytest.approx(prob.log_z, rel=1e-12)
  grad = jax.grad(prob.log_z_fn)(prob.mean)["world"]
  np.testing.assert_allclose(grad, np.array(score), atol=1e-7)


def test_relaxed_log_z_against_naive_monte_carlo():
  _, prob, _ = _relaxed()
  r = logz.estimate(jax.random.key(0), prob.energy_fn, prob.mean, prob.sigma, method="naive",
                    num_particles=16_384)
  assert abs(float(r.log_z) - prob.log_z) < 4 * float(r.stderr) + 0.01
  assert -20 < prob.log_z < 0


def test_relaxed_problem_at_the_seed_scale_is_exact_and_cheap():
  """d = 20,000 with an exact log Z: a large-d ground truth for the estimators."""
  u = eu.make_universe(lam=50.0)
  prob = eu.relaxed_problem(u, ("intended", "simple"))
  assert prob.mean["world"].shape == (10_000, 2) and math.isfinite(prob.log_z)
  assert 0.0 <= float(prob.energy_fn(prob.mean)) < math.inf
  with pytest.raises(ValueError, match="finite lam"):
    eu.relaxed_problem(eu.make_universe(), ("intended", "simple"))
