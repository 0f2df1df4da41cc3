"""GAN-style alternating updates of the nested posterior over (θ₁, θ₂) (DESIGN §3).

One outer step: (1) `theta2_steps` optax steps on −log p̃ in θ₂; (2) for each of `theta1_steps`
θ₁ steps: bring the log Z estimate to the current θ₁, then an optax step on −log p̃ in θ₁ with
∇θ₁ log Z from that estimate.  `update_rule='simultaneous'` instead takes ∇θ₁ and ∇θ₂ from one
gradient pass at the same (θ₁, θ₂) and steps both (half the passes over the minibatch).
log Z comes from the tracking particles ('tracking'), the post's one-particle difference
surrogate ('surrogate'), a fresh tempered SMC every `fresh_every` steps held in between
('fresh'), or is left out ('none': λC without log Z).  Mode 'sgld' adds
Langevin noise √(2η·temperature) to every plain-SGD step (posterior sampling); 'map' optimises.
λ is part of the state: fixed, or annealed (`lam_target` > 0) by ×`lam_growth` after every step
whose C is above the target, in which case the tracker follows (θ₁, λ) as one point.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax.struct
from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import optax

from lprior import gaussian
from lprior import posterior as post
from lprior.logz import tracking
from lprior.pytree import PyTree, tree_add, tree_dot, tree_scale, tree_sq_norm, tree_sub
from lprior.train import langevin, optimizer
from lprior.train.minibatch import large_batch

LOGZ_METHODS = ("tracking", "surrogate", "fresh", "none")


def default_config() -> ml_collections.ConfigDict:
  """The nested trainer's options (nested under `config.train` by launchers)."""
  return ml_collections.ConfigDict(dict(
      form="chained",  # 'chained' | 'partitioned'
      lam=10.0,
      # λ annealing: lam_target 0 keeps λ fixed; > 0 multiplies λ by lam_growth after every step
      # whose C (nats per small-set example) is above lam_target, up to lam_max.  The tracker
      # then follows (θ₁, λ) together (its sub-steps bisect both)
      lam_target=0.0, lam_growth=1.02, lam_max=1e4,
      # 'isotropic': sigma1, sigma2 in raw weight units; 'per_layer': σ₁,ℓ = prior_s·σ_init,ℓ and
      # σ₂,ℓ = kappa·σ₁,ℓ in units of each layer's initial RMS weight (DESIGN §1)
      prior_scales="isotropic", sigma1=1.0, sigma2=0.1, prior_s=1.0, kappa=0.3,
      divergence="symmetric_kl", stop_intended=False,
      # the particles of log Z always see the true C; this says whether ∇θ₁ log Z's statistic
      # uses the stopped one (−E_p[∇C_stop]) when stop_intended is on
      logz_grad_stop=False,
      trunk_share=0.0,  # partitioned: share of the trunk's layers in θ₁ (heads always are)
      # partitioned, designed: θ₂ = the leaves under these top-level keys, θ₁ = the rest (e.g.
      # ('encoder_human',): the human model under the log-integral); () = heads + trunk_share
      theta2_keys=(),
      # how θ₂ is optimised: 'centred' (θ₂ itself) | 'noncentred' (ε with θ₂ = b + σ₂ ⊙ ε, b = θ₁
      # chained, θ₂⁰ partitioned: the same posterior, without the stiff coupling ‖θ₂ − b‖²/2σ₂²
      # that stalls Adam as κ → 0; the state's theta2 then holds ε)
      theta2_param="centred",
      mode="map",  # 'map' | 'sgld'
      temperature=1.0,  # sgld
      optimizer="adam", lr_theta1=1e-2, lr_theta2=1e-2,
      # MAP: a cosine decay of both rates to lr·lr_decay_to over lr_decay_steps updates, then
      # held (0: constant; its own length, so raising num_steps extends a run)
      lr_decay_steps=0, lr_decay_to=0.1,
      theta2_steps=1, theta1_steps=1,
      # 'alternating': θ₂ steps, then θ₁ steps (each its own gradient pass); 'simultaneous': one
      # pass gives ∇θ₁ and ∇θ₂ at the same (θ₁, θ₂) and both step (needs 1 step of each)
      update_rule="alternating",
      logz="tracking", num_particles=8, num_mcmc_steps=2, precondition="diag", rank=8,
      # 'fresh': a tempered SMC of num_particles and num_mcmc_steps moves every fresh_every
      # steps (the estimate, ∇ estimator included, of the tracker's init); at λ = 100 on the
      # main job's network the tracker's path outgrows it (BUILD_NOTES "λ = 100")
      fresh_every=10,
      # tracking (lprior.logz.tracking.update): sub-steps, moves, the ∇θ₁ log Z estimator
      # transport: how particles follow θ₁ ('auto': 'newton', or 'metric' with 'lowrank')
      substep_ess=0.5, max_substeps=32, max_moves=2, jump_target=0.0, grad_estimator="auto",
      transport="auto",
      # an update that hits max_substeps: 'raise' (a clear error naming the step) | 'reanchor'
      # (a fresh SMC at the new point replaces the particles: `make_reanchor`)
      on_cap="raise",
      # self-check every K steps: a fresh SMC (own particle count) at the tracker's θ₁; a gap
      # beyond max(tol, 3 SE) re-anchors the particles ('reanchor'), raises ('stop') or is
      # logged ('warn'); 'off': no checks
      logz_check_every=50, logz_check_policy="reanchor", logz_check_particles=256,
      logz_check_mcmc_steps=8, logz_check_tol=1.0,
      batch_size=0,  # 0: full batch for L; C always uses the whole small set (a fixed energy)
      likelihood="labels",  # L: 'labels' (y_large answers) | 'bradley_terry' (y_large pairs)
  ))


@flax.struct.dataclass
class NestedState:
  theta1: PyTree
  theta2: PyTree
  opt1: Any
  opt2: Any
  track: Any  # TrackingState ('tracking'), else None
  log_z: jax.Array  # current estimate of log Z(θ₁)
  grad_log_z: PyTree  # ∇θ₁ log Z held by 'fresh' between refreshes
  anchor: Any  # 'surrogate': the θ₁ (`_point`: and λ, while λ anneals) of log_z's last update
  key: jax.Array
  lam: jax.Array  # () the current λ (fixed, or annealed: `lam_target`)


class Problem(NamedTuple):
  """What the steps close over: the posterior's functions and constants."""
  log_post: Callable  # (θ₁, θ₂, data) -> (total without log Z, terms)
  energy_fn: Callable  # tracking form E(θ₁, θ₂′), always with the true (unstopped) C
  mean_fn: Callable  # m(θ₁)
  sigma2: Any  # the base scale of log Z's integral: a scalar or a pytree like θ₂′
  grad_energy_fn: Callable | None = None  # the stopped E for ∇θ₁ log Z (logz_grad_stop)
  theta2_of: Callable = lambda t1, t2: t2  # (θ₁, the state's theta2) -> θ₂
  form: str = "chained"
  lam: Any = None  # the λ the functions above use
  with_lam: Callable | None = None  # λ -> the same problem at that λ (annealing)


POLICIES = ("reanchor", "stop", "warn", "off")
PRIOR_SCALES = ("isotropic", "per_layer")


def check_config(cfg) -> None:
  """ValueError, before any training, for options that name nothing or cannot hold."""
  for key, valid in (("form", ("chained", "partitioned")), ("logz", LOGZ_METHODS),
                     ("mode", ("map", "sgld")), ("logz_check_policy", POLICIES),
                     ("prior_scales", PRIOR_SCALES),
                     ("theta2_param", ("centred", "noncentred")),
                     ("on_cap", ("raise", "reanchor")),
                     ("transport", ("auto",) + tracking.TRANSPORTS)):
    if cfg[key] not in valid:
      raise ValueError(f"train.{key} must be one of {valid}; got {cfg[key]!r}")
  if cfg.logz == "fresh" and int(cfg.fresh_every) < 1:
    raise ValueError(f"train.fresh_every must be >= 1; got {cfg.fresh_every}")
  if cfg.prior_scales == "per_layer":
    for key in ("prior_s", "kappa"):
      if not cfg[key] > 0:
        raise ValueError(f"train.{key} must be > 0; got {cfg[key]}")
  else:
    for key in ("sigma1", "sigma2"):
      if not cfg[key] > 0:
        raise ValueError(f"train.{key} must be > 0; got {cfg[key]}")
  if cfg.logz_check_policy != "off":
    if int(cfg.logz_check_every) < 1:
      raise ValueError(f"train.logz_check_every must be >= 1 (or logz_check_policy='off'); got "
                       f"{cfg.logz_check_every}")
    if int(cfg.logz_check_particles) < 2 or not cfg.logz_check_tol > 0:
      raise ValueError("train.logz_check_particles must be >= 2 and logz_check_tol > 0; got "
                       f"{cfg.logz_check_particles}, {cfg.logz_check_tol}")
  if annealing(cfg):
    if not (cfg.lam_growth > 1 and cfg.lam_max >= cfg.lam > 0):
      raise ValueError("train.lam_target > 0 anneals λ: it needs lam_growth > 1 and "
                       f"lam_max >= lam > 0; got lam_growth={cfg.lam_growth}, "
                       f"lam_max={cfg.lam_max}, lam={cfg.lam}")
  elif cfg.get("lam_target", 0.0) < 0:
    raise ValueError(f"train.lam_target must be >= 0 (0: λ fixed); got {cfg.lam_target}")
  if cfg.on_cap == "reanchor" and int(cfg.logz_check_particles) < 2:
    raise ValueError("train.on_cap='reanchor' re-runs an SMC with logz_check_particles; got "
                     f"{cfg.logz_check_particles}")
  if cfg.theta2_param == "noncentred" and cfg.logz == "surrogate":
    raise ValueError("train.logz='surrogate' moves θ₂ itself as its particle: it needs "
                     "train.theta2_param='centred'")
  optimizer.check(cfg)
  opts = _tracking_options(cfg)
  if cfg.logz != "tracking":
    opts["max_moves"] = None  # max_moves bounds the tracker's moves only
  tracking.config(_smc_options(cfg), **opts)  # raises on bad SMC and tracker options


def annealing(cfg) -> bool:
  """Whether λ anneals (train.lam_target > 0)."""
  return cfg.get("lam_target", 0.0) > 0


def _at_lam(problem: Problem, state: NestedState, cfg) -> Problem:
  """The problem at the state's λ (the problem itself while λ is fixed)."""
  return problem.with_lam(state.lam) if annealing(cfg) else problem


def _point(theta1: PyTree, lam, cfg) -> PyTree:
  """What the tracker follows: θ₁, or {'theta1', 'lam'} when λ anneals (a sub-step then moves
  both along one segment)."""
  return dict(theta1=theta1, lam=lam) if annealing(cfg) else theta1


def _theta1_part(g: PyTree, cfg) -> PyTree:
  """The θ₁ part of a gradient over `_point`."""
  return g["theta1"] if annealing(cfg) else g


def _tracked(problem: Problem, cfg) -> dict:
  """energy_fn, mean_fn, grad_energy_fn over the tracker's `_point` (E at the point's λ)."""
  if not annealing(cfg):
    return dict(energy_fn=problem.energy_fn, mean_fn=problem.mean_fn,
                grad_energy_fn=problem.grad_energy_fn)
  at = lambda t: problem.with_lam(t["lam"])
  grad_e = (None if problem.grad_energy_fn is None else
            (lambda t, x: at(t).grad_energy_fn(t["theta1"], x)))
  return dict(energy_fn=lambda t, x: at(t).energy_fn(t["theta1"], x),
              mean_fn=lambda t: problem.mean_fn(t["theta1"]), grad_energy_fn=grad_e)


def _anneal(lam: jax.Array, consistency: jax.Array, cfg) -> jax.Array:
  """λ after a step whose C was `consistency`: × lam_growth (≤ lam_max) while C > lam_target."""
  if not annealing(cfg):
    return lam
  grown = jnp.minimum(lam * cfg.lam_growth, cfg.lam_max)
  return jnp.where(consistency > cfg.lam_target, grown, lam).astype(lam.dtype)


def prior_scales(cfg, params0: PyTree, kappa=None) -> tuple[Any, Any]:
  """(σ₁, σ₂) over whole parameter trees: cfg's scalars, or per-layer pytrees (DESIGN §1) with
  κ = `kappa` (may be traced; default cfg.kappa)."""
  if cfg.prior_scales == "per_layer":
    return post.scales.per_layer(params0, cfg.prior_s, cfg.kappa if kappa is None else kappa)
  return cfg.sigma1, cfg.sigma2


def _optimizer(cfg, lr: float) -> optax.GradientTransformation:
  if cfg.mode == "sgld":
    return optax.sgd(lr)  # Langevin needs plain steps; the noise is added separately
  return optimizer.make(cfg, lr)


def make_problem(apply_fn, params0: PyTree, data: post.Data, cfg, *, lam=None,
                 stop_intended=None, kappa=None) -> tuple[Problem, PyTree, PyTree]:
  """(problem, θ₁⁰, θ₂⁰) for `cfg.form`; chained starts θ₁ = θ₂ = θ₀ = params0.  With
  theta2_param='noncentred' the second tree is ε = 0 and problem.log_post takes (θ₁, ε):
  log p̃(θ₁, b + σ₂ ⊙ ε) (its value; the Jacobian Π σ₂ is constant).

  `lam`, `stop_intended` and `kappa` (per-layer scales only; default: cfg's) may be traced, so
  that one compiled step serves, under vmap, variants that differ only in them; λ is the
  starting one (`problem.with_lam` rebuilds the problem at another, as annealing needs).
  """
  stop = cfg.stop_intended if stop_intended is None else stop_intended
  sigma1, sigma2 = prior_scales(cfg, params0, kappa)
  build = lambda l: _problem_at(apply_fn, params0, data, cfg, l, stop, sigma1, sigma2)
  problem, theta1, theta2 = build(cfg.lam if lam is None else lam)
  return problem._replace(with_lam=lambda l: build(l)[0]), theta1, theta2


def _problem_at(apply_fn, params0, data, cfg, lam, stop, sigma1, sigma2):
  """make_problem's (problem, θ₁⁰, θ₂⁰) at one λ."""
  common = dict(apply_fn=apply_fn, lam=lam, divergence=cfg.divergence, stop_intended=stop,
                log_z=0.0, likelihood=cfg.likelihood)
  energy = lambda f, s: f(apply_fn, data.x_small, lam, cfg.divergence, s)
  if cfg.form == "chained":
    lp = lambda t1, t2, d: post.chained_log_posterior(t1, t2, theta0=params0, data=d,
                                                      sigma1=sigma1, sigma2=sigma2, **common)
    energy_fn, mean_fn = tracking.chained(energy(post.chained_energy, False))
    stopped = (tracking.chained(energy(post.chained_energy, stop))[0]
               if cfg.logz_grad_stop else None)
    return _parameterised(Problem(lp, energy_fn, mean_fn, sigma2, stopped, lam=lam), cfg,
                          lambda t1: t1, params0, params0)
  if cfg.form == "partitioned":
    mask = partition_mask(params0, cfg)
    t1_0, t2_0 = post.split(params0, mask)
    part = lambda s, i: s if gaussian.is_scalar(s) else post.split(s, mask)[i]
    s1, s2 = part(sigma1, 0), part(sigma2, 1)
    lp = lambda t1, t2, d: post.partitioned_log_posterior(
        t1, t2, theta1_init=t1_0, theta2_init=t2_0, data=d, sigma1=s1, sigma2=s2, **common)
    energy_fn, mean_fn = tracking.partitioned(energy(post.partitioned_energy, False), t2_0)
    stopped = energy(post.partitioned_energy, stop) if cfg.logz_grad_stop else None
    return _parameterised(Problem(lp, energy_fn, mean_fn, s2, stopped, form="partitioned",
                                  lam=lam), cfg, lambda t1: t2_0, t1_0, t2_0)
  raise ValueError(f"train.form must be 'chained' or 'partitioned'; got {cfg.form!r}")


def partition_mask(params0: PyTree, cfg) -> PyTree:
  """θ₁'s mask in the partitioned form: every leaf but those under the top-level keys
  cfg.theta2_keys (a designed partition), else the heads plus cfg.trunk_share of the trunk."""
  keys = tuple(cfg.get("theta2_keys", ()))
  if not keys:
    return post.default_mask(params0, trunk_share=cfg.trunk_share)
  missing = [k for k in keys if k not in params0]
  if missing:
    raise ValueError(f"train.theta2_keys {missing} name no top-level parameter key; the "
                     f"parameters have {sorted(params0)}")
  return post.mask_from_predicate(
      params0, lambda path, x: not any(path.startswith(f"['{k}']") for k in keys))


def _parameterised(problem: Problem, cfg, base: Callable, theta1_0, theta2_0):
  """(problem, θ₁⁰, θ₂⁰), or with theta2_param='noncentred' the problem over (θ₁, ε) with
  θ₂ = base(θ₁) + σ₂ ⊙ ε and its ε⁰ = 0."""
  if cfg.get("theta2_param", "centred") == "centred":
    return problem, theta1_0, theta2_0
  sigma2 = gaussian.broadcast_scale(problem.sigma2, theta2_0)
  theta2_of = lambda t1, eps: jax.tree.map(lambda b, s, e: b + s * e, base(t1), sigma2, eps)
  lp = problem.log_post
  return (problem._replace(log_post=lambda t1, eps, d: lp(t1, theta2_of(t1, eps), d),
                           theta2_of=theta2_of),
          theta1_0, jax.tree.map(jnp.zeros_like, theta2_0))


def model_params(state: NestedState, problem: Problem) -> PyTree:
  """The network's parameters the data terms use: θ₂ (chained) or merge(θ₁, θ₂) (partitioned),
  θ₂ = problem.theta2_of(θ₁, state.theta2)."""
  theta2 = problem.theta2_of(state.theta1, state.theta2)
  return theta2 if problem.form == "chained" else post.merge(state.theta1, theta2)


def _smc_options(cfg) -> dict:
  return dict(num_mcmc_steps=cfg.num_mcmc_steps, precondition=cfg.precondition, rank=cfg.rank)


def _tracking_options(cfg) -> dict:
  return dict(substep_ess=cfg.substep_ess, max_substeps=cfg.max_substeps,
              max_moves=cfg.max_moves, jump_target=cfg.jump_target,
              grad_estimator=cfg.grad_estimator,
              transport=None if cfg.transport == "auto" else cfg.transport)


def _smc_at(key, point, problem: Problem, cfg, num_particles: int,
            num_mcmc_steps: int) -> tracking.TrackingState:
  """A fresh tempered SMC at the tracker's `point` (`_point`) with cfg's metric and ∇ estimator:
  particles, log Z and ∇θ₁ log Z as `tracking.init` gives them."""
  return tracking.init(key, point, **_tracked(problem, cfg), sigma=problem.sigma2,
                       num_particles=num_particles, grad_estimator=cfg.grad_estimator,
                       **dict(_smc_options(cfg), num_mcmc_steps=num_mcmc_steps))


def start_tracker(key, point, problem: Problem, cfg) -> tracking.TrackingState:
  """The tracker at step 0: an SMC with the check's particle count where that is larger (its
  log Z is what the tracker carries from then on) and ≥ 8 moves, resampled to num_particles."""
  k_init, k_res = jax.random.split(key)
  n_init = max(cfg.num_particles,
               cfg.logz_check_particles if checks_enabled(cfg) else cfg.num_particles)
  track = _smc_at(k_init, point, problem, cfg, n_init, max(cfg.num_mcmc_steps, 8))
  if n_init > cfg.num_particles:
    track = tracking.resample_to(k_res, track, cfg.num_particles)
  return track


def fresh_estimate(key, theta1, lam, problem: Problem, cfg) -> dict:
  """A fresh tempered SMC at (θ₁, λ) with cfg's particles, moves and ∇ estimator (the tracker's
  `init`): log_z, its stderr and grad (∇θ₁ log Z)."""
  st = _smc_at(key, _point(theta1, lam, cfg), problem, cfg, cfg.num_particles,
               cfg.num_mcmc_steps)
  return dict(log_z=st.log_z, stderr=jnp.sqrt(st.log_z_var),
              grad=_theta1_part(st.grad_log_z, cfg))


def _fresh(key, theta1, lam, problem: Problem, cfg):
  """(log Z(θ₁), ∇θ₁ log Z) from `fresh_estimate`."""
  r = fresh_estimate(key, theta1, lam, problem, cfg)
  return r["log_z"], r["grad"]


def init(key, problem: Problem, theta1, theta2, cfg) -> NestedState:
  """The state at step 0 (log Z(θ₁⁰) by a tempered SMC for 'tracking' and 'fresh')."""
  check_config(cfg)
  if annealing(cfg) and problem.with_lam is None:
    raise ValueError("train.lam_target > 0 anneals λ: the problem needs with_lam (λ -> the "
                     "problem at that λ), as make_problem builds it")
  k_init, k_run = jax.random.split(key)
  opt1 = _optimizer(cfg, cfg.lr_theta1).init(theta1)
  opt2 = _optimizer(cfg, cfg.lr_theta2).init(theta2)
  zero_grad = jax.tree.map(jnp.zeros_like, theta1)
  track, log_z, grad = None, jnp.zeros(()), zero_grad
  lam = jnp.asarray(cfg.lam if problem.lam is None else problem.lam, jnp.float32)
  if cfg.logz == "tracking":
    track = start_tracker(k_init, _point(theta1, lam, cfg), problem, cfg)
    log_z = track.log_z
  elif cfg.logz == "fresh":
    log_z, grad = _fresh(k_init, theta1, lam, problem, cfg)
  return NestedState(theta1, theta2, opt1, opt2, track, jnp.asarray(log_z, jnp.float32), grad,
                     _point(theta1, lam, cfg), k_run, lam)


def _surrogate(state: NestedState, problem: Problem, cfg):
  """The post's difference surrogate with θ₂ as the one particle, transported with m(θ₁):
  Δlog Z ≈ −[E_λ(θ₁, θ₂ + m(θ₁) − m(θ₁ₐ)) − E_λₐ(θ₁ₐ, θ₂)], ∇θ₁ log Z ≈ −∇θ₁E_λ(θ₁, θ₂ + m(θ₁) − m)
  from the anchor (θ₁ₐ, λₐ) of the last update (λₐ = λ unless λ anneals)."""
  anchor, then = state.anchor, problem
  if annealing(cfg):
    anchor, then = state.anchor["theta1"], problem.with_lam(state.anchor["lam"])
  now = _at_lam(problem, state, cfg)
  m_anchor = now.mean_fn(anchor)

  def moved_energy(t1):
    return now.energy_fn(t1, tree_add(state.theta2, tree_sub(now.mean_fn(t1), m_anchor)))

  e_new, g = jax.value_and_grad(moved_energy)(state.theta1)
  delta = -(e_new - then.energy_fn(anchor, state.theta2))
  return state.log_z + delta, tree_scale(g, -1.0)


def _logz_at_theta1(state: NestedState, problem: Problem, cfg, step, key):
  """(state with log Z brought to the current θ₁, ∇θ₁ log Z, diagnostics)."""
  if cfg.logz == "none":
    return state, jax.tree.map(jnp.zeros_like, state.theta1), {}
  if cfg.logz == "tracking":
    track, info = tracking.update(state.track, _point(state.theta1, state.lam, cfg),
                                  **_tracked(problem, cfg), sigma=problem.sigma2,
                                  **_smc_options(cfg), **_tracking_options(cfg))
    diag = dict(logz_ess=info["ess"], logz_acceptance=info["acceptance"],
                logz_stderr=info["stderr"], logz_grad_stderr=info["grad_stderr"],
                logz_substeps=info["substeps"], logz_moves=info["moves"],
                logz_esjd=info["esjd"], logz_num_capped=info["num_capped"])
    return (state.replace(track=track, log_z=info["log_z"]),
            _theta1_part(info["grad_theta1"], cfg), diag)
  if cfg.logz == "surrogate":
    log_z, grad = _surrogate(state, problem, cfg)
    return state.replace(log_z=log_z, anchor=_point(state.theta1, state.lam, cfg)), grad, {}
  # fresh: refresh every `fresh_every` steps, hold in between
  log_z, grad = jax.lax.cond(step % cfg.fresh_every == 0,
                             lambda: _fresh(key, state.theta1, state.lam, problem, cfg),
                             lambda: (state.log_z, state.grad_log_z))
  return state.replace(log_z=log_z, grad_log_z=grad), grad, {}


def checks_enabled(cfg) -> bool:
  """Whether the trainer checks its log Z (tracking with a policy other than 'off')."""
  return cfg.logz == "tracking" and cfg.logz_check_policy != "off"


_ANCHORED = ("log_z", "log_z_var", "particles", "step_size", "inv_mass", "grad_log_z")


def _fresh_tracker(key, state: NestedState, problem: Problem, cfg) -> tracking.TrackingState:
  """A fresh SMC (`logz_check_particles`, `logz_check_mcmc_steps`) at the tracker's point."""
  return _smc_at(key, state.track.theta1, problem, cfg, cfg.logz_check_particles,
                 cfg.logz_check_mcmc_steps)


def _adopt(key, state: NestedState, fresh: tracking.TrackingState, where, cfg) -> NestedState:
  """`state` with the tracker's particles, log Z and metric replaced, where `where`, by
  `fresh`'s (resampled to num_particles)."""
  new = tracking.resample_to(key, fresh, cfg.num_particles)
  pick = lambda x, y: jax.tree.map(lambda u, v: jnp.where(where, u, v), x, y)
  tr = state.track.replace(**{f: pick(getattr(new, f), getattr(state.track, f))
                              for f in _ANCHORED})
  return state.replace(track=tr, log_z=tr.log_z)


def make_check(problem: Problem, cfg) -> Callable | None:
  """check(state, step) -> (state, metrics): a fresh SMC (`logz_check_particles`) at the
  tracker's θ₁ against the tracked log Z and ∇θ₁ log Z (DESIGN §2 (b)); None when the trainer
  has nothing to check.  metrics: logz_check/{gap (tracked − fresh), se (combined), cosine (of
  the two gradients), exceeded (|gap| > max(tol, 3 se)), fresh_log_z, grad_stderr (tracked)}.
  Policy 'reanchor' replaces the particles and log Z by the fresh ones
  where exceeded."""
  if not checks_enabled(cfg):
    return None

  def check(state: NestedState, step):
    tr = state.track
    k_fresh, k_res = jax.random.split(jax.random.fold_in(jax.random.fold_in(state.key, step), 17))
    fresh = _fresh_tracker(k_fresh, state, problem, cfg)
    g_tr = tracking.gradient(tr, **_tracked(problem, cfg), sigma=problem.sigma2,
                             grad_estimator=cfg.grad_estimator)
    gap = tr.log_z - fresh.log_z
    se = jnp.sqrt(tr.log_z_var + fresh.log_z_var)
    exceeded = jnp.abs(gap) > jnp.maximum(cfg.logz_check_tol, 3.0 * se)
    a, b = _theta1_part(g_tr["grad_theta1"], cfg), _theta1_part(fresh.grad_log_z, cfg)
    cos = tree_dot(a, b) / jnp.sqrt(tree_sq_norm(a) * tree_sq_norm(b) + 1e-30)
    metrics = {"logz_check/gap": gap, "logz_check/se": se, "logz_check/cosine": cos,
               "logz_check/exceeded": exceeded.astype(jnp.float32),
               "logz_check/fresh_log_z": fresh.log_z,
               "logz_check/grad_stderr": g_tr["grad_stderr"]}
    if cfg.logz_check_policy == "reanchor":
      state = _adopt(k_res, state, fresh, exceeded, cfg)
    return state, metrics

  return check


def reanchors(cfg) -> bool:
  """Whether a capped tracker is re-anchored (tracking with on_cap='reanchor')."""
  return cfg.logz == "tracking" and cfg.on_cap == "reanchor"


def make_reanchor(problem: Problem, cfg) -> Callable | None:
  """reanchor(state, step) -> (state, metrics) for train.on_cap='reanchor' (None otherwise):
  where the tracker's last update hit max_substeps (num_capped > 0), a fresh SMC at its point
  replaces the particles and log Z and num_capped returns to 0; metrics: logz_reanchored (0/1).
  Run it after every step.  Under vmap a lax.cond becomes a select that runs the fresh SMC for
  every run: put the batch under one cond on `any(num_capped > 0)` instead."""
  if not reanchors(cfg):
    return None

  def reanchor(state: NestedState, step):
    capped = state.track.num_capped > 0
    k_fresh, k_res = jax.random.split(jax.random.fold_in(jax.random.fold_in(state.key, step), 23))

    def redo(state):
      state = _adopt(k_res, state, _fresh_tracker(k_fresh, state, problem, cfg), capped, cfg)
      return state.replace(track=state.track.replace(
          num_capped=jnp.zeros_like(state.track.num_capped)))

    return jax.lax.cond(capped, redo, lambda s: s, state), {
        "logz_reanchored": capped.astype(jnp.float32)}

  return reanchor


def check_row(cfg) -> Callable[[int, dict], None]:
  """on_row(step, row) for `fit`: raises when the tracker hit `max_substeps` (unless
  on_cap='reanchor'); on a failed log Z check raises (policy 'stop') or logs a warning
  ('warn')."""

  def on_row(step: int, row: dict) -> None:
    for k, v in row.items():
      if not isinstance(v, float):
        continue
      if k.endswith("logz_num_capped") and v > 0 and cfg.get("on_cap", "raise") == "raise":
        raise RuntimeError(f"step {step}: the log Z tracker hit train.max_substeps="
                           f"{cfg.max_substeps} ({k} = {v:g}): θ₁ moved further than the "
                           "particles can follow; raise max_substeps or lower lr_theta1")
      if k.endswith("logz_check/exceeded") and v > 0:
        pre = k[:-len("exceeded")]
        gap, se = row.get(pre + "gap"), row.get(pre + "se")
        seeds = row.get(pre + "gap/seeds")
        msg = (f"step {step}: log Z check failed ({k}): tracked − fresh = {gap:+.2f} nats"
               + (f" (per seed {[round(g, 3) for g in seeds]})" if seeds else "")
               + f", combined SE {se:.3g}; tolerance max({cfg.logz_check_tol:g}, 3 SE)")
        if cfg.logz_check_policy == "stop":
          raise RuntimeError(msg + "; train.logz_check_policy='stop'")
        if cfg.logz_check_policy == "warn":
          logging.warning(msg)

  return on_row


def _apply(opt, grads_ascent, opt_state, params, cfg, lr, key):
  """One optax step up the log posterior; in 'sgld' mode plus noise √(2·lr·temperature)."""
  updates, opt_state = opt.update(tree_scale(grads_ascent, -1.0), opt_state, params)
  params = optax.apply_updates(params, updates)
  if cfg.mode == "sgld":
    params = langevin.add_noise(key, params, lr, cfg.temperature)
  return params, opt_state


def make_step(problem: Problem, data: post.Data, cfg) -> Callable:
  """step_fn(state, step) -> (state, metrics) for `lprior.train.fit`.

  The metrics (each posterior term, log Z, ESS) are those the last θ₁ step evaluated: at θ₁
  before that step, on its minibatch of the large set (unbiased for L, as in the plain trainer),
  so logging costs no extra pass over the data."""
  check_config(cfg)
  if cfg.theta1_steps < 1 or cfg.theta2_steps < 0:
    raise ValueError(f"train.theta1_steps must be >= 1 and train.theta2_steps >= 0; got "
                     f"{cfg.theta1_steps} and {cfg.theta2_steps}")
  rule = cfg.get("update_rule", "alternating")
  if rule not in ("alternating", "simultaneous"):
    raise ValueError(f"train.update_rule must be 'alternating' or 'simultaneous'; got {rule!r}")
  if rule == "simultaneous" and (cfg.theta1_steps, cfg.theta2_steps) != (1, 1):
    raise ValueError("train.update_rule='simultaneous' takes one θ₁ and one θ₂ step per outer "
                     f"step; got theta1_steps={cfg.theta1_steps}, "
                     f"theta2_steps={cfg.theta2_steps}")
  opt1 = _optimizer(cfg, cfg.lr_theta1)
  opt2 = _optimizer(cfg, cfg.lr_theta2)
  # the log posterior at the state's λ (fixed unless train.lam_target anneals it)
  log_post = lambda st: _at_lam(problem, st, cfg).log_post
  grad2 = lambda st, d: jax.grad(lambda t2: log_post(st)(st.theta1, t2, d)[0])(st.theta2)
  value_grad1 = lambda st, d: jax.value_and_grad(
      lambda t1: log_post(st)(t1, st.theta2, d), has_aux=True)(st.theta1)
  value_grad12 = lambda st, d: jax.value_and_grad(
      lambda t1, t2: log_post(st)(t1, t2, d), argnums=(0, 1), has_aux=True)(st.theta1, st.theta2)
  batch = lambda key: large_batch(key, data, cfg.batch_size)

  def finish(state: NestedState, total, terms, diag):
    """The step's metrics (with λ), and the state with λ annealed on this step's C."""
    metrics = dict(terms, log_z=state.log_z, log_posterior=total - state.log_z, lam=state.lam,
                   **diag)
    return state.replace(lam=_anneal(state.lam, terms["consistency"], cfg)), metrics

  def simultaneous_step(state: NestedState, step):
    k_l, k_b, k_n1, k_n2 = jax.random.split(jax.random.fold_in(state.key, step), 4)
    state, g_logz, diag = _logz_at_theta1(state, problem, cfg, step, k_l)
    (total, terms), (g1, g2) = value_grad12(state, batch(k_b))
    theta1, opt1_state = _apply(opt1, tree_sub(g1, g_logz), state.opt1, state.theta1, cfg,
                                cfg.lr_theta1, k_n1)
    theta2, opt2_state = _apply(opt2, g2, state.opt2, state.theta2, cfg, cfg.lr_theta2, k_n2)
    state = state.replace(theta1=theta1, theta2=theta2, opt1=opt1_state, opt2=opt2_state)
    return finish(state, total, terms, diag)

  if rule == "simultaneous":
    return simultaneous_step

  def step_fn(state: NestedState, step):
    key = jax.random.fold_in(state.key, step)
    for i in range(cfg.theta2_steps):
      k_b, k_n = jax.random.split(jax.random.fold_in(key, i))
      g = grad2(state, batch(k_b))
      theta2, opt2_state = _apply(opt2, g, state.opt2, state.theta2, cfg, cfg.lr_theta2, k_n)
      state = state.replace(theta2=theta2, opt2=opt2_state)
    diag = {}
    for j in range(cfg.theta1_steps):
      k_l, k_b, k_n = jax.random.split(jax.random.fold_in(key, 1000 + j), 3)
      state, g_logz, diag = _logz_at_theta1(state, problem, cfg, step * cfg.theta1_steps + j, k_l)
      (total, terms), g = value_grad1(state, batch(k_b))
      g = tree_sub(g, g_logz)
      theta1, opt1_state = _apply(opt1, g, state.opt1, state.theta1, cfg, cfg.lr_theta1, k_n)
      state = state.replace(theta1=theta1, opt1=opt1_state)
    return finish(state, total, terms, diag)

  return step_fn
