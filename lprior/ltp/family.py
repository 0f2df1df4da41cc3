"""Observation families: how a prediction (a small vector per question) scores an answer.

A prediction is an array (..., P): 'binary' P = 1 (the logit of y = 1); 'gaussian' P = 2
(mean, log standard deviation).  A *target* is what the prediction should match, as sufficient
statistics (..., Q): binary Q = 1 (P(y = 1)); gaussian Q = 2 (E[y], E[y²]).  Then

    cross_entropy(target, pred) = E_{y ~ target}[−log p(y | pred)]

is linear in the target, so averaging the human's forecasts under sampled hypotheses gives an
unbiased target for the mixture (what f imitates), and an observed y is the target δ_y.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

_LOG_2PI = math.log(2 * math.pi)


@dataclasses.dataclass(frozen=True)
class Family:
  name: str  # 'binary' or 'gaussian'

  @property
  def pred_dim(self) -> int:
    return 1 if self.name == "binary" else 2

  def observed(self, y: jax.Array) -> jax.Array:
    """An observed answer as a target   (...,) -> (..., Q)."""
    y = jnp.asarray(y)
    y = y if jnp.issubdtype(y.dtype, jnp.floating) else y.astype(jnp.result_type(float))
    return y[..., None] if self.name == "binary" else jnp.stack([y, y * y], -1)

  def target(self, preds: jax.Array) -> jax.Array:
    """The target of the equal-weight mixture of the M predictions   (..., M, P) -> (..., Q):
    binary the mean probability; gaussian (mean of the means, mean of m² + s²)."""
    if self.name == "binary":
      return jnp.mean(jax.nn.sigmoid(preds), axis=-2)
    m, s2 = preds[..., 0], jnp.exp(2 * preds[..., 1])
    return jnp.stack([jnp.mean(m, -1), jnp.mean(m * m + s2, -1)], -1)

  def cross_entropy(self, target: jax.Array, pred: jax.Array) -> jax.Array:
    """E_{y ~ target}[−log p(y | pred)]   ((..., Q), (..., P)) -> (...,)."""
    if self.name == "binary":
      p, logit = target[..., 0], pred[..., 0]
      return -(p * jax.nn.log_sigmoid(logit) + (1 - p) * jax.nn.log_sigmoid(-logit))
    ey, ey2 = target[..., 0], target[..., 1]
    mu, log_s = pred[..., 0], pred[..., 1]
    sq = ey2 - 2 * mu * ey + mu * mu  # E[(y − μ)²]
    return 0.5 * _LOG_2PI + log_s + 0.5 * sq * jnp.exp(-2 * log_s)

  def log_prob(self, pred: jax.Array, y: jax.Array) -> jax.Array:
    """log p(y | pred)   ((..., P), (...,)) -> (...,)."""
    return -self.cross_entropy(self.observed(y), pred)

  def mixture_log_prob(self, preds: jax.Array, y: jax.Array) -> jax.Array:
    """log of the equal-weight mixture over the leading axis   ((S, ..., P), (...,)) -> (...,)."""
    lp = jax.vmap(lambda p: self.log_prob(p, y))(preds)
    return jax.nn.logsumexp(lp, axis=0) - math.log(preds.shape[0])

  def weighted_mixture_log_prob(self, log_w: jax.Array, preds: jax.Array, y: jax.Array
                                ) -> jax.Array:
    """log Σ_i w_i p(y | pred_i), log_w normalised   ((S,), (S, ..., P), (...,)) -> (...,)."""
    lp = jax.vmap(lambda p: self.log_prob(p, y))(preds)
    return jax.nn.logsumexp(lp + log_w.reshape((-1,) + (1,) * (lp.ndim - 1)), axis=0)

  def point(self, target: jax.Array) -> jax.Array:
    """The point forecast of a target: P(y = 1) or E[y]   (..., Q) -> (...,)."""
    return target[..., 0]

  def score_name(self) -> str:
    return "accuracy" if self.name == "binary" else "rmse"

  def score(self, target: jax.Array, y: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Accuracy of P(y=1) > ½ (binary) or RMSE of E[y] (gaussian), weighted mean over (...)."""
    pt = self.point(target)
    w = jnp.ones_like(pt) if weights is None else weights
    if self.name == "binary":
      return jnp.sum(w * ((pt > 0.5) == (y > 0.5))) / jnp.sum(w)
    return jnp.sqrt(jnp.sum(w * (pt - y) ** 2) / jnp.sum(w))


BINARY = Family("binary")
GAUSSIAN = Family("gaussian")


def get(name: str) -> Family:
  if name not in ("binary", "gaussian"):
    raise ValueError(f"unknown family {name!r}; choose 'binary' or 'gaussian'")
  return Family(name)
