"""The post's shared-parameter form (issue 15 item 3): the imitators are M and Adv themselves,
called on a transformed input; their losses train M's and Adv's parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lprior.amplification import amplify, iterate, models, tasks
from lprior.xla import FAST_COMPILE

TASK = tasks.SumMod(m=3, log2_len=2)
KEY = lambda i: jax.random.key(i, impl="rbg")


def _models(shared):
  return models.make_models(KEY(0), TASK, hidden=(16,), critic_hidden=(16,), imitate=True,
                            imitator_hidden=(16,), shared=shared, compiler_options=FAST_COMPILE)


def _check_shapes(fs, ps, fx, px):
  """The shared form has {m, adv} only and every use gives the separate form's shapes."""
  assert set(ps) == {"m", "adv"} and set(px) == {"m", "adv", *models.IMITATORS}
  q = TASK.sample(KEY(1), 5)
  comb_in = jnp.concatenate([q, TASK.solve(q), TASK.solve(q)], -1)
  for name, x in (("m", q), ("dec", q), ("comb", comb_in)):
    out_s = getattr(fs, name)(fs.params_of(ps, name), x)
    out_x = getattr(fx, name)(fx.params_of(px, name), x)
    assert out_s.shape == out_x.shape, name
    adv = name + "_adv" if name != "m" else "adv"
    probs = jax.nn.softmax(out_s)
    assert (getattr(fs, adv)(fs.params_of(ps, adv), (x, probs)).shape
            == getattr(fx, adv)(fx.params_of(px, adv), (x, probs)).shape)
  # The mode token tells the uses apart: the same question, answered and decomposed.
  assert not np.allclose(fs.m(ps["m"], q), fs.dec(ps["m"], q)[..., :TASK.answer_len,
                                                               :TASK.a_vocab])


def _imitation_grads(shared):
  """Gradients of the imitators' losses alone (M's and Adv's losses left out), compiled."""
  fns, params = _models(shared)
  roots = TASK.sample(KEY(2), 8)

  def grads(params):
    tree = amplify.amplify_batch(KEY(3), TASK, fns, params, roots, amplify.make_policy("always"))

    def loss(p):
      out = iterate.tree_losses(p, TASK, fns, tree)[1]
      return out["dec_loss"] + out["comb_loss"] + out["dec_adv_loss"] + out["comb_adv_loss"]

    return jax.grad(loss)(params)

  return jax.jit(grads, compiler_options=FAST_COMPILE)(params)


def test_imitation_losses_train_m_and_adv_only_in_the_shared_form():
  _check_shapes(*_models(True), *_models(False))
  norm = lambda t: float(sum(jnp.sum(jnp.abs(x)) for x in jax.tree.leaves(t)))
  g = _imitation_grads(True)
  assert norm(g["m"]) > 0 and norm(g["adv"]) > 0
  g = _imitation_grads(False)
  assert norm(g["m"]) == 0 and norm(g["adv"]) == 0 and norm(g["dec"]) > 0


def test_iterate_shared_trains_and_the_trainer_checks_the_form():
  method = iterate.standard_methods()["iterate_shared"]
  assert method.shared and method.imitate
  tr = iterate.Trainer(TASK, imitate=True, batch_size=8, learning_rate=1e-3, hidden=(16,),
                       critic_hidden=(16,), shared=True, fast_compile=True)
  h = tr.run(jax.random.split(KEY(4), 2), method, 4, 2, TASK.sample(KEY(5), 32))
  for k in ("m_loss", "dec_loss", "comb_loss", "distill_loss"):
    assert np.all(np.isfinite(h[k][1:])), k
  assert np.all(h["calls"][-1] > 0)
  with pytest.raises(ValueError, match="shared=True"):
    iterate.Trainer(TASK, imitate=True, batch_size=8, learning_rate=1e-3, hidden=(16,),
                    critic_hidden=(16,)).run(jax.random.split(KEY(4), 2), method, 2, 2,
                                             TASK.sample(KEY(5), 8))
  with pytest.raises(ValueError, match="needs imitate=True"):
    models.build_models(TASK, shared=True)
