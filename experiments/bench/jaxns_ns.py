"""The peer: jaxns's nested sampler on the same integral, log ∫ N(θ; μ, σ²I) e^{−E(θ)} dθ.

jaxns 3 (`jaxns.core.NestedSampler`) at its defaults: uniform allocation, its unidimensional slice
sampler (5d slices per new point) and its stop (the remaining evidence below 10⁻³ of Z).  The
model, in jaxns's language: the prior `Prior(tfpd.Normal(μ, σ))` over the (d,) θ (independent
normals), the log-likelihood −E(θ).  log Ẑ and its stderr are jaxns's classic expected log Z and
its standard deviation.  A run is a Python loop around jaxns's compiled epochs (not jittable), and
jaxns compiles once per sample-buffer capacity: a run that grows its buffers further than the
earlier ones compiles again.

jaxns computes in float64: on import it turns x64 on for the whole process (and configures
logging: a console handler and an `application.log` in the working directory, on the root logger).
Here it is imported once inside `jax.enable_x64` with its logging set-up skipped, and every run is
scoped to `jax.enable_x64`, so the rest of the process keeps its precision and its logging.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Callable
from unittest import mock

import jax
import jax.numpy as jnp

SLICES_PER_DIM = 5  # jaxns's default: UniDimSliceSampler(num_slices=5 d)


@functools.cache
def _jaxns() -> SimpleNamespace:
  """jaxns's model and sampler classes, imported without its import-time side effects: its
  `logging.config.dictConfig` (which would close every handler the process has, and give the root
  logger a console handler and a log file in the working directory) is skipped, so its logger
  propagates to the root's (and stays quiet below WARNING by default), and x64 is on only for
  the import."""
  with mock.patch("logging.config.dictConfig"), jax.enable_x64(True):
    from jaxns.core import NestedSampler
    from jaxns.model import Model
    from jaxns.priors import Prior
    from tensorflow_probability.substrates import jax as tfp
  return SimpleNamespace(NestedSampler=NestedSampler, Model=Model, Prior=Prior,
                         Normal=tfp.distributions.Normal)


def _prior_model(energy_fn: Callable[[jax.Array], jax.Array], mean: jax.Array,
                 sigma: jax.Array) -> jax.Array:
  """jaxns's prior model: θ ~ N(mean, sigma² I) realised, the log-likelihood −E(θ) returned."""
  jx = _jaxns()
  theta = jx.Prior(jx.Normal(loc=mean, scale=sigma * jnp.ones_like(mean)), name="theta").realise()
  return -energy_fn(theta)


def log_z(key: jax.Array, mean: jax.Array, sigma: float, *,
          energy_fn: Callable[[jax.Array], jax.Array], num_live: int,
          max_evals: int | None = None) -> dict:
  """jaxns's estimate of log ∫ N(θ; mean, σ²I) e^{−E(θ)} dθ, θ and mean (d,).

  num_live: jaxns's root_allocation_degree, the number of independent prior draws its race tree
  starts from; under the default uniform allocation every likelihood contour is crossed by that
  many lineages, i.e. the number of live points of classic nested sampling (jaxns's own default
  is 30 d).  max_evals (None: jaxns's default cap of 1000 num_live samples): a cap on the run
  through jaxns's only hard stop, max_samples = max_evals // (5 d) samples; a sample costs at
  least 5 d evaluations (one per slice; about twice that in practice), so a capped run stops
  after about 1–3 max_evals evaluations, with 'truncated' = 1 and log Z missing the unexplored
  mass.  Deterministic in key; runs in float64 whatever the process's x64 setting.
  -> {'log_z', 'stderr' (jaxns's log_Z_uncert), 'num_energy_evals' (its likelihood evaluations),
  'num_samples' (dead points), 'ess' (Kish, of the posterior weights), 'info_h' (its information
  H, nats), 'truncated' (1 if max_samples stopped it, else 0)}.
  """
  jx = _jaxns()
  d = mean.shape[0]
  if num_live < 1:
    raise ValueError(f"num_live must be a positive int; got {num_live!r}")
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)  # jaxns takes raw uint32[2] keys
  max_samples = None
  if max_evals is not None:
    width = min(num_live, 10 * d)  # jaxns's default replacement width: one batch past the roots
    max_samples = max(num_live + width, max_evals // (SLICES_PER_DIM * d))
  with jax.enable_x64(True):
    model = jx.Model(prior_model=functools.partial(_prior_model, energy_fn))
    sampler = jx.NestedSampler(model=model, root_allocation_degree=num_live,
                               max_samples=max_samples)
    args = (jnp.asarray(mean, jnp.float64), jnp.asarray(sigma, jnp.float64))
    r = sampler.run(key=key, args=args).to_result()
    return dict(log_z=float(r.log_Z_mean), stderr=float(r.log_Z_uncert),
                num_energy_evals=int(r.total_num_likelihood_evaluations),
                num_samples=int(r.total_num_samples), ess=float(r.ess), info_h=float(r.H_mean),
                truncated=int(int(r.termination_reason) != 0))
