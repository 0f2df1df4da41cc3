"""Joint distributions of n binary statements as vectors over the 2ⁿ truth assignments.

State x ∈ {0, …, 2ⁿ − 1} has statement i true iff bit i of x is set; p[x] is its probability,
so P(all true) = p[2ⁿ − 1].  The two zeta transforms below cost O(n 2ⁿ) and are what make the
exact methods (max-ent, marginals, LP) fast up to n ≈ 20.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lprior.conjunction._checks import check_num_statements, check_probabilities, check_rank
from lprior.posterior._checks import is_concrete

MAX_EXACT_N = 24  # 2^24 float64 = 128 MiB


def num_statements(p: jax.Array) -> int:
  """n for a joint of shape (2ⁿ,); ValueError if the length is not a power of two."""
  check_rank(p, 1, "joint")
  n = int(p.shape[0]).bit_length() - 1
  if p.shape[0] != 1 << n or n < 1:
    raise ValueError(f"a joint over n statements has length 2^n (n >= 1); got {p.shape[0]}")
  return n


def state_bits(n: int) -> np.ndarray:
  """(2ⁿ, n) 0/1 array: row x holds the truth values of the statements in state x."""
  check_num_statements(n, MAX_EXACT_N, "state_bits")
  return (np.arange(1 << n)[:, None] >> np.arange(n)[None, :]) & 1


def _bitwise_transform(x: jax.Array, combine) -> jax.Array:
  """Apply combine(x_without_bit, x_with_bit) → (new_without, new_with) along every bit of x (2ⁿ,).

  Each step works on the top bit and then rotates the bits (a (2, 2ⁿ⁻¹) → (2ⁿ⁻¹, 2) transpose),
  so one loop body serves every bit and the compile time does not grow with n.
  """
  n = num_statements(x)

  def step(_, x):
    y = x.reshape(2, -1)
    return jnp.stack(combine(y[0], y[1]), axis=1).reshape(-1)

  return jax.lax.fori_loop(0, n, step, x)


@jax.jit
def superset_sums(p: jax.Array) -> jax.Array:
  """g[S] = Σ_{T ⊇ S} p[T]; for a joint p this is P(every statement in S is true).  (2ⁿ,)."""
  return _bitwise_transform(p, lambda a, b: (a + b, b))


@jax.jit
def superset_mobius(g: jax.Array) -> jax.Array:
  """Inverse of `superset_sums`: p[T] = Σ_{S ⊇ T} (−1)^{|S|−|T|} g[S].  (2ⁿ,)."""
  return _bitwise_transform(g, lambda a, b: (a - b, b))


@jax.jit
def subset_sums(h: jax.Array) -> jax.Array:
  """s[T] = Σ_{S ⊆ T} h[S] (e.g. the log-potential of state T from per-subset weights).  (2ⁿ,)."""
  return _bitwise_transform(h, lambda a, b: (a, a + b))


def check_joint(p: jax.Array, name: str = "joint", tol: float = 1e-6) -> int:
  """ValueError unless p (2ⁿ,) is a probability vector; returns n."""
  n = num_statements(p)
  check_probabilities(p, name)
  if is_concrete(p) and abs(float(jnp.sum(p)) - 1.0) > tol:
    raise ValueError(f"{name} must sum to 1; sums to {float(jnp.sum(p)):.8g}")
  return n


def log_p_all(p: jax.Array) -> jax.Array:
  """log P(all statements true) = log p[2ⁿ − 1]."""
  check_joint(p)
  return jnp.log(p[-1])


def product_joint(p1: jax.Array) -> jax.Array:
  """The joint of independent statements with P(A_i) = p1[i]: Π_i p_i^{x_i}(1 − p_i)^{1−x_i}."""
  check_rank(p1, 1, "p1")
  check_probabilities(p1, "p1")
  return _product_joint(p1)


@jax.jit
def _product_joint(p1: jax.Array) -> jax.Array:
  bits = jnp.asarray(state_bits(p1.shape[0]), p1.dtype)
  return jnp.prod(bits * p1 + (1 - bits) * (1 - p1), axis=1)


def random_joint(key: jax.Array, n: int, concentration: float = 1.0,
                 dtype=jnp.float32) -> jax.Array:
  """A joint drawn from a symmetric Dirichlet(concentration) over the 2ⁿ states.  (2ⁿ,)."""
  check_num_statements(n, MAX_EXACT_N, "random_joint")
  return jax.random.dirichlet(key, jnp.full((1 << n,), concentration, dtype))
