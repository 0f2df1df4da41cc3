"""Transparency with the real adversary (DESIGN §7, issue 15): search M's own trees for M's real
errors, in the order the trained amplification adversary suggests.

M's tree of a question is the human's decomposition of it with M's answer at every node.  A
node is *locally wrong* when the reviewer, unfolding it, can see a mistake: at a base case M's
answer differs from the human's; elsewhere it differs from the human's combination of M's own
answers to the two subquestions.  If every node is locally right, every answer is true (by
induction from the leaves), so a wrong root answer always leaves something to find; errors can
also *cancel* (the root is right, yet some node is locally wrong: two wrong sub-answers whose
sum mod m is right, or a wrong answer under a 'left' op that ignores it).

Best-first search unfolds the frontier node with the lowest score until it unfolds a locally
wrong node.  Scores: Adv's prediction of M's answer quality (the adversary M was trained
with), M's own confidence (log P_M of its answer: nothing learned), the truth ("is this answer
wrong?": a perfect Adv, which cancelling errors can mislead), a random order, and the
subtree oracle (the deepest frontier node with a locally wrong node in its subtree: walks
straight down to one, level + 1 unfoldings).
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from lprior.amplification import models
from lprior.amplification.heap import heap, question_tree
from lprior.amplification.models import Fns
from lprior.amplification.tasks import Task
from lprior.amplification.transparency import unfoldings_to
from lprior.pytree import PyTree

SCORES = ("adversary", "confidence", "truth", "oracle", "random")


class ModelTree(NamedTuple):
  """M's tree of one question over N heap-ordered slots (a batch adds a leading axis)."""
  questions: jax.Array    # (N, Lq) the human's decomposition
  valid: jax.Array        # (N,) bool
  answers: jax.Array      # (N, A) M's answers
  local_error: jax.Array  # (N,) bool: unfolding the node shows a mistake (see the docstring)
  wrong: jax.Array        # (N,) bool: M's answer is not the true one
  adversary: jax.Array    # (N,) Adv's scores of M's answers (low: M predicted wrong)
  confidence: jax.Array   # (N,) log P_M(M's answer)


def model_tree(task: Task, fns: Fns, params: dict[str, PyTree], root: jax.Array) -> ModelTree:
  """M's tree of root (question_len,), its locally wrong nodes and the scores."""
  chex.assert_shape(root, (task.question_len,))
  h = heap(task.depth)
  q, valid = question_tree(task, root, h)
  logits = fns.m(params["m"], q)
  a = models.decode(logits)
  base = task.is_base(q)
  expected = jnp.where(base[:, None], task.base_answer(q),
                       task.combine(q, a[h.child[:, 0]], a[h.child[:, 1]]))
  return ModelTree(
      questions=q, valid=valid, answers=a,
      local_error=valid & jnp.any(a != expected, -1),
      wrong=valid & jnp.any(a != task.solve(q), -1),
      adversary=fns.adv(params["adv"], (q, jax.nn.softmax(logits))),
      confidence=models.quality(logits, a))


def subtree_errors(tree: ModelTree) -> jax.Array:
  """(N,) int32: locally wrong nodes in each slot's subtree (itself included)."""
  n = tree.valid.shape[-1]
  h = heap((n + 1).bit_length() - 2)
  own = tree.local_error.astype(jnp.int32)
  inner = jnp.asarray(h.level < h.level.max())  # slots whose children exist in the heap
  below = lambda c: jnp.where(inner, c[h.child[:, 0]] + c[h.child[:, 1]], 0)
  # Invalid slots hold no error, so the sums need no masks; depth sweeps settle bottom-up.
  return jax.lax.fori_loop(0, int(h.level.max()), lambda _, c: own + below(c), own)


def search_costs(key: jax.Array, task: Task, fns: Fns, params: dict[str, PyTree],
                 roots: jax.Array) -> dict[str, jax.Array]:
  """Unfoldings to find a locally wrong node in M's trees of roots (n, Lq), by score (`SCORES`),
  and per tree: 'size' (nodes), 'has_error' (something to find), 'root_wrong', 'cancels' (an
  error to find under a right root)   -> each (n,)."""
  chex.assert_rank(roots, 2)
  trees = jax.vmap(lambda r: model_tree(task, fns, params, r))(roots)
  priority = dict(
      adversary=trees.adversary, confidence=trees.confidence,
      truth=-trees.wrong.astype(jnp.float32),
      random=jax.random.uniform(key, trees.valid.shape),
      oracle=-(jax.vmap(subtree_errors)(trees) > 0).astype(jnp.float32)
      * (1.0 + heap(task.depth).level))
  search = jax.vmap(unfoldings_to)
  has_error = jnp.any(trees.local_error, -1)
  out = {name: search(p, trees.valid, trees.local_error) for name, p in priority.items()}
  return dict(out, size=jnp.sum(trees.valid, -1), has_error=has_error,
              root_wrong=trees.wrong[:, 0], cancels=has_error & ~trees.wrong[:, 0])
