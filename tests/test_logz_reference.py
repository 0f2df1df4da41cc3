"""SMC from the Laplace approximation (`reference='laplace'`, `logz.reference`): exact where the
target is Gaussian, right within its SE where it is not, on the stiff quadratic where SMC from
the prior is flagged and off by nats."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lprior import logz
from lprior.logz import reference
from lprior.logz.laplace import LaplaceConfig
from lprior.testing import quadratic as q


@pytest.mark.parametrize("exact_max_dim", [100, 10])  # dense eigenpairs; top-k Ritz pairs
def test_the_z_energy_is_constant_minus_log_z_on_a_quadratic(exact_max_dim):
  """E'(z) = −log Z for every z when the target is Gaussian and L keeps its stiff directions:
  C has rank 4 and no diagonal, so the top 8 Ritz pairs hold all of its curvature."""
  P = q.make(jax.random.key(0), 20, rank=4, diag=0.0)
  lam, mu, s = 50.0, 0.3 * jnp.ones(20), 1.0
  energy = lambda x: lam * P.consistency(x)
  ref = reference.fit(jax.random.key(1), energy, mu, s,
                      LaplaceConfig(exact_max_dim=exact_max_dim, lanczos_rank=8))
  e = jax.vmap(reference.energy_z(ref, energy, mu, s))(jax.random.normal(jax.random.key(2), (5, 20)))
  np.testing.assert_allclose(np.asarray(e), -float(P.log_z(mu, lam, 1.0)), atol=2e-3)


@pytest.mark.parametrize("shift, converged, branch", [(0.0, True, "cholesky"),
                                                      (0.0, False, "eigh"), (-3.0, True, "eigh")])
def test_the_dense_l_whitens_and_falls_back_to_clipped_eigenpairs(shift, converged, branch):
  """L Lᵀ = (I + B)⁻¹ with L⁻¹ its inverse and ½ log det(I + B), from Cholesky at a converged
  mode; from eigenpairs with λ raised to MIN_EIG where Newton did not converge or I + B is not
  positive definite (B's smallest eigenvalue 0.5 + shift)."""
  V = np.linalg.qr(np.random.default_rng(0).normal(size=(6, 6)))[0]
  lam = np.array([0.5, 1.0, 2.0, 5.0, 20.0, 100.0]) + np.array([shift, 0, 0, 0, 0, 0])
  L, L_inv, half_logdet = reference._dense_l(jnp.asarray((V * lam) @ V.T), jnp.asarray(converged))
  lam_used = np.maximum(lam, reference.MIN_EIG)
  np.testing.assert_allclose(L @ L.T, (V / (1 + lam_used)) @ V.T, atol=1e-5)
  np.testing.assert_allclose(L_inv @ L, np.eye(6), atol=1e-4)
  np.testing.assert_allclose(half_logdet, 0.5 * np.log1p(lam_used).sum(), rtol=1e-5)
  # Cholesky's L is triangular (transposed inverse factor); the eigenpairs' L is symmetric
  assert (np.abs(np.tril(np.asarray(L), -1)).max() < 1e-6) == (branch == "cholesky")


def test_laplace_start_is_exact_on_the_stiff_quadratic_where_the_prior_start_fails():
  P = q.make(jax.random.key(0), 200, rank=32, diag=1 / 200, diag_spread=1.0)  # the bench's
  lam, mean = 1000.0, jnp.zeros(200)
  energy = lambda t: lam * P.consistency(t)
  exact, grad = float(P.log_z(mean, lam, 1.0)), np.asarray(P.grad_log_z(mean, lam, 1.0))
  prior = logz.estimate(jax.random.key(0), energy, mean, 1.0, num_particles=128)
  assert abs(float(prior.log_z) - exact) > 1.0  # the control: from the prior, nats off
  r = logz.estimate(jax.random.key(0), energy, mean, 1.0, num_particles=128, reference="laplace")
  assert abs(float(r.log_z) - exact) < 1e-2 and int(r.num_steps) == 1
  np.testing.assert_allclose(np.asarray(r.grad_mean), grad, rtol=1e-2, atol=1e-2 * np.abs(grad).max())
  assert r.info["reference"] == "laplace" and bool(r.info["reliable"])
  # the particles are the posterior's: their mean is the conditional mean μ + ∇_μ log Z (σ = 1)
  w = jnp.exp(r.log_weights)
  m = w @ r.particles
  sd = jnp.sqrt(w @ (r.particles - m) ** 2)
  np.testing.assert_array_less(jnp.abs(m - (mean + grad)), 5 * sd / jnp.sqrt(r.ess))


def test_laplace_start_on_a_non_gaussian_pytree_within_its_stderr():
  """Separable quartic E = Σ a θ² + b θ⁴ over θ = {w: (2,), v: ()} with per-leaf σ: log Z and
  ∇_μ log Z per coordinate by 1-D quadrature."""
  a, b = 2.0, 1.5
  mean = {"w": jnp.array([0.4, -0.8]), "v": jnp.array(1.2)}
  sigma = {"w": 0.7, "v": 1.5}
  energy = lambda t: sum(jnp.sum(a * x ** 2 + b * x ** 4) for x in jax.tree.leaves(t))
  grid = np.linspace(-12, 12, 400_001)
  log_z, grads = 0.0, {}
  for k in ("w", "v"):
    g = []
    for m in np.atleast_1d(np.asarray(mean[k], np.float64)):
      s = sigma[k]
      dens = np.exp(-0.5 * ((grid - m) / s) ** 2 - a * grid ** 2 - b * grid ** 4) / (np.sqrt(2 * np.pi) * s)
      z = np.trapezoid(dens, grid)
      log_z += np.log(z)
      g.append(np.trapezoid(dens * (grid - m) / s ** 2, grid) / z)
    grads[k] = np.array(g).reshape(np.shape(mean[k]))
  r = logz.estimate(jax.random.key(3), energy, mean, sigma, num_particles=512, reference="laplace")
  se = float(r.stderr)
  assert 0 < se < 0.05 and abs(float(r.log_z) - log_z) < 4 * se + 1e-3, (float(r.log_z), log_z, se)
  for k in grads:
    np.testing.assert_allclose(np.asarray(r.grad_mean[k]), grads[k], atol=0.05)
  assert r.particles["w"].shape == (512, 2) and r.particles["v"].shape == (512,)
  with pytest.raises(ValueError, match="reference"):
    logz.estimate(jax.random.key(3), energy, mean, sigma, num_particles=64, reference="gauss")
  with pytest.raises(ValueError, match="num_batches"):
    logz.estimate(jax.random.key(3), energy, mean, sigma, num_particles=64, reference="laplace",
                  num_batches=2)


# -- reference='modes': a partition of unity over the prior and the modes found -----------------


def test_modes_finds_the_centred_spike_that_tempering_misses():
  """Skilling's phase transition at d = 10 (a spike 100× stiffer holding 90% of Z at the slab's
  centre): prior-start SMC is ≥ 1.5 nats low (the control); reference='modes' (Newton from μ
  reaches the spike) is within 4 SE of the closed form, with the spike's piece holding ~0.9."""
  from lprior.testing import bumps
  b = bumps.spike_slab(10, 10.0, offset=0.0, seed=0)
  mean = jnp.zeros(10)
  plain = logz.estimate(jax.random.key(0), b.energy_fn, mean, 1.0, num_particles=128)
  assert float(plain.log_z) - b.exact_log_z < -1.5
  r = logz.estimate(jax.random.key(0), b.energy_fn, mean, 1.0, num_particles=128,
                    reference="modes", num_starts=4)
  err = float(r.log_z) - b.exact_log_z
  assert abs(err) < 4 * float(r.stderr), (err, float(r.stderr))
  assert r.info["num_modes"] == 1 and bool(r.info["reliable"])
  np.testing.assert_allclose(np.asarray(r.info["piece_shares"]), [0.1, 0.9], atol=0.03)
  assert r.particles.shape == (256, 10) and abs(float(jax.nn.logsumexp(r.log_weights))) < 1e-5


def test_modes_pieces_sum_to_z_on_a_gaussian_and_bad_options_are_refused():
  """On a quadratic (one mode) the pieces' Z_j add up to the closed form to 1e-3 nat and
  ∇_μ log Z matches; num_starts outside reference='modes' and a negative count are refused."""
  P = q.make(jax.random.key(0), 8, rank=4, diag=0.5)
  mean, energy = jnp.full((8,), 0.2), lambda t: 30.0 * P.consistency(t)
  r = logz.estimate(jax.random.key(1), energy, mean, 0.7, num_particles=128, reference="modes",
                    num_starts=3)
  np.testing.assert_allclose(float(r.log_z), float(P.log_z(mean, 30.0, 0.7)), atol=1e-3)
  score = (np.asarray(r.particles) - np.asarray(mean)) / 0.49  # the pooled weighted mean's MC error
  w = np.exp(np.asarray(r.log_weights))
  mc = np.sqrt(w @ (score - w @ score) ** 2 / float(r.ess))
  err = np.asarray(r.grad_mean) - np.asarray(P.grad_log_z(mean, 30.0, 0.7))
  assert np.all(np.abs(err) < 4 * mc), (err, mc)
  assert r.info["num_modes"] == 1 and int(r.info["modes_tried"]) == 4
  with pytest.raises(ValueError, match="num_starts is an option of reference='modes'"):
    logz.estimate(jax.random.key(0), energy, mean, 1.0, num_starts=3)
  with pytest.raises(ValueError, match="num_starts must be an int >= 0"):
    logz.estimate(jax.random.key(0), energy, mean, 1.0, reference="modes", num_starts=-1)
