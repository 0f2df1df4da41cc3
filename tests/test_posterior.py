"""Tests of lprior.posterior: divergences, C and L, the partition, both log posteriors."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lprior import posterior as post
from lprior.pytree import tree_sq_norm, tree_sub

# -- helpers --------------------------------------------------------------------------------------


def _np_softmax(a):
  a = np.asarray(a, np.float64)
  e = np.exp(a - a.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def _np_log_softmax(a):
  a = np.asarray(a, np.float64)
  m = a.max(-1, keepdims=True)
  return a - m - np.log(np.exp(a - m).sum(-1, keepdims=True))


def _np_divergences(a, b):
  """Reference values from the textbook definitions, in float64."""
  p, q = _np_softmax(a), _np_softmax(b)
  m = 0.5 * (p + q)
  kl = lambda u, v: np.sum(u * np.log(u / v), -1)
  return {
      "symmetric_kl": kl(p, q) + kl(q, p),
      "jensen_shannon": 0.5 * kl(p, m) + 0.5 * kl(q, m),
      "total_variation": 0.5 * np.abs(p - q).sum(-1),
      "squared_logits": 0.5 * ((np.asarray(a, np.float64) - np.asarray(b, np.float64))**2).sum(-1),
  }


D, H, K = 5, 6, 4  # input, hidden, answers of the dict-params model


def _normal(seed, shape, scale=1.0):
  """A float32 standard-normal array from numpy's generator (no jax compilation)."""
  return jnp.asarray(scale * np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _mlp_params(seed, scale=1.0):
  return {
      "trunk": _normal((seed, 0), (D, H), scale),
      "intended": _normal((seed, 1), (H, K), scale),
      "instrumental": _normal((seed, 2), (H, K), scale),
  }


def _mlp_apply(params, x):
  """A two-headed model over a plain-dict pytree: shared tanh trunk, linear heads."""
  h = jnp.tanh(x @ params["trunk"])  # (n, H)
  return h @ params["intended"], h @ params["instrumental"]  # (n, K) x2


def _np_mlp_apply(params, x):
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  h = np.tanh(np.asarray(x, np.float64) @ p["trunk"])
  return h @ p["intended"], h @ p["instrumental"]


def _np_sq_norm(a, b):
  return sum(float(np.sum((np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64))**2))
             for k in a)


def _data(seed, n_small=7, n_large=9, d=D, k=K):
  rng = np.random.default_rng((seed, 3))
  return post.Data(x_small=_normal((seed, 4), (n_small, d)),
                   x_large=_normal((seed, 5), (n_large, d)),
                   y_large=jnp.asarray(rng.integers(0, k, size=n_large), jnp.int32))


class Trunk(nn.Module):
  width: int
  depth: int

  def setup(self):
    self.layers = [nn.Dense(self.width) for _ in range(self.depth)]

  def __call__(self, x):
    for layer in self.layers:
      x = nn.tanh(layer(x))
    return x


class TwoHead(nn.Module):
  """A tiny Flax two-headed MLP: trunk.layers_0 … layers_{depth-1}, then two Dense heads."""
  width: int = 4
  depth: int = 4
  answers: int = 3

  @nn.compact
  def __call__(self, x):
    h = Trunk(self.width, self.depth, name="trunk")(x)
    dense = lambda name: nn.Dense(self.answers, name=name)
    return dense("intended")(h), dense("instrumental")(h)


@pytest.fixture(scope="module")
def flax_model():
  model = TwoHead()
  params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 3)))
  return model, params


# -- divergences ----------------------------------------------------------------------------------

A = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0], [-3.0, 4.0, 1.0]], np.float32)
B = np.array([[0.3, -1.0, 2.0], [1.0, 0.0, -1.0], [-3.0, 4.0, 1.0]], np.float32)


@pytest.mark.parametrize("name", sorted(post.DIVERGENCES))
def test_divergence_matches_numpy(name):
  div = post.get_divergence(name)
  got = np.asarray(div(jnp.asarray(A), jnp.asarray(B)))
  assert got.shape == (3,)
  np.testing.assert_allclose(got, _np_divergences(A, B)[name], rtol=1e-5, atol=1e-6)
  # symmetric, zero at equal inputs (the last row of A and B are equal)
  np.testing.assert_allclose(np.asarray(div(B, A)), got, rtol=1e-6, atol=1e-7)
  assert abs(got[2]) <= 1e-7
  assert np.all(got[:2] > 0)


def test_divergence_hand_values():
  # p = (1/2, 1/2), q = (3/4, 1/4)
  a, b = jnp.array([0.0, 0.0]), jnp.array([math.log(3.0), 0.0])
  np.testing.assert_allclose(post.symmetric_kl(a, b), math.log(3.0) / 4, rtol=1e-6)
  np.testing.assert_allclose(post.total_variation(a, b), 0.25, rtol=1e-6)
  np.testing.assert_allclose(post.squared_logits(a, b), 0.5 * math.log(3.0)**2, rtol=1e-6)
  js = 0.5 * (0.5 * math.log(0.5 / 0.625) + 0.5 * math.log(0.5 / 0.375)) + 0.5 * (
      0.75 * math.log(0.75 / 0.625) + 0.25 * math.log(0.25 / 0.375))
  np.testing.assert_allclose(post.jensen_shannon(a, b), js, rtol=1e-5)


def test_divergence_bounds_and_stability():
  # nearly disjoint supports: TV -> 1, JS -> log 2, everything finite
  # nearly disjoint supports, then 64 random pairs, in one jitted call
  a = jnp.concatenate([jnp.array([[80.0, -80.0, -80.0]]), _normal(1, (64, 3), 5.0)])
  b = jnp.concatenate([jnp.array([[-80.0, 80.0, -80.0]]), _normal(2, (64, 3), 5.0)])
  d = jax.jit(lambda a, b: {n: f(a, b) for n, f in post.DIVERGENCES.items()})(a, b)
  assert all(np.all(np.isfinite(v)) for v in d.values())
  np.testing.assert_allclose(d["total_variation"][0], 1.0, rtol=1e-6)
  np.testing.assert_allclose(d["jensen_shannon"][0], math.log(2.0), rtol=1e-6)
  np.testing.assert_allclose(d["symmetric_kl"][0], 320.0, rtol=1e-5)  # Σ(p−q)(log p − log q)
  assert np.all(d["total_variation"] <= 1.0)
  assert np.all(d["jensen_shannon"] <= math.log(2.0) + 1e-6)
  assert all(np.all(v >= 0.0) for v in d.values())


def test_divergence_batch_shape():
  a = jax.ShapeDtypeStruct((2, 3, 4), jnp.float32)
  for div in post.DIVERGENCES.values():
    assert jax.eval_shape(div, a, a).shape == (2, 3)


def test_unknown_divergence():
  with pytest.raises(ValueError, match="unknown divergence 'kl'.*symmetric_kl"):
    post.get_divergence("kl")
  params, data = _mlp_params(0), _data(1)
  with pytest.raises(ValueError, match="unknown divergence"):
    post.consistency(params, _mlp_apply, data.x_small, divergence="hellinger")


def test_divergence_shape_mismatch():
  with pytest.raises(ValueError, match="shapes differ"):
    post.symmetric_kl(jnp.zeros((2, 3)), jnp.zeros((2, 4)))


# -- C and L --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(post.DIVERGENCES))
def test_consistency_matches_numpy(name):
  params, data = _mlp_params(3), _data(4)
  got = post.consistency(params, _mlp_apply, data.x_small, divergence=name)
  a, b = _np_mlp_apply(params, data.x_small)
  np.testing.assert_allclose(got, np.mean(_np_divergences(a, b)[name]), rtol=2e-5)


@pytest.mark.parametrize("name", ["symmetric_kl", "jensen_shannon", "squared_logits"])
def test_stop_intended_changes_gradient_only(name):
  params, data = _mlp_params(5), _data(6)
  c = lambda p, s: post.consistency(p, _mlp_apply, data.x_small, divergence=name, stop_intended=s)
  assert c(params, True) == c(params, False)

  grad = jax.jit(jax.grad(c), static_argnums=1)
  g_full, g_stop = grad(params, False), grad(params, True)
  # The intended head's weights reach C only through the intended logits: no gradient at all.
  np.testing.assert_array_equal(g_stop["intended"], np.zeros((H, K)))
  assert np.abs(g_full["intended"]).max() > 1e-4
  # The instrumental head's weights only through the instrumental logits: gradient unchanged.
  np.testing.assert_allclose(g_stop["instrumental"], g_full["instrumental"], rtol=1e-6, atol=1e-8)
  # The shared trunk: only the instrumental path remains, i.e. the gradient of
  # θ ↦ mean D(fixed intended logits, instrumental(θ)).
  fixed, _ = _mlp_apply(params, data.x_small)
  div = post.get_divergence(name)
  ref = jax.jit(jax.grad(lambda p: jnp.mean(div(fixed, _mlp_apply(p, data.x_small)[1]))))(params)
  np.testing.assert_allclose(g_stop["trunk"], ref["trunk"], rtol=1e-5, atol=1e-7)
  assert not np.allclose(g_stop["trunk"], g_full["trunk"], rtol=1e-3, atol=1e-5)


def test_log_likelihood_matches_numpy():
  params, data = _mlp_params(7), _data(8)
  a, _ = _np_mlp_apply(params, data.x_large)
  y = np.asarray(data.y_large)
  ll = _np_log_softmax(a)[np.arange(len(y)), y]
  got = post.log_likelihood(params, _mlp_apply, data.x_large, data.y_large)
  np.testing.assert_allclose(got, ll.sum(), rtol=1e-5)
  w = np.linspace(0.0, 2.0, len(y)).astype(np.float32)
  got_w = post.log_likelihood(params, _mlp_apply, data.x_large, data.y_large, w)
  np.testing.assert_allclose(got_w, (w * ll).sum(), rtol=1e-5)
  # jit / grad go through
  f = jax.jit(lambda p: post.log_likelihood(p, _mlp_apply, data.x_large, data.y_large))
  np.testing.assert_allclose(f(params), ll.sum(), rtol=1e-5)
  assert jax.tree.structure(jax.grad(f)(params)) == jax.tree.structure(params)


def test_terms_input_errors():
  params, data = _mlp_params(9), _data(10)
  ll = lambda x, y, **kw: post.log_likelihood(params, _mlp_apply, x, y, **kw)
  with pytest.raises(ValueError, match="y_large must be an integer"):
    ll(data.x_large, data.y_large.astype(jnp.float32))
  with pytest.raises(ValueError, match=r"y_large: shape \(8,\)"):
    ll(data.x_large, data.y_large[:8])
  with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
    ll(data.x_large, data.y_large.at[0].set(K))
  with pytest.raises(ValueError, match="weights: shape"):
    ll(data.x_large, data.y_large, weights=jnp.ones(3))
  with pytest.raises(ValueError, match="x_large contains NaN"):
    ll(data.x_large.at[0, 0].set(jnp.nan), data.y_large)
  with pytest.raises(ValueError, match="x_small contains NaN"):
    post.consistency(params, _mlp_apply, data.x_small.at[1, 2].set(jnp.nan))
  # under tracing the NaN check is skipped and the NaN propagates
  c = jax.jit(lambda x: post.consistency(params, _mlp_apply, x))
  assert np.isnan(c(data.x_small.at[1, 2].set(jnp.nan)))


def test_apply_fn_errors():
  params, data = _mlp_params(11), _data(12)
  bad_shapes = lambda p, x: (_mlp_apply(p, x)[0], _mlp_apply(p, x)[1][:, :2])
  with pytest.raises(ValueError, match="intended and instrumental logits shapes differ"):
    post.consistency(params, bad_shapes, data.x_small)
  with pytest.raises(ValueError, match="must return a pair"):
    post.consistency(params, lambda p, x: _mlp_apply(p, x)[0], data.x_small)
  with pytest.raises(ValueError, match="must return a pair"):
    post.log_likelihood(params, lambda p, x: (*_mlp_apply(p, x), 0), data.x_large, data.y_large)


# -- the quadratic identity -----------------------------------------------------------------------


def test_squared_logits_linear_heads_is_quadratic(x64):  # x64: the fixture in conftest.py
  """intended = W_a x, instrumental = W_b x: C(θ) = ½ θᵀ M θ, M = [[1,−1],[−1,1]] ⊗ I_K ⊗ S."""
  rng = np.random.default_rng(0)
  n, d, k = 11, 4, 3
  x = rng.normal(size=(n, d))
  wa, wb = rng.normal(size=(k, d)), rng.normal(size=(k, d))
  apply_fn = lambda p, x: (x @ p["a"].T, x @ p["b"].T)
  c_fn = lambda p: post.consistency(p, apply_fn, jnp.asarray(x), divergence="squared_logits")
  c, g = jax.jit(jax.value_and_grad(c_fn))({"a": jnp.asarray(wa), "b": jnp.asarray(wb)})
  assert c.dtype == jnp.float64
  s = x.T @ x / n  # (d, d)
  m = np.kron(np.array([[1.0, -1.0], [-1.0, 1.0]]), np.kron(np.eye(k), s))  # (2kd, 2kd)
  theta = np.concatenate([wa.ravel(), wb.ravel()])  # row-major vec of W_a, then W_b
  np.testing.assert_allclose(float(c), 0.5 * theta @ m @ theta, rtol=1e-12)
  # ... and its gradient is M θ
  np.testing.assert_allclose(np.concatenate([g["a"].ravel(), g["b"].ravel()]), m @ theta,
                             rtol=1e-12, atol=1e-12)


# -- the chained form ----------------------------------------------------------------------------


def _chained_setup():
  theta0 = _mlp_params(130, 0.5)
  theta1 = jax.tree.map(lambda t, e: t + e, theta0, _mlp_params(131, 0.3))
  theta2 = jax.tree.map(lambda t, e: t + e, theta1, _mlp_params(132, 0.2))
  return theta0, theta1, theta2, _data(133)


def _np_terms(theta1, theta2, theta0, data):
  """L(θ₂) and C(θ₂) (symmetric KL) in numpy, float64."""
  a, _ = _np_mlp_apply(theta2, data.x_large)
  y = np.asarray(data.y_large)
  ll = _np_log_softmax(a)[np.arange(len(y)), y].sum()
  a, b = _np_mlp_apply(theta2, data.x_small)
  c = np.mean(_np_divergences(a, b)["symmetric_kl"])
  return ll, c


def test_chained_log_posterior_matches_formula():
  theta0, theta1, theta2, data = _chained_setup()
  lam, log_z = 3.0, -1.25
  total, terms = post.chained_log_posterior(theta1, theta2, apply_fn=_mlp_apply, theta0=theta0,
                                            data=data, sigma1=1.0, sigma2=1.0, lam=lam,
                                            log_z=log_z)
  assert set(terms) == set(post.TERM_KEYS)
  np.testing.assert_allclose(total, sum(terms[k] for k in post.TERM_KEYS if k.startswith("log_p"))
                             + terms["log_likelihood"] - terms["lam_consistency"] - terms["log_z"],
                             rtol=1e-6)
  ll, c = _np_terms(theta1, theta2, theta0, data)
  d = D * H + 2 * H * K
  # DESIGN §1 with σ₁ = σ₂ = 1, plus each Gaussian's −(d/2) log 2π
  expected = (ll - _np_sq_norm(theta1, theta0) / 2 - _np_sq_norm(theta2, theta1) / 2 - lam * c
              - log_z - d * math.log(2 * math.pi))
  np.testing.assert_allclose(total, expected, rtol=1e-5)
  np.testing.assert_allclose(terms["lam_consistency"], lam * c, rtol=1e-5)
  np.testing.assert_allclose(terms["log_likelihood"], ll, rtol=1e-5)
  np.testing.assert_allclose(terms["log_z"], log_z)


def test_chained_log_prior_general_sigma():
  theta0, theta1, theta2, _ = _chained_setup()
  s1, s2 = 0.5, 2.0
  terms = post.chained_log_prior_terms(theta1, theta2, theta0, sigma1=s1, sigma2=s2)
  d = D * H + 2 * H * K
  np.testing.assert_allclose(terms["log_prior_theta1"], -_np_sq_norm(theta1, theta0) / (2 * s1**2)
                             - 0.5 * d * math.log(2 * math.pi * s1**2), rtol=1e-5)
  np.testing.assert_allclose(terms["log_prior_theta2"], -_np_sq_norm(theta2, theta1) / (2 * s2**2)
                             - 0.5 * d * math.log(2 * math.pi * s2**2), rtol=1e-5)


def test_chained_callable_log_z_jit_grad_vmap():
  theta0, theta1, theta2, data = _chained_setup()
  log_z = lambda t1: -0.5 * tree_sq_norm(t1)

  def f(t1, t2):
    return post.chained_log_posterior(t1, t2, apply_fn=_mlp_apply, theta0=theta0, data=data,
                                      sigma1=1.0, sigma2=2.0, lam=0.5, log_z=log_z,
                                      divergence="jensen_shannon")[0]

  eager, terms = post.chained_log_posterior(
      theta1, theta2, apply_fn=_mlp_apply, theta0=theta0, data=data._asdict(), sigma1=1.0,
      sigma2=2.0, lam=0.5, log_z=log_z, divergence="jensen_shannon")
  np.testing.assert_allclose(terms["log_z"], -0.5 * tree_sq_norm(theta1), rtol=1e-6)

  @jax.jit
  def traced(t1, t2):
    stacked = jax.tree.map(lambda t: jnp.stack([t, 2 * t, -t]), t2)
    return (jax.value_and_grad(f)(t1, t2), jax.vmap(f, in_axes=(None, 0))(t1, stacked),
            f(t1, jax.tree.map(lambda t: -t, t2)))

  (value, g1), batched, negated = traced(theta1, theta2)
  np.testing.assert_allclose(value, eager, rtol=1e-5)
  # ∇θ₁ = −(θ₁−θ₀)/σ₁² + (θ₂−θ₁)/σ₂² + θ₁ (the last from −log Z)
  ref = jax.tree.map(lambda t0, t1, t2: -(t1 - t0) + (t2 - t1) / 4.0 + t1, theta0, theta1, theta2)
  for k in g1:
    np.testing.assert_allclose(g1[k], ref[k], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(batched[0], value, rtol=1e-5)
  np.testing.assert_allclose(batched[2], negated, rtol=1e-5)
  assert abs(batched[1] - value) > 1.0


def test_chained_energy():
  _, _, theta2, data = _chained_setup()
  energy = post.chained_energy(_mlp_apply, data.x_small, 2.5, "total_variation")
  c = post.consistency(theta2, _mlp_apply, data.x_small, divergence="total_variation")
  np.testing.assert_allclose(energy(theta2), 2.5 * c, rtol=1e-6)
  stacked = jax.tree.map(lambda t: jnp.stack([t, 0.5 * t]), theta2)
  e, g = jax.jit(jax.vmap(jax.value_and_grad(energy)))(stacked)
  assert e.shape == (2,) and g["trunk"].shape == (2, D, H)
  np.testing.assert_allclose(e[0], energy(theta2), rtol=1e-6)


# -- the partitioned form -------------------------------------------------------------------------


def test_partition_round_trip_flax(flax_model):
  _, params = flax_model
  mask = post.default_mask(params)
  theta1, theta2 = post.split(params, mask)
  # None leaves mark the other part; together they hold every leaf once
  n1, n2, n = (len(jax.tree.leaves(t)) for t in (theta1, theta2, params))
  assert n1 == 4 and n1 + n2 == n  # two Dense heads: kernel + bias each
  assert theta1["params"]["trunk"]["layers_0"]["kernel"] is None
  assert theta2["params"]["intended"]["kernel"] is None
  merged = post.merge(theta1, theta2)
  assert jax.tree.structure(merged) == jax.tree.structure(params)
  for a, b in zip(jax.tree.leaves(merged), jax.tree.leaves(params)):
    assert a is b
  with pytest.raises(ValueError, match="complementary"):
    post.merge(theta1, theta1)


def test_default_mask_trunk_share(flax_model):
  _, params = flax_model
  mask = post.default_mask(params, trunk_share=0.5)  # round(0.5 · 4) = 2 trunk layers
  m = mask["params"]
  assert all(m[h][leaf] for h in ("intended", "instrumental") for leaf in ("kernel", "bias"))
  chosen = sorted(name for name, layer in m["trunk"].items() if layer["kernel"])
  assert chosen == ["layers_0", "layers_1"]
  assert all(layer["kernel"] == layer["bias"] for layer in m["trunk"].values())
  # the same mask from a predicate on the key path
  pred = lambda path, _: ("intended" in path or "instrumental" in path
                          or any(f"['layers_{i}']" in path for i in range(2)))
  assert post.mask_from_predicate(params, pred) == mask
  assert post.mask_from_predicate(params, pred) == post.default_mask(params, trunk_share=0.4)
  with pytest.raises(ValueError, match="selects everything"):
    post.default_mask(params, trunk_share=1.0)
  with pytest.raises(ValueError, match="trunk_share must lie"):
    post.default_mask(params, trunk_share=1.5)
  with pytest.raises(ValueError, match="no parameter path contains any of the head keys"):
    post.default_mask(params, head_keys=("policy",))


def test_default_mask_numeric_order():
  """12 trunk layers (keys ordered by their trailing integer) and a list-valued trunk."""
  leaf = np.zeros(2)
  params = {"trunk": {f"Dense_{i}": {"w": leaf} for i in range(12)},
            "intended_head": {"w": leaf}, "instrumental_head": {"w": leaf}}
  mask = post.default_mask(params, trunk_share=0.25)  # round(0.25 · 12) = 3
  assert sorted(k for k, v in mask["trunk"].items() if v["w"]) == ["Dense_0", "Dense_1", "Dense_2"]
  assert mask["intended_head"]["w"] and mask["instrumental_head"]["w"]
  # half-up rounding: 0.5 · 11 = 5.5 -> 6 (not lexicographic: Dense_10 is not among them)
  params["trunk"].pop("Dense_11")
  mask = post.default_mask(params, trunk_share=0.5)
  assert sorted((k for k, v in mask["trunk"].items() if v["w"]), key=lambda k: int(k[6:])) == [
      f"Dense_{i}" for i in range(6)]
  seq = {"trunk": [leaf] * 4, "intended": leaf, "instrumental": leaf}
  assert post.default_mask(seq, trunk_share=0.25)["trunk"] == [True, False, False, False]
  with pytest.raises(ValueError, match="no node is keyed 'body'"):
    post.default_mask(seq, trunk_share=0.25, trunk_key="body")


def test_mask_errors(flax_model):
  _, params = flax_model
  with pytest.raises(ValueError, match="selects nothing"):
    post.split(params, jax.tree.map(lambda _: False, params))
  with pytest.raises(ValueError, match="selects everything"):
    post.split(params, jax.tree.map(lambda _: True, params))
  bad = {"params": {"intended": {"kernel": True, "bias": True}}}
  with pytest.raises(ValueError, match="does not match the tree structure"):
    post.split(params, bad)
  with pytest.raises(ValueError, match="must be a concrete bool"):
    post.split(params, jax.tree.map(lambda _: 1.0, params))


def _partitioned_setup(flax_model, trunk_share=0.25):
  model, params = flax_model
  mask = post.default_mask(params, trunk_share=trunk_share)
  init1, init2 = post.split(params, mask)
  leaves, treedef = jax.tree.flatten(params)
  moved = treedef.unflatten([t + _normal((140, i), t.shape, 0.3) for i, t in enumerate(leaves)])
  theta1, theta2 = post.split(moved, mask)
  data = _data(141, n_small=6, n_large=8, d=3, k=3)
  apply_fn = jax.jit(model.apply)
  return apply_fn, moved, mask, (init1, init2), (theta1, theta2), data


def test_partitioned_log_posterior(flax_model):
  apply_fn, moved, mask, (init1, init2), (theta1, theta2), data = _partitioned_setup(flax_model)
  _, params = flax_model
  s1, s2, lam, log_z = 0.7, 1.3, 4.0, -0.4
  # jitted closure: the arguments stay concrete at trace time, so the checks still run
  total, terms = jax.jit(lambda: post.partitioned_log_posterior(
      theta1, theta2, apply_fn=apply_fn, theta1_init=init1, theta2_init=init2, data=data,
      sigma1=s1, sigma2=s2, lam=lam, log_z=log_z))()
  # L and C of the merged network
  np.testing.assert_allclose(terms["log_likelihood"],
                             post.log_likelihood(moved, apply_fn, data.x_large, data.y_large),
                             rtol=1e-6)
  np.testing.assert_allclose(terms["lam_consistency"],
                             lam * post.consistency(moved, apply_fn, data.x_small), rtol=1e-6)
  # Gaussian priors over each part's own leaves, by hand from the mask
  flags = jax.tree.leaves(mask)
  diffs = [np.asarray(a, np.float64) - np.asarray(b, np.float64)
           for a, b in zip(jax.tree.leaves(moved), jax.tree.leaves(params))]

  def log_n(part: bool, s: float) -> float:
    sel = [x for x, f in zip(diffs, flags) if f == part]
    d = sum(x.size for x in sel)
    return -sum(np.sum(x**2) for x in sel) / (2 * s**2) - 0.5 * d * math.log(2 * math.pi * s**2)

  np.testing.assert_allclose(terms["log_prior_theta1"], log_n(True, s1), rtol=1e-5)
  np.testing.assert_allclose(terms["log_prior_theta2"], log_n(False, s2), rtol=1e-5)
  expected = (terms["log_likelihood"] + log_n(True, s1) + log_n(False, s2)
              - terms["lam_consistency"] - log_z)
  np.testing.assert_allclose(total, expected, rtol=1e-5)


def test_partitioned_grad_and_energy(flax_model):
  apply_fn, moved, _, (init1, init2), (theta1, theta2), data = _partitioned_setup(flax_model)

  def f(t1, t2):
    return post.partitioned_log_posterior(
        t1, t2, apply_fn=apply_fn, theta1_init=init1, theta2_init=init2, data=data, sigma1=1.0,
        sigma2=1.0, lam=1.0, log_z=lambda t: 0.0 * tree_sq_norm(t), stop_intended=True)[0]

  g1, g2 = jax.jit(jax.grad(f, argnums=(0, 1)))(theta1, theta2)
  assert jax.tree.structure(g1) == jax.tree.structure(theta1)
  assert jax.tree.structure(g2) == jax.tree.structure(theta2)
  energy = post.partitioned_energy(apply_fn, data.x_small, 3.0, "symmetric_kl")
  np.testing.assert_allclose(energy(theta1, theta2),
                             3.0 * post.consistency(moved, apply_fn, data.x_small), rtol=1e-6)
  stacked = jax.tree.map(lambda t: jnp.stack([t, t]), theta2)
  e = jax.jit(jax.vmap(energy, in_axes=(None, 0)))(theta1, stacked)
  np.testing.assert_allclose(e, np.full(2, energy(theta1, theta2)), rtol=1e-6)


# -- argument errors ------------------------------------------------------------------------------


def test_posterior_argument_errors(flax_model):
  theta0, theta1, theta2, data = _chained_setup()
  kw = dict(apply_fn=_mlp_apply, theta0=theta0, data=data, sigma1=1.0, sigma2=1.0, lam=1.0,
            log_z=0.0)
  ok = lambda **over: post.chained_log_posterior(theta1, theta2, **{**kw, **over})
  with pytest.raises(ValueError, match="sigma1 must be finite and > 0"):
    ok(sigma1=0.0)
  with pytest.raises(ValueError, match="sigma2 must be finite and > 0"):
    ok(sigma2=-1.0)
  with pytest.raises(ValueError, match="lam must be finite and >= 0"):
    ok(lam=-0.1)
  with pytest.raises(ValueError, match="unknown divergence"):
    ok(divergence="kl")
  bad0 = {**theta0, "trunk": theta0["trunk"][:, :2]}
  with pytest.raises(ValueError, match=r"theta1 does not match theta0: leaf \['trunk'\]"):
    ok(theta0=bad0)
  with pytest.raises(ValueError, match="theta1 does not match theta0: tree structures differ"):
    ok(theta0={k: v for k, v in theta0.items() if k != "trunk"})
  with pytest.raises(ValueError, match="log_z must be a scalar"):
    ok(log_z=jnp.zeros(2))
  with pytest.raises(ValueError, match="data: missing fields"):
    ok(data={"x_small": data.x_small})
  with pytest.raises(ValueError, match="lam must be finite and >= 0"):
    post.chained_energy(_mlp_apply, data.x_small, -1.0)
  # partitioned: mismatched halves
  apply_fn, _, _, (init1, init2), (t1, t2), pdata = _partitioned_setup(flax_model)
  with pytest.raises(ValueError, match="theta2 does not match theta2_init"):
    post.partitioned_log_posterior(t1, t2, apply_fn=apply_fn, theta1_init=init1,
                                   theta2_init=init1, data=pdata, sigma1=1.0, sigma2=1.0,
                                   lam=1.0, log_z=0.0)
  # checks are skipped on traced values, so jit works with a traced sigma/lam
  f = jax.jit(lambda s, l: ok(sigma1=s, lam=l)[0])
  np.testing.assert_allclose(f(1.0, 1.0), ok()[0], rtol=1e-5)
