"""The two tasks with a shift from D to D* (issue 5 §3), each with its simulated human.

spurious  "husky or labrador?" from five photo features.  In D the snowy background has the
          label's sign on every photo (it predicts the label perfectly); in D* it is random.
          The human's Z: one weight per named feature, from "strong evidence against husky" to
          "strong evidence for husky"; P_H(husky | x, Z) = σ(Σ_k w_k x_k).  The human knows that
          the background does not decide the breed: every non-zero background weight has prior
          log-weight −`background_cost` nats.
          Variants where the prior decides: `spurious_soft` (a 20-nat ban: the ideal keeps the
          background out at small |D| and lets it in between |D| = 32 and 128) and
          `spurious_wrong` (the human is also sure that a collar is strong evidence for husky;
          its true weight is 0: a method that learns the human's prior must follow it there).
trend     a quantity observed over time: D has t ∈ [0, 1], D* asks about t ∈ [1, 2] (trend
          extrapolation).  Z: the shape of the curve (levels off / straight line / compounds),
          the level at t = 0, the growth rate, the ceiling (used by the S-curve) and the noise;
          P_H(y | t, Z) = N(g_Z(t), noise²).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from lprior.ltp import family as fam
from lprior.ltp.human import Human, make_human
from lprior.ltp.space import Field, Space

TASKS = ("spurious", "spurious_soft", "spurious_wrong", "trend")
Sampler = Callable[[jax.Array, int], tuple[jax.Array, jax.Array]]  # (key, n) -> (x (n, dx), y (n,))


@dataclasses.dataclass(frozen=True)
class Task:
  """A task: its human, the true hypothesis (level indices; the world's generating Z), and the
  samplers of D's distribution and of D*'s."""
  name: str
  human: Human
  x_names: tuple[str, ...]
  truth: tuple[int, ...]
  sample_train: Sampler
  sample_shifted: Sampler

  @property
  def x_dim(self) -> int:
    return len(self.x_names)


# ----------------------------------------------------------------------------------- spurious
WEIGHT_WORDS = ("strong evidence against husky (−2)", "weak evidence against husky (−1)",
                "irrelevant (0)", "weak evidence for husky (+1)", "strong evidence for husky (+2)")
FEATURES = ("pointy ears", "thick coat", "blue eyes", "wears a collar", "snowy background")
# the human's beliefs before seeing D, per feature, over the weights −2 … +2
SPURIOUS_PRIOR = ((0.02, 0.08, 0.20, 0.40, 0.30),   # pointy ears: probably for husky
                  (0.02, 0.08, 0.30, 0.35, 0.25),   # thick coat: probably for husky
                  (0.05, 0.10, 0.40, 0.30, 0.15),   # blue eyes: unsure
                  (0.05, 0.10, 0.70, 0.10, 0.05),   # collar: probably irrelevant
                  (0.20, 0.20, 0.20, 0.20, 0.20))   # background: overridden below
SPURIOUS_TRUTH = (4, 3, 3, 2, 2)  # ears +2, coat +1, eyes +1, collar 0, background 0


def _linear_logit(values: jax.Array, x: jax.Array) -> jax.Array:
  return jnp.sum(values * x, axis=-1, keepdims=True)


def _spurious_sample(key, n, *, shifted: bool, bg_shift: float, bg_noise: float):
  k1, k2, k3, k4 = jax.random.split(key, 4)
  w = jnp.asarray(np.array([-2.0, -1, 0, 1, 2])[list(SPURIOUS_TRUTH[:4])], jnp.float32)
  core = jax.random.normal(k1, (n, 4))
  y = jax.random.bernoulli(k2, jax.nn.sigmoid(core @ w)).astype(jnp.float32)
  sign = (2 * y - 1) if not shifted else jnp.where(jax.random.bernoulli(k3, 0.5, (n,)), 1.0, -1.0)
  bg = sign * (bg_shift + bg_noise * jnp.abs(jax.random.normal(k4, (n,))))
  return jnp.concatenate([core, bg[:, None]], axis=1), y


def spurious(background_cost: float = 100.0, bg_shift: float = 1.0, bg_noise: float = 0.5,
             wrong_collar: bool = False, name: str = "spurious") -> Task:
  """The dog-breed task; `background_cost` nats: how sure the human is that the background is
  irrelevant (each non-zero weight has prior log-weight −background_cost); wrong_collar: the
  human is as sure that a collar is strong evidence for husky (+2; the truth is 0)."""
  if background_cost < 0:
    raise ValueError(f"background_cost must be >= 0, got {background_cost}")
  values = (-2.0, -1.0, 0.0, 1.0, 2.0)
  space = Space(tuple(Field(f, values, WEIGHT_WORDS) for f in FEATURES))
  c = float(background_cost)
  sure = {"snowy background": (-c, -c, 0.0, -c, -c)}
  if wrong_collar:
    sure["wears a collar"] = (-c, -c, -c, -c, 0.0)
  human = make_human(space, SPURIOUS_PRIOR, fam.BINARY, _linear_logit, sure)
  s = functools.partial(_spurious_sample, bg_shift=bg_shift, bg_noise=bg_noise)
  return Task(name, human, FEATURES, SPURIOUS_TRUTH, functools.partial(s, shifted=False),
              functools.partial(s, shifted=True))


# -------------------------------------------------------------------------------------- trend
SHAPES = ("levels off toward a ceiling (S-curve)", "grows in a straight line",
          "compounds (exponential growth)")
TREND_FIELDS = (
    Field("shape", (0.0, 1.0, 2.0), SHAPES),
    Field("level at t = 0", (0.5, 1.0, 1.5, 2.0), ("0.5", "1.0", "1.5", "2.0")),
    # the rate r of g: the growth at t = 0 for the line and the exponential; the S-curve's is
    # r(1 − level/ceiling), r being its growth far below the ceiling
    Field("growth rate (S-curve: far below its ceiling)", (0.0, 0.5, 1.0, 1.5, 2.0),
          ("none", "50% per unit time", "100% per unit time", "150% per unit time",
           "200% per unit time")),
    Field("ceiling (S-curve only)", (2.0, 3.0, 4.0, 5.0, 6.0), ("2", "3", "4", "5", "6")),
    Field("noise", (0.1, 0.2, 0.4), ("±0.1", "±0.2", "±0.4")),
)
TREND_PRIOR = ((0.25, 0.50, 0.25),            # a straight line is the human's default
               (0.25, 0.25, 0.25, 0.25),
               (0.10, 0.25, 0.30, 0.20, 0.15),
               (0.20, 0.20, 0.20, 0.20, 0.20),
               (1 / 3, 1 / 3, 1 / 3))
TREND_TRUTH = (0, 1, 4, 2, 1)  # S-curve from 1.0, growth 200%, ceiling 4, noise ±0.2


def trend_curve(values: jax.Array, t: jax.Array) -> jax.Array:
  """g_Z(t) for values (shape, level, rate, ceiling, noise)   ((..., 5), (...,)) -> (...,)."""
  shape, level, rate, ceiling = (values[..., i] for i in range(4))
  s_curve = ceiling / (1 + (ceiling / level - 1) * jnp.exp(-rate * t))
  line = level * (1 + rate * t)
  expo = level * jnp.exp(rate * t)
  return jnp.where(shape < 0.5, s_curve, jnp.where(shape < 1.5, line, expo))


def _trend_forecast(values: jax.Array, x: jax.Array) -> jax.Array:
  mean = trend_curve(values, x[..., 0])
  return jnp.stack([mean, jnp.broadcast_to(jnp.log(values[..., 4]), mean.shape)], -1)


def _trend_sample(key, n, *, shifted: bool, space: Space):
  k1, k2 = jax.random.split(key)
  t = jax.random.uniform(k1, (n,)) + (1.0 if shifted else 0.0)
  v = space.values(jnp.asarray(TREND_TRUTH))
  y = trend_curve(v, t) + v[4] * jax.random.normal(k2, (n,))
  return t[:, None], y


def trend() -> Task:
  space = Space(TREND_FIELDS)
  human = make_human(space, TREND_PRIOR, fam.GAUSSIAN, _trend_forecast)
  s = functools.partial(_trend_sample, space=space)
  return Task("trend", human, ("t",), TREND_TRUTH, functools.partial(s, shifted=False),
              functools.partial(s, shifted=True))


def make_task(name: str, **kwargs) -> Task:
  """A task of TASKS with its world options (ValueError on an unknown name)."""
  if name == "spurious":
    return spurious(**kwargs)
  if name == "spurious_soft":
    return spurious(**{"background_cost": 20.0, **kwargs}, name=name)
  if name == "spurious_wrong":
    return spurious(**{"wrong_collar": True, **kwargs}, name=name)
  if name == "trend":
    return trend(**kwargs)
  raise ValueError(f"unknown task {name!r}; choose from {TASKS}")
