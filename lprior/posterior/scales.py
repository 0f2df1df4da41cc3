"""Per-layer prior scales (DESIGN §1 "Scale of the priors"): σ₁,ℓ = s·σ_init,ℓ, σ₂,ℓ = κ·σ₁,ℓ.

A layer is the set of leaves that share a parent node (a Flax Dense's kernel and bias);
σ_init,ℓ is the RMS of the layer's weight matrices (leaves with ≥ 2 axes) at initialisation, so
a bias initialised at 0 takes its layer's scale.  Isotropic σ in raw weight units means different
things in every layer; these scales mean the same share of each layer's initial spread.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lprior.pytree import PyTree


def _layer(path) -> str:
  return jax.tree_util.keystr(tuple(path[:-1]))


def init_scales(params0: PyTree) -> PyTree:
  """σ_init,ℓ as a pytree like params0 with one scalar per leaf (its layer's RMS weight).

  ValueError, when params0 is concrete, for a layer whose parameters are all zero."""
  flat = jax.tree_util.tree_flatten_with_path(params0)[0]
  groups: dict[str, list] = {}
  for path, x in flat:
    groups.setdefault(_layer(path), []).append(x)
  rms = {}
  for name, xs in groups.items():
    weights = [x for x in xs if np.ndim(x) >= 2] or xs
    total = sum(jnp.sum(jnp.square(x)) for x in weights)
    n = sum(int(np.size(x)) for x in weights)
    rms[name] = jnp.sqrt(total / max(n, 1))
    if not isinstance(rms[name], jax.core.Tracer) and not float(rms[name]) > 0:
      raise ValueError(f"layer {name or '(root)'} has no non-zero initial parameters to set its "
                       "prior scale; pass explicit scales instead")
  return jax.tree_util.tree_unflatten(jax.tree.structure(params0),
                                      [rms[_layer(path)] for path, _ in flat])


def per_layer(params0: PyTree, s, kappa) -> tuple[PyTree, PyTree]:
  """(σ₁, σ₂) pytrees like params0: σ₁,ℓ = s·σ_init,ℓ and σ₂,ℓ = κ·σ₁,ℓ."""
  for name, v in (("prior_s", s), ("kappa", kappa)):
    if not isinstance(v, jax.core.Tracer) and not (np.isfinite(v) and v > 0):
      raise ValueError(f"{name} must be finite and > 0; got {v}")
  sigma1 = jax.tree.map(lambda x: s * x, init_scales(params0))
  return sigma1, jax.tree.map(lambda x: kappa * x, sigma1)
