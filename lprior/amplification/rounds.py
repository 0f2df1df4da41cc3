"""Amplification with the post's step-5 loop (DESIGN §7): combine(q, a1, a2) may return two new
subquestions instead of an answer, and the procedure goes back to step 3 with them, up to
`task.rounds` combines per asked question.

A new round's subquestions depend on the previous round's answers (amplified or M's), so the
tree cannot be laid out before it is answered, as `amplify` does; it is built by recursion at
trace time over a static shape (every question has task.rounds rounds of two subquestions, down
to task.depth), and flattened in pre-order (the root at 0) into the same `Tree` as `amplify`'s,
so the trainer's losses and metrics read it unchanged.  Each round's pair is scored and chosen
from by the same rules as `amplify`'s (`Policy`), with one difference: the blind source's
constant is the pair's mean score, not the tree's (the tree is not known when a pair is chosen).
The human's replies (H, never the imitators: a combine imitator that returns subquestions is not
built) and calls are counted where they are made.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from lprior.amplification import human, models
from lprior.amplification.amplify import (Policy, Tree, _coin, _recursion_mask, amplify_batch,
                                          policy_scores)
from lprior.amplification.models import Fns
from lprior.amplification.tasks import Task
from lprior.pytree import PyTree


def num_slots(task: Task) -> int:
  """Nodes of the static tree: s(0) = 1, s(d) = 1 + 2·rounds·s(d − 1)."""
  size = 1
  for _ in range(task.depth):
    size = 1 + 2 * task.rounds * size
  return size


def max_one_path(task: Task) -> int:
  """The most nodes a rule that recurses on at most one subquestion per round can ask:
  Σ_{l ≤ depth} rounds**l (depth + 1 without the loop)."""
  return sum(task.rounds ** level for level in range(task.depth + 1))


def _choices(task: Task) -> int:
  """Pairs chosen from in the static tree: rounds per internal node."""
  return task.rounds * sum((2 * task.rounds) ** level for level in range(task.depth))


def amplify_rounds(key: jax.Array, task: Task, fns: Fns, params: dict[str, PyTree],
                   root: jax.Array, policy: Policy, alpha: jax.Array | float = 0.0) -> Tree:
  """Amplify one root question (question_len,) with the step-5 loop into a Tree of
  `num_slots(task)` pre-ordered nodes (see the module docstring)."""
  chex.assert_shape(root, (task.question_len,))
  models.check_params(fns, params)
  if fns.imitate:
    raise ValueError(f"task {task.name!r}: the step-5 loop is amplified with the human's replies "
                     "only (no combine imitator returns subquestions); build the models with "
                     "imitate=False")
  noise = jax.random.gumbel(key, (max(_choices(task), 1), 5, 2))
  zero_comb = jnp.zeros((task.question_len + 2 * task.answer_len,), jnp.int32)
  nodes, used = [], [0]

  def scored(qs):  # M's logits and the rule's scores of a pair of questions (2, Lq)
    logits = fns.m(params["m"], qs)
    adv = fns.adv(params["adv"], (qs, jax.nn.softmax(logits)))
    return logits, policy_scores(policy, adv, logits, jnp.ones(qs.shape[:1], bool))

  def node(q, logits, score, valid, asked, depth, calls):
    slot = len(nodes)
    nodes.append(None)
    reply, calls = human.ask(task, q, calls, where=asked)
    is_answer = reply.is_answer | (depth == 0)
    answer, subs = reply.answer, (reply.sub1, reply.sub2)
    pending = asked & ~is_answer
    for r in range(task.rounds if depth > 0 else 0):
      pair = jnp.stack(subs)
      pair_logits, pair_scores = scored(pair)
      g = noise[used[0]]
      used[0] += 1
      chosen = _recursion_mask(g[:3, None], policy, pair_scores[None], alpha)[0]
      confident = ~_coin(g[3:], pair_scores, alpha, policy.temperature)
      chosen = pending & chosen & ~(policy.stop_if_confident & confident)
      a = []
      for i in range(2):
        a_i, calls = node(subs[i], pair_logits[i], pair_scores[i], pending, chosen[i], depth - 1,
                          calls)
        a.append(a_i)
      step, calls = human.combine_reply(task, q, a[0], a[1], calls, where=pending)
      done = pending & (step.is_answer | (r == task.rounds - 1))
      answer = jnp.where(done, step.answer, answer)
      pending, subs = pending & ~done, (step.sub1, step.sub2)
    m_answer = models.decode(logits)
    amplified = jnp.where(asked, answer, m_answer)
    nodes[slot] = Tree(
        questions=q, valid=valid, expanded=asked, answers=amplified, model_answers=m_answer,
        scores=score, human_reply=human.encode_reply(reply), asked_human=asked,
        combine_inputs=zero_comb, human_combined=jnp.zeros_like(m_answer),
        combined_human=jnp.bool_(False), calls=human.no_calls())
    return amplified, calls

  root_logits, root_score = scored(root[None])
  _, calls = node(root, root_logits[0], root_score[0], jnp.bool_(True), jnp.bool_(True),
                  task.depth, human.no_calls())
  tree = jax.tree.map(lambda *x: jnp.stack(x), *nodes)
  return tree._replace(calls=calls)


def amplify_any_batch(key: jax.Array, task: Task, fns: Fns, params: dict[str, PyTree],
                      roots: jax.Array, policy: Policy, alpha: jax.Array | float = 0.0) -> Tree:
  """`amplify.amplify_batch`, or `amplify_rounds` over roots (B, question_len) where the task's
  combine can return new subquestions (task.rounds > 1)."""
  if task.rounds == 1:
    return amplify_batch(key, task, fns, params, roots, policy, alpha)
  chex.assert_rank(roots, 2)
  keys = jax.random.split(key, roots.shape[0])
  return jax.vmap(lambda k, r: amplify_rounds(k, task, fns, params, r, policy, alpha))(keys, roots)
