"""The learned parts (DESIGN §7): M and its adversary Adv, and imitators of the human's two steps.

All are small Flax (linen) MLPs over one-hot tokens.  `Answerer` maps tokens to a factorised
distribution over answers (one categorical per answer position); it is M (question → answer),
the decompose imitator (question → the human's reply, encoded as tokens) and the combine
imitator ((question, a1, a2) → answer).  `Critic` maps (tokens, answer distribution) to a
predicted quality, the negative loss: it is Adv and the imitators' adversaries.  Adv reads M's
whole distribution, or (`adv_reads='answer'`) only M's decoded answer, one-hot: then it cannot
merely report M's calibration.
Public functions take `apply_fn(params, x)` and parameter pytrees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from lprior.amplification import human
from lprior.amplification.tasks import Task
from lprior.pytree import PyTree

ApplyFn = Callable[[PyTree, Any], jax.Array]
LOG_FLOOR = -10.0  # log-probabilities fed to a Critic are clipped here (one-hot stays finite)
# LeCun-uniform weights: the variance of Flax's default (truncated normal) without its inverse-
# erf sampler, which dominates compiling the initialisation of many small nets on CPU.
_INIT = nn.initializers.lecun_uniform()


class Answerer(nn.Module):
  """int tokens (..., L) in [0, in_vocab) -> logits (..., out_len, out_vocab)."""
  in_vocab: int
  out_len: int
  out_vocab: int
  hidden: Sequence[int] = (256, 256)

  @nn.compact
  def __call__(self, tokens: jax.Array) -> jax.Array:
    x = jax.nn.one_hot(tokens, self.in_vocab).reshape(*tokens.shape[:-1], -1)
    for width in self.hidden:
      x = nn.relu(nn.Dense(width, kernel_init=_INIT)(x))
    out = nn.Dense(self.out_len * self.out_vocab, kernel_init=_INIT)(x)
    return out.reshape(*tokens.shape[:-1], self.out_len, self.out_vocab)


class Critic(nn.Module):
  """(tokens (..., L), answer probabilities (..., A, V)) -> predicted quality (...,)."""
  in_vocab: int
  hidden: Sequence[int] = (256, 256)

  @nn.compact
  def __call__(self, inputs: tuple[jax.Array, jax.Array]) -> jax.Array:
    tokens, probs = inputs
    batch = tokens.shape[:-1]
    q = jax.nn.one_hot(tokens, self.in_vocab).reshape(*batch, -1)
    logp = jnp.maximum(jnp.log(jnp.maximum(probs, 1e-30)), LOG_FLOOR) / -LOG_FLOOR
    x = jnp.concatenate([q, probs.reshape(*batch, -1), logp.reshape(*batch, -1)], axis=-1)
    for width in self.hidden:
      x = nn.relu(nn.Dense(width, kernel_init=_INIT)(x))
    return nn.Dense(1, kernel_init=_INIT)(x)[..., 0]


def quality(logits: jax.Array, target: jax.Array) -> jax.Array:
  """log P(target) under the factorised distribution, i.e. minus the loss   (...,)."""
  logp = jax.nn.log_softmax(logits, axis=-1)
  return jnp.take_along_axis(logp, target[..., None], axis=-1)[..., 0].sum(-1)


def decode(logits: jax.Array) -> jax.Array:
  """The most likely answer (argmax per position)   (..., A) int32."""
  return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def one_hot_probs(answer: jax.Array, vocab: int) -> jax.Array:
  """A definite answer as a distribution, for a Critic   (..., A, vocab)."""
  return jax.nn.one_hot(answer, vocab)


class Fns(NamedTuple):
  """apply functions (static): M, Adv and, if imitating, dec/dec_adv and comb/comb_adv."""
  m: ApplyFn
  adv: ApplyFn
  dec: ApplyFn | None = None
  dec_adv: ApplyFn | None = None
  comb: ApplyFn | None = None
  comb_adv: ApplyFn | None = None

  @property
  def imitate(self) -> bool:
    return self.dec is not None


ADV_READS = ("distribution", "answer")


def answer_only(apply_fn: ApplyFn) -> ApplyFn:
  """A Critic's apply reading only the most likely answer of the distribution it is given."""
  def apply(params, inputs):
    tokens, probs = inputs
    return apply_fn(params, (tokens, one_hot_probs(jnp.argmax(probs, -1), probs.shape[-1])))
  return apply


def make_models(key: jax.Array, task: Task, **kwargs) -> tuple[Fns, dict[str, PyTree]]:
  """(apply functions, parameters {'m', 'adv'[, 'dec', 'dec_adv', 'comb', 'comb_adv']});
  keyword arguments as for `build_models`."""
  fns, init = build_models(task, **kwargs)
  return fns, init(key)


def build_models(task: Task, *, hidden: Sequence[int] = (256, 256),
                 critic_hidden: Sequence[int] = (128, 128), imitate: bool = False,
                 imitator_hidden: Sequence[int] | None = None, adv_reads: str = "distribution",
                 compiler_options: dict[str, Any] | None = None
                 ) -> tuple[Fns, Callable[[jax.Array], dict[str, PyTree]]]:
  """(apply functions, jitted key -> parameters); compiler_options go to jax.jit.

  The decompose imitator reads a question and writes the human's reply as tokens
  (`human.encode_reply`); the combine imitator reads [question, a1, a2].  They and their
  adversaries have `imitator_hidden` units (default: `hidden` and `critic_hidden`).  adv_reads:
  what Adv sees of M's output ('distribution' or 'answer', see the module docstring).
  """
  if adv_reads not in ADV_READS:
    raise ValueError(f"unknown adv_reads {adv_reads!r}; expected one of {ADV_READS}")
  widths = [hidden, critic_hidden, imitator_hidden or hidden]
  if any(not w or min(w) < 1 for w in widths):
    raise ValueError(f"hidden widths must be non-empty and positive, got {widths}")
  ih = tuple(imitator_hidden or hidden)
  ich = tuple(imitator_hidden or critic_hidden)
  v, lq, la = task.vocab, task.question_len, task.answer_len
  nets = {
      "m": (Answerer(v, la, task.a_vocab, tuple(hidden)), (lq,), None),
      "adv": (Critic(v, tuple(critic_hidden)), (lq,), (la, task.a_vocab)),
  }
  if imitate:
    reply_len = human.reply_len(task)
    nets["dec"] = (Answerer(v, reply_len, v, ih), (lq,), None)
    nets["dec_adv"] = (Critic(v, ich), (lq,), (reply_len, v))
    nets["comb"] = (Answerer(v, la, task.a_vocab, ih), (lq + 2 * la,), None)
    nets["comb_adv"] = (Critic(v, ich), (lq + 2 * la,), (la, task.a_vocab))
  def init_all(key):
    params = {}
    for (name, (net, tok_shape, prob_shape)), k in zip(nets.items(),
                                                         jax.random.split(key, len(nets))):
      tokens = jnp.zeros((1, *tok_shape), jnp.int32)
      params[name] = net.init(k, tokens if prob_shape is None
                              else (tokens, jnp.zeros((1, *prob_shape))))
    return params

  fns = Fns(**{name: net.apply for name, (net, _, _) in nets.items()})
  if adv_reads == "answer":
    fns = fns._replace(adv=answer_only(fns.adv))
  return (fns,
          jax.jit(init_all, compiler_options=compiler_options))


def check_params(fns: Fns, params: dict[str, PyTree]) -> None:
  """A clear error when the parameter dict and the apply functions do not match."""
  need = {"m", "adv"} | ({"dec", "dec_adv", "comb", "comb_adv"} if fns.imitate else set())
  missing = need - set(params)
  if missing:
    raise ValueError(f"params lack {sorted(missing)} (have {sorted(params)})")
