"""The post's premises, tested on a generated world (DESIGN §4) rather than assumed.

  human_from_A     simulating the human is cheap: a small probe on A (and the question) alone
                   reproduces the human's answer (the seed: ≥ 99%);
  truth_from_S     the truth is in the sensors: a probe on S (and the question) reads it (≥ 95%);
  large_wrong      the large set agrees with the intended model: its share of wrong labels (0);
  human_accuracy   the human's truth rate on the natural distribution (the bar an arm must pass);
  underspecification  plain SGD on the large set leaves a gap to the ceiling (the same model
                   trained on the truth) on unseen_predictable (≥ 0.3: the experiment's premise).

A probe is the honest-QA model with one head trained by plain SGD (`lprior.train.plain`) on
inputs whose other channels are zeroed, and read on held-out i.i.d. examples.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from lprior.honest_qa.model import make_model
from lprior.honest_qa.splits import Split, iid_split
from lprior.honest_qa.world import WorldSpec, world_spec
from lprior.posterior.data import Data
from lprior.train import plain


def default_probe_config() -> ml_collections.ConfigDict:
  """n_train, n_test: i.i.d. examples; trunk_features; steps of Adam (lr) on minibatches."""
  return ml_collections.ConfigDict(dict(n_train=12000, n_test=2000, trunk_features=(32, 32),
                                        num_steps=3000, lr=1e-2, batch_size=1024))


def channel_mask(spec: WorldSpec, channels: Sequence[str]) -> jax.Array:
  """(d_in,) float32: 1 on the named channels of x (see WorldSpec.channel_sizes), 0 elsewhere."""
  sl, mask = spec.channel_slices(), np.zeros(spec.input_dim, np.float32)
  for c in channels:
    if c not in sl:
      raise ValueError(f"unknown channel {c!r}; valid: {tuple(sl)}")
    mask[sl[c]] = 1.0
  return jnp.asarray(mask)


def probe_accuracy(key: jax.Array, spec: WorldSpec, train: Split, test: Split, target: str,
                   channels: Sequence[str] | None = None, cfg=None,
                   test_target: str | None = None) -> float:
  """Held-out accuracy (against `test_target`, default `target`) of a probe trained to predict
  `target` ('y_true' | 'y_human' | 'y_complex') from the named channels only (None: all)."""
  cfg = cfg or default_probe_config()
  mask = channel_mask(spec, channels or tuple(spec.channel_sizes))
  model = make_model(spec.n_answers, dict(trunk_features=tuple(cfg.trunk_features)),
                     one_head=True)
  data = Data(x_small=train.x * mask, x_large=train.x * mask, y_large=getattr(train, target))
  tcfg = ml_collections.ConfigDict(dict(lr_theta2=cfg.lr, optimizer="adam",
                                        batch_size=cfg.batch_size))
  k_init, k_run = jax.random.split(key)
  state = plain.init(k_run, model.init(k_init, data.x_large[0]), tcfg)
  step = plain.make_step(model.apply_fn, data, tcfg)
  state, _ = jax.jit(lambda s: jax.lax.scan(lambda c, i: (step(c, i)[0], None), s,
                                            jnp.arange(cfg.num_steps)))(state)
  pred = jnp.argmax(model.apply_fn(state.params, test.x * mask)[0], -1)
  return float(jnp.mean(pred == getattr(test, test_target or target)))


def underspecification(key: jax.Array, cfg, splits: dict[str, Split],
                       probe_cfg=None) -> dict[str, float]:
  """The truth rate on unseen_predictable of plain SGD on the large set (its labels) and of the
  ceiling (the same model on as many i.i.d. examples labelled with the truth), and the gap the
  experiment needs (DESIGN §4, premise 3)."""
  spec, probe_cfg = world_spec(cfg), probe_cfg or default_probe_config()
  k_plain, k_ceil, k_data = jax.random.split(key, 3)
  test = splits["unseen_predictable"]
  plain_acc = probe_accuracy(k_plain, spec, splits["large"], test, "y_complex", cfg=probe_cfg,
                             test_target="y_true")
  truth = iid_split(k_data, spec, splits["large"].size)
  ceiling = probe_accuracy(k_ceil, spec, truth, test, "y_true", cfg=probe_cfg)
  return dict(plain=plain_acc, ceiling=ceiling, gap=ceiling - plain_acc)


def measure(key: jax.Array, cfg, large: Split | None = None, probe_cfg=None) -> dict[str, float]:
  """Every premise of the module docstring on the world `cfg` (a world config or WorldSpec);
  `large`: the large set to check for wrong labels (e.g. splits['large'])."""
  spec = world_spec(cfg)
  probe_cfg = probe_cfg or default_probe_config()
  k_data, k_test, k_a, k_s = jax.random.split(key, 4)
  train, test = (iid_split(k_data, spec, probe_cfg.n_train),
                 iid_split(k_test, spec, probe_cfg.n_test))
  out = dict(
      human_from_A=probe_accuracy(k_a, spec, train, test, "y_human", ("human", "question"),
                                  probe_cfg),
      truth_from_S=probe_accuracy(k_s, spec, train, test, "y_true", ("sensors", "question"),
                                  probe_cfg),
      human_accuracy=float(jnp.mean(test.y_human == test.y_true)))
  if large is not None:
    out["large_wrong"] = float(jnp.mean(large.y_complex != large.y_true))
  return out
