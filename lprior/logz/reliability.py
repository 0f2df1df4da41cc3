"""When a tempered-SMC result's standard error cannot be trusted: `info['reliable']` and the
reasons behind it (`info['reliability']`, each a boolean that is True when it fires).

  genealogy_collapsed  one run (no batches) whose final particles descend from fewer than
                       MIN_ANCESTORS time-0 particles: its SE is the genealogy estimate, which
                       saturates near 1 nat and understates errors of many nats;
  ess_collapsed        some reweighting left an ESS below ESS_FRACTION · N: a few particles
                       took nearly all the weight in one step (a mode found late, a phase
                       transition the β schedule jumped over);
  moves_stalled        the MCMC acceptance at some tempering step fell below MIN_ACCEPTANCE:
                       the particles stopped mixing, and their weights no longer average over π_β;
  batches_disagree     independent batches whose log Ẑ spread by more than MAX_SPREAD nats, or one
                       of which holds more than MAX_SHARE of Ẑ: the mean is carried by rare runs
                       and their sample SE is itself unreliable.

None of these sees a mode that no particle visits (the benchmark's mixture at λ = 100 and its
spike-and-slab): every run is then wrong alike, by the missed mode's log-share.  A probe that ran
Newton from 16 starts (base draws and particles) and compared the Laplace masses of the modes
it reached with log Ẑ was tried and dropped: on those targets every start reached the widest
bump, which the particles had found too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

MIN_ANCESTORS = 16
ESS_FRACTION = 0.05
MIN_ACCEPTANCE = 0.05
MAX_SPREAD = 1.0
MAX_SHARE = 0.5

REASONS = {
    "genealogy_collapsed": f"fewer than {MIN_ANCESTORS} time-0 particles have weighted "
                           "descendants and the SE is one run's genealogy estimate (more "
                           "particles, or num_batches with several hundred particles per "
                           "batch: the SE then comes from independent runs)",
    "ess_collapsed": f"a reweighting step left an ESS below {ESS_FRACTION:g} N",
    "moves_stalled": f"MCMC acceptance fell below {MIN_ACCEPTANCE:g} at some tempering step",
    "batches_disagree": f"the batches' log Z spread by more than {MAX_SPREAD:g} nat or one holds "
                        f"more than {MAX_SHARE:g} of Z",
}


def flags(num_ancestors: jax.Array, ess_trace: jax.Array, acceptance_trace: jax.Array,
          num_particles: int, *, spread: jax.Array | None = None,
          shares: jax.Array | None = None, resampled: bool = True) -> dict[str, jax.Array]:
  """The reasons of `REASONS` as booleans.  The run-level inputs carry a leading batch axis when
  there are batches (num_ancestors (B,), traces (B, T)); num_particles is per run; spread and
  shares come from `batches.combine` (None for one run).  resampled: False for AIS, whose ESS
  decays by design (its SE, 1/ESS − 1/N, already counts it)."""
  batched = spread is not None
  anc = jnp.asarray(num_ancestors)
  out = dict(
      genealogy_collapsed=jnp.asarray(False) if batched else anc < MIN_ANCESTORS,
      ess_collapsed=(jnp.nanmin(ess_trace) < ESS_FRACTION * num_particles) if resampled
      else jnp.asarray(False),
      moves_stalled=jnp.nanmin(acceptance_trace) < MIN_ACCEPTANCE,
      batches_disagree=((spread > MAX_SPREAD) | (jnp.max(shares) > MAX_SHARE)) if batched
      else jnp.asarray(False))
  return out


def reliable(reasons: dict[str, jax.Array]) -> jax.Array:
  """True when no reason fires."""
  return ~jnp.any(jnp.stack([jnp.asarray(v) for v in reasons.values()]))


def explain(info: dict) -> list[str]:
  """The fired reasons of a result's info, in words (empty when reliable)."""
  return [REASONS[k] for k, v in info.get("reliability", {}).items() if bool(v)]
