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
synonyms  "is this review positive?" from a vocabulary of `num_sets` × `set_size` words (512 by
          default: |Z| = 2^512, too large for anyone to read whole).  Z: per word, whether it
          signals a positive or a negative review; a review holds `reads` words (x_k > 0 for
          them), and the human reads only those: P_H(positive | x, Z) = σ(Σ_k x_k w_k), w = ±1.
          The words come in synonym sets; the human believes synonyms carry the same sentiment
          but can only say so in bounded k-way judgments (`order`: 2 by default), which the
          conjunction module's maximum-entropy completion turns into Prior_H over each set.  D's
          reviews use the first `seen` words of each set, D*'s only the others: on D*'s words
          the data are silent and the prior decides.  `synonyms_indep`: the same human with
          1-way judgments only (the independence product), where nothing can carry over;
          `synonyms_tight`: a human sure that synonyms agree (each word carries its set's
          sentiment with probability 0.99), whose posterior one-field moves cross slowly;
          `synonyms_dense`: reviews of 32 words (the human reads many fields per question, so
          a one-word change is asked about in many forecasts).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from lprior import conjunction
from lprior.ltp import family as fam
from lprior.ltp.human import Human, group_states, make_human
from lprior.ltp.space import Field, Space

TASKS = ("spurious", "spurious_soft", "spurious_wrong", "trend", "synonyms", "synonyms_indep",
         "synonyms_tight", "synonyms_dense")
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


# ----------------------------------------------------------------------------------- synonyms
SENTIMENT_WORDS = ("signals a negative review (−1)", "signals a positive review (+1)")


def synonym_belief(set_size: int, agree: float) -> np.ndarray:
  """The human's whole belief over a synonym set's joint levels (2^g,), first word fastest: the
  set has a sentiment (even odds) and each word carries it with probability `agree`."""
  pos = group_states(2, set_size).sum(1)
  return 0.5 * (agree ** pos * (1 - agree) ** (set_size - pos)
                + agree ** (set_size - pos) * (1 - agree) ** pos)


def synonym_log_potential(set_size: int, agree: float, order: int) -> np.ndarray:
  """log ψ over a set's joint levels (2^g,) from the human's `order`-way judgments of its belief,
  completed by maximum entropy (`lprior.conjunction.fit_maxent`; order 1 is the independence
  product, ψ = 1); each word's own judgment is ½, so ψ = 2^g · P_maxent."""
  if order == 1:
    return np.zeros(2 ** set_size)
  belief = jnp.asarray(synonym_belief(set_size, agree))
  fit = conjunction.fit_maxent(conjunction.from_joint(belief, order))
  if float(fit.max_residual) > 1e-4:
    raise ValueError(f"max-ent completion did not converge (residual {float(fit.max_residual):.2g})")
  log_joint = np.asarray(fit.log_joint, np.float64)
  return log_joint - np.logaddexp.reduce(log_joint) + set_size * np.log(2.0)


def _synonym_sample(key, n, *, truth: jax.Array, members: np.ndarray, reads: int,
                    strength: float):
  """n reviews, each of `reads` words from distinct sets (one of `members` (G, m) per set), with
  weights strength·U(0.5, 1.5); the label from the generating Z (truth: w = ±1 per word)."""
  k_set, k_word, k_val, k_y = jax.random.split(key, 4)
  num_sets = members.shape[0]
  sets = jax.vmap(lambda k: jax.random.choice(k, num_sets, (reads,), replace=False))(
      jax.random.split(k_set, n))                                           # (n, s)
  pick = jax.random.randint(k_word, (n, reads), 0, members.shape[1])
  words = jnp.asarray(members)[sets, pick]
  vals = strength * jax.random.uniform(k_val, (n, reads), minval=0.5, maxval=1.5)
  x = jnp.zeros((n, truth.shape[0])).at[jnp.arange(n)[:, None], words].set(vals)
  y = jax.random.bernoulli(k_y, jax.nn.sigmoid(x @ truth)).astype(jnp.float32)
  return x, y


def synonyms(num_sets: int = 128, set_size: int = 4, seen: int = 2, reads: int = 3,
             agree: float = 0.9, strength: float = 3.0, order: int = 2, table_seed: int = 0,
             name: str = "synonyms") -> Task:
  """The review task (module docstring); the generating Z is drawn from the human's belief
  with `table_seed` (the human's prior is right where the data are silent)."""
  if not (num_sets >= reads >= 1 and set_size > seen >= 1 and 0.5 < agree < 1
          and strength > 0 and order in (1, 2, 3) and order <= set_size):
    raise ValueError("synonyms needs num_sets >= reads >= 1, set_size > seen >= 1, agree in "
                     f"(0.5, 1), strength > 0 and order in 1..min(3, set_size); got "
                     f"{num_sets=}, {set_size=}, {seen=}, {reads=}, {agree=}, {strength=}, "
                     f"{order=}")
  k_ = num_sets * set_size
  space = Space(tuple(Field(f"word {g:03d}{chr(97 + j)}", (-1.0, 1.0), SENTIMENT_WORDS)
                      for g in range(num_sets) for j in range(set_size)))
  groups = tuple(tuple(g * set_size + j for j in range(set_size)) for g in range(num_sets))
  pot = tuple(float(v) for v in synonym_log_potential(set_size, agree, order))
  human = make_human(space, ((0.5, 0.5),) * k_, fam.BINARY, _linear_logit, groups=groups,
                     group_log_potential=(pot,) * num_sets, reads=reads)
  rng = np.random.default_rng(table_seed)
  sentiment = rng.integers(0, 2, num_sets)[:, None]
  carries = rng.random((num_sets, set_size)) < agree
  truth = np.where(carries, sentiment, 1 - sentiment).reshape(-1)
  ids = np.arange(k_).reshape(num_sets, set_size)
  s = functools.partial(_synonym_sample, truth=jnp.asarray(2.0 * truth - 1, jnp.float32),
                        reads=reads, strength=strength)
  return Task(name, human, tuple(f.name for f in space.fields), tuple(int(v) for v in truth),
              functools.partial(s, members=ids[:, :seen]),
              functools.partial(s, members=ids[:, seen:]))


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
  if name == "synonyms":
    return synonyms(**kwargs)
  if name == "synonyms_indep":
    return synonyms(**{"order": 1, **kwargs}, name=name)
  if name == "synonyms_tight":  # each word carries its set's sentiment with probability 0.99
    return synonyms(**{"agree": 0.99, **kwargs}, name=name)
  if name == "synonyms_dense":  # long reviews: 32 words each, weights scaled by √(3/32)
    return synonyms(**{"reads": 32, "strength": 3.0 * (3 / 32) ** 0.5, **kwargs}, name=name)
  raise ValueError(f"unknown task {name!r}; choose from {TASKS}")
