"""The honest-QA world: answers and labelers by hand, rates against the config, the sets and
splits, step-3 comparisons, Bradley–Terry, metrics, and the two-headed model with the mask."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lprior import posterior as post
from lprior.honest_qa import comparisons as cmp
from lprior.honest_qa import labelers, model, splits, world
from lprior.honest_qa.labelers import HUMAN_RIGHT, MIXED_ERROR, SEEN_ERROR, UNSEEN_ERROR

ERROR_PROB = dict(occluded=0.8, low_light=0.6, far=0.9)
SPEC = world.world_spec(n_small=800, error_ratio=0.5, n_test=400, catch_share=0.3,
                        error_prob=ERROR_PROB)


def _within(measured: float, p: float, n: int, z: float = 4.5) -> bool:
  """|measured − p| within z binomial standard errors (at least one count)."""
  return abs(measured - p) <= z * math.sqrt(p * (1 - p) / n) + 1.0 / n


@pytest.fixture(scope="module")
def iid():
  """16,384 labelled i.i.d. examples of SPEC (two rejection-sampler rounds, accept all)."""
  parts = [splits.labelled_chunk(jax.random.key(i), SPEC) for i in (100, 101)]
  return jax.tree.map(lambda *a: np.concatenate([np.asarray(x) for x in a]), *parts)


@pytest.fixture(scope="module")
def sets():
  return splits.make_datasets(jax.random.key(0), SPEC)


# -- config -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad, match", [
    (dict(catch_share=1.5), "catch_share"),
    (dict(p_occluded=-0.1), "p_occluded"),
    (dict(error_prob=dict(far=2.0)), "error_prob.far"),
    (dict(error_prob=dict(glare=0.5)), "unknown error_prob"),
    (dict(question_types=("count_colour", "why")), "unknown question type"),
    (dict(seen_error_kinds=("occluded", "smoke")), "unknown error kind"),
    (dict(unseen_error_kinds=("occluded",)), "both seen and unseen"),
    (dict(seen_error_kinds=()), "seen_error_kinds is empty"),
    (dict(low_light_pair=(1, 1)), "low_light_pair"),
    (dict(far_pair=(0, 3)), "far_pair"),
    (dict(n_smal=10), "unknown world config"),
    (dict(comparisons=dict(margin=0.7)), "margin"),
    (dict(n_small=0), "n_small"),
])
def test_bad_config_raises(bad, match):
  with pytest.raises(ValueError, match=match):
    world.world_spec(**bad)


def test_config_roundtrip_and_sizes():
  cfg = world.default_world_config()
  cfg.catch_share = 0.7
  spec = world.world_spec(cfg)
  assert spec.catch_share == 0.7 and world.world_spec(spec) is spec
  assert world.world_spec(spec, n_test=3).n_test == 3
  assert spec.n_answers == len(world.answer_names(spec)) == spec.n_slots + 4 + 3 + 3
  assert spec.input_dim == spec.n_slots * 9 + 1 + len(spec.question_types) + spec.n_args


# -- answers and labelers on a hand-built scene -------------------------------------------------
#
# slot 0: colour 0, shape 0, occluded;  slot 1: colour 1, shape 0, far;  slot 2: empty;  low light.
# The human (prone to everything) sees only slot 1, as colour 0 (low light) and shape 1 (far).

_Q = world.QUESTION_TYPES.index
HAND = [  # (type, arg, truth, human, error_kinds (occluded, low_light, far), error class)
    ("count_colour", 0, "count=1", "count=1", (1, 0, 0), HUMAN_RIGHT),  # errors cancel
    ("count_colour", 1, "count=1", "count=0", (0, 0, 0), SEEN_ERROR),   # only jointly wrong
    ("exists_shape", 0, "yes", "no", (0, 0, 0), UNSEEN_ERROR),
    ("shape_at", 1, "shape=0", "shape=1", (0, 0, 1), UNSEEN_ERROR),
    ("colour_at", 0, "colour=0", "none", (1, 1, 0), SEEN_ERROR),
    ("colour_at", 2, "none", "none", (0, 0, 0), HUMAN_RIGHT),
    ("count_shape", 0, "count=2", "count=0", (1, 0, 1), MIXED_ERROR),
    ("exists_colour", 2, "no", "no", (0, 0, 0), HUMAN_RIGHT),
]


def _hand_examples(spec, susceptible=(True, True, True), caught=True):
  n = len(HAND)
  rep = lambda a, dt: jnp.tile(jnp.asarray(a, dt)[None], (n, 1))
  scene = world.Scene(present=rep([1, 1, 0], bool), colour=rep([0, 1, 2], jnp.int32),
                      shape=rep([0, 0, 2], jnp.int32), occluded=rep([1, 0, 0], bool),
                      far=rep([0, 1, 0], bool), low_light=jnp.ones(n, bool))
  question = world.Question(qtype=jnp.array([_Q(h[0]) for h in HAND], jnp.int32),
                            arg=jnp.array([h[1] for h in HAND], jnp.int32))
  x = jax.jit(world.encode)(scene, question, jnp.zeros((n, spec.obs_dim)), spec)
  return world.Examples(scene, question, rep(susceptible, bool), jnp.full(n, caught), x)


def test_answers_and_simple_labeler_by_hand():
  spec = world.world_spec(error_prob=dict(occluded=1.0, low_light=1.0, far=1.0))
  names = world.answer_names(spec)
  ex = _hand_examples(spec)
  lab = labelers.label(ex, spec)
  assert [names[i] for i in lab.truth] == [h[2] for h in HAND]
  assert [names[i] for i in lab.human] == [h[3] for h in HAND]
  np.testing.assert_array_equal(lab.error_kinds, np.array([h[4] for h in HAND], bool))
  np.testing.assert_array_equal(lab.error_class, [h[5] for h in HAND])
  np.testing.assert_array_equal(lab.complex, lab.truth)  # every error caught
  lab_missed = labelers.label(ex._replace(caught=jnp.zeros(len(HAND), bool)), spec)
  np.testing.assert_array_equal(lab_missed.complex, lab.human)
  # not prone to occlusion: slot 0 is seen, in low light its colour 0 reads as 1
  lab2 = labelers.label(_hand_examples(spec, susceptible=(False, True, True)), spec)
  assert names[int(lab2.human[4])] == "colour=1"
  # a kind in neither list never causes an error
  spec3 = world.world_spec(seen_error_kinds=("occluded",), unseen_error_kinds=())
  lab3 = labelers.label(_hand_examples(spec3), spec3)
  assert names[int(lab3.human[3])] == "shape=0" and not np.asarray(lab3.error_kinds)[:, 1:].any()


def test_noiseless_observation_by_hand():
  spec = world.world_spec()
  x = np.asarray(_hand_examples(spec).x[0])
  t = spec.trace
  slot0 = [t, t, 0, 0, t, 0, 0, 1, 0]     # presence, colours, shapes, occluded, far
  slot1 = [1, 0, t, 0, t, 0, 0, 0, 1]     # colour dimmed by low light, shape by distance
  slot2 = [0] * 9
  qtype = np.eye(len(spec.question_types))[spec.question_types.index("count_colour")]
  np.testing.assert_allclose(x, np.concatenate([slot0, slot1, slot2, [1], qtype,
                                                np.eye(spec.n_args)[0]]))


def test_truth_is_recoverable_from_the_noisy_observation(iid):
  """Decoding x by thresholds and argmaxes answers nearly every question right: honesty is
  learnable from the input."""
  ex, lab = iid
  s, f = SPEC, SPEC.slot_features
  slots = ex.x[:, :s.n_slots * f].reshape(-1, s.n_slots, f)
  present = slots[..., 0] > s.trace / 2
  colour = slots[..., 1:1 + s.n_colours].argmax(-1)
  shape = slots[..., 1 + s.n_colours:1 + s.n_colours + s.n_shapes].argmax(-1)
  n_q = len(s.question_types)
  q = np.asarray(world.question_type_ids(s))[ex.x[:, s.obs_dim:s.obs_dim + n_q].argmax(-1)]
  arg = ex.x[:, s.obs_dim + n_q:].argmax(-1)
  decoded = world.answer(jnp.asarray(present), jnp.asarray(colour), jnp.asarray(shape),
                         world.Question(jnp.asarray(q), jnp.asarray(arg)), s)
  assert np.mean(np.asarray(decoded) == lab.truth) > 0.99


# -- rates against the configuration ------------------------------------------------------------


def test_situation_rates_match_config(iid):
  ex, _ = iid
  sc, n = ex.scene, ex.scene.present.size
  assert _within(sc.present.mean(), SPEC.p_present, n)
  assert _within(sc.occluded[sc.present].mean(), SPEC.p_occluded, int(sc.present.sum()))
  assert _within(sc.far[sc.present].mean(), SPEC.p_far, int(sc.present.sum()))
  assert _within(sc.low_light.mean(), SPEC.p_low_light, sc.low_light.size)


@pytest.mark.parametrize("k", range(3))
def test_label_error_rate_per_kind_matches_config(iid, k):
  """Where kind k alone would change the answer, the human errs with probability error_prob."""
  _, lab = iid
  risk = lab.at_risk[:, k]
  assert risk.sum() > 500
  assert _within(lab.error_kinds[risk, k].mean(), SPEC.error_prob[k], int(risk.sum()))
  assert not lab.error_kinds[~risk, k].any()


def test_complex_labeler_catch_share(iid):
  _, lab = iid
  wrong = lab.human != lab.truth
  assert _within((lab.complex[wrong] == lab.truth[wrong]).mean(), SPEC.catch_share,
                 int(wrong.sum()))
  np.testing.assert_array_equal(lab.complex[~wrong], lab.truth[~wrong])


# -- the sets and splits ------------------------------------------------------------------------


def test_small_set_has_no_simple_labeler_errors(sets):
  data, sp = sets
  small = sp["small"]
  assert small.size == SPEC.n_small
  np.testing.assert_array_equal(small.y_human, small.y_true)
  assert (np.asarray(small.error_class) == HUMAN_RIGHT).all()
  np.testing.assert_array_equal(data.x_small, small.x)


def test_large_set_composition(sets):
  data, sp = sets
  large, n_s = sp["large"], SPEC.n_small
  n_err = round(SPEC.error_ratio * n_s)
  assert large.size == data.x_large.shape[0] == n_s + n_err and data.w_large is None
  np.testing.assert_array_equal(data.x_large[:n_s], data.x_small)
  np.testing.assert_array_equal(data.y_large, large.y_complex)
  err = jax.tree.map(lambda a: np.asarray(a)[n_s:], large)
  assert (err.error_class == SEEN_ERROR).all()
  corrected = (err.y_complex == err.y_true).mean()
  assert _within(corrected, SPEC.catch_share, n_err)
  np.testing.assert_array_equal(err.y_complex[err.y_complex != err.y_true],
                                err.y_human[err.y_complex != err.y_true])
  print(f"corrected cases: {corrected * n_err / n_s:.3f} of the small set")


def test_large_set_without_uncaught_errors():
  sp = splits.make_splits(jax.random.key(3), world.world_spec(
      SPEC, include_uncaught=False, n_small=200, n_test=50))
  err = jax.tree.map(lambda a: np.asarray(a)[200:], sp["large"])
  assert err.y_true.size == 100 and (err.y_human != err.y_true).all()
  np.testing.assert_array_equal(err.y_complex, err.y_true)


def test_test_splits_hold_what_they_claim(sets):
  _, sp = sets
  for name, cls in (("human_wrong_seen", SEEN_ERROR), ("human_wrong_unseen", UNSEEN_ERROR)):
    s = sp[name]
    assert s.size == SPEC.n_test and (np.asarray(s.error_class) == cls).all(), name
    assert (np.asarray(s.y_human) != np.asarray(s.y_true)).all()
  unseen = np.asarray(sp["human_wrong_unseen"].error_kinds)
  assert unseen[:, world.FAR].mean() > 0.9 and not unseen[:, world.OCCLUDED].all()
  iid = np.asarray(sp["iid"].error_class)
  assert sp["iid"].size == SPEC.n_test and len(np.unique(iid)) >= 3


def test_no_unseen_kind_means_no_unseen_split():
  spec = world.world_spec(SPEC, unseen_error_kinds=(), n_small=50, n_test=20, error_ratio=0.2)
  sp = splits.make_splits(jax.random.key(4), spec)
  assert "human_wrong_unseen" not in sp
  assert (np.asarray(sp["iid"].error_class) != UNSEEN_ERROR).all()


def test_impossible_condition_raises():
  spec = world.world_spec(SPEC, max_rounds=2)
  with pytest.raises(ValueError, match="rejection sampling"):
    splits.sample_where(jax.random.key(0), spec, 10, lambda ex, lab: lab.truth < 0)


# -- metrics ------------------------------------------------------------------------------------


def test_evaluate_tells_truth_from_copying_the_human(sets):
  _, sp = sets
  s = sp["iid"]
  k = SPEC.n_answers
  as_logits = lambda logits, x: (logits, logits)  # "params" are the logits themselves
  answers = lambda y: 5.0 * jax.nn.one_hot(y, k)
  wrong = np.asarray(s.y_human != s.y_true)
  copy = splits.evaluate(as_logits, answers(s.y_human), s)
  assert copy["repeats_human_error"] == 1.0 and copy["truth_where_human_wrong"] == 0.0
  assert copy["accuracy"] == pytest.approx(1 - wrong.mean()) == copy["human_accuracy"]
  assert copy["n_human_wrong"] == wrong.sum() > 0
  honest = splits.evaluate(as_logits, answers(s.y_true), s)
  assert honest["accuracy"] == 1.0 and honest["repeats_human_error"] == 0.0
  assert honest["log_lik_truth"] == pytest.approx(
      5.0 - math.log(math.exp(5.0) + k - 1), rel=1e-5)
  off = splits.evaluate(as_logits, answers((s.y_true + 1) % k), s)  # never the truth
  assert off["accuracy"] == 0.0 and off["truth_where_human_wrong"] == 0.0
  assert off["repeats_human_error"] == pytest.approx(
      np.mean(np.asarray((s.y_true + 1) % k == s.y_human)[wrong]))
  r = splits.rates(answers(s.y_true[:50]), s.y_true[:50], s.y_true[:50])  # the human never errs
  assert math.isnan(float(r["repeats_human_error"])) and int(r["n_human_wrong"]) == 0
  with pytest.raises(ValueError, match="head"):
    splits.evaluate(as_logits, answers(s.y_true), s, head="third")


# -- step 3 -------------------------------------------------------------------------------------


def test_comparisons_keep_only_confident_pairs(sets):
  _, sp = sets
  large = jax.tree.map(np.asarray, sp["large"])
  c = jax.tree.map(np.asarray, cmp.make_comparisons(jax.random.key(5), SPEC, sp["large"]))
  valid = np.asarray(world.valid_answers(jnp.asarray(large.question_type), SPEC))
  rows = np.arange(large.y_true.size)
  assert valid[rows, c.winner].all() and valid[rows, c.loser].all()
  assert (c.winner != c.loser).all()
  assert ((c.winner == large.y_true) | (c.loser == large.y_true)).all()
  missed = (large.y_human != large.y_true) & (large.y_complex == large.y_human)
  assert (c.weight[~missed] == 1).all() and (c.winner_is_true == ~missed).all()
  m, hi = SPEC.margin, SPEC.uncaught_confidence_max  # uniform confidence in [½, hi]
  assert missed.sum() > 100
  assert _within(c.weight[missed].mean(), (hi - 0.5 - m) / (hi - 0.5), int(missed.sum()))
  strict = cmp.make_comparisons(jax.random.key(5), world.world_spec(
      SPEC, comparisons=dict(margin=0.31)), sp["large"])
  np.testing.assert_array_equal(np.asarray(strict.weight), (~missed).astype(np.float32))


def test_bradley_terry_by_hand():
  logits = np.array([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5], [0.2, 0.1, 0.0]], np.float32)
  apply_fn = lambda params, x: (x * params, x * params)
  c = cmp.Comparisons(x=jnp.asarray(logits), winner=jnp.array([2, 1, 0]),
                      loser=jnp.array([0, 0, 2]), weight=jnp.array([1.0, 1.0, 0.0]),
                      confidence=jnp.ones(3), winner_is_true=jnp.ones(3, bool))
  # log σ(s_w − s_l) with s = log softmax: the normaliser cancels, s_w − s_l = logit difference
  expected = -math.log1p(math.exp(-(2.0 - 0.0))) - math.log1p(math.exp(-(-1.0 - 3.0)))
  got = cmp.bradley_terry_log_likelihood(jnp.float32(1.0), apply_fn, c)
  assert float(got) == pytest.approx(expected, rel=1e-6)


# -- the model ----------------------------------------------------------------------------------


def _params_like(init, d, seed=0):
  """Random normal parameters with the structure init would return (no init compilation)."""
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(init, jax.random.key(0), jnp.zeros((1, d)))
  return jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s.shape), s.dtype), shapes)


def test_model_shapes_heads_and_mask():
  k, d = SPEC.n_answers, SPEC.input_dim
  m = model.make_model(k)
  params = _params_like(m.init, d)
  assert type(params) is dict and set(params) == {"trunk", "intended", "instrumental"}
  assert set(params["trunk"]) == {"layers_0", "layers_1"}
  n_params = sum(a.size for a in jax.tree.leaves(params))
  assert n_params == (d * 48 + 48) + (48 * 32 + 32) + 2 * (32 * k + k)
  a, b = jax.jit(m.apply_fn)(params, jnp.ones((5, d)))
  assert a.shape == b.shape == (5, k) and not np.allclose(a, b)
  mask = post.default_mask(params, trunk_share=0.5)
  assert mask["intended"] == {"kernel": True, "bias": True} == mask["instrumental"]
  assert mask["trunk"]["layers_0"]["kernel"] and not mask["trunk"]["layers_1"]["kernel"]
  t1, t2 = post.split(params, mask)
  assert jax.tree.all(jax.tree.map(jnp.array_equal, post.merge(t1, t2), params))
  assert not any(post.default_mask(params, trunk_share=0.0)["trunk"]["layers_0"].values())
  # heads with hidden layers: the whole head is in θ₁
  deep = model.make_model(k, head_features=(8,))
  pd = jax.eval_shape(deep.init, jax.random.key(0), jnp.zeros((1, d)))
  assert set(pd["intended"]) == {"layers_0", "out"}
  assert all(jax.tree.leaves(post.default_mask(pd)["instrumental"]))


def test_one_head_model_is_the_baseline():
  m = model.make_model(SPEC.n_answers, dict(one_head=True))
  params = _params_like(m.init, SPEC.input_dim)
  assert set(params) == {"trunk", "intended"}
  x = jnp.ones((3, SPEC.input_dim))
  a, b = jax.jit(m.apply_fn)(params, x)
  np.testing.assert_array_equal(a, b)
  assert float(jax.jit(lambda p: post.consistency(p, m.apply_fn, x))(params)) == 0.0
  with pytest.raises(ValueError, match="unknown model config"):
    model.make_model(5, dict(depth=3))


# -- the honesty question is not trivial --------------------------------------------------------


def _train_one_head(catch_share: float, steps: int = 3000):
  import optax
  spec = world.world_spec(catch_share=catch_share)
  data, sp = splits.make_datasets(jax.random.key(0), spec)
  m = model.make_model(spec.n_answers, dict(one_head=True))
  params = m.init(jax.random.key(1), data.x_large[:1])
  opt = optax.adam(3e-3)
  n = data.x_large.shape[0]

  @jax.jit
  def step(carry, key):
    params, state = carry
    idx = jax.random.randint(key, (256,), 0, n)
    grad = jax.grad(lambda p: -post.log_likelihood(p, m.apply_fn, data.x_large[idx],
                                                   data.y_large[idx]))(params)
    updates, state = opt.update(grad, state, params)
    return (optax.apply_updates(params, updates), state), None

  (params, _), _ = jax.lax.scan(step, (params, opt.init(params)),
                                jax.random.split(jax.random.key(2), steps))
  return splits.evaluate_all(m.apply_fn, params, sp)


@pytest.mark.slow
def test_plain_sgd_copies_the_humans_errors_unless_they_are_corrected():
  """Method (a): a one-head net fit to the large set repeats the human's seen-kind errors when
  the complex labeler catches only 30% of them, and reports the truth when it catches all."""
  partial = _train_one_head(0.3)
  assert partial["human_wrong_seen"]["repeats_human_error"] > 0.5
  assert partial["small"]["accuracy"] > 0.95
  full = _train_one_head(1.0)
  assert full["human_wrong_seen"]["truth_where_human_wrong"] > 0.8
  assert full["iid"]["accuracy"] > partial["iid"]["accuracy"]
