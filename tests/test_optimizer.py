"""The trainers' learning-rate schedule (lprior.train.optimizer) against its closed form."""

import math

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from lprior.train import nested, optimizer


def _cfg(**kw):
  c = nested.default_config()
  c.update(kw)
  return c


def test_cosine_decay_then_holds():
  """Unit-gradient SGD steps: −lr(a + (1 − a)(1 + cos(π t/T))/2) up to T, then −a·lr."""
  lr, a, T = 0.2, 0.1, 8
  opt = optimizer.make(_cfg(optimizer="sgd", lr_decay_steps=T, lr_decay_to=a), lr)
  state = opt.init(jnp.zeros(()))
  steps = []
  for _ in range(T + 4):
    u, state = opt.update(jnp.ones(()), state)
    steps.append(-float(u))
  want = [lr * (a + (1 - a) * (1 + math.cos(math.pi * min(t, T) / T)) / 2) for t in range(T + 4)]
  np.testing.assert_allclose(steps, want, rtol=1e-6)
  assert steps[-1] == pytest.approx(a * lr) and steps[0] == pytest.approx(lr)


def test_constant_without_decay():
  opt = optimizer.make(ml_collections.ConfigDict(dict(optimizer="sgd")), 0.3)
  state = opt.init(jnp.zeros(()))
  for _ in range(3):
    u, state = opt.update(jnp.ones(()), state)
    assert float(u) == pytest.approx(-0.3)


@pytest.mark.parametrize("kw, match", [
    (dict(lr_decay_steps=-1), "lr_decay_steps must be >= 0"),
    (dict(lr_decay_steps=10, lr_decay_to=1.5), "lr_decay_to must be in"),
    (dict(lr_decay_steps=10, mode="sgld"), "SGLD steps at a fixed"),
    (dict(optimizer="rmsprop"), "optimizer must be one of"),
])
def test_bad_schedule_refused(kw, match):
  with pytest.raises(ValueError, match=match):
    cfg = _cfg(**kw)
    nested.check_config(cfg)
    optimizer.make(cfg, 0.1)
