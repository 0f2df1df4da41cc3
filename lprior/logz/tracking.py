"""Tracking log Z(θ₁) with persistent particles as θ₁ moves (DESIGN §2, the "GAN-style" one).

Z(θ₁) = ∫ N(θ₂′; m(θ₁), σ²I) e^{−E(θ₁, θ₂′)} dθ₂′ covers both prior forms:
  chained:      m(θ₁) = θ₁,   E(θ₁, θ₂′) = λC(θ₂′);
  partitioned:  m(θ₁) = θ₂⁰,  E(θ₁, θ₂′) = λC(θ₁, θ₂′).
When θ₁ → θ₁′ (δ = m(θ₁′) − m(θ₁)) every particle is translated by the same vector v and
reweighted by the exact ratio of the unnormalised conditionals (a translation has Jacobian 1):
  log w = log N(θ₂′+v; m(θ₁′), σ²) − E(θ₁′, θ₂′+v) − log N(θ₂′; m(θ₁), σ²) + E(θ₁, θ₂′).
transport='mean': v = δ (the Gaussian factors cancel: log w = E(θ₁, θ₂′) − E(θ₁′, θ₂′+δ), the
post's "C(new θ₂) − C(old θ₂)"; v = 0 in the partitioned form); 'metric': v = the first-order
shift of the conditional mean, Σ times the change of −∇θ₂ log π̃ at the mean particle, with Σ
the move metric (chained: v = Σδ/σ², DESIGN's (I + σ²λM)⁻¹δ; exact for quadratic E, where the
weights are then constant); 'none': v = 0.  Then log Z(θ₁′) − log Z(θ₁) = log Σ W w; the particles are resampled when the ESS
is low and rejuvenated by preconditioned MALA moves at θ₁′, and
  ∇θ₁ log Z = J_mᵀ E_p[(θ₂′ − m)/σ²] − E_p[∇θ₁ E(θ₁, θ₂′)]
is read off the same particles, both expectations with the Stein control variate of
`smc.score_and_stein_shift` (low noise both in the directions E ignores and in the stiff ones).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh

from lprior.logz import api as est
from lprior.logz import particles as pt
from lprior.logz import moves, sharding, smc
from lprior.pytree import PyTree, leading_size, tree_add, tree_sub


TRANSPORTS = ("none", "mean", "metric")


@flax.struct.dataclass
class TrackingState:
  theta1: PyTree
  log_z: jax.Array  # running log Z(θ₁)
  log_z_var: jax.Array  # its variance estimate: init SMC's plus the per-update delta-method ones
  particles: smc.Particles  # leading axis N
  step_size: jax.Array
  inv_mass: Any  # the last move metric ≈ Cov p(θ₂′|θ₁) (diag (d,) or BlackJAX low-rank)
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
  energy, grad = _evaluate(theta1, r.particles, energy_fn=energy_fn, num_particles=num_particles,
                           mesh=mesh)
  p = smc.Particles(r.particles, energy, grad, r.log_weights, jnp.arange(num_particles))
  return TrackingState(theta1, r.log_z, r.stderr**2, p, r.info["final_step_size"], r.info["inv_mass"],
                       k_track, jnp.zeros((), jnp.int32))


@partial(jax.jit, static_argnames=("energy_fn", "num_particles", "mesh"))
def _evaluate(theta1, particles, *, energy_fn, num_particles, mesh):
  """(E(θ₁, θ₂′_i), ∇θ₂E) of every particle, sharded like the particles."""
  fn = lambda axis, n_local, t1, p: ({}, smc.evaluate(partial(energy_fn, t1), p))
  return sharding.run(fn, mesh, num_particles, (theta1,), (particles,))[1]


def _shift(theta_bar, m_old, m_new, grad_e_old, grad_e_new, transport, inv_mass, sigma):
  """The translation v (flat) of every particle when the target moves from π to π′.

  'metric': v = Σ[h(θ̄) − h′(θ̄)], h = −∇θ₂ log π̃ = (θ−m)/σ² + ∇θ₂E, the first-order shift of the
  conditional mean (exact for quadratic E; chained form: v = Σδ/σ²)."""
  if transport == "none":
    return jnp.zeros_like(m_old)
  if transport == "mean":
    return m_new - m_old
  dh = (m_new - m_old) / sigma**2 + grad_e_old(theta_bar) - grad_e_new(theta_bar)
  return moves.inverse_mass_matvec(inv_mass, dh)


def _update_local(axis, n_local, key, theta1, theta1_new, sigma, step_size, inv_mass, theta,
                  e_old, log_w, eve, *, energy_fn, mean_fn, cfg: smc.SMCConfig, num_particles,
                  transport):
  """e_old: the carried E(θ₁, θ₂′) of each particle (set by init and by every move's refresh)."""
  dtype = log_w.dtype
  sigma = jnp.asarray(sigma, dtype)
  m_old, unravel = ravel_pytree(mean_fn(theta1))
  m_new = ravel_pytree(mean_fn(theta1_new))[0]
  e_new_fn = partial(energy_fn, theta1_new)
  flat = pt.ravel_particles(theta)
  theta_bar = pt.weighted_mean(flat, jnp.exp(log_w), axis)
  grad_e = lambda t1: (lambda x: ravel_pytree(jax.grad(partial(energy_fn, t1))(unravel(x)))[0])
  v = _shift(theta_bar, m_old, m_new, grad_e(theta1), grad_e(theta1_new), transport, inv_mass,
             sigma)
  moved = jax.vmap(unravel)(flat + v)
  energy, grad = smc.evaluate(e_new_fn, moved)
  # log N(θ+v; m′) − log N(θ; m) = −(2u·(θ−m) + ‖u‖²)/(2σ²), u = v − δ (exactly 0 when v = δ)
  u = v - (m_new - m_old)
  log_gauss = -(2.0 * (flat - m_old) @ u + u @ u) / (2.0 * sigma**2)
  inc = e_old - energy + log_gauss
  log_inc, var, log_w_g = smc.reweight(pt.gather(log_w, axis), pt.gather(inc, axis))
  ess_before = pt.ess(log_w_g)
  ctx = smc._Ctx(e_new_fn, mean_fn(theta1_new), sigma, cfg, axis, n_local, num_particles)
  p = smc.Particles(moved, energy, grad, pt.local(log_w_g, n_local, axis), eve)
  k_res, k_move = jax.random.split(key)
  p, did = smc.resample_if_needed(k_res, p, log_w_g, cfg.resample_threshold, ctx)
  inv_mass = smc.preconditioner(p, pt.gather(p.log_w, axis), 1.0, ctx)
  p, step_size, acc = smc.move(k_move, p, jnp.ones((), dtype), step_size, inv_mass, ctx)

  grad_theta1 = _grad_theta1(p, inv_mass, ctx, theta1_new, energy_fn, mean_fn, unravel)
  rep = dict(delta_log_z=log_inc, var=var, grad_theta1=grad_theta1, ess=ess_before,
             resampled=did, acceptance=acc, step_size=step_size, inv_mass=inv_mass)
  return rep, (p.theta, p.energy, p.grad, p.log_w, p.eve)


def _grad_theta1(p: smc.Particles, inv_mass, ctx, theta1, energy_fn, mean_fn, unravel):
  """∇θ₁ log Z = J_mᵀ E[s] + E[g], g = −∇θ₁E(θ₁, θ₂′), each with the Stein control variate of
  `smc.score_and_stein_shift`: E[s] ≈ s̄ − Σh̄/σ², E[g] ≈ ḡ − ∂θ₂g(θ̄₂′)·Σh̄ (one JVP at the
  weighted mean particle)."""
  s_bar, shift = smc.score_and_stein_shift(p, inv_mass, ctx)
  from_mean = jax.vjp(mean_fn, theta1)[1](unravel(s_bar - shift / ctx.sigma**2))[0]
  g = lambda t2: jax.grad(lambda t1: -energy_fn(t1, t2))(theta1)
  w = jnp.exp(p.log_w)
  g_bar = pt.weighted_mean(jax.vmap(g)(p.theta), w, ctx.axis)
  theta_bar = pt.weighted_mean(p.theta, w, ctx.axis)
  correction = jax.jvp(g, (theta_bar,), (unravel(shift),))[1]
  return tree_add(from_mean, tree_sub(g_bar, correction))


@partial(jax.jit, static_argnames=("energy_fn", "mean_fn", "cfg", "num_particles", "mesh",
                                   "transport"))
def _update(state: TrackingState, theta1_new, sigma, *, energy_fn, mean_fn, cfg, num_particles,
            mesh, transport):
  key, sub = jax.random.split(state.key)
  p = state.particles
  fn = partial(_update_local, energy_fn=energy_fn, mean_fn=mean_fn, cfg=cfg,
               num_particles=num_particles, transport=transport)
  rep, (theta, energy, grad, log_w, eve) = sharding.run(
      fn, mesh, num_particles,
      (sub, state.theta1, theta1_new, sigma, state.step_size, state.inv_mass),
      (p.theta, p.energy, p.log_w, p.eve))
  log_z, log_z_var = state.log_z + rep["delta_log_z"], state.log_z_var + rep["var"]
  new = TrackingState(theta1_new, log_z, log_z_var, smc.Particles(theta, energy, grad, log_w, eve),
                      rep["step_size"], rep.pop("inv_mass"), key, state.step + 1)
  return new, dict(rep, log_z=log_z, stderr=jnp.sqrt(log_z_var))


def update(state: TrackingState, theta1_new: PyTree, *, energy_fn: Callable, mean_fn: Callable,
           sigma, mesh: Mesh | None = None, transport: str | None = None, **smc_options: Any):
  """Move the particles to θ₁_new.  Returns (state, info) with info holding delta_log_z, log_z,
  stderr (of log_z, accumulated), grad_theta1 (∇θ₁ log Z, a pytree like θ₁), ess (before
  resampling), resampled, acceptance, step_size.

  transport: 'metric', 'mean' or 'none' (module docstring); default 'metric' with the 'lowrank'
  metric and 'mean' otherwise (a diagonal K misses the dense stiff directions: measured on the
  d = 1,000 quadratic it is worse than 'mean').  smc_options are
  those of `estimate(method='smc')` for the moves (num_mcmc_steps defaults to 2 here); pass the
  same `precondition` as to `init`, since the state carries that metric.
  Cost per particle: one value-and-gradient at the new θ₁ (the energy at the old θ₁ is carried),
  num_mcmc_steps MALA gradients and one refresh, plus ∇θ₁ E; plus one metric (2·rank HVPs
  for 'lowrank')."""
  smc_options.setdefault("num_mcmc_steps", 2)
  cfg = est._smc_config(smc_options, 0)
  if transport is None:
    transport = "metric" if cfg.move.precondition == "lowrank" else "mean"
  if transport not in TRANSPORTS:
    raise ValueError(f"transport must be one of {TRANSPORTS}; got {transport!r}")
  carried_lowrank = isinstance(state.inv_mass,
                               moves.lazy_blackjax().mcmc.metrics.LowRankInverseMassMatrix)
  if carried_lowrank != (cfg.move.precondition == "lowrank"):
    raise ValueError(f"precondition={cfg.move.precondition!r} differs from the one the state was "
                     "initialised with; pass the same `precondition` to init and update")
  num_particles = leading_size(state.particles.theta)
  return _update(state, theta1_new, sigma, energy_fn=energy_fn, mean_fn=mean_fn, cfg=cfg,
                 num_particles=num_particles, mesh=mesh, transport=transport)


def difference_surrogate(consistency_fn: Callable, theta2_old: PyTree, theta2_new: PyTree) -> jax.Array:
  """The post's shortcut objective for θ₁: C(θ₂ new) − C(θ₂ old) (minimised in θ₁ when θ₂_new
  depends on θ₁); with transport it is the exact incremental log-weight of one particle."""
  return consistency_fn(theta2_new) - consistency_fn(theta2_old)
