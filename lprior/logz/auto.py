"""method='auto': where the tempered SMC starts, chosen by the curvature at the mode.

A pilot finds the mode x* of E(x) + ‖x − μ‖²/(2s²) by Newton and the top Ritz values λ_i of
s²∇²E(x*) by Lanczos (2k + 10 Hessian-vector products, k = `PILOT_RANK`).  When Newton
converged and max λ_i ≥ `STIFF` the data tighten the prior by ≥ √2 in some direction: the SMC
starts from the Laplace approximation (`reference`), which is then most of the answer.  Otherwise
(a posterior close to the prior, or no mode found) it starts from the prior, where the path is
short and the Laplace fit costs more than it saves.  Why STIFF = 1 (bench, 2026-12-07,
BUILD_NOTES issue 17): on the quadratics (top λ ≈ 2 at λ = 1) the Laplace start is exact to
< 1e-3 nat from λ = 1 up, where the prior start is 0.06–9 nats off; on the bump mixtures at
λ = 1 (top λ ≈ 0.05) the prior start is the better one (0.007–0.03 against 0.02–0.04 nats, at a
quarter of the wall time).
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp

from lprior.logz import reference, whitening
from lprior.logz.laplace import LaplaceConfig

STIFF = 1.0  # the largest s²λ_i at the mode from which the Laplace start is taken
PILOT_RANK = 8


@partial(jax.jit, static_argnames=("energy_fn",))
def pilot(key: jax.Array, mean, sigma, *, energy_fn: Callable) -> dict:
  """{top_curvature: max s²λ_i at the mode, newton_converged, num_grad: its cost}."""
  w, mu, _, energy = whitening.flat(sigma, mean, energy_fn)
  k = min(PILOT_RANK, mu.shape[0])
  ref = reference.fit(key, energy, mu, w.sigma, LaplaceConfig(exact_max_dim=0, lanczos_rank=k))
  lam = (1.0 + ref.shrink) ** -2 - 1.0  # shrink = (1 + λ)^{−½} − 1
  return dict(top_curvature=jnp.max(lam), newton_converged=ref.newton_converged,
              num_grad=ref.num_grad)


def choose(key: jax.Array, energy_fn: Callable, mean, sigma) -> tuple[str, dict]:
  """('laplace' | 'prior', the pilot's measurements and the rule) for `estimate(method='auto')`.
  Needs concrete values: the choice is made in Python, outside any trace."""
  p = pilot(key, mean, sigma, energy_fn=energy_fn)
  if any(isinstance(v, jax.core.Tracer) for v in p.values()):
    raise ValueError("method='auto' chooses its path from a pilot run and cannot be traced "
                     "(jit/vmap); call it outside the trace, or pass method='smc' with "
                     "reference='prior' or 'laplace'")
  stiff = bool(p["newton_converged"]) and float(p["top_curvature"]) >= STIFF
  return ("laplace" if stiff else "prior"), dict(p, stiff_threshold=STIFF)
