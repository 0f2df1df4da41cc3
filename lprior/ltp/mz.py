"""Mz(·, u): a generative model of the human's exploration, a VAE over hypotheses (Flax).

Fit to the hypotheses the human wrote down while exploring (`lprior.ltp.explorer`), it turns a
compact latent u ~ N(0, I_d) into a distribution over Z, factorised given u:

    p(Z | u) = Π_k softmax(dec(u))_{k, Z_k},   q(u | Z) = N(enc_μ(Z), diag enc_σ²(Z)),
    ELBO(Z) = E_q[log p(Z | u)] − KL(q(u | Z) ‖ N(0, I)).

The search in u (`lprior.ltp.latent_search`) reads Z(u) = argmax_Z p(Z | u).  Training stops
early on held-out proposals (never on anything scored against D).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lprior.ltp.models import MLP
from lprior.ltp.space import Space
from lprior.pytree import PyTree


class VAE(nn.Module):
  """Encoder and decoder MLPs; `__call__` returns (μ, log σ) of q(u | Z) from one-hot Z
  (..., K, L); `decode` the logits (..., K, L) of p(Z | u) from u (..., d)."""
  num_fields: int
  num_levels: int
  latent: int
  hidden: Sequence[int]

  def setup(self):
    self.enc = MLP(tuple(self.hidden), 2 * self.latent)
    self.dec = MLP(tuple(self.hidden)[::-1], self.num_fields * self.num_levels)

  def __call__(self, one_hot: jax.Array) -> tuple[jax.Array, jax.Array]:
    h = self.enc(one_hot.reshape(*one_hot.shape[:-2], -1))
    return h[..., :self.latent], jnp.clip(h[..., self.latent:], -8.0, 4.0)

  def decode(self, u: jax.Array) -> jax.Array:
    return self.dec(u).reshape(*u.shape[:-1], self.num_fields, self.num_levels)

  def round_trip(self, one_hot: jax.Array) -> jax.Array:
    """decode(μ(Z)): touches both halves (what `init` calls)."""
    return self.decode(self(one_hot)[0])


class Mz(NamedTuple):
  """A fitted model: the module (static) and its parameters."""
  module: VAE
  params: PyTree


def make(space: Space, latent: int, hidden: Sequence[int]) -> VAE:
  if latent < 1 or not hidden or min(hidden) < 1:
    raise ValueError(f"Mz needs latent >= 1 and positive hidden widths, got {latent=}, {hidden=}")
  return VAE(space.num_fields, space.max_levels, latent, tuple(hidden))


def _one_hot(module: VAE, z_levels: jax.Array) -> jax.Array:
  return jax.nn.one_hot(z_levels, module.num_levels)


def elbo(module: VAE, params: PyTree, key: jax.Array, z_levels: jax.Array, beta=1.0
         ) -> jax.Array:
  """ELBO(Z) with one reparameterised draw (the KL term times beta: < 1 only while warming up)
  (..., K) int -> (...,) nats."""
  mu, log_s = module.apply(params, _one_hot(module, z_levels))
  u = mu + jnp.exp(log_s) * jax.random.normal(key, mu.shape)
  logits = module.apply(params, u, method=VAE.decode)
  rec = jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(logits), z_levels[..., None], -1)[..., 0],
                -1)
  kl = 0.5 * jnp.sum(mu ** 2 + jnp.exp(2 * log_s) - 1 - 2 * log_s, -1)
  return rec - beta * kl


def decode_hard(mz: Mz, u: jax.Array) -> jax.Array:
  """Z(u) = argmax_Z p(Z | u)   (..., d) -> (..., K) int32."""
  return jnp.argmax(mz.module.apply(mz.params, u, method=VAE.decode), -1).astype(jnp.int32)


def encode(mz: Mz, z_levels: jax.Array) -> jax.Array:
  """The mean of q(u | Z)   (..., K) int -> (..., d)."""
  return mz.module.apply(mz.params, _one_hot(mz.module, z_levels))[0]


class FitInfo(NamedTuple):
  steps: int            # updates taken (the best held-out evaluation's step)
  train_elbo: float     # per hypothesis, nats, at the end
  held_out_elbo: float  # per hypothesis, nats, at the best evaluation
  history: list         # [(step, held-out ELBO)]


def fit(key: jax.Array, module: VAE, walks: jax.Array, *, held_out: float = 0.1,
        batch: int = 256, lr: float = 1e-3, max_steps: int = 4000, eval_every: int = 100,
        patience: int = 5, kl_warmup: int = 1000) -> tuple[Mz, FitInfo]:
  """Fit the VAE to the proposals of exploration walks (W, T, K) by Adam on −ELBO, early-stopped
  on a held-out share of whole walks (an edit is close to its walk's other proposals, so a
  held-out proposal must not have its walk in training); kept: the best held-out ELBO.  The KL
  term's weight rises linearly from 0 over kl_warmup steps (without it the latent collapses
  onto the prior and Mz learns only the fields' marginals); stopping waits for the warm-up."""
  walks = jnp.asarray(walks, jnp.int32)
  if walks.ndim != 3 or walks.shape[-1] != module.num_fields:
    raise ValueError(f"walks must be (W, T, {module.num_fields}), got {walks.shape}")
  w, t = walks.shape[:2]
  n_val = max(1, int(round(held_out * w)))
  if (w - n_val) * t < batch or not 0 < held_out < 1 or n_val >= w:
    raise ValueError(f"need 0 < held_out < 1, a held-out walk and at least batch = {batch} "
                     f"training proposals, got {w} walks of {t} with held_out = {held_out}")
  k_perm, k_init, key = jax.random.split(key, 3)
  walks = walks[jax.random.permutation(k_perm, w)]
  train = walks[n_val:].reshape(-1, module.num_fields)
  val = walks[:n_val].reshape(-1, module.num_fields)
  params = module.init(k_init, _one_hot(module, train[:1]), method=VAE.round_trip)
  opt = optax.adam(lr)

  @jax.jit
  def chunk(params, opt_state, key, start):
    def step(carry, a):
      p, s = carry
      k, i = a
      k_b, k_e = jax.random.split(k)
      idx = jax.random.randint(k_b, (batch,), 0, train.shape[0])
      beta = jnp.minimum(1.0, i / max(kl_warmup, 1))
      loss, g = jax.value_and_grad(
          lambda q: -jnp.mean(elbo(module, q, k_e, train[idx], beta)))(p)
      upd, s = opt.update(g, s, p)
      return (optax.apply_updates(p, upd), s), loss
    (params, opt_state), losses = jax.lax.scan(
        step, (params, opt_state), (jax.random.split(key, eval_every),
                                    start + jnp.arange(eval_every, dtype=jnp.float32)))
    return params, opt_state, -losses[-10:].mean()

  @jax.jit
  def held(params, key):
    return jnp.mean(elbo(module, params, key, val))

  opt_state = opt.init(params)
  best, best_val, best_step, since, history, train_elbo = params, -np.inf, 0, 0, [], np.nan
  k_val = jax.random.fold_in(key, 10 ** 6)  # one fixed draw: evaluations comparable
  for i in range(max_steps // eval_every):
    params, opt_state, train_elbo = chunk(params, opt_state, jax.random.fold_in(key, i),
                                          float(i * eval_every))
    v = float(held(params, k_val))
    step = (i + 1) * eval_every
    history.append((step, v))
    if step < kl_warmup:
      continue
    if v > best_val:
      best, best_val, best_step, since = params, v, step, 0
    else:
      since += 1
      if since >= patience:
        break
  return Mz(module, best), FitInfo(best_step, float(train_elbo), best_val, history)
