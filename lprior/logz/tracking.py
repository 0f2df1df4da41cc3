"""Tracking log Z(θ₁) with persistent particles as θ₁ moves (DESIGN §2, the "GAN-style" one).

Z(θ₁) = ∫ N(θ₂′; m(θ₁), σ²I) e^{−E(θ₁, θ₂′)} dθ₂′ covers both prior forms:
  chained:      m(θ₁) = θ₁,   E(θ₁, θ₂′) = λC(θ₂′);
  partitioned:  m(θ₁) = θ₂⁰,  E(θ₁, θ₂′) = λC(θ₁, θ₂′).
When θ₁ → θ₁′ the particles of p(θ₂′ | θ₁) are transported with the base mean (θ₂′ += m(θ₁′) −
m(θ₁), which leaves the Gaussian factor unchanged) and reweighted by
  log w = −E(θ₁′, θ₂′ + δ) + E(θ₁, θ₂′)
(without transport: the ratio of the two unnormalised conditionals); then
log Z(θ₁′) − log Z(θ₁) = log Σ W w, the particles are resampled when the ESS is low and
rejuvenated by preconditioned MALA moves at θ₁′, and
  ∇θ₁ log Z = E_p[∇θ₁ log N(θ₂′; m(θ₁), σ²) − ∇θ₁ E(θ₁, θ₂′)]
           = −E_p[∇θ₁ E(θ₁, θ₂′ + m(θ₁) − m(θ₁ fixed))]      (integration by parts in θ₂′)
is read off the same particles in the second form: it has no Monte-Carlo noise in directions
the energy ignores (the score form's noise grows like √(d/N) there).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from lprior import gaussian
from lprior.logz import api as est
from lprior.logz import particles as pt
from lprior.logz import sharding, smc
from lprior.pytree import PyTree, tree_add, tree_sub


@flax.struct.dataclass
class TrackingState:
  theta1: PyTree
  log_z: jax.Array  # running log Z(θ₁)
  particles: smc.Particles  # leading axis N
  step_size: jax.Array
  key: jax.Array
  step: jax.Array


def chained(energy2_fn: Callable) -> tuple[Callable, Callable]:
  """(energy_fn, mean_fn) of the chained form from θ₂ ↦ λC(θ₂)."""
  return (lambda theta1, theta2: energy2_fn(theta2)), (lambda theta1: theta1)


def partitioned(energy12_fn: Callable, theta2_init: PyTree) -> tuple[Callable, Callable]:
  """(energy_fn, mean_fn) of the partitioned form from (θ₁, θ₂) ↦ λC(θ₁, θ₂)."""
  return energy12_fn, (lambda theta1: theta2_init)


def init(key: jax.Array, theta1: PyTree, *, energy_fn: Callable, mean_fn: Callable, sigma,
         num_particles: int = 128, mesh: Mesh | None = None, **smc_options: Any) -> TrackingState:
  """Particles of p(θ₂′ | θ₁) and log Z(θ₁) from a fresh tempered SMC run."""
  k_smc, k_track = jax.random.split(key)
  r = est.estimate(k_smc, partial(energy_fn, theta1), mean_fn(theta1), sigma, method="smc",
                   num_particles=num_particles, mesh=mesh, **smc_options)
  energy, grad = jax.vmap(jax.value_and_grad(partial(energy_fn, theta1)))(r.particles)
  p = smc.Particles(r.particles, energy, grad, r.log_weights, jnp.arange(num_particles))
  return TrackingState(theta1, r.log_z, p, r.info["final_step_size"], k_track,
                       jnp.zeros((), jnp.int32))


def _update_local(axis, n_local, key, theta1, theta1_new, sigma, step_size, theta, e_old, log_w,
                  eve, *,
                  energy_fn, mean_fn, cfg: smc.SMCConfig, num_particles, transport):
  """e_old: the carried E(θ₁, θ₂′) of each particle (set by init and by every move's refresh)."""
  dtype = log_w.dtype
  sigma = jnp.asarray(sigma, dtype)
  m_old, m_new = mean_fn(theta1), mean_fn(theta1_new)
  e_new_fn = partial(energy_fn, theta1_new)
  moved = jax.vmap(lambda t: tree_add(t, tree_sub(m_new, m_old)))(theta) if transport else theta
  energy, grad = smc.evaluate(e_new_fn, moved)
  inc = e_old - energy
  if not transport:
    inc = inc + jax.vmap(lambda t: gaussian.log_normal(t, m_new, sigma)
                         - gaussian.log_normal(t, m_old, sigma))(theta)
  log_inc, var, log_w_g = smc.reweight(pt.gather(log_w, axis), pt.gather(inc, axis))
  ess_before = pt.ess(log_w_g)
  ctx = smc._Ctx(e_new_fn, m_new, sigma, cfg, axis, n_local, num_particles)
  p = smc.Particles(moved, energy, grad, pt.local(log_w_g, n_local, axis), eve)
  k_res, k_move = jax.random.split(key)
  p, did = smc.resample_if_needed(k_res, p, log_w_g, cfg.resample_threshold, ctx)
  inv_mass = smc.preconditioner(p, pt.gather(p.log_w, axis), 1.0, ctx)
  p, step_size, acc = smc.move(k_move, p, jnp.ones((), dtype), step_size, inv_mass, ctx)

  def transported(t1, t2):  # −E(θ₁, θ₂′ + m(θ₁) − m(θ₁_new)): moves the particle with the base
    return -energy_fn(t1, tree_add(t2, tree_sub(mean_fn(t1), m_new)))

  g = jax.vmap(jax.grad(transported), in_axes=(None, 0))(theta1_new, p.theta)
  rep = dict(delta_log_z=log_inc, var=var, grad_theta1=pt.weighted_mean(g, jnp.exp(p.log_w), axis),
             ess=ess_before, resampled=did, acceptance=acc, step_size=step_size)
  return rep, (p.theta, p.energy, p.grad, p.log_w, p.eve)


@partial(jax.jit, static_argnames=("energy_fn", "mean_fn", "cfg", "num_particles", "mesh",
                                   "transport"))
def _update(state: TrackingState, theta1_new, sigma, *, energy_fn, mean_fn, cfg, num_particles,
            mesh, transport):
  key, sub = jax.random.split(state.key)
  p = state.particles
  fn = partial(_update_local, energy_fn=energy_fn, mean_fn=mean_fn, cfg=cfg,
               num_particles=num_particles, transport=transport)
  rep, (theta, energy, grad, log_w, eve) = sharding.run(
      fn, mesh, num_particles, (sub, state.theta1, theta1_new, sigma, state.step_size),
      (p.theta, p.energy, p.log_w, p.eve))
  log_z = state.log_z + rep["delta_log_z"]
  new = TrackingState(theta1_new, log_z, smc.Particles(theta, energy, grad, log_w, eve),
                      rep["step_size"], key, state.step + 1)
  return new, dict(rep, log_z=log_z)


def update(state: TrackingState, theta1_new: PyTree, *, energy_fn: Callable, mean_fn: Callable,
           sigma, mesh: Mesh | None = None, transport: bool = True, **smc_options: Any):
  """Move the particles to θ₁_new.  Returns (state, info) with info holding delta_log_z, log_z,
  grad_theta1 (∇θ₁ log Z, a pytree like θ₁), ess (before resampling), acceptance.

  Cost per particle: one value-and-gradient at the new θ₁ (the energy at the old θ₁ is carried),
  num_mcmc_steps (default 2) MALA gradients and one refresh, plus ∇θ₁ of the log joint."""
  smc_options.setdefault("num_mcmc_steps", 2)
  cfg = est._smc_config(smc_options, 0)
  num_particles = pt.ravel_particles(state.particles.theta).shape[0]
  return _update(state, theta1_new, sigma, energy_fn=energy_fn, mean_fn=mean_fn, cfg=cfg,
                 num_particles=num_particles, mesh=mesh, transport=transport)


def difference_surrogate(consistency_fn: Callable, theta2_old: PyTree, theta2_new: PyTree) -> jax.Array:
  """The post's shortcut objective for θ₁: C(θ₂ new) − C(θ₂ old) (minimised in θ₁ when θ₂_new
  depends on θ₁); with transport it is the exact incremental log-weight of one particle."""
  return consistency_fn(theta2_new) - consistency_fn(theta2_old)
