"""Amplification with an adversary (DESIGN §7): spend human calls where M is predicted weakest.

The human (or H′, see `Policy.imitators`) is asked about the root; each subquestion of an asked
question is either recursed on (asked in turn) or answered by M.  Which ones is the rule:

  adversary  Gumbel-max over Adv's scores: exactly one, P(i) ∝ exp(-S_i / T) (Boltzmann)
  random     exactly one, uniformly
  always     both (the full HCH tree: true answers, most calls)
  coin       each independently with P = sigmoid((α - S_i) / T): zero, one or two recursions
             (the comment thread's variant; α is annealed by the caller)
  none       neither (distillation's one-level M-consulting tree)

The scores S the Gumbel and coin rules read come from `Policy.source`:

  adversary   Adv(q, M(q)), Adv's predicted quality of M's answer (log P(true answer))
  confidence  log P_M(M's own answer): M's confidence, nothing learned (a control)
  blind       the tree's mean Adv score over its subquestions, the same at every slot: the
              coin then recurses as often as with Adv's scores, but not where (a control)

`stop_if_confident` (iteration) keeps a chosen subquestion with M's answer when Adv is
confident about it (S_i + T·g ≥ α + T·g′).  A tree lives in the fixed complete binary tree of
depth `task.depth`, nodes in heap order (children of j are 2j+1, 2j+2; see `heap`), and is
computed by sweeps of local rules over all slots at once, so everything is jit/vmap-able.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from lprior.amplification import human, models
from lprior.amplification.heap import children_questions, heap, question_tree, reached, settle
from lprior.amplification.human import Calls
from lprior.amplification.models import Fns
from lprior.amplification.tasks import Task
from lprior.pytree import PyTree

RULES = ("adversary", "random", "always", "coin", "none")
IMITATORS = ("never", "confident", "always")
SOURCES = ("adversary", "confidence", "blind")


class Policy(NamedTuple):
  """How a tree spends human calls; all fields are arrays, so policies share one compilation."""
  rule: jax.Array               # int32 index into RULES
  temperature: jax.Array        # Boltzmann temperature, in units of the scores (nats)
  stop_if_confident: jax.Array  # bool: iteration's threshold on the chosen subquestion
  imitators: jax.Array          # int32 index into IMITATORS: when H′ uses the imitators
  source: jax.Array             # int32 index into SOURCES: where the rule's scores come from


def make_policy(rule: str = "adversary", *, temperature: float = 0.5,
                stop_if_confident: bool = False, imitators: str = "never",
                source: str = "adversary") -> Policy:
  """A Policy from names, with clear errors for bad values."""
  for what, value, allowed in (("rule", rule, RULES), ("imitators mode", imitators, IMITATORS),
                               ("score source", source, SOURCES)):
    if value not in allowed:
      raise ValueError(f"unknown {what} {value!r}; expected one of {allowed}")
  if not temperature > 0:
    raise ValueError(f"temperature must be > 0, got {temperature}")
  return Policy(jnp.int32(RULES.index(rule)), jnp.float32(temperature),
                jnp.bool_(stop_if_confident), jnp.int32(IMITATORS.index(imitators)),
                jnp.int32(SOURCES.index(source)))


def policy_scores(policy: Policy, adv_scores: jax.Array, m_logits: jax.Array,
                  subquestion: jax.Array) -> jax.Array:
  """The scores a tree's rule reads (see the module docstring).
  adv_scores (N,), m_logits (N, A, V), subquestion (N,) bool: slots that hold a subquestion of
  the human's tree (the blind score's average) -> (N,)"""
  confidence = models.quality(m_logits, models.decode(m_logits))
  w = subquestion.astype(adv_scores.dtype)
  blind = jnp.sum(adv_scores * w) / jnp.maximum(jnp.sum(w), 1.0)
  return jnp.stack([adv_scores, confidence, jnp.broadcast_to(blind, adv_scores.shape)]
                   )[policy.source]


def gumbel_choice(key: jax.Array, scores: jax.Array, temperature: jax.Array | float) -> jax.Array:
  """argmax_i(-S_i/T + g_i): a sample of P(i) ∝ exp(-S_i/T) (the lowest score most likely).
  scores (..., k) -> (...,) int32"""
  return _gumbel_choice(jax.random.gumbel(key, scores.shape), scores, temperature)


def biased_coin(key: jax.Array, scores: jax.Array, alpha: jax.Array | float,
                temperature: jax.Array | float) -> jax.Array:
  """S + T·g < α + T·g′ with g, g′ Gumbel: True with probability sigmoid((α - S)/T).
  scores (...,) -> (...,) bool"""
  return _coin(jax.random.gumbel(key, (2, *scores.shape)), scores, alpha, temperature)


def recursion_mask(key: jax.Array, policy: Policy, scores: jax.Array,
                   alpha: jax.Array | float) -> jax.Array:
  """Which subquestions to recurse on under policy.rule.   scores (n, 2) -> (n, 2) bool"""
  return _recursion_mask(jax.random.gumbel(key, (3, *scores.shape)), policy, scores, alpha)


# The same from given standard Gumbel noise (amplify draws all its noise in one call: cheaper
# to compile than one draw per use).

def _gumbel_choice(g, scores, temperature):
  return jnp.argmax(-scores / temperature + g, axis=-1).astype(jnp.int32)


def _coin(g, scores, alpha, temperature):
  return scores + temperature * g[0] < alpha + temperature * g[1]


def _recursion_mask(g, policy, scores, alpha):
  """g: (3, n, 2) Gumbel noise."""
  one_of = lambda i: jax.nn.one_hot(i, 2, dtype=bool)
  masks = jnp.stack([
      one_of(_gumbel_choice(g[0], scores, policy.temperature)),
      one_of(jnp.argmax(g[0], axis=-1)),  # Gumbel-max with equal scores: uniform
      jnp.ones(scores.shape, bool),
      _coin(g[1:], scores, alpha, policy.temperature),
      jnp.zeros(scores.shape, bool),
  ])
  return masks[policy.rule]


class Tree(NamedTuple):
  """One amplification tree over N = 2**(depth+1) - 1 heap-ordered slots (a batch adds axes)."""
  questions: jax.Array       # (N, Lq) int32
  valid: jax.Array           # (N,) bool: the slot holds a subquestion of an asked question
  expanded: jax.Array        # (N,) bool: H or H′ was asked; `answers` there is a target for M
  answers: jax.Array         # (N, A) int32: amplified where expanded, M's elsewhere
  model_answers: jax.Array   # (N, A) int32: M's own answers
  scores: jax.Array          # (N,) the rule's scores (Adv(q, M(q)) unless Policy.source)
  human_reply: jax.Array     # (N, R) int32: the human's reply, encoded (imitation target)
  asked_human: jax.Array     # (N,) bool: the human (not the imitator) replied here
  combine_inputs: jax.Array  # (N, Lq + 2A) int32: [q, a1, a2] at asked non-base nodes
  human_combined: jax.Array  # (N, A) int32: the human's combination of a1, a2
  combined_human: jax.Array  # (N,) bool: the human (not the imitator) combined here
  calls: Calls               # human calls spent on this tree


def _use_model(noise: jax.Array, policy: Policy, scores: jax.Array, alpha) -> jax.Array:
  """Whether H′ uses an imitator's output: never, when its adversary is confident
  (S + T·g ≥ α + T·g′ with the given Gumbel noise (2, ...)), or always."""
  confident = ~_coin(noise, scores, alpha, policy.temperature)
  return jnp.stack([jnp.zeros_like(confident), confident,
                    jnp.ones_like(confident)])[policy.imitators]


def _select(use: jax.Array, a, b):
  """where(use, a, b) leaf by leaf, `use` (N,) broadcast over trailing axes."""
  return jax.tree.map(lambda x, y: jnp.where(use.reshape(-1, *[1] * (x.ndim - 1)), x, y), a, b)


def amplify(key: jax.Array, task: Task, fns: Fns, params: dict[str, PyTree], root: jax.Array,
            policy: Policy, alpha: jax.Array | float = 0.0, max_depth: int | None = None) -> Tree:
  """Amplify one root question (question_len,) into a Tree (see the module docstring).

  max_depth (static) truncates the slots to that depth (whose nodes are then never asked
  about deeper): e.g. 1 for distillation's one-level trees.

  Each pass below applies a local rule to every slot at once until nothing changes (parents
  settle before children going down, children before parents going up), starting from the
  human's tree; so each model has one call site whatever the depth, and once the imitators agree
  with the human one sweep suffices.  H′'s reply at a slot does not depend on whether the slot is
  asked (only the call count does), which lets the question tree be built before the expansion
  is decided.
  """
  chex.assert_shape(root, (task.question_len,))
  models.check_params(fns, params)
  depth = task.depth if max_depth is None else min(task.depth, max_depth)
  la = task.answer_len
  h = heap(depth)
  n = h.level.size
  is_root = jnp.arange(n) == 0
  last = jnp.asarray(h.level == depth)
  reply_mask = human.reply_vocab_mask(task)
  noise = jax.random.gumbel(key, (9, n))
  choice_noise = noise[0:3, 1:].reshape(3, -1, 2)
  stop_noise, dec_noise, comb_noise = noise[3:5], noise[5:7], noise[7:9]

  def reply_of(q):  # H′'s reply at every slot: (reply, is_answer, use_dec)
    reply, _ = human.ask(task, q, human.no_calls())
    use = jnp.zeros((n,), bool)
    if fns.imitate:
      d_logits = jnp.where(reply_mask, fns.dec(fns.params_of(params, "dec"), q), -1e9)
      d_score = fns.dec_adv(fns.params_of(params, "dec_adv"), (q, jax.nn.softmax(d_logits)))
      use = _use_model(dec_noise, policy, d_score, alpha)
      reply = _select(use, human.decode_reply(task, models.decode(d_logits)), reply)
    return reply, reply.is_answer | last, use

  q, in_tree = question_tree(task, root, h)  # the human's tree: final unless an imitator differs
  replied = reply_of(q)
  if fns.imitate:
    def redo(state):  # rebuild the slots from H′'s replies, and reply again
      q2 = children_questions(h, root, state[1][0])
      out = reply_of(q2)
      return (q2, out), jnp.any(children_questions(h, root, out[0]) != q2)

    q, replied = settle(redo, (q, replied),
                        jnp.any(children_questions(h, root, replied[0]) != q), depth)
  reply, is_answer, use_dec = replied

  m_logits = fns.m(params["m"], q)
  m_answer = models.decode(m_logits)
  score = policy_scores(policy, fns.adv(params["adv"], (q, jax.nn.softmax(m_logits))), m_logits,
                        in_tree & ~is_root)
  chosen = _recursion_mask(choice_noise, policy, score[1:].reshape(-1, 2), alpha).reshape(-1)
  confident = ~_coin(stop_noise, score, alpha, policy.temperature)
  chosen = jnp.concatenate([jnp.ones((1,), bool),  # the root is always asked
                            (chosen & ~(policy.stop_if_confident & confident[1:]))])
  expanded = reached(h, is_answer, chosen)
  valid = is_root | expanded[h.parent] & ~is_answer[h.parent]
  own = reply.answer

  def combined_of(answers):  # (combine inputs, human's combination, H′'s combination, use_comb)
    a1, a2 = answers[h.child[:, 0]], answers[h.child[:, 1]]
    comb_in = jnp.concatenate([q, a1, a2], axis=-1)
    h_comb = task.combine(q, a1, a2)
    if not fns.imitate:
      return comb_in, h_comb, h_comb, jnp.zeros((n,), bool)
    c_logits = fns.comb(fns.params_of(params, "comb"), comb_in)
    c_score = fns.comb_adv(fns.params_of(params, "comb_adv"),
                           (comb_in, jax.nn.softmax(c_logits)))
    use = _use_model(comb_noise, policy, c_score, alpha)
    return comb_in, h_comb, jnp.where(use[:, None], models.decode(c_logits), h_comb), use

  def up(answers, combined):
    return jnp.where(expanded[:, None], jnp.where(is_answer[:, None], own, combined), m_answer)

  # The human-combined tree first (cheap), then H′'s combinations until nothing changes.
  answers = jax.lax.fori_loop(
      0, depth + 1, lambda _, a: up(a, task.combine(q, a[h.child[:, 0]], a[h.child[:, 1]])),
      m_answer)
  combined = combined_of(answers)
  if fns.imitate:
    def recombine(state):
      a2 = up(state[0], state[1][2])
      out = combined_of(a2)
      return (a2, out), jnp.any(up(a2, out[2]) != a2)

    answers, combined = settle(recombine, (answers, combined),
                               jnp.any(up(answers, combined[2]) != answers), depth + 1)
  comb_in, h_comb, _, use_comb = combined
  internal = expanded & ~is_answer
  asked_human, combined_human = expanded & ~use_dec, internal & ~use_comb
  h_reply, calls = human.ask(task, q, human.no_calls(), where=asked_human)
  _, calls = human.combine(task, q, comb_in[:, task.question_len:task.question_len + la],
                           comb_in[:, task.question_len + la:], calls, where=combined_human)
  zero_comb = ~internal[:, None]
  return Tree(questions=q, valid=valid, expanded=expanded, answers=answers,
              model_answers=m_answer, scores=score, human_reply=human.encode_reply(h_reply),
              asked_human=asked_human,
              combine_inputs=jnp.where(zero_comb, 0, comb_in),
              human_combined=jnp.where(zero_comb, 0, h_comb), combined_human=combined_human,
              calls=calls)


def amplify_batch(key: jax.Array, task: Task, fns: Fns, params: dict[str, PyTree],
                  roots: jax.Array, policy: Policy, alpha: jax.Array | float = 0.0,
                  max_depth: int | None = None) -> Tree:
  """`amplify` over roots (B, question_len); the Tree gains a leading B axis (calls per root)."""
  chex.assert_rank(roots, 2)
  keys = jax.random.split(key, roots.shape[0])
  return jax.vmap(lambda k, r: amplify(k, task, fns, params, r, policy, alpha, max_depth))(
      keys, roots)
