"""Transparency (DESIGN §7, the post's conclusion): find a planted error in a distilled tree by
unfolding nodes in the order an adversary suggests.

A perfectly distilled M answers each node as the combination of its children's answers, so one
wrong leaf makes every ancestor wrong while each stays locally consistent: the reviewer, who can
check a node only by unfolding it (seeing its subquestions' answers, or at a leaf checking the
base answer), must find the path to it.  Best-first search unfolds the frontier node with the
lowest adversary score; a perfect adversary walks straight down (depth + 1 = O(log n)
unfoldings), a random order needs O(n).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from lprior.amplification import models
from lprior.amplification.heap import Heap, heap, question_tree
from lprior.amplification.models import ApplyFn
from lprior.amplification.tasks import PermPower, SumMod, Task
from lprior.pytree import PyTree


class PlantedTree(NamedTuple):
  """A consistent tree of answers with one planted error (one root; a batch adds an axis)."""
  questions: jax.Array  # (N, Lq)
  answers: jax.Array    # (N, A): combine(children) everywhere except at `error`
  valid: jax.Array      # (N,) bool
  error: jax.Array      # () int32: the slot whose answer was corrupted


def corrupt(key: jax.Array, task: Task, answer: jax.Array) -> jax.Array:
  """A wrong answer of the same kind: a + r mod m (r ≠ 0) for SumMod; a ∘ σ (σ ≠ id) for PermPower."""
  if isinstance(task, SumMod):
    return (answer + jax.random.randint(key, answer.shape[:-1] + (1,), 1, task.m)) % task.m
  if isinstance(task, PermPower):
    # σ = a random transposition: a ∘ σ swaps two entries of a.
    k1, k2 = jax.random.split(key)
    i = jax.random.randint(k1, answer.shape[:-1], 0, task.n)
    j = (i + jax.random.randint(k2, answer.shape[:-1], 1, task.n)) % task.n
    ai = jnp.take_along_axis(answer, i[..., None], -1)
    aj = jnp.take_along_axis(answer, j[..., None], -1)
    pos = jnp.arange(task.n)
    return jnp.where(pos == i[..., None], aj, jnp.where(pos == j[..., None], ai, answer))
  raise ValueError(f"corrupt: no corruption defined for {type(task).__name__}")


def plant_error(key: jax.Array, task: Task, root: jax.Array, *, at: str = "leaf") -> PlantedTree:
  """The human's tree for root with true answers, then one slot (a uniformly random valid leaf,
  or any valid slot for at='any') corrupted and its ancestors recombined."""
  if at not in ("leaf", "any"):
    raise ValueError(f"at must be 'leaf' or 'any', got {at!r}")
  h = heap(task.depth)
  q, valid = question_tree(task, root)
  leaf = task.is_base(q)
  eligible = valid & leaf if at == "leaf" else valid
  k_pick, k_bad = jax.random.split(key)
  error = jax.random.categorical(k_pick, jnp.where(eligible, 0.0, -jnp.inf)).astype(jnp.int32)
  truth = task.solve(q)
  planted = jnp.where((jnp.arange(q.shape[0]) == error)[:, None],
                      corrupt(k_bad, task, truth), truth)
  above = ancestors(h, error)

  def up(_, a):
    comb = task.combine(q, a[h.child[:, 0]], a[h.child[:, 1]])
    return jnp.where((above & valid & ~leaf)[:, None], comb, a)

  answers = jax.lax.fori_loop(0, task.depth, up, planted)
  return PlantedTree(q, answers, valid, error)


def ancestors(h: Heap, slot: jax.Array) -> jax.Array:
  """(N,) bool: the strict ancestors of slot."""
  def step(_, carry):
    mask, j = carry
    parent = jnp.where(j > 0, (j - 1) // 2, 0)
    return mask.at[parent].set(mask[parent] | (j > 0)), parent

  mask, _ = jax.lax.fori_loop(0, int(h.level.max()), step,
                              (jnp.zeros(h.level.size, bool), jnp.asarray(slot)))
  return mask


def unfoldings_to(priority: jax.Array, valid: jax.Array, target: jax.Array) -> jax.Array:
  """Best-first search from the root, lowest priority first: how many nodes are unfolded until
  one in `target` is (its own unfolding included; every valid node when none is)
  priority (N,), valid (N,) bool, target (N,) bool -> () int32."""
  chex.assert_rank(priority, 1)
  n = priority.shape[0]
  h = heap((n + 1).bit_length() - 2)
  parent = jnp.asarray(h.parent)
  slots = jnp.arange(n)

  def cond(s):
    frontier, _, found = s
    return ~found & jnp.any(frontier)

  def body(s):
    frontier, count, _ = s
    j = jnp.argmin(jnp.where(frontier, priority, jnp.inf))
    children = (parent == j) & (slots > 0) & valid
    return (frontier.at[j].set(False) | children, count + 1, target[j])

  _, count, _ = jax.lax.while_loop(cond, body, (slots == 0, jnp.int32(0), jnp.bool_(False)))
  return count


def unfoldings(priority: jax.Array, tree: PlantedTree) -> jax.Array:
  """`unfoldings_to` the planted error   -> () int32."""
  return unfoldings_to(priority, tree.valid, jnp.arange(priority.shape[0]) == tree.error)


def oracle_scores(task: Task, tree: PlantedTree) -> jax.Array:
  """The perfect adversary: minus the number of wrong answer positions   (N,)."""
  return -jnp.sum(tree.answers != task.solve(tree.questions), -1).astype(jnp.float32)


def critic_scores(critic: ApplyFn, params: PyTree, task: Task, tree: PlantedTree) -> jax.Array:
  """A learned adversary's scores of the tree's (definite) answers   (N,)."""
  return critic(params, (tree.questions, models.one_hot_probs(tree.answers, task.a_vocab)))


def train_critic(keys: jax.Array, task: Task, *, steps: int, batch_size: int = 256,
                 hidden: tuple[int, ...] = (256, 256), learning_rate: float = 1e-3,
                 compiler_options: dict[str, Any] | None = None
                 ) -> tuple[ApplyFn, PyTree, jax.Array]:
  """Critics (one per key in keys (S,), trained in parallel) that score (a question of any
  level, an answer true or corrupted half the time) with the oracle's score.
  -> (apply_fn, params with a leading S axis, losses (S, steps)); compiler_options go to jit."""
  if steps < 1:
    raise ValueError(f"steps must be >= 1, got {steps}")
  chex.assert_rank(keys, 1)
  net = models.Critic(task.vocab, hidden)
  opt = optax.adam(learning_rate)

  def batch(k):
    k_q, k_bad, k_flip = jax.random.split(k, 3)
    q = task.sample(k_q, batch_size, all_levels=True)
    truth = task.solve(q)
    flip = jax.random.bernoulli(k_flip, 0.5, (batch_size, 1))
    a = jnp.where(flip, corrupt(k_bad, task, truth), truth)
    return q, a, -jnp.sum(a != truth, -1).astype(jnp.float32)

  def step(carry, k):
    p, s = carry
    q, a, target = batch(k)
    loss_fn = lambda p: jnp.mean((net.apply(p, (q, models.one_hot_probs(a, task.a_vocab)))
                                  - target) ** 2)
    loss, g = jax.value_and_grad(loss_fn)(p)
    u, s = opt.update(g, s, p)
    return (optax.apply_updates(p, u), s), loss

  def fit(key):
    k_init, k_train = jax.random.split(key)
    params = net.init(k_init, (jnp.zeros((1, task.question_len), jnp.int32),
                               jnp.zeros((1, task.answer_len, task.a_vocab))))
    (params, _), losses = jax.lax.scan(step, (params, opt.init(params)),
                                       jax.random.split(k_train, steps))
    return params, losses

  params, losses = jax.jit(jax.vmap(fit), compiler_options=compiler_options)(keys)
  return net.apply, params, losses


def tree_size(tree: PlantedTree) -> jax.Array:
  return jnp.sum(tree.valid, -1)


def plant_errors(key: jax.Array, task: Task, num_trees: int, *, at: str = "leaf"
                 ) -> PlantedTree:
  """`plant_error` in the trees of num_trees random questions of every level (batched)."""
  k_q, k_plant = jax.random.split(key)
  roots = task.sample(k_q, num_trees, all_levels=True)
  return jax.vmap(lambda k, r: plant_error(k, task, r, at=at))(
      jax.random.split(k_plant, num_trees), roots)


def search_costs(key: jax.Array, task: Task, trees: PlantedTree, critic: ApplyFn | None = None,
                 critic_params: PyTree = None) -> dict[str, jax.Array]:
  """Unfoldings to find the planted error in each of a batch of trees, by adversary: 'oracle'
  (perfect), 'critic' (learned; left out when critic is None) and 'random' (random order; key).
  -> {'size', 'error_depth', 'oracle', 'critic', 'random'}, each (num_trees,)"""
  chex.assert_rank(trees.valid, 2)
  search = jax.vmap(unfoldings)
  out = dict(size=tree_size(trees), error_depth=jnp.floor(jnp.log2(trees.error + 1.0)),
             oracle=search(jax.vmap(lambda t: oracle_scores(task, t))(trees), trees),
             random=search(jax.random.uniform(key, trees.valid.shape), trees))
  if critic is not None:
    out["critic"] = search(jax.vmap(lambda t: critic_scores(critic, critic_params, task, t))(
        trees), trees)
  return out
