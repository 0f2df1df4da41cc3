"""Early stopping: the best-so-far record, and `fit` stopping on it, resumably."""

import jax
import jax.numpy as jnp
import numpy as np

from lprior.train import early_stopping as es
from lprior.train import fit


def test_update_keeps_the_best_and_counts_stale_evaluations():
  b = es.init({"w": jnp.zeros(2)})
  scores = [1.0, 3.0, 2.0, float("nan"), 3.0, 4.0]  # equal is not better; NaN never wins
  stale, best_step = [], []
  for i, s in enumerate(scores):
    b = es.update(b, jnp.asarray(s), {"w": jnp.full(2, float(i))}, jnp.asarray(10 * (i + 1)))
    stale.append(int(b.stale))
    best_step.append(int(b.step))
  assert stale == [0, 0, 1, 2, 3, 0]
  assert best_step == [10, 20, 20, 20, 20, 60]
  np.testing.assert_array_equal(b.params["w"], [5.0, 5.0])
  assert bool(es.stopped(b.replace(stale=jnp.asarray(3)), 3))
  assert not bool(es.stopped(b, 3)) and not bool(es.stopped(b.replace(stale=jnp.asarray(9)), 0))


def test_selection_starts_at_the_first_eligible_evaluation():
  """Ineligible evaluations (λ still annealing) hold the latest parameters at score −∞ and
  never count as stale; the best is then chosen among eligible ones only."""
  b = es.init({"w": jnp.zeros(2)})
  for i, (s, ok) in enumerate([(5.0, False), (9.0, False), (1.0, True), (0.5, True), (2.0, True)]):
    b = es.update(b, jnp.asarray(s), {"w": jnp.full(2, float(i))}, jnp.asarray(i + 1), ok)
    if i == 1:  # never eligible so far: the last parameters, nothing stale
      assert int(b.step) == 2 and int(b.stale) == 0 and b.score == -jnp.inf
      np.testing.assert_array_equal(b.params["w"], [1.0, 1.0])
  assert int(b.step) == 5 and float(b.score) == 2.0 and int(b.stale) == 0
  b = es.update(b, jnp.asarray(1.0), {"w": jnp.ones(2)}, jnp.asarray(6), True)
  assert int(b.stale) == 1 and int(b.step) == 5


def test_update_vmaps_over_runs():
  b = jax.vmap(es.init)({"w": jnp.zeros((3, 2))})
  b = jax.vmap(es.update, in_axes=(0, 0, 0, None))(
      b, jnp.asarray([1.0, -1.0, 2.0]), {"w": jnp.ones((3, 2))}, jnp.asarray(5))
  b = jax.vmap(es.update, in_axes=(0, 0, 0, None))(
      b, jnp.asarray([0.0, 0.0, 3.0]), {"w": 2 * jnp.ones((3, 2))}, jnp.asarray(10))
  np.testing.assert_array_equal(b.step, [5, 10, 10])
  np.testing.assert_array_equal(b.stale, [1, 0, 0])
  np.testing.assert_array_equal(b.params["w"][:, 0], [1.0, 2.0, 2.0])


def _quadratic_run():
  """x counts the steps; the held-out score −(x − 6)² peaks after step 6."""
  def step_fn(state, step):
    x, b = state
    return (x + 1.0, b), {"x": x}

  def track(state, step):
    x, b = state
    score = -(x - 6.0) ** 2
    return (x, es.update(b, score, x, step + 1)), {"score": score}

  state = (jnp.asarray(0.0), es.init(jnp.asarray(0.0)))
  return state, step_fn, track


def test_fit_stops_after_patience_and_a_rerun_trains_no_further(tmp_path):
  state, step_fn, track = _quadratic_run()
  stop = lambda st: es.stopped(st[1], 2)
  kw = dict(workdir=str(tmp_path), checkpoint_every=100, show_progress=False,
            periodic=[(1, track)], stop_fn=stop)
  (x, b), hist = fit(state, step_fn, 50, **kw)
  # the score peaks when x = 6 (after step 6); steps 7 and 8 do not improve: stop at step 8
  assert hist[-1]["step"] == 8 and float(x) == 8.0
  assert int(b.step) == 6 and float(b.params) == 6.0
  (x2, b2), hist2 = fit(state, step_fn, 80, **kw)  # raised num_steps: still stopped
  assert float(x2) == 8.0 and int(b2.step) == 6 and [r["step"] for r in hist2] == list(range(1, 9))


def test_fit_runs_periodic_hooks_in_order():
  def hook(name):
    return lambda state, step: (state + 1, {name: state})

  state, hist = fit(jnp.asarray(0), lambda st, s: (st, {}), 4, show_progress=False,
                    periodic=[(2, hook("a")), (4, hook("b"))])
  assert int(state) == 3  # a at steps 2 and 4, b at step 4
  assert hist[-1]["a"] == 1.0 and hist[-1]["b"] == 2.0  # b after a on step 4
