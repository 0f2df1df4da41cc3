"""Trees of questions in a fixed complete binary tree, nodes in heap order (root 0, children of
slot j at 2j+1 and 2j+2), so a tree of any shape up to `task.depth` is one fixed-shape array."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lprior.amplification import human
from lprior.amplification.tasks import Task


class Heap(NamedTuple):
  """Index arrays of the complete binary tree of a given depth (N = 2**(depth+1) - 1 slots)."""
  level: np.ndarray   # (N,) depth of each slot
  parent: np.ndarray  # (N,) parent slot (0 for the root)
  which: np.ndarray   # (N,) 0 for a first subquestion, 1 for a second one
  child: np.ndarray   # (N, 2) child slots (clipped to N - 1 below the last level)


def heap(depth: int) -> Heap:
  if depth < 0:
    raise ValueError(f"depth must be >= 0, got {depth}")
  j = np.arange(2 ** (depth + 1) - 1)
  child = np.minimum(np.stack([2 * j + 1, 2 * j + 2], axis=1), j.size - 1)
  return Heap(np.floor(np.log2(j + 1)).astype(np.int32), np.maximum((j - 1) // 2, 0),
              (j + 1) % 2, child)


def children_questions(h: Heap, root: jax.Array, reply: human.Reply) -> jax.Array:
  """Every slot's question from its parent's reply (the root keeps `root`)   (N, Lq)."""
  subs = jnp.stack([reply.sub1, reply.sub2], axis=1)[h.parent, h.which]
  return jnp.where((jnp.arange(h.level.size) == 0)[:, None], root[None], subs)


def root_only(root: jax.Array, n: int) -> jax.Array:
  """(n, Lq): root in slot 0, zeros elsewhere (the start of a top-down pass)."""
  return jnp.zeros((n, root.shape[-1]), jnp.int32).at[0].set(root)


def question_tree(task: Task, root: jax.Array, h: Heap | None = None
                  ) -> tuple[jax.Array, jax.Array]:
  """The human's full decomposition of root (question_len,): (questions (N, Lq), valid (N,)).

  Built by applying "each slot is its parent's subquestion" to every slot depth times (a fixed
  point is reached top-down); no human calls are counted (this is the ground-truth tree).
  """
  if task.rounds > 1:
    raise ValueError(f"task {task.name!r}: its combine can return new subquestions (rounds="
                     f"{task.rounds}), which depend on answers; a question tree is laid out for "
                     "one round (see amplification.rounds)")
  h = heap(task.depth) if h is None else h
  n = h.level.size

  def down(_, q):
    return children_questions(h, root, human.ask(task, q, human.no_calls())[0])

  q = jax.lax.fori_loop(0, int(h.level.max()), down, root_only(root, n))
  return q, reached(h, task.is_base(q) | (h.level == h.level.max()))


def reached(h: Heap, stops: jax.Array, chosen: jax.Array | None = None) -> jax.Array:
  """Slots whose every ancestor was reached, did not stop (answer directly) and, if `chosen` is
  given, the slot itself was chosen   (N,) bool."""
  is_root = jnp.arange(h.level.size) == 0
  opens = ~stops[h.parent] if chosen is None else ~stops[h.parent] & chosen
  depth = int(h.level.max())
  return jax.lax.fori_loop(0, depth, lambda _, r: is_root | (r[h.parent] & opens), is_root)


def settle(step, state, changed: jax.Array, max_sweeps: int):
  """Repeat `state, changed = step(state)` while changed, at most max_sweeps times.

  Used for local rules over a tree, which settle within depth (+1) sweeps from any start and in
  none from a start that is already their fixed point (e.g. the human's tree when the
  imitators agree with the human); so a model is evaluated again only where it changed something.
  """
  def cond(c):
    i, _, changed = c
    return changed & (i < max_sweeps)

  def body(c):
    i, state, _ = c
    return (i + 1, *step(state))

  return jax.lax.while_loop(cond, body, (jnp.int32(0), state, jnp.asarray(changed)))[1]
