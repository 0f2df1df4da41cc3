"""reference='modes': log Z as a sum over a partition of unity built on the modes found.

q(x) = Σ_j α_j q_j(x) in flat whitened coordinates: q_0 the prior N(μ, s²I), q_k (k ≥ 1) the
Laplace approximations (`reference`) at the distinct modes Newton reaches from μ and from
`num_starts` particles of a prior-start SMC run.  With r_j = α_j q_j / q (Σ_j r_j = 1),

  Z = Σ_j Z_j,   Z_j = ∫ p̃ r_j dx = ∫ q_j(x) e^{−E_j(x)} dx,   E_j = −log α_j − log p̃ + log q,

so each Z_j is a tempered SMC under its own Gaussian base (the prior, or N(0, I) in the mode's z)
and none has to reach a mode another piece covers: the prior-start run need not climb into a
spike, the Laplace-start run need not find the slab.  Exact for any modes and weights (a missed
mode is missed here too); α_0 = ½ and α_k = 1/(2K).  stderr² = Σ_j (Z_j/Z)² stderr_j².
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from lprior.logz import reference, sharding, smc, whitening
from lprior.logz.laplace import LaplaceConfig

Vec = jax.Array


@partial(jax.jit, static_argnames=("energy_fn",))
def fit_modes(key, mean, sigma, starts: Vec, *, energy_fn: Callable) -> reference.Reference:
  """Laplace references from μ and from each flat whitened start (S, d): S + 1 stacked fits."""
  w, mu, _, energy = whitening.flat(sigma, mean, energy_fn)
  s = w.sigma
  starts = jnp.concatenate([mu[None], starts])
  return jax.vmap(lambda x0: reference.fit(key, energy, mu, s, LaplaceConfig(), x0))(starts)


def distinct(refs: reference.Reference, s) -> list[int]:
  """Indices of the converged fits whose modes lie more than one posterior standard deviation
  (‖Δz‖ > 1 in every kept mode's own z) from every mode kept before them."""
  kept: list[int] = []
  conv = np.asarray(refs.newton_converged)
  for i in range(conv.shape[0]):
    if not conv[i]:
      continue
    x = refs.mode[i]
    if all(float(jnp.linalg.norm(reference.to_z(_at(refs, j), s, x))) > 1.0 for j in kept):
      kept.append(i)
  return kept


def _at(refs: reference.Reference, i) -> reference.Reference:
  return jax.tree.map(lambda a: a[i], refs)


def log_q(x: Vec, refs: reference.Reference, log_alpha: Vec, mu: Vec, s) -> jax.Array:
  """log Σ_j α_j q_j(x), less −(d/2) log(2πs²) (the constant every density here shares)."""
  r = x - mu
  terms = jnp.concatenate([(log_alpha[0] - 0.5 * jnp.dot(r, r) / s**2)[None],
                           log_alpha[1:] + jax.vmap(reference.log_density, (0, None, None))(
                               refs, s, x)])
  return jax.scipy.special.logsumexp(terms)


def run_piece(key, mean, sigma, refs, log_alpha, piece: int, *, energy_fn, cfg, num_particles,
              mesh):
  """Z_piece's tempered SMC (piece 0: base the prior; k ≥ 1: N(0, I) in mode k's z).
  Returns (replicated report, (particles in θ, log-weights)).  One compiled program serves every
  mode's piece (the index is traced), another the prior's."""
  return _run_piece(key, mean, sigma, refs, log_alpha, jnp.asarray(piece), energy_fn=energy_fn,
                    cfg=cfg, num_particles=num_particles, mesh=mesh, prior=piece == 0)


@partial(jax.jit, static_argnames=("energy_fn", "cfg", "num_particles", "mesh", "prior"))
def _run_piece(key, mean, sigma, refs, log_alpha, piece, *, energy_fn, cfg, num_particles, mesh,
               prior: bool):
  w, mu, unravel, energy = whitening.flat(sigma, mean, energy_fn)
  s = w.sigma

  def e_piece(x):  # E_j = −log α_j − log p̃ + log q
    r = x - mu
    return -log_alpha[piece] + energy(x) + 0.5 * jnp.dot(r, r) / s**2 + log_q(
        x, refs, log_alpha, mu, s)

  if prior:
    e, base_mean, base_s, to_x = e_piece, mu, s, lambda x: x
  else:
    ref = _at(refs, piece - 1)
    to_x = partial(reference.to_x, ref, s)
    e, base_mean, base_s = (lambda z: e_piece(to_x(z))), jnp.zeros_like(mu), jnp.ones((), mu.dtype)
  fn = partial(smc.run_local, energy_fn=e, cfg=cfg, num_particles=num_particles, adaptive=True)
  rep, sh = sharding.run(fn, mesh, num_particles, (key, base_mean, base_s,
                                                   jnp.zeros(2, mu.dtype)), (None,))
  x = jax.vmap(to_x)(sh[0])
  score = jnp.exp(sh[1]) @ ((x - mu) / s**2)  # E_{π_j}[(x − μ)/s²]
  return dict(rep, score=score), (jax.vmap(lambda v: w.up(unravel(v)))(x), sh[1])


def combine(log_z: Vec, var: Vec, scores: Vec) -> dict:
  """Pieces (J,) → log Z = log Σ Z_j, stderr, shares Z_j/Z, and the pooled score E_p[(x−μ)/s²]."""
  total = jax.scipy.special.logsumexp(log_z)
  shares = jnp.exp(log_z - total)
  return dict(log_z=total, stderr=jnp.sqrt(jnp.sum(shares**2 * var)), shares=shares,
              score=shares @ scores)
