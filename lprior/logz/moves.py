"""MCMC moves on the tempered target π_β(θ) ∝ N(θ; μ, σ²I) e^{−βE(θ)}, with BlackJAX kernels.

We use BlackJAX's HMC kernel with a diagonal inverse mass matrix (the preconditioner); with one
leapfrog step it is preconditioned MALA.  The particle carries E(θ) and ∇E(θ), so the kernel
state at any β is built without re-evaluating the energy.  A researcher's own move plugs in as a
`Kernel` (BlackJAX's (init, step) shape): the engine then builds each particle's state with
`init` and moves it with `step`, keeping its tempering, resampling, step-size adaptation and
metric.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Callable, NamedTuple

import jax
import jax.numpy as jnp

from lprior import gaussian, lanczos
from lprior.pytree import PyTree

if TYPE_CHECKING:
  import blackjax


@functools.cache
def lazy_blackjax():
  """BlackJAX, imported on first use: its import starts the XLA backend, which must wait until
  `jax.distributed.initialize` on multi-process runs."""
  import blackjax
  return blackjax


@functools.cache
def _hmc_kernel():
  return lazy_blackjax().hmc.build_kernel()


class Kernel(NamedTuple):
  """A move on π_β in BlackJAX's shape, for one particle:
    init(position, logdensity_fn) -> state, with state.position;
    step(key, state, logdensity_fn, step_size, inverse_mass_matrix) -> (state, info), with
      info.acceptance_rate (what the engine adapts the step size on; a kernel may ignore the
      step size and the metric; BlackJAX's MALA: `Kernel(blackjax.mala.init, lambda k, s, f,
      eps, m: blackjax.mala.build_kernel()(k, s, f, eps))`).
  Positions are in the engine's coordinates (θ/σ when σ is a pytree: `logz.whitening`).  Keep
  one Kernel value across calls: it is a static argument, and a new one compiles anew."""
  init: Callable
  step: Callable


class MoveConfig(NamedTuple):
  kernel: Kernel | None = None  # None: lprior's preconditioned MALA / HMC (BlackJAX's HMC)
  num_steps: int = 2  # MCMC steps per tempering step (per outer step, when tracking)
  num_leapfrog: int = 1  # 1 = preconditioned MALA; > 1 = HMC
  # per-particle step size ε·(1 + jitter·U(−1, 1)); with a good metric, HMC of a fixed length
  # near half a period maps θ to its mirror image and duplicates stay coupled: jitter breaks it
  jitter: float = 0.0
  target_accept: float = 0.6
  adapt_rate: float = 1.5  # log-step ← log-step + rate · (accept − target), after every step
  # 'none': σ²I; 'diag': the particles' weighted variances; 'lowrank': 'diag' plus the top
  # `rank` eigen-directions of S(I/σ² + β∇²E(θ̄))S at the weighted mean θ̄ (S = diag std),
  # found by Lanczos on Hessian-vector products: a Gauss–Newton-like metric for stiff,
  # dense directions that no diagonal sees.
  precondition: str = "lowrank"
  rank: int = 16


def log_tempered(theta: PyTree, energy, mean: PyTree, sigma, beta) -> jax.Array:
  """log π_β(θ) up to the constant: log N(θ; μ, σ²) − β E(θ)."""
  return gaussian.log_normal(theta, mean, sigma) - beta * energy


def tempered_state(theta, energy, grad_energy, mean, sigma, beta) -> blackjax.mcmc.hmc.HMCState:
  """BlackJAX state of one particle at inverse temperature β, from E(θ) and ∇E(θ)."""
  grad = jax.tree.map(lambda g, t, m: -(t - m) / sigma**2 - beta * g, grad_energy, theta, mean)
  return lazy_blackjax().mcmc.hmc.HMCState(theta, log_tempered(theta, energy, mean, sigma, beta), grad)


def initial_states(theta, energy, grad_energy, energy_fn: Callable, mean, sigma, beta,
                   kernel: Kernel | None):
  """Every particle's kernel state at β: lprior's HMC state from the carried (E, ∇E), or the
  plugged kernel's `init` (which evaluates the tempered density itself)."""
  if kernel is None:
    return jax.vmap(tempered_state, in_axes=(0, 0, 0, None, None, None))(
        theta, energy, grad_energy, mean, sigma, beta)
  logdensity = lambda th: log_tempered(th, energy_fn(th), mean, sigma, beta)
  return jax.vmap(lambda th: kernel.init(th, logdensity))(theta)


def mcmc_step(keys: jax.Array, states, energy_fn: Callable, mean, sigma, beta, step_size,
              inv_mass, num_leapfrog: int, jitter: float = 0.0, kernel: Kernel | None = None):
  """One kernel step for every particle (vmapped), each with step ε·(1 + jitter·U(−1, 1)) and
  its own metric where `inv_mass` has a particle axis ((n, d) diagonals or low-rank scales);
  `kernel`: a plugged move (else lprior's HMC with num_leapfrog steps).
  Returns (states, acceptance (n,))."""
  logdensity = lambda th: log_tempered(th, energy_fn(th), mean, sigma, beta)

  def step(k, s, m):
    k_eps, k = jax.random.split(k)
    eps = step_size * (1.0 + jitter * jax.random.uniform(k_eps, (), minval=-1.0, maxval=1.0))
    if kernel is not None:
      return kernel.step(k, s, logdensity, eps, m)
    return _hmc_kernel()(k, s, logdensity, eps, m, num_leapfrog)

  states, info = jax.vmap(step, in_axes=(0, 0, _metric_axes(inv_mass)))(keys, states, inv_mass)
  return states, info.acceptance_rate


def _metric_axes(inv_mass):
  """vmap axes of a metric: per particle when its diagonal (or low-rank scales) has a leading
  particle axis, else shared."""
  if isinstance(inv_mass, lazy_blackjax().mcmc.metrics.LowRankInverseMassMatrix):
    return type(inv_mass)(0, None, None) if inv_mass.sigma.ndim == 2 else None
  return 0 if jnp.ndim(inv_mass) == 2 else None


def lowrank_metric(energy_flat: Callable, center: jax.Array, std: jax.Array, sigma, beta,
                   rank: int) -> blackjax.mcmc.metrics.LowRankInverseMassMatrix:
  """M⁻¹ = S (I + U(Λ−I)Uᵀ) S with (1/Λ, U) the top Ritz pairs of S P S, P = I/σ² + β∇²E(center).

  energy_flat maps a flat (d,) vector to E; `center` (d,) is where the Hessian is taken."""
  grad = jax.grad(energy_flat)
  hvp = lambda v: jax.jvp(grad, (center,), (v,))[1]
  op = lambda u: std * (std * u / sigma**2 + beta * hvp(std * u))
  d = center.shape[0]
  vals, vecs = lanczos.eigenpairs(op, jnp.ones_like(center), min(2 * rank, d))
  k = min(rank, d)
  lam = 1.0 / jnp.clip(vals[:k], 1e-2, 1e8)
  return lazy_blackjax().mcmc.metrics.LowRankInverseMassMatrix(std, vecs[:, :k], lam)


def inverse_mass_matvec(inv_mass, v: jax.Array) -> jax.Array:
  """M⁻¹v for a diagonal (d,) or BlackJAX low-rank inverse mass, through the metric's own
  square root L (M⁻¹ = L Lᵀ)."""
  metric = lazy_blackjax().mcmc.metrics.default_metric(inv_mass)
  half = metric.scale(v, v, inv=True, trans=True)
  return metric.scale(v, half, inv=True, trans=False)


def lanczos_hvps(rank: int, dim: int) -> int:
  """Hessian-vector products one `lowrank_metric` costs."""
  return min(2 * rank, dim)


def adapt_step_size(step_size, mean_accept, cfg: MoveConfig):
  """Robbins–Monro on log ε towards the target acceptance; kept in [1e-4, 4]."""
  return jnp.clip(step_size * jnp.exp(cfg.adapt_rate * (mean_accept - cfg.target_accept)), 1e-4, 4.0)


def default_step_size(dim: int) -> float:
  """ε ≈ d^{-1/6}: the MALA scaling for a well-preconditioned target."""
  return float(min(1.0, dim ** (-1.0 / 6.0)))
