"""The optimiser of both honest-QA trainers: Adam or SGD at a rate that is constant or decays as
a cosine from lr to lr·lr_decay_to over lr_decay_steps updates and then holds.  The schedule has
a length of its own (not num_steps), so raising num_steps extends a run on its tail."""

from __future__ import annotations

import optax

OPTIMIZERS = ("adam", "sgd")


def learning_rate(lr: float, cfg) -> float | optax.Schedule:
  """lr, or the cosine schedule lr·(a + (1 − a)(1 + cos(π min(t, T)/T))/2), a = lr_decay_to."""
  steps = int(cfg.get("lr_decay_steps", 0))
  return optax.cosine_decay_schedule(lr, steps, alpha=cfg.lr_decay_to) if steps > 0 else lr


def make(cfg, lr: float) -> optax.GradientTransformation:
  """cfg.optimizer at `learning_rate(lr, cfg)`."""
  if cfg.optimizer not in OPTIMIZERS:
    raise ValueError(f"train.optimizer must be one of {OPTIMIZERS}; got {cfg.optimizer!r}")
  rate = learning_rate(lr, cfg)
  return optax.adam(rate) if cfg.optimizer == "adam" else optax.sgd(rate)


def check(cfg) -> None:
  """ValueError for a schedule that cannot hold (SGLD steps at a fixed η: noise √(2ηT))."""
  steps = int(cfg.get("lr_decay_steps", 0))
  if steps < 0:
    raise ValueError(f"train.lr_decay_steps must be >= 0 (0: a constant rate); got {steps}")
  if steps and not 0 <= cfg.lr_decay_to <= 1:
    raise ValueError(f"train.lr_decay_to must be in [0, 1]; got {cfg.lr_decay_to}")
  if steps and cfg.get("mode", "map") == "sgld":
    raise ValueError("train.lr_decay_steps decays MAP training's rate; SGLD steps at a fixed η "
                     "(set lr_decay_steps=0)")
