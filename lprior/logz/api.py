"""One entry point for every estimator of log ∫ N(θ; μ, diag σ²) e^{−E(θ)} dθ."""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, PartitionSpec as P

from lprior.distributed import host_value
from lprior import gaussian
from lprior.logz import auto, batches, modes, moves, naive, nested, reference, reliability
from lprior.logz import sharding, smc
from lprior.logz import whitening
from lprior.logz import particles as pt
from lprior.logz.laplace import LaplaceConfig
from lprior.logz.result import LogZResult
from lprior.pytree import PyTree, structure_mismatch, tree_size

METHODS = ("naive", "smc", "ais", "reverse_ais", "bdmc", "ti", "laplace", "ns", "auto")

_SMC_OPTIONS = {"target_ess", "resample_threshold", "max_steps", "num_mcmc_steps", "num_leapfrog",
                "precondition", "rank", "step_size", "target_accept", "jitter", "kernel"}
_SCHEDULE_OPTIONS = {"schedule", "num_steps", "beta_min", "resample"}
_OPTIONS = {
    "naive": set(),
    "smc": _SMC_OPTIONS | {"num_batches", "reference", "waste_free", "num_starts"},
    "ti": _SMC_OPTIONS | {"waste_free"},
    "auto": _SMC_OPTIONS | {"waste_free"},
    "ais": (_SMC_OPTIONS - {"target_ess", "max_steps"}) | _SCHEDULE_OPTIONS,
    "reverse_ais": (_SMC_OPTIONS - {"target_ess", "max_steps"}) | _SCHEDULE_OPTIONS | {"exact_samples"},
    "bdmc": (_SMC_OPTIONS - {"target_ess", "max_steps"}) | _SCHEDULE_OPTIONS | {"exact_samples"},
    "ns": {"num_delete", "num_inner_steps", "dlogz", "live_range", "max_steps", "num_samples"},
    "laplace": {"exact_max_dim", "max_newton_steps", "tol", "cg_max_iters", "lanczos_rank",
                "num_probes", "num_iters"},
}


def _concrete(x) -> bool:
  return not isinstance(x, jax.core.Tracer)


def check_inputs(energy_fn: Callable, mean: PyTree, sigma) -> None:
  """Clear errors for bad estimator input: σ ≤ 0 or a pytree of scales that does not match θ,
  non-float or empty θ, an energy that is not a scalar, or one that is NaN at the mean."""
  leaves = jax.tree.leaves(mean)
  if not leaves:
    raise ValueError("mean is an empty pytree: there is nothing to integrate over")
  for x in leaves:
    if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
      raise ValueError(f"mean leaves must be floating point; got dtype {jnp.result_type(x)}")
  gaussian.check_scale(sigma, mean)
  out = jax.eval_shape(energy_fn, mean)
  if not hasattr(out, "shape") or out.shape != ():
    raise ValueError(f"energy_fn must return a scalar; it returned {out}")
  e = energy_fn(mean) if all(_concrete(x) for x in leaves) else None
  if e is not None and _concrete(e):  # (under jit the energy may close over traced values)
    if not np.isfinite(float(e)) and not np.isposinf(float(e)):
      raise ValueError(f"energy_fn returned {float(e)} at the mean: it must be a number (or +inf)")


def _smc_config(o: dict, dim: int) -> smc.SMCConfig:
  kernel = o.get("kernel")
  if kernel is not None and not isinstance(kernel, moves.Kernel):
    raise TypeError(f"kernel must be an lprior.logz.moves.Kernel(init, step); got {type(kernel)}")
  mc = moves.MoveConfig(
      kernel=kernel, num_steps=o.get("num_mcmc_steps", 8), num_leapfrog=o.get("num_leapfrog", 1),
      target_accept=o.get("target_accept", 0.6), precondition=o.get("precondition", "lowrank"),
      rank=o.get("rank", 16), jitter=o.get("jitter", 0.5 if o.get("num_leapfrog", 1) > 1 else 0.0))
  if mc.precondition not in ("none", "diag", "lowrank"):
    raise ValueError(f"precondition must be 'none', 'diag' or 'lowrank'; got {mc.precondition!r}")
  for name, lo, hi in (("target_ess", 0, 1), ("resample_threshold", 0, 1)):
    if name in o and not lo < o[name] <= hi:
      raise ValueError(f"{name} must lie in ({lo}, {hi}]; got {o[name]}")
  wf = o.get("waste_free", 0)
  if not isinstance(wf, (int, np.integer)) or wf < 0 or wf == 1:
    raise ValueError(f"waste_free must be 0 (off) or an int P >= 2 (chain length); got {wf!r}")
  return smc.SMCConfig(target_ess=o.get("target_ess", 0.9),
                       resample_threshold=o.get("resample_threshold", 0.5),
                       resample=o.get("resample", True), max_steps=o.get("max_steps", 1000),
                       move=mc, step_size=o.get("step_size"), waste_free=int(wf))


def _check_waste_free(cfg: smc.SMCConfig, num_particles: int, mesh) -> None:
  """Waste-free needs whole chains on every device: N per device a multiple of P."""
  if cfg.waste_free < 2:
    return
  n_local = sharding.check_divisible(num_particles, mesh)
  if n_local % cfg.waste_free:
    raise ValueError(f"waste_free={cfg.waste_free} must divide the {n_local} particles per "
                     "device (each device runs whole chains of P states)")


def geometric_schedule(num_steps: int, beta_min: float = 1e-4, dtype=jnp.float32) -> jax.Array:
  """β_0 = 0, then num_steps geometric steps from beta_min to 1: shape (num_steps + 1,)."""
  return jnp.concatenate([jnp.zeros(1, dtype), jnp.geomspace(beta_min, 1.0, num_steps, dtype=dtype)])


def _unwhiten(w: whitening.Whitening, rep: dict, sharded: tuple) -> tuple[dict, tuple]:
  """Particles and ∇_μ log Z back in θ's coordinates (the move metric stays in u = θ/σ)."""
  if w.scale is None:
    return rep, sharded
  rep = dict(rep, grad_mean=w.grad_up(rep["grad_mean"]))
  return rep, (jax.vmap(w.up)(sharded[0]),) + tuple(sharded[1:])


@partial(jax.jit, static_argnames=("energy_fn", "cfg", "num_particles", "mesh", "adaptive"))
def _run_smc(key, mean, sigma, schedule, init_theta, *, energy_fn, cfg, num_particles, mesh,
             adaptive):
  w = whitening.make(sigma, mean)
  init_u = None if init_theta is None else jax.vmap(w.down)(init_theta)
  fn = partial(smc.run_local, energy_fn=w.energy(energy_fn), cfg=cfg,
               num_particles=num_particles, adaptive=adaptive)
  rep, sh = sharding.run(fn, mesh, num_particles, (key, w.down(mean), w.sigma, schedule),
                         (init_u,))
  return _unwhiten(w, rep, sh)


@partial(jax.jit, static_argnames=("energy_fn", "num_particles", "mesh"))
def _run_naive(key, mean, sigma, *, energy_fn, num_particles, mesh):
  w = whitening.make(sigma, mean)
  fn = partial(naive.run_local, energy_fn=w.energy(energy_fn), num_particles=num_particles)
  rep, sh = sharding.run(fn, mesh, num_particles, (key, w.down(mean), w.sigma), ())
  return _unwhiten(w, rep, sh)


def _result(rep, sharded, *, log_z, var, grad_mean, num_grad, num_energy, num_steps, info):
  theta, log_w = sharded if sharded else (None, None)
  return LogZResult(log_z=log_z, stderr=jnp.sqrt(var), grad_mean=grad_mean, ess=rep.get("ess"),
                    acceptance=rep.get("acceptance"), num_energy_evals=num_energy,
                    num_grad_evals=num_grad, num_steps=num_steps, particles=theta,
                    log_weights=log_w, info=info)


def _cost(steps, cfg, num_particles: int, dim: int):
  """(value-and-gradient evaluations, Hessian-vector products) of a run of `steps` tempering
  steps: an HVP costs ~2 gradients; one metric per tempering step plus one for ∇ log Z."""
  hvps = moves.lanczos_hvps(cfg.move.rank, dim) if cfg.move.precondition == "lowrank" else 0
  num_hvp = hvps * (steps + 1)
  return smc.grad_evals(steps, cfg, num_particles) + 2 * num_hvp, num_hvp


def _run_info(rep, cfg, num_hvp) -> dict:
  info = {k: rep[k] for k in ("trace", "beta", "num_resample", "final_step_size", "ti",
                              "ti_stderr", "nan_count", "inv_mass", "num_ancestors")}
  info.update(var_delta=rep["var"], var_eve=rep["var_eve"], num_hvp=num_hvp,
              plugged_kernel=jnp.asarray(cfg.move.kernel is not None),
              waste_free=jnp.asarray(cfg.waste_free))
  return info


def _judge(res: LogZResult, rep: dict, num_particles: int, **batched) -> LogZResult:
  """The result with info['reliability'] (`reliability.flags`) and info['reliable']."""
  reasons = reliability.flags(rep["num_ancestors"], rep["trace"]["ess"],
                              rep["trace"]["acceptance"], num_particles, **batched)
  return res.replace(info=dict(res.info, reliability=reasons,
                               reliable=reliability.reliable(reasons)))


def _smc_result(rep, sharded, cfg, num_particles, *, log_z=None, var=None, reverse=False):
  steps = rep["num_steps"]
  num_grad, num_hvp = _cost(steps, cfg, num_particles, tree_size(sharded[0]) // num_particles)
  info = _run_info(rep, cfg, num_hvp)
  if reverse:  # Σ log-increments estimates log(1/Z): an upper bound on log Z after negation
    return _result(rep, sharded, log_z=-rep["log_z"], var=jnp.maximum(rep["var"], rep["var_eve"]),
                   grad_mean=None, num_grad=num_grad, num_energy=0, num_steps=steps, info=info)
  return _result(rep, sharded, log_z=rep["log_z"] if log_z is None else log_z,
                 var=jnp.maximum(rep["var"], rep["var_eve"]) if var is None else var,
                 grad_mean=rep["grad_mean"], num_grad=num_grad, num_energy=0, num_steps=steps,
                 info=info)


def _schedule(o, dtype, reverse=False):
  s = o.get("schedule")
  s = geometric_schedule(o.get("num_steps", 200), o.get("beta_min", 1e-4), dtype) if s is None \
      else jnp.asarray(s, dtype)
  if s.ndim != 1 or s.shape[0] < 2:
    raise ValueError(f"schedule must be a 1-D array of at least 2 inverse temperatures; got shape {s.shape}")
  if _concrete(s):
    sn = np.asarray(s)
    if not (sn[0] == 0 and sn[-1] == 1 and np.all(np.diff(sn) >= 0)):
      raise ValueError("schedule must increase from 0 to 1 (reverse AIS runs it backwards)")
  return s[::-1] if reverse else s


def _check_exact_samples(samples, mean, num_particles):
  if samples is None:
    raise ValueError("reverse AIS / BDMC need exact_samples: draws from p(θ) ∝ N(θ; μ, σ²) e^{−E(θ)}"
                     " with a leading axis of num_particles")
  why = structure_mismatch(mean, samples, leading=1)
  if why:
    raise ValueError(f"exact_samples do not match mean: {why}")
  n = {jnp.shape(x)[0] for x in jax.tree.leaves(samples)}
  if n != {num_particles}:
    raise ValueError(f"exact_samples must have num_particles={num_particles} rows; got {sorted(n)}")


def estimate(key: jax.Array, energy_fn: Callable[[PyTree], jax.Array], mean: PyTree, sigma, *,
             method: str = "smc", num_particles: int = 256, mesh: Mesh | None = None,
             **options: Any) -> LogZResult:
  """log ∫ N(θ; mean, diag σ²) exp(−energy_fn(θ)) dθ over a pytree θ.

  sigma: a scalar, or a pytree of scales with mean's structure (each leaf broadcastable to its
  parameter: per-layer priors); the estimators then run in u = θ/σ (`whitening`), particles and
  grad_mean come back in θ, and `info['inv_mass']` is the move metric in u.

  method: 'naive' | 'smc' (adaptive tempered SMC) | 'ais' (fixed schedule) | 'reverse_ais'
  (upper bound from exact samples) | 'bdmc' (both) | 'ti' (thermodynamic integration) |
  'laplace' | 'ns' (nested sampling) | 'auto' ('smc' from the prior or from the Laplace
  approximation, chosen by a pilot's curvature at the mode (`auto`); `info['auto']` holds the
  choice and its measurements; not under jit/vmap).  mesh: an optional 1-D device mesh;
  particles are sharded over its axis and the result, for the same key, does not depend on the
  number of devices (not for 'ns', which runs on one device).
  Options (SMC family): target_ess (0.9: conditional-ESS fraction per β step),
  resample_threshold (0.5), max_steps, num_mcmc_steps (8), num_leapfrog (1 = MALA),
  precondition ('lowrank' (default: diagonal plus the top `rank` (16) Lanczos directions of the
  Hessian, at 2·rank Hessian-vector products per tempering step) | 'diag' | 'none'), rank,
  step_size, target_accept; waste_free (smc, ti; 0 = off): P ≥ 2 resamples N/P particles at every
  step and keeps all P states of a chain of P − 1 moves from each (Dau & Chopin's waste-free
  SMC: N particles for ~N(1 − 1/P) moves, num_mcmc_steps unused); kernel (a
  `moves.Kernel(init, step)`: your own MCMC move in place of lprior's, in BlackJAX's shape;
  `info['plugged_kernel']` says which ran; the gradient counts assume one gradient per step of a
  plugged kernel);
  AIS family: schedule or num_steps/beta_min, resample (False), exact_samples.
  Laplace: see `lprior.logz.laplace.laplace`.
  NS (`nested`; num_particles live points; no gradients, so E need not be differentiable):
  num_delete (N/2 per step), num_inner_steps (slice moves per new point; max(5, 2d)), dlogz
  (0.01: stop once the live points could add less than this to log Z) and live_range (0.1
  nats: and their log-likelihoods span less than this, so a narrow mode hidden inside the
  bulk's contours is reached before stopping; None drops the condition), max_steps,
  num_samples (N posterior draws in `particles`); stderr = √(H/N) from the information H.
  reference (smc only): 'prior' (default), 'laplace' (`reference`: temper from the Laplace
  approximation at the mode; exact in one step on a Gaussian target) or 'modes' (`modes`: Z
  split by a partition of unity over the prior and the Laplace approximations at the modes that
  Newton reaches from μ and from num_starts (8) pilot particles, one SMC per piece; finds a
  narrow mode a tempered path misses if Newton reaches it; info['num_modes'], ['piece_shares']).
  num_batches (smc only; 1): B > 1 runs B independent SMCs of num_particles/B particles and
  pools them (`batches`): stderr then comes from their spread and stays honest when a run's
  genealogy collapses.  method='smc' reports `info['reliable']` and `info['reliability']` (the
  reasons, each True when it fires: `reliability.REASONS`; `reliability.explain(info)` words
  them); a result flagged unreliable has an error its stderr may not cover.
  SMC family: `info['num_ancestors']` counts the time-0 particles with weighted descendants; when
  it is a handful the genealogy has collapsed and `stderr` (then near its ceiling of 1 nat)
  understates the error, which can be tens of nats.
  """
  if method not in METHODS:
    raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
  unknown = set(options) - _OPTIONS[method]
  if unknown:
    raise TypeError(f"unknown option(s) {sorted(unknown)} for method {method!r}; valid: "
                    f"{sorted(_OPTIONS[method])}")
  if not isinstance(num_particles, (int, np.integer)) or num_particles < 1:
    raise ValueError(f"num_particles must be a positive int; got {num_particles!r}")
  check_inputs(energy_fn, mean, sigma)
  dtype = jnp.result_type(*jax.tree.leaves(mean))
  sigma = jax.tree.map(lambda s: jnp.asarray(s, dtype), sigma)

  if method == "auto":
    k_pilot, key = jax.random.split(key)
    ref, why = auto.choose(k_pilot, energy_fn, mean, sigma)
    res = estimate(key, energy_fn, mean, sigma, method="smc", num_particles=num_particles,
                   mesh=mesh, reference=ref, **options)
    return res.replace(num_grad_evals=res.num_grad_evals + why["num_grad"],
                       info=dict(res.info, auto=dict(why, reference=ref)))
  if method == "laplace":
    from lprior.logz.laplace import laplace  # (the package exports the function by this name)
    return laplace(key, energy_fn, mean, sigma, **options)
  if method == "ns":
    return _estimate_ns(key, energy_fn, mean, sigma, num_particles, mesh, options)
  if method == "naive":
    rep, sh = _run_naive(key, mean, sigma, energy_fn=energy_fn, num_particles=num_particles,
                         mesh=mesh)
    res = _result(rep, sh, log_z=rep["log_z"], var=rep["var"], grad_mean=rep["grad_mean"],
                  num_grad=0, num_energy=num_particles, num_steps=1, info={})
    return _finish(res, rep)

  if method in ("ais", "reverse_ais", "bdmc"):
    options.setdefault("resample", False)
  cfg = _smc_config(options, tree_size(mean))
  num_batches = options.get("num_batches", 1)
  _check_waste_free(cfg, num_particles // max(int(num_batches), 1), mesh)
  ref = options.get("reference", "prior")
  if ref not in ("prior", "laplace", "modes"):
    raise ValueError(f"reference must be 'prior', 'laplace' or 'modes'; got {ref!r}")
  if "num_starts" in options and ref != "modes":
    raise ValueError("num_starts is an option of reference='modes'")
  if ref == "modes":
    if num_batches != 1:
      raise ValueError("reference='modes' runs one SMC per piece (num_batches=1)")
    return _estimate_from_modes(key, energy_fn, mean, sigma, cfg, num_particles, mesh,
                                options.get("num_starts", 8))
  if ref == "laplace":
    if num_batches != 1:
      raise ValueError("reference='laplace' runs one SMC (num_batches=1)")
    return _estimate_from_laplace(key, energy_fn, mean, sigma, cfg, num_particles, mesh)
  if num_batches != 1:
    return _estimate_batches(key, energy_fn, mean, sigma, dtype, cfg, num_particles, num_batches,
                             mesh)
  if method in ("smc", "ti"):
    rep, sh = _run_smc(key, mean, sigma, jnp.zeros(2, dtype), None, energy_fn=energy_fn, cfg=cfg,
                       num_particles=num_particles, mesh=mesh, adaptive=True)
    if method == "ti":
      res = _smc_result(rep, sh, cfg, num_particles, log_z=rep["ti"], var=rep["ti_stderr"] ** 2)
      res.info["log_z_smc"] = rep["log_z"]
    else:
      res = _smc_result(rep, sh, cfg, num_particles)
    _check_reached_one(rep["beta"], cfg)
    if method == "smc":
      res = _judge(res, rep, num_particles)
    return _finish(res, rep)

  forward = None
  if method in ("ais", "bdmc"):
    rep, sh = _run_smc(key, mean, sigma, _schedule(options, dtype), None, energy_fn=energy_fn,
                       cfg=cfg, num_particles=num_particles, mesh=mesh, adaptive=False)
    forward = _finish(_smc_result(rep, sh, cfg, num_particles), rep)
    if method == "ais":
      return forward
  samples = options.get("exact_samples")
  _check_exact_samples(samples, mean, num_particles)
  rep, sh = _run_smc(jax.random.fold_in(key, 1), mean, sigma, _schedule(options, dtype, reverse=True),
                     samples, energy_fn=energy_fn, cfg=cfg, num_particles=num_particles, mesh=mesh,
                     adaptive=False)
  upper = _finish(_smc_result(rep, sh, cfg, num_particles, reverse=True), rep)
  if method == "reverse_ais":
    return upper
  info = dict(forward.info, log_z_lower=forward.log_z, log_z_upper=upper.log_z,
              stderr_lower=forward.stderr, stderr_upper=upper.stderr)
  return forward.replace(num_grad_evals=forward.num_grad_evals + upper.num_grad_evals, info=info)


def _ns_options(o: dict, num_live: int, dim: int) -> dict:
  """Nested sampling's settings with their defaults, each checked."""
  o = dict(dict(num_delete=max(1, num_live // 2), num_inner_steps=max(5, 2 * dim), dlogz=0.01,
                live_range=0.1, max_steps=10_000, num_samples=num_live), **o)
  for name in ("num_delete", "num_inner_steps", "max_steps", "num_samples"):
    if not isinstance(o[name], (int, np.integer)) or o[name] < 1:
      raise ValueError(f"{name} must be a positive int; got {o[name]!r}")
  if o["num_delete"] >= num_live:
    raise ValueError(f"num_delete={o['num_delete']} must be below num_particles={num_live} "
                     "(the live points)")
  if not o["dlogz"] > 0 or (o["live_range"] is not None and not o["live_range"] > 0):
    raise ValueError(f"dlogz and live_range must be > 0 (live_range may be None); got "
                     f"{o['dlogz']} and {o['live_range']}")
  return o


@partial(jax.jit, static_argnames=("energy_fn", "num_live", "num_delete", "num_inner_steps",
                                   "dlogz", "live_range", "max_steps", "num_samples"))
def _run_ns(key, mean, sigma, *, energy_fn, **o):
  w = whitening.make(sigma, mean)
  rep = nested.run(key, w.down(mean), w.sigma, energy_fn=w.energy(energy_fn), **o)
  return dict(rep, grad_mean=w.grad_up(rep["grad_mean"]),
              samples=jax.vmap(w.up)(rep["samples"]))


def _estimate_ns(key, energy_fn, mean, sigma, num_particles: int, mesh, options) -> LogZResult:
  """method='ns': `nested.run` with num_particles live points (one device)."""
  if mesh is not None:
    raise ValueError("method='ns' runs on one device: its live points are replaced a few at a "
                     "time by sequential slice moves; pass mesh=None")
  o = _ns_options(options, num_particles, tree_size(mean))
  rep = _run_ns(key, mean, sigma, energy_fn=energy_fn, num_live=num_particles, **o)
  if _concrete(rep["num_steps"]) and int(rep["num_steps"]) >= o["max_steps"]:
    raise RuntimeError(f"nested sampling stopped at max_steps={o['max_steps']} with "
                       f"{float(rep['log_z_live_left']):.3g} nats of log Z still in the live "
                       "points; raise max_steps (or num_delete)")
  s = o["num_samples"]
  info = {k: rep[k] for k in ("num_dead", "info_h", "log_z_live_left")}
  info.update({k: o[k] for k in ("num_delete", "num_inner_steps", "dlogz", "live_range")})
  res = LogZResult(log_z=rep["log_z"], stderr=jnp.sqrt(rep["var"]), grad_mean=rep["grad_mean"],
                   ess=rep["ess"], acceptance=rep["acceptance"],
                   num_energy_evals=rep["num_energy_evals"], num_grad_evals=0,
                   num_steps=rep["num_steps"], particles=rep["samples"],
                   log_weights=jnp.full((s,), -np.log(s), rep["log_z"].dtype), info=info)
  return _finish(res, rep)


@partial(jax.jit, static_argnames=("energy_fn", "cfg", "num_particles", "mesh"))
def _run_smc_from_laplace(key, mean, sigma, *, energy_fn, cfg, num_particles, mesh):
  """`reference`: the SMC over z from N(0, I) on E'(z); particles and ∇_μ log Z back in θ."""
  w, mu, unravel, energy = whitening.flat(sigma, mean, energy_fn)
  k_fit, k_smc = jax.random.split(key)
  ref = reference.fit(k_fit, energy, mu, w.sigma, LaplaceConfig())
  e_z = reference.energy_z(ref, energy, mu, w.sigma)
  fn = partial(smc.run_local, energy_fn=e_z, cfg=cfg, num_particles=num_particles, adaptive=True)
  one = jnp.ones((), mu.dtype)
  rep, sh = sharding.run(fn, mesh, num_particles, (k_smc, jnp.zeros_like(mu), one,
                                                   jnp.zeros(2, mu.dtype)), (None,))
  # E_p[z] = −E_p[∇E'(z)] (Stein's identity under N(0, I) e^{−E'}): zero for a Gaussian target,
  # where the particles' own mean would only add their noise
  grad_z = -jnp.exp(sh[1]) @ jax.vmap(jax.grad(e_z))(sh[0])
  to_theta = lambda z: w.up(unravel(reference.to_x(ref, w.sigma, z)))
  rep = dict(rep, grad_mean=w.grad_up(unravel(reference.grad_mean(ref, mu, w.sigma, grad_z))))
  return rep, (jax.vmap(to_theta)(sh[0]),) + tuple(sh[1:]), ref


def _estimate_from_laplace(key, energy_fn, mean, sigma, cfg, num_particles, mesh) -> LogZResult:
  """method='smc', reference='laplace' (`reference`): tempered from the Laplace approximation."""
  rep, sh, ref = _run_smc_from_laplace(key, mean, sigma, energy_fn=energy_fn, cfg=cfg,
                                       num_particles=num_particles, mesh=mesh)
  res = _smc_result(rep, sh, cfg, num_particles)
  res = res.replace(num_grad_evals=res.num_grad_evals + ref.num_grad + num_particles,
                    info=dict(res.info, reference="laplace",
                              reference_newton_converged=ref.newton_converged,
                              reference_half_logdet=ref.half_logdet))
  _check_reached_one(rep["beta"], cfg)
  return _finish(_judge(res, rep, num_particles), rep)


def _estimate_from_modes(key, energy_fn, mean, sigma, cfg, num_particles, mesh,
                         num_starts) -> LogZResult:
  """reference='modes' (`modes`): a prior-start pilot SMC, Newton from μ and from num_starts of
  its particles (drawn by weight), then one SMC per piece of the partition of unity."""
  if not isinstance(num_starts, (int, np.integer)) or num_starts < 0:
    raise ValueError(f"num_starts must be an int >= 0; got {num_starts!r}")
  k_pilot, k_fit, k_run = jax.random.split(key, 3)
  dtype = jnp.result_type(*jax.tree.leaves(mean))
  rep, sh = _run_smc(k_pilot, mean, sigma, jnp.zeros(2, dtype), None, energy_fn=energy_fn,
                     cfg=cfg, num_particles=num_particles, mesh=mesh, adaptive=True)
  num_grad = _cost(rep["num_steps"], cfg, num_particles, tree_size(mean))[0]
  w, _, unravel, _ = whitening.flat(sigma, mean, energy_fn)
  pick = jax.random.choice(k_fit, num_particles, (num_starts,), p=jnp.exp(sh[1]))
  starts = jax.vmap(lambda t: ravel_pytree(w.down(t))[0])(jax.tree.map(lambda a: a[pick], sh[0]))
  fits = modes.fit_modes(k_fit, mean, sigma, starts, energy_fn=energy_fn)
  keep = modes.distinct(fits, w.sigma)
  refs = jax.tree.map(lambda a: a[np.asarray(keep, int)], fits)
  k = len(keep)
  log_alpha = jnp.log(jnp.asarray([0.5] + [0.5 / k] * k if k else [1.0], dtype))
  pieces, results = [], []
  for j in range(k + 1):
    rep_j, sh_j = modes.run_piece(jax.random.fold_in(k_run, j), mean, sigma, refs, log_alpha, j,
                                  energy_fn=energy_fn, cfg=cfg, num_particles=num_particles,
                                  mesh=mesh)
    _check_reached_one(rep_j["beta"], cfg)
    pieces.append((rep_j, sh_j))
    results.append(_judge(_smc_result(rep_j, sh_j, cfg, num_particles), rep_j, num_particles))
  c = modes.combine(jnp.stack([r.log_z for r in results]),
                    jnp.stack([r.stderr**2 for r in results]),
                    jnp.stack([p[0]["score"] for p in pieces]))
  log_w = jnp.concatenate([sh_j[1] + jnp.log(c["shares"][j]) for j, (_, sh_j) in enumerate(pieces)])
  theta = jax.tree.map(lambda *a: jnp.concatenate(a), *[sh_j[0] for _, sh_j in pieces])
  reasons = {name: jnp.any(jnp.stack([r.info["reliability"][name] for r in results]))
             for name in results[0].info["reliability"]}
  info = dict(reference="modes", num_modes=k, modes_tried=num_starts + 1,
              piece_log_z=jnp.stack([r.log_z for r in results]), piece_shares=c["shares"],
              piece_stderr=jnp.stack([r.stderr for r in results]),
              modes_newton_converged=fits.newton_converged, reliability=reasons,
              reliable=reliability.reliable(reasons), pilot_log_z=rep["log_z"])
  num_grad = num_grad + jnp.sum(fits.num_grad) + sum(r.num_grad_evals for r in results)
  res = LogZResult(log_z=c["log_z"], stderr=c["stderr"], grad_mean=w.grad_up(unravel(c["score"])),
                   ess=pt.ess(log_w), acceptance=jnp.mean(jnp.stack([r.acceptance for r in results])),
                   num_energy_evals=0, num_grad_evals=num_grad,
                   num_steps=sum(r.num_steps for r in results), particles=theta,
                   log_weights=log_w, info=info)
  return _finish(res, dict(nan_count=sum(p[0]["nan_count"] for p in pieces) + rep["nan_count"]))


def _check_reached_one(beta, cfg) -> None:
  """Raise when an adaptive run (or any of a batch of runs) stopped short of β = 1."""
  if _concrete(beta) and float(np.min(host_value(beta))) < 1.0:
    raise RuntimeError(f"SMC stopped at β = {float(np.min(host_value(beta))):.3g} after "
                       f"max_steps={cfg.max_steps} steps; raise max_steps or lower target_ess")


def _estimate_batches(key, energy_fn, mean, sigma, dtype, cfg, num_particles: int,
                      num_batches, mesh) -> LogZResult:
  """method='smc' as `num_batches` independent runs of num_particles/num_batches particles
  (`batches.combine`): stderr from their spread; info holds each run's diagnostics with a
  leading batch axis, and batch_log_z, batch_shares, batch_spread."""
  if not isinstance(num_batches, (int, np.integer)) or num_batches < 2 \
      or num_particles % num_batches:
    raise ValueError(f"num_batches={num_batches!r} must be 1, or an int >= 2 dividing "
                     f"num_particles={num_particles}")
  n = num_particles // num_batches
  sharding.check_divisible(n, mesh)
  run = lambda k: _run_smc(k, mean, sigma, jnp.zeros(2, dtype), None, energy_fn=energy_fn,
                           cfg=cfg, num_particles=n, mesh=mesh, adaptive=True)
  rep, sh = jax.vmap(run)(jax.random.split(key, num_batches))
  if mesh is not None:  # pooling reshapes (B, n, ...) to (B·n, ...): gather, then shard again
    sh = sharding.constrain(sh, mesh, P())
  c = batches.combine(rep["log_z"], rep["grad_mean"], sh[0], sh[1])
  if mesh is not None:
    c.update(sharding.constrain(dict(particles=c["particles"], log_weights=c["log_weights"]),
                                mesh, P(sharding.particle_axis(mesh))))
  steps = rep["num_steps"]
  num_grad, num_hvp = _cost(steps, cfg, n, tree_size(sh[0]) // num_particles)
  info = _run_info(rep, cfg, num_hvp)
  info.update(num_batches=num_batches, batch_log_z=rep["log_z"], batch_shares=c["shares"],
              batch_spread=c["spread"])
  res = LogZResult(log_z=c["log_z"], stderr=c["stderr"], grad_mean=c["grad_mean"],
                   ess=pt.ess(c["log_weights"]), acceptance=jnp.mean(rep["acceptance"]),
                   num_energy_evals=0, num_grad_evals=jnp.sum(num_grad),
                   num_steps=jnp.max(steps), particles=c["particles"],
                   log_weights=c["log_weights"], info=info)
  _check_reached_one(rep["beta"], cfg)
  res = _judge(res, rep, n, spread=c["spread"], shares=c["shares"])
  return _finish(res, dict(nan_count=jnp.sum(rep["nan_count"])))


def _finish(res: LogZResult, rep: dict) -> LogZResult:
  """Raise on NaN energies when values are concrete; otherwise leave the count in info."""
  nan = rep.get("nan_count")
  if nan is not None and _concrete(nan) and int(host_value(nan)) > 0:
    raise FloatingPointError(f"energy_fn returned NaN for {int(host_value(nan))} particle evaluations; "
                             "check the energy (and its gradient) away from the mean")
  return res
