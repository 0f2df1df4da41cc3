"""Algorithmic tasks a simulated human can split into two subquestions (DESIGN §7).

A question is a fixed-shape int32 array, so trees of them are jit/vmap-able:

- `SumMod(m, log2_len)`: `[level, x_0, …, x_{N-1}]`, N = 2**log2_len, asks for
  Σ_{i < 2**level} x_i mod m (entries past 2**level are 0).  Base case: level 0.  Halves.
- `PermPower(n, max_power)`: `[k, p_0, …, p_{n-1}]` asks for the permutation p**k (as the array
  i ↦ p^k(i)), 1 ≤ k ≤ max_power.  Base case: k = 1.  p**k = p**⌊k/2⌋ ∘ p**⌈k/2⌉ (powering by
  squaring, as in Christiano, Shlegeris and Amodei 2018).

Every method broadcasts over leading axes: q is (..., question_len), an answer (..., answer_len).
"""

from __future__ import annotations

import abc
import dataclasses
import math

import jax
import jax.numpy as jnp


class Task(abc.ABC):
  """A task's static shapes and its question semantics.  Subclasses are frozen dataclasses
  (hashable, so a task can be a jit static argument) that also define:

    name          str
    question_len  int: a question is (question_len,) int32 …
    q_vocab       int: … with tokens in [0, q_vocab)
    answer_len    int: an answer is (answer_len,) int32 …
    a_vocab       int: … with tokens in [0, a_vocab)
    depth         int: the most decompositions from a sampled question to a base case
  """
  kind = ""  # the make_task name

  @property
  def vocab(self) -> int:
    """One vocabulary for questions and answers together (for models reading both)."""
    return max(self.q_vocab, self.a_vocab, 2)

  @abc.abstractmethod
  def sample(self, key: jax.Array, n: int, *, all_levels: bool = False) -> jax.Array:
    """n questions of the training/test distribution   -> (n, question_len) int32.
    all_levels: also smaller questions (every level equally likely) where the task has levels."""

  @abc.abstractmethod
  def level(self, q: jax.Array) -> jax.Array:
    """Decompositions from q down to its deepest base case   (...,) int32."""

  def is_base(self, q: jax.Array) -> jax.Array:
    return self.level(q) == 0

  @abc.abstractmethod
  def base_answer(self, q: jax.Array) -> jax.Array:
    """The answer of a base-case question (undefined elsewhere)   -> (..., answer_len)."""

  @abc.abstractmethod
  def decompose(self, q: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The two subquestions of a non-base question."""

  @abc.abstractmethod
  def combine(self, q: jax.Array, a1: jax.Array, a2: jax.Array) -> jax.Array:
    """q's answer from the answers to its two subquestions."""

  @abc.abstractmethod
  def solve(self, q: jax.Array) -> jax.Array:
    """The true answer, computed directly (not by decomposition): the tests' ground truth."""


def _check_ranges(task: Task, **bounds: tuple[int, int]) -> None:
  for field, (lo, hi) in bounds.items():
    value = getattr(task, field)
    if not (isinstance(value, int) and lo <= value <= hi):
      raise ValueError(f"{type(task).__name__}: {field} must be an int in [{lo}, {hi}], "
                       f"got {value!r}")


@dataclasses.dataclass(frozen=True)
class SumMod(Task):
  """Sum of a list of length 2**level modulo m; halves the list."""
  m: int = 5
  log2_len: int = 3

  def __post_init__(self):
    _check_ranges(self, m=(2, 10 ** 6), log2_len=(0, 12))

  kind = "sum"
  name = property(lambda self: f"sum_mod{self.m}_len{2 ** self.log2_len}")
  question_len = property(lambda self: 1 + 2 ** self.log2_len)
  answer_len = property(lambda self: 1)
  q_vocab = property(lambda self: max(self.m, self.log2_len + 1))
  a_vocab = property(lambda self: self.m)
  depth = property(lambda self: self.log2_len)

  def _lengths(self, level: jax.Array) -> jax.Array:
    return jnp.left_shift(1, level)

  def _mask(self, level: jax.Array) -> jax.Array:
    """(..., N) bool: which entries belong to a question of this level."""
    n = 2 ** self.log2_len
    return jnp.arange(n) < self._lengths(level)[..., None]

  def sample(self, key, n, *, all_levels=False):
    k_level, k_x = jax.random.split(key)
    if all_levels:
      level = jax.random.randint(k_level, (n,), 0, self.log2_len + 1)
    else:
      level = jnp.full((n,), self.log2_len)
    x = jax.random.randint(k_x, (n, 2 ** self.log2_len), 0, self.m)
    x = jnp.where(self._mask(level), x, 0)
    return jnp.concatenate([level[:, None], x], axis=1).astype(jnp.int32)

  def level(self, q):
    return q[..., 0]

  def base_answer(self, q):
    return q[..., 1:2]

  def decompose(self, q):
    level, x = q[..., 0], q[..., 1:]
    sub = jnp.maximum(level - 1, 0)
    half = self._lengths(sub)
    n = x.shape[-1]
    keep = self._mask(sub)
    shifted = jnp.take_along_axis(x, (jnp.arange(n) + half[..., None]) % n, axis=-1)
    q1 = jnp.concatenate([sub[..., None], jnp.where(keep, x, 0)], axis=-1)
    q2 = jnp.concatenate([sub[..., None], jnp.where(keep, shifted, 0)], axis=-1)
    return q1.astype(jnp.int32), q2.astype(jnp.int32)

  def combine(self, q, a1, a2):
    del q
    return ((a1 + a2) % self.m).astype(jnp.int32)

  def solve(self, q):
    x = jnp.where(self._mask(q[..., 0]), q[..., 1:], 0)
    return (jnp.sum(x, axis=-1, keepdims=True) % self.m).astype(jnp.int32)


def compose(a: jax.Array, b: jax.Array) -> jax.Array:
  """(a ∘ b)(i) = a[b[i]] for permutations stored as index arrays (..., n)."""
  return jnp.take_along_axis(a, b, axis=-1)


@dataclasses.dataclass(frozen=True)
class PermPower(Task):
  """p**k for a permutation p of n elements; k splits into ⌊k/2⌋ and ⌈k/2⌉."""
  n: int = 5
  max_power: int = 16

  def __post_init__(self):
    _check_ranges(self, n=(2, 1000), max_power=(1, 4096))

  kind = "perm"
  name = property(lambda self: f"perm{self.n}_pow{self.max_power}")
  question_len = property(lambda self: 1 + self.n)
  answer_len = property(lambda self: self.n)
  q_vocab = property(lambda self: max(self.n, self.max_power + 1))
  a_vocab = property(lambda self: self.n)
  depth = property(lambda self: math.ceil(math.log2(self.max_power)) if self.max_power > 1 else 0)

  def sample(self, key, n, *, all_levels=False):
    del all_levels  # k is already spread over [1, max_power]
    k_k, k_p = jax.random.split(key)
    k = jax.random.randint(k_k, (n,), 1, self.max_power + 1)
    p = jnp.argsort(jax.random.uniform(k_p, (n, self.n)), axis=-1)
    return jnp.concatenate([k[:, None], p], axis=1).astype(jnp.int32)

  def level(self, q):
    k = jnp.maximum(q[..., 0], 1)
    # ⌈log2 k⌉: the ⌈k/2⌉ branch is the deepest one.
    return (32 - jax.lax.clz((k - 1).astype(jnp.uint32))).astype(jnp.int32)

  def base_answer(self, q):
    return q[..., 1:]

  def decompose(self, q):
    k, p = q[..., :1], q[..., 1:]
    q1 = jnp.concatenate([jnp.maximum(k // 2, 1), p], axis=-1)
    q2 = jnp.concatenate([k - k // 2, p], axis=-1)
    return q1.astype(jnp.int32), q2.astype(jnp.int32)

  def combine(self, q, a1, a2):
    del q
    return compose(a1, a2).astype(jnp.int32)

  def solve(self, q):
    k, p = q[..., 0], q[..., 1:]
    ident = jnp.broadcast_to(jnp.arange(self.n, dtype=p.dtype), p.shape)

    def bit(i, carry):  # right-to-left binary powering
      result, base = carry
      on = ((k >> i) & 1)[..., None] == 1
      return jnp.where(on, compose(result, base), result), compose(base, base)

    bits = max(1, int(self.max_power).bit_length())
    result, _ = jax.lax.fori_loop(0, bits, bit, (ident, p))
    return result.astype(jnp.int32)


TASKS = {"sum": SumMod, "perm": PermPower}


def make_task(kind: str, **kwargs) -> Task:
  """'sum' (SumMod: m, log2_len) or 'perm' (PermPower: n, max_power)."""
  if kind not in TASKS:
    raise ValueError(f"unknown task {kind!r}; expected one of {sorted(TASKS)}")
  return TASKS[kind](**kwargs)
