"""The simulated human H (DESIGN §7): answers base cases, otherwise splits a question in two, and
combines two answers.  Every call is counted in a `Calls` value that callers thread through.

`ask` and `combine` take a batch of questions and a `where` mask: only the entries where the
human is really consulted are counted (the arrays elsewhere are computed but meaningless).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from lprior.amplification.tasks import Task


class Calls(NamedTuple):
  """How often the human was consulted (int32 scalars, or arrays under vmap)."""
  ask: jax.Array      # answer-or-decompose calls
  combine: jax.Array  # combine calls

  @property
  def total(self) -> jax.Array:
    return self.ask + self.combine


def no_calls() -> Calls:
  return Calls(jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def _count(where: jax.Array | bool, batch_shape: tuple[int, ...]) -> jax.Array:
  return jnp.sum(jnp.broadcast_to(jnp.asarray(where, bool), batch_shape)).astype(jnp.int32)


class Reply(NamedTuple):
  """H(q): an answer (is_answer) or two subquestions."""
  is_answer: jax.Array  # (...,) bool
  answer: jax.Array     # (..., answer_len) int32, meaningful where is_answer
  sub1: jax.Array       # (..., question_len) int32, meaningful where not is_answer
  sub2: jax.Array


def ask(task: Task, q: jax.Array, calls: Calls, where: jax.Array | bool = True
        ) -> tuple[Reply, Calls]:
  """The human's reply to questions q (..., question_len); counts one call per `where` entry."""
  is_base = task.is_base(q)
  s1, s2 = task.decompose(q)
  answer = task.base_answer(q)
  zero_q = jnp.zeros_like(q)
  reply = Reply(is_base, jnp.where(is_base[..., None], answer, 0),
                jnp.where(is_base[..., None], zero_q, s1), jnp.where(is_base[..., None], zero_q, s2))
  return reply, calls._replace(ask=calls.ask + _count(where, q.shape[:-1]))


def combine(task: Task, q: jax.Array, a1: jax.Array, a2: jax.Array, calls: Calls,
            where: jax.Array | bool = True) -> tuple[jax.Array, Calls]:
  """The human's answer to q given answers a1, a2 to its subquestions; counts `where` entries."""
  return (task.combine(q, a1, a2),
          calls._replace(combine=calls.combine + _count(where, q.shape[:-1])))


def combine_reply(task: Task, q: jax.Array, a1: jax.Array, a2: jax.Array, calls: Calls,
                  where: jax.Array | bool = True) -> tuple[Reply, Calls]:
  """The post's step 5: the human's combination of a1, a2 as a Reply, an answer or two new
  subquestions (`Task.combine_step`); counts `where` entries."""
  return (Reply(*task.combine_step(q, a1, a2)),
          calls._replace(combine=calls.combine + _count(where, q.shape[:-1])))


def hch(task: Task, q: jax.Array, calls: Calls, where: jax.Array | bool = True
        ) -> tuple[jax.Array, Calls]:
  """The human alone, recursing on every subquestion (the full HCH tree, with up to task.rounds
  combines per question): the true answer.

  A reference: on SumMod with level k it costs 2**(k+1) - 1 asks and 2**k - 1 combines.
  """

  def rec(q, calls, where, depth):
    reply, calls = ask(task, q, calls, where)
    if depth == 0:
      return reply.answer, calls
    answer, pending, subs = reply.answer, ~reply.is_answer, (reply.sub1, reply.sub2)
    for r in range(task.rounds):
      a1, calls = rec(subs[0], calls, where & pending, depth - 1)
      a2, calls = rec(subs[1], calls, where & pending, depth - 1)
      step, calls = combine_reply(task, q, a1, a2, calls, where & pending)
      done = pending & (step.is_answer | (r == task.rounds - 1))
      answer = jnp.where(done[..., None], step.answer, answer)
      pending, subs = pending & ~done, (step.sub1, step.sub2)
    return answer, calls

  return rec(q, calls, jnp.broadcast_to(jnp.asarray(where, bool), q.shape[:-1]), task.depth)


# The reply as tokens, for the decompose imitator: [is_answer, answer…, sub1…, sub2…].

def reply_len(task: Task) -> int:
  return 1 + task.answer_len + 2 * task.question_len


def encode_reply(reply: Reply) -> jax.Array:
  """(..., reply_len) int32."""
  flag = reply.is_answer[..., None].astype(jnp.int32)
  return jnp.concatenate([flag, reply.answer, reply.sub1, reply.sub2], axis=-1).astype(jnp.int32)


def reply_vocab_mask(task: Task) -> jax.Array:
  """(reply_len, vocab) bool: the tokens allowed at each position of an encoded reply."""
  tokens = jnp.arange(task.vocab)
  la, lq = task.answer_len, task.question_len
  sizes = [2] + [task.a_vocab] * la + [task.q_vocab] * (2 * lq)
  return tokens[None, :] < jnp.array(sizes)[:, None]


def decode_reply(task: Task, tokens: jax.Array) -> Reply:
  """Inverse of `encode_reply` (tokens are assumed in range; see `reply_vocab_mask`)."""
  la, lq = task.answer_len, task.question_len
  return Reply(tokens[..., 0] == 1, tokens[..., 1:1 + la], tokens[..., 1 + la:1 + la + lq],
               tokens[..., 1 + la + lq:])
