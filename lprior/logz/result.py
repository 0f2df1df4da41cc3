"""The result every log Z estimator returns."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax


@flax.struct.dataclass
class LogZResult:
  """log ∫ N(θ; μ, σ²I) e^{−E(θ)} dθ and how it was obtained.

  log_z: the estimate.  stderr: its estimated standard error (NaN where the method has none).
  grad_mean: ∇_μ log Z = E_p[(θ − μ)/σ²] as a pytree like μ (None where not computed).
  ess: final effective sample size (in particles); acceptance: mean MCMC acceptance rate.
  num_energy_evals / num_grad_evals: energy-only and value-and-gradient evaluations, in total
  over all particles.  num_steps: tempering (or optimisation) steps taken.
  particles / log_weights: the final weighted particle set (leading axis N), where there is one.
  info: method-specific diagnostics (traces over tempering steps, bounds, ...).
  """
  log_z: jax.Array
  stderr: jax.Array
  grad_mean: Any = None
  ess: jax.Array | None = None
  acceptance: jax.Array | None = None
  num_energy_evals: jax.Array | None = None
  num_grad_evals: jax.Array | None = None
  num_steps: jax.Array | None = None
  particles: Any = None
  log_weights: jax.Array | None = None
  info: dict = flax.struct.field(default_factory=dict)
