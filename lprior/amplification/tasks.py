"""Algorithmic tasks a simulated human can split into two subquestions (DESIGN §7).

A question is a fixed-shape int32 array, so trees of them are jit/vmap-able:

- `SumMod(m, log2_len)`: `[level, x_0, …, x_{N-1}]`, N = 2**log2_len, asks for
  Σ_{i < 2**level} x_i mod m (entries past 2**level are 0).  Base case: level 0.  Halves.
- `PermPower(n, max_power)`: `[k, p_0, …, p_{n-1}]` asks for the permutation p**k (as the array
  i ↦ p^k(i)), 1 ≤ k ≤ max_power.  Base case: k = 1.  p**k = p**⌊k/2⌋ ∘ p**⌈k/2⌉ (powering by
  squaring, as in Christiano, Shlegeris and Amodei 2018).

Three with uneven, persistent difficulty, so that where an adversary looks can matter:

- `ChainSum(m, length)`: `[k, x_0, …, x_{L-1}]`, 1 ≤ k ≤ L, asks for Σ_{i < k} x_i mod m.
  Base case: k = 1.  Splits off x_0 (a trivial subquestion) from the k − 1 rest (the hard one).
- `ZipfLookup(m, log2_len, num_keys, zipf_a, table_seed)`: `[level, k_0, …, k_{N-1}]` with
  Zipf-distributed keys asks for Σ_{i < 2**level} T[k_i] mod m for a fixed random table T (which
  the human knows).  Halves like SumMod; a model's errors on rare keys persist.
- `MixedOps(m, log2_len, p_easy)`: `[level, x_0, …, x_{N-1}, o_0, …, o_{N-1}]` asks for the value
  of a balanced binary expression over x_0 … x_{2**level - 1} with the op of each internal node
  at its in-order position (0 "left": a1, the right half is irrelevant; 1 add; 2 mul; mod m).

One needs the post's step-5 loop (a combine that returns new subquestions, `Task.rounds` > 1):

- `PointerChase(n, max_steps, table_seed)`: `[k, x]` asks for T**k(x), a chase of k steps
  through a fixed random permutation T that the human knows.  The second leg starts where the
  first ends, so the human asks the first leg (beside a one-step check), and its combine returns
  the second leg (beside the identity at its start) as new subquestions.

Every method broadcasts over leading axes: q is (..., question_len), an answer (..., answer_len).
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np


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
  rounds = 1  # the most combines per asked question (> 1: combine may return new subquestions)

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

  def combine_step(self, q: jax.Array, a1: jax.Array, a2: jax.Array
                   ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """The post's step 5: combine(q, a1, a2) is an answer or two new subquestions (and the
    procedure returns to step 3 with them)   -> (is_answer (...,), answer, sub1, sub2).
    With rounds == 1 it always answers."""
    zero = jnp.zeros(q.shape, jnp.int32)
    return jnp.ones(q.shape[:-1], bool), self.combine(q, a1, a2), zero, zero


def _check_ranges(task: Task, **bounds: tuple[int, int]) -> None:
  for field, (lo, hi) in bounds.items():
    value = getattr(task, field)
    if not (isinstance(value, int) and lo <= value <= hi):
      raise ValueError(f"{type(task).__name__}: {field} must be an int in [{lo}, {hi}], "
                       f"got {value!r}")


def _check_real(task: Task, **bounds: tuple[float, float]) -> None:
  for field, (lo, hi) in bounds.items():
    value = getattr(task, field)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and lo <= value <= hi):
      raise ValueError(f"{type(task).__name__}: {field} must be a finite number in [{lo}, {hi}], "
                       f"got {value!r}")


def _halves(x: jax.Array, half: jax.Array) -> tuple[jax.Array, jax.Array]:
  """x[:half] and x[half:2 half], each zero-padded to x's length   (..., n), half (...,)."""
  n = x.shape[-1]
  keep = jnp.arange(n) < half[..., None]
  shifted = jnp.take_along_axis(x, (jnp.arange(n) + half[..., None]) % n, axis=-1)
  return jnp.where(keep, x, 0), jnp.where(keep, shifted, 0)


def _sizes(key: jax.Array, n: int, all_levels: bool, lo: int, hi: int) -> jax.Array:
  """n question sizes: uniform in [lo, hi] (all_levels), else hi   -> (n,) int32."""
  if all_levels:
    return jax.random.randint(key, (n,), lo, hi + 1)
  return jnp.full((n,), hi, jnp.int32)


def _halvings(k: jax.Array) -> jax.Array:
  """⌈log2 max(k, 1)⌉: halvings of k (rounding up) down to 1   (...,) int32."""
  k = jnp.maximum(k, 1)
  return (32 - jax.lax.clz((k - 1).astype(jnp.uint32))).astype(jnp.int32)


def _sum_mod(v: jax.Array, m: int) -> jax.Array:
  """Σ_i v_i mod m over the last axis (a power of 2 long), pairwise so int32 cannot overflow
  (..., n) -> (..., 1)."""
  v = v % m
  while v.shape[-1] > 1:
    v = (v[..., 0::2] + v[..., 1::2]) % m
  return v.astype(jnp.int32)


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

  def _entries(self, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """The list entries of sampled questions (the x_i)."""
    return jax.random.randint(key, shape, 0, self.m)

  def _values(self, x: jax.Array) -> jax.Array:
    """The numbers summed for the entries x (themselves)."""
    return x

  def sample(self, key, n, *, all_levels=False):
    k_level, k_x = jax.random.split(key)
    level = _sizes(k_level, n, all_levels, 0, self.log2_len)
    x = jnp.where(self._mask(level), self._entries(k_x, (n, 2 ** self.log2_len)), 0)
    return jnp.concatenate([level[:, None], x], axis=1).astype(jnp.int32)

  def level(self, q):
    return q[..., 0]

  def base_answer(self, q):
    return self._values(q[..., 1:2]).astype(jnp.int32)

  def decompose(self, q):
    level, x = q[..., 0], q[..., 1:]
    sub = jnp.maximum(level - 1, 0)
    x1, x2 = _halves(x, self._lengths(sub))
    q1 = jnp.concatenate([sub[..., None], x1], axis=-1)
    q2 = jnp.concatenate([sub[..., None], x2], axis=-1)
    return q1.astype(jnp.int32), q2.astype(jnp.int32)

  def combine(self, q, a1, a2):
    del q
    return ((a1 + a2) % self.m).astype(jnp.int32)

  def solve(self, q):
    return _sum_mod(jnp.where(self._mask(q[..., 0]), self._values(q[..., 1:]), 0), self.m)


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
    return _halvings(q[..., 0])  # the ⌈k/2⌉ branch is the deepest one

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


@dataclasses.dataclass(frozen=True)
class ChainSum(Task):
  """Sum of the first k of L numbers modulo m; splits off x_0 (trivial) from the k − 1 rest (the
  hard part), so the difficulty is all on one side and only shrinks by one per step."""
  m: int = 3
  length: int = 8

  def __post_init__(self):
    _check_ranges(self, m=(2, 10 ** 6), length=(1, 16))

  kind = "chain"
  name = property(lambda self: f"chain_mod{self.m}_len{self.length}")
  question_len = property(lambda self: 1 + self.length)
  answer_len = property(lambda self: 1)
  q_vocab = property(lambda self: max(self.m, self.length + 1))
  a_vocab = property(lambda self: self.m)
  depth = property(lambda self: self.length - 1)

  def _k(self, q: jax.Array) -> jax.Array:
    """(...,) the question's k, clipped to ≥ 1."""
    return jnp.maximum(q[..., 0], 1)

  def _mask(self, k: jax.Array) -> jax.Array:
    """(..., L) bool: which entries belong to a question with this k."""
    return jnp.arange(self.length) < k[..., None]

  def sample(self, key, n, *, all_levels=False):
    k_k, k_x = jax.random.split(key)
    k = _sizes(k_k, n, all_levels, 1, self.length)
    x = jax.random.randint(k_x, (n, self.length), 0, self.m)
    x = jnp.where(self._mask(k), x, 0)
    return jnp.concatenate([k[:, None], x], axis=1).astype(jnp.int32)

  def level(self, q):
    return (self._k(q) - 1).astype(jnp.int32)

  def base_answer(self, q):
    return q[..., 1:2]

  def decompose(self, q):
    k, x = self._k(q), q[..., 1:]
    zeros = jnp.zeros_like(x)
    q1 = jnp.concatenate([jnp.ones_like(k)[..., None], x[..., :1], zeros[..., 1:]], axis=-1)
    rest = jnp.concatenate([x[..., 1:], zeros[..., :1]], axis=-1)  # x_1, …, x_{L-1}, 0
    rest = jnp.where(self._mask(k - 1), rest, 0)
    q2 = jnp.concatenate([jnp.maximum(k - 1, 1)[..., None], rest], axis=-1)
    return q1.astype(jnp.int32), q2.astype(jnp.int32)

  def combine(self, q, a1, a2):
    del q
    return ((a1 + a2) % self.m).astype(jnp.int32)

  def solve(self, q):
    x = jnp.where(self._mask(self._k(q)), q[..., 1:], 0)
    return (jnp.sum(x, axis=-1, keepdims=True) % self.m).astype(jnp.int32)


@functools.lru_cache(maxsize=None)
def _lookup_table(m: int, num_keys: int, seed: int) -> np.ndarray:
  """(num_keys,) int32 values in [0, m), fixed by the seed (read-only: it is shared)."""
  table = np.random.default_rng(seed).integers(0, m, num_keys).astype(np.int32)
  table.flags.writeable = False
  return table


@dataclasses.dataclass(frozen=True)
class _TableLookup(SumMod):
  """Σ_{i < 2**level} T[k_i] mod m for a fixed random table T (key -> [0, m)) that the human
  knows; halves the list like SumMod.  Subclasses say how keys are drawn (`key_probs`)."""
  log2_len: int = 2
  num_keys: int = 64
  table_seed: int = 0

  def __post_init__(self):
    super().__post_init__()
    _check_ranges(self, num_keys=(2, 10 ** 5), table_seed=(0, 2 ** 32 - 1))

  q_vocab = property(lambda self: max(self.num_keys, self.log2_len + 1))

  @property
  def table(self) -> jax.Array:
    """T   (num_keys,) int32 in [0, m): np.random.default_rng(table_seed).integers(0, m)."""
    return jnp.asarray(_lookup_table(self.m, self.num_keys, self.table_seed))

  def key_probs(self) -> np.ndarray:
    """P(key = j)   (num_keys,) float64, computed in numpy."""
    raise NotImplementedError

  def key_log_probs(self) -> jax.Array:
    """log P(key = j)   (num_keys,) float32."""
    return jnp.asarray(np.log(self.key_probs()), jnp.float32)

  def _entries(self, key, shape):
    return jax.random.categorical(key, self.key_log_probs(), shape=shape).astype(jnp.int32)

  def _values(self, x):
    return jnp.take(self.table, x, mode="clip")


@dataclasses.dataclass(frozen=True)
class ZipfLookup(_TableLookup):
  """A table lookup with keys drawn with P(k = j) ∝ (j + 1)**−zipf_a.  A model sees rare keys
  rarely, so its errors on them persist."""
  zipf_a: float = 1.2

  def __post_init__(self):
    super().__post_init__()
    _check_real(self, zipf_a=(0.0, math.inf))

  kind = "lookup"
  name = property(lambda self: f"lookup_mod{self.m}_len{2 ** self.log2_len}_keys{self.num_keys}"
                               f"_zipf{self.zipf_a:g}_seed{self.table_seed}")

  def key_log_probs(self) -> jax.Array:
    """log P(key = j) = −zipf_a log(j + 1) − log Σ_i (i + 1)**−zipf_a   (num_keys,) float32."""
    logits = -self.zipf_a * jnp.log(jnp.arange(1, self.num_keys + 1, dtype=jnp.float32))
    return logits - jax.scipy.special.logsumexp(logits)

  def key_probs(self) -> np.ndarray:
    """P(key = j) ∝ (j + 1)**−zipf_a."""
    p = np.arange(1, self.num_keys + 1, dtype=np.float64) ** -float(self.zipf_a)
    return p / p.sum()


@dataclasses.dataclass(frozen=True)
class PooledLookup(_TableLookup):
  """A table lookup with keys from two pools: the first `common_keys` keys share `common_share`
  of the draws uniformly, the other num_keys − common_keys share the rest.  Each position of a
  question draws its pool at random, so the rare keys (seen a handful of times in training, at
  the defaults) sit in either half, and they are common *as a class*: M's errors on them persist
  in one subquestion of many questions, found only by reading the content."""
  log2_len: int = 1
  num_keys: int = 4096
  common_keys: int = 16
  common_share: float = 0.9

  def __post_init__(self):
    super().__post_init__()
    _check_ranges(self, common_keys=(1, self.num_keys - 1))
    _check_real(self, common_share=(0.0, 1.0))

  kind = "pooled"
  name = property(lambda self: f"pooled_mod{self.m}_len{2 ** self.log2_len}_keys{self.num_keys}"
                               f"_common{self.common_keys}x{self.common_share:g}"
                               f"_seed{self.table_seed}")

  def key_probs(self) -> np.ndarray:
    """common_share / common_keys on the common pool, the rest spread over the rare pool."""
    rare = self.num_keys - self.common_keys
    return np.concatenate([np.full(self.common_keys, self.common_share / self.common_keys),
                           np.full(rare, (1.0 - self.common_share) / rare)])


@dataclasses.dataclass(frozen=True)
class MixedOps(Task):
  """A balanced binary expression over 2**level numbers with one op per internal node (in-order
  position s + h − 1 for the segment [s, s + 2h)): 0 "left" (a1), 1 add, 2 mul, mod m.  Halves
  at the root; under a "left" node the right half is irrelevant, so difficulty is in the content."""
  m: int = 5
  log2_len: int = 3
  p_easy: float = 0.5

  LEFT, ADD, MUL = 0, 1, 2

  def __post_init__(self):
    # (m − 1)**2 must fit in int32 for mul.
    _check_ranges(self, m=(2, 46341), log2_len=(0, 12))
    _check_real(self, p_easy=(0.0, 1.0))

  kind = "mixed"
  name = property(lambda self: f"mixed_mod{self.m}_len{2 ** self.log2_len}_easy{self.p_easy:g}")
  question_len = property(lambda self: 1 + 2 * 2 ** self.log2_len)
  answer_len = property(lambda self: 1)
  q_vocab = property(lambda self: max(self.m, 3, self.log2_len + 1))
  a_vocab = property(lambda self: self.m)
  depth = property(lambda self: self.log2_len)

  def _split(self, q: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(level (...,), x (..., N), ops (..., N))."""
    n = 2 ** self.log2_len
    return q[..., 0], q[..., 1:1 + n], q[..., 1 + n:]

  def _apply(self, op: jax.Array, a1: jax.Array, a2: jax.Array) -> jax.Array:
    """op(a1, a2); any op other than add and mul acts as "left"."""
    return jnp.where(op == self.ADD, (a1 + a2) % self.m,
                     jnp.where(op == self.MUL, (a1 * a2) % self.m, a1)).astype(jnp.int32)

  def sample(self, key, n, *, all_levels=False):
    k_level, k_x, k_easy, k_op = jax.random.split(key, 4)
    size = 2 ** self.log2_len
    level = _sizes(k_level, n, all_levels, 0, self.log2_len)
    length = jnp.left_shift(1, level)[:, None]
    pos = jnp.arange(size)
    x = jnp.where(pos < length, jax.random.randint(k_x, (n, size), 0, self.m), 0)
    hard = jax.random.randint(k_op, (n, size), self.ADD, self.MUL + 1)
    ops = jnp.where(jax.random.bernoulli(k_easy, float(self.p_easy), (n, size)), self.LEFT, hard)
    ops = jnp.where(pos < length - 1, ops, 0)
    return jnp.concatenate([level[:, None], x, ops], axis=1).astype(jnp.int32)

  def level(self, q):
    return q[..., 0]

  def base_answer(self, q):
    return q[..., 1:2]

  def decompose(self, q):
    level, x, ops = self._split(q)
    sub = jnp.maximum(level - 1, 0)
    half = jnp.left_shift(1, sub)
    x1, x2 = _halves(x, half)
    inner = jnp.arange(ops.shape[-1]) < (half - 1)[..., None]  # drops the root op o_{half-1}
    o1, o2 = (jnp.where(inner, o, 0) for o in _halves(ops, half))
    q1 = jnp.concatenate([sub[..., None], x1, o1], axis=-1)
    q2 = jnp.concatenate([sub[..., None], x2, o2], axis=-1)
    return q1.astype(jnp.int32), q2.astype(jnp.int32)

  def combine(self, q, a1, a2):
    level, _, ops = self._split(q)
    root = jnp.left_shift(1, jnp.maximum(level, 1) - 1) - 1  # o_{h-1}, h = 2**(level-1)
    return self._apply(jnp.take_along_axis(ops, root[..., None], axis=-1), a1, a2)

  def solve(self, q):
    level, x, ops = self._split(q)
    vals, first = x, [x[..., 0]]  # vals[p]: the value of the segment [p 2**j, (p + 1) 2**j)
    for j in range(self.log2_len):
      h = 2 ** j
      vals = self._apply(ops[..., h - 1::2 * h], vals[..., 0::2], vals[..., 1::2])
      first.append(vals[..., 0])
    stage = jnp.clip(level, 0, self.log2_len)[..., None]
    return jnp.take_along_axis(jnp.stack(first, axis=-1), stage, axis=-1).astype(jnp.int32)


@functools.lru_cache(maxsize=None)
def _chase_powers(n: int, max_steps: int, seed: int) -> np.ndarray:
  """(max_steps + 1, n) int32: row j is T**j for the permutation T fixed by the seed
  (read-only: it is shared)."""
  table = np.random.default_rng(seed).permutation(n)
  powers = [np.arange(n)]
  for _ in range(max_steps):
    powers.append(table[powers[-1]])
  out = np.stack(powers).astype(np.int32)
  out.flags.writeable = False
  return out


@dataclasses.dataclass(frozen=True)
class PointerChase(Task):
  """T**k(x) for a fixed random permutation T of n states (the human knows T).  Answers are
  [steps, state], the steps echoing the question's k (which lets combine tell its rounds apart).
  Base cases k ≤ 1.  The human asks the first leg [⌊k/2⌋, x] beside the one-step check [1, x];
  its combine returns the second leg [⌈k/2⌉, y] from y = a1's state beside the identity [0, y];
  a combine that sees an identity's answer (steps 0) answers [k, a1's state]."""
  n: int = 32
  max_steps: int = 8
  table_seed: int = 0

  def __post_init__(self):
    _check_ranges(self, n=(2, 10 ** 5), max_steps=(1, 4096), table_seed=(0, 2 ** 32 - 1))

  kind = "chase"
  rounds = 2
  name = property(lambda self: f"chase{self.n}_steps{self.max_steps}_seed{self.table_seed}")
  question_len = property(lambda self: 2)
  answer_len = property(lambda self: 2)
  q_vocab = property(lambda self: max(self.n, self.max_steps + 1))
  a_vocab = property(lambda self: max(self.n, self.max_steps + 1))
  depth = property(lambda self: math.ceil(math.log2(self.max_steps)))

  @property
  def powers(self) -> jax.Array:
    """(max_steps + 1, n): T**j, j = 0 … max_steps."""
    return jnp.asarray(_chase_powers(self.n, self.max_steps, self.table_seed))

  def _chase(self, k: jax.Array, x: jax.Array) -> jax.Array:
    """[k, T**k(x)] (k and x clipped into range)   -> (..., 2)."""
    k = jnp.clip(k, 0, self.max_steps)
    return jnp.stack([k, self.powers[k, jnp.clip(x, 0, self.n - 1)]], -1).astype(jnp.int32)

  def sample(self, key, n, *, all_levels=False):
    k_k, k_x = jax.random.split(key)
    k = _sizes(k_k, n, all_levels, 1, self.max_steps)
    return jnp.stack([k, jax.random.randint(k_x, (n,), 0, self.n)], 1).astype(jnp.int32)

  def level(self, q):
    return _halvings(q[..., 0])  # the ⌈k/2⌉ branch is the deepest one

  def base_answer(self, q):
    return self._chase(q[..., 0], q[..., 1])

  def decompose(self, q):
    k, x = q[..., 0], q[..., 1]
    return (jnp.stack([k // 2, x], -1).astype(jnp.int32),
            jnp.stack([jnp.ones_like(k), x], -1).astype(jnp.int32))

  def combine(self, q, a1, a2):
    del a2
    return jnp.stack([q[..., 0], a1[..., 1]], -1).astype(jnp.int32)

  def combine_step(self, q, a1, a2):
    k, y = q[..., 0], a1[..., 1]
    second = jnp.stack([k - k // 2, y], -1).astype(jnp.int32)
    return (a2[..., 0] == 0, self.combine(q, a1, a2), second,
            jnp.stack([jnp.zeros_like(y), y], -1).astype(jnp.int32))

  def solve(self, q):
    return self._chase(q[..., 0], q[..., 1])


TASKS = {"sum": SumMod, "perm": PermPower, "chain": ChainSum, "lookup": ZipfLookup,
         "pooled": PooledLookup, "mixed": MixedOps, "chase": PointerChase}


def make_task(kind: str, **kwargs) -> Task:
  """'sum' (SumMod: m, log2_len), 'perm' (PermPower: n, max_power), 'chain' (ChainSum: m,
  length), 'lookup' (ZipfLookup: m, log2_len, num_keys, zipf_a, table_seed), 'pooled'
  (PooledLookup: m, log2_len, num_keys, common_keys, common_share, table_seed), 'mixed'
  (MixedOps: m, log2_len, p_easy) or 'chase' (PointerChase: n, max_steps, table_seed)."""
  if kind not in TASKS:
    raise ValueError(f"unknown task {kind!r}; expected one of {sorted(TASKS)}")
  return TASKS[kind](**kwargs)
