"""Iterated amplification (DESIGN §7): amplify a batch, (optionally) distil, update every model.

A `Method` names a way to spend human calls: one of the amplification rules, supervised
learning on true answers (the upper anchor: one call per labelled question, an oracle that
answers anything at once), the comment thread's coin with α annealed linearly, or the post's
iteration (after a warm-up of plain adversary amplification with distillation, H′ uses the
imitators, and a chosen subquestion keeps M's answer, whenever the adversary's score clears α).
A method may read other scores than Adv's (M's confidence, a blind constant: the controls),
give Adv only M's answer or another size, and let Adv choose the root questions (step 1's "or
from the output of some adversary": the lowest-scored of `root_pool` × batch candidates).
`Trainer` jit-compiles one step for all methods of a static shape and trains several seeds at
once (vmap); a run can resume from a saved (learners, history) and reach exactly the numbers of
an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lprior.amplification import human, models, rounds
from lprior.amplification.amplify import RULES, Policy, Tree, make_policy, policy_scores
from lprior.amplification.distill import distill
from lprior.amplification.human import Calls
from lprior.amplification.models import Fns
from lprior.amplification.tasks import Task
from lprior.pytree import PyTree
from lprior.xla import compiler_options

NEVER_CONFIDENT = 1e6  # an α no score clears
ONE_PATH = ("adversary", "random", "none")  # rules that recurse on one subquestion at most
QUALITY_FLOOR = -10.0  # Adv regresses on max(quality, floor): confident blunders do not dominate


@dataclasses.dataclass(frozen=True)
class Method:
  """A way to train M (see the module docstring)."""
  name: str
  rule: str = "adversary"         # amplify.RULES, or 'supervised'
  stop_if_confident: bool = False
  imitators: str = "never"        # amplify.IMITATORS
  distill: bool = False
  alpha_start: float = 0.0        # α until the warm-up fraction of the schedule has passed …
  alpha_end: float = 0.0          # … then α goes to this: linearly by the schedule's last step
                                  # (anneal_steps − 1; kept after it), or at once
  alpha_warmup: float = 0.0       # fraction of the anneal_steps before α leaves alpha_start
  alpha_step: bool = False        # jump to alpha_end after the warm-up instead of annealing
  temperature: float = 0.5
  source: str = "adversary"       # amplify.SOURCES: the scores the rule reads
  adv_reads: str = "distribution" # models.ADV_READS: what Adv sees of M's output
  critic_hidden: tuple[int, ...] | None = None  # Adv's widths (None: the experiment's)
  root_pool: int = 1              # > 1: Adv picks each batch's roots from this many times more
  shared: bool = False            # the imitators are M and Adv (the post's shared-parameter form)

  def __post_init__(self):
    if self.rule not in RULES + ("supervised",):
      raise ValueError(f"method {self.name!r}: unknown rule {self.rule!r}")
    make_policy(self.rule if self.rule != "supervised" else "none", source=self.source,
                temperature=self.temperature, imitators=self.imitators)  # validates
    if self.adv_reads not in models.ADV_READS:
      raise ValueError(f"method {self.name!r}: unknown adv_reads {self.adv_reads!r}; expected "
                       f"one of {models.ADV_READS}")
    if not (isinstance(self.root_pool, int) and self.root_pool >= 1):
      raise ValueError(f"method {self.name!r}: root_pool must be an int >= 1, got "
                       f"{self.root_pool!r}")
    if self.shared and not self.imitate:
      raise ValueError(f"method {self.name!r}: shared needs imitators (distill or imitators)")
    if not 0.0 <= self.alpha_warmup < 1.0:
      raise ValueError(f"method {self.name!r}: alpha_warmup must be in [0, 1), got "
                       f"{self.alpha_warmup}")

  @property
  def imitate(self) -> bool:
    return self.imitators != "never" or self.distill

  @property
  def policy(self) -> Policy:
    rule = "none" if self.rule == "supervised" else self.rule
    return make_policy(rule, temperature=self.temperature, source=self.source,
                       stop_if_confident=self.stop_if_confident, imitators=self.imitators)

  @property
  def alphas(self) -> jax.Array:
    """The α schedule as an array (a traced argument, so methods share one compilation)."""
    return jnp.array([self.alpha_start, self.alpha_end, self.alpha_warmup,
                      float(self.alpha_step)], jnp.float32)


def alpha_at(step: jax.Array, alphas: jax.Array, anneal_steps: int) -> jax.Array:
  """α at a step: alphas = (start, end, warm-up fraction, step?) as in `Method.alphas`, over a
  schedule of `anneal_steps` steps (from step anneal_steps − 1 on, α stays at its end value)."""
  start, end, warmup, jump = alphas[0], alphas[1], alphas[2], alphas[3] > 0
  frac = jnp.clip(step / max(anneal_steps - 1, 1), 0.0, 1.0)
  ramp = jnp.clip((frac - warmup) / jnp.maximum(1.0 - warmup, 1e-6), 0.0, 1.0)
  return jnp.where(jump, jnp.where(frac < warmup, start, end), start + ramp * (end - start))


def standard_methods(alpha: float = -0.3, coin_alpha: tuple[float, float] = (0.0, -0.5),
                     temperature: float = 0.5, iterate_warmup: float = 0.5,
                     cold_temperature: float = 0.05) -> dict[str, Method]:
  """The methods of the experiment, by name.  'adversary_cold' is the adversary at a low
  temperature (nearly always its argmin); 'iterate' runs plain adversary amplification (with
  distillation) for the warm-up fraction, then lets H′ swap in the models above α.  The
  controls: 'confidence' and 'confidence_coin' read M's confidence instead of Adv,
  'blind_coin' a constant score per tree (as many recursions as the coin, placed blindly);
  'adversary_answer' is Adv reading only M's answer; 'adversary_roots' lets Adv pick the roots
  (from 4× the batch), 'confidence_roots' is its control (M's confidence picks the roots and the
  subquestions); 'iterate_shared' is 'iterate' with the imitators in the post's
  shared-parameter form (M and Adv themselves)."""
  t = dict(temperature=temperature)
  coin = dict(alpha_start=coin_alpha[0], alpha_end=coin_alpha[1], **t)
  methods = {
      "adversary": Method("adversary", "adversary", **t),
      "confidence": Method("confidence", "adversary", source="confidence", **t),
      "adversary_answer": Method("adversary_answer", "adversary", adv_reads="answer", **t),
      "adversary_roots": Method("adversary_roots", "adversary", root_pool=4, **t),
      "confidence_roots": Method("confidence_roots", "adversary", source="confidence",
                                 root_pool=4, **t),
      "adversary_cold": Method("adversary_cold", "adversary", temperature=cold_temperature),
      "random": Method("random", "random", **t),
      "always": Method("always", "always", **t),
      "supervised": Method("supervised", "supervised", **t),
      "coin": Method("coin", "coin", **coin),
      "confidence_coin": Method("confidence_coin", "coin", source="confidence", **coin),
      "blind_coin": Method("blind_coin", "coin", source="blind", **coin),
      "iterate": Method("iterate", "adversary", stop_if_confident=True, imitators="confident",
                        distill=True, alpha_start=NEVER_CONFIDENT, alpha_end=alpha,
                        alpha_warmup=iterate_warmup, alpha_step=True, **t),
  }
  methods["iterate_shared"] = dataclasses.replace(methods["iterate"], name="iterate_shared",
                                                  shared=True)
  return methods


def _masked_mean(x: jax.Array, w: jax.Array) -> jax.Array:
  w = w.astype(x.dtype)
  return jnp.sum(x * w) / jnp.maximum(jnp.sum(w), 1.0)


def _imitation_loss(answerer: models.ApplyFn, critic: models.ApplyFn, p_net: PyTree,
                    p_critic: PyTree, inputs: jax.Array, target: jax.Array, w: jax.Array,
                    logit_mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """(cross-entropy of an answerer on `target`, its critic's squared error), both masked by w."""
  logits = answerer(p_net, inputs)
  if logit_mask is not None:
    logits = jnp.where(logit_mask, logits, -1e9)
  q = models.quality(logits, target)
  pred = critic(p_critic, (inputs, jax.lax.stop_gradient(jax.nn.softmax(logits))))
  target_q = jax.lax.stop_gradient(jnp.maximum(q, QUALITY_FLOOR))
  return _masked_mean(-q, w), _masked_mean((pred - target_q) ** 2, w)


def asked_first(tree: Tree, cap: int) -> Tree:
  """The first `cap` asked nodes of each tree (B, N, …) -> (B, cap, …), in heap order; every
  loss term lives on asked nodes, so this loses nothing when no tree has more than cap."""
  order = jnp.argsort(~tree.expanded, axis=1, stable=True)[:, :cap]
  take = lambda a: jnp.take_along_axis(a, order.reshape(order.shape + (1,) * (a.ndim - 2)), 1)
  return tree._replace(**{f: take(getattr(tree, f)) for f in tree._fields if f != "calls"})


def tree_losses(params: dict[str, PyTree], task: Task, fns: Fns, tree: Tree,
                distilled: Tree | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The post's losses on a batch of trees (B, N, …): M on the amplified answers at asked nodes
  (and on distilled roots), Adv on M's quality there, the imitators and their adversaries on
  the human's replies and combinations where the human gave them."""
  flat = jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), tree)
  m_loss, adv_loss = _imitation_loss(fns.m, fns.adv, params["m"], params["adv"], flat.questions,
                                     flat.answers, flat.expanded)
  total, out = m_loss + adv_loss, dict(m_loss=m_loss, adv_loss=adv_loss)
  if distilled is not None:
    dflat = jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), asked_first(distilled, 1))
    d_loss = _masked_mean(-models.quality(fns.m(params["m"], dflat.questions), dflat.answers),
                          dflat.expanded)
    total, out["distill_loss"] = total + d_loss, d_loss
  if fns.imitate:
    of = lambda name: fns.params_of(params, name)
    dec, dec_adv = _imitation_loss(fns.dec, fns.dec_adv, of("dec"), of("dec_adv"),
                                   flat.questions, flat.human_reply, flat.asked_human,
                                   human.reply_vocab_mask(task))
    comb, comb_adv = _imitation_loss(fns.comb, fns.comb_adv, of("comb"), of("comb_adv"),
                                     flat.combine_inputs, flat.human_combined, flat.combined_human)
    total = total + dec + dec_adv + comb + comb_adv
    out.update(dec_loss=dec, dec_adv_loss=dec_adv, comb_loss=comb, comb_adv_loss=comb_adv)
  return total, out


def adversarial_roots(key: jax.Array, fns: Fns, params: dict[str, PyTree], candidates: jax.Array,
                      num: int, policy: Policy) -> jax.Array:
  """`num` of the candidate roots (n, Lq) without replacement, P ∝ exp(-S/T) by Gumbel-top-k on
  the policy's scores S of M's answers (`amplify.policy_scores`: Adv's, M's confidence, or the
  blind constant, i.e. uniform): the questions expected to be answered worst   -> (num, Lq)."""
  logits = fns.m(params["m"], candidates)
  scores = policy_scores(policy, fns.adv(params["adv"], (candidates, jax.nn.softmax(logits))),
                         logits, jnp.ones(candidates.shape[:1], bool))
  g = jax.random.gumbel(key, scores.shape)
  return candidates[jax.lax.top_k(-scores / policy.temperature + g, num)[1]]


def supervised_loss(params: dict[str, PyTree], task: Task, fns: Fns, questions: jax.Array
                    ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """M's cross-entropy on the true answers."""
  loss = -jnp.mean(models.quality(fns.m(params["m"], questions), task.solve(questions)))
  return loss, dict(m_loss=loss)


def targeting(task: Task, tree: Tree) -> dict[str, jax.Array]:
  """Where the recursions went (measured against true answers, for reporting only):
  recursed_on_error, the share of recursed-on subquestions M answers wrongly, against
  subq_error, the share among all subquestions of asked questions (the rate a blind choice
  gets)."""
  m_wrong = ~jnp.all(tree.model_answers == task.solve(tree.questions), -1)
  sub = tree.valid & (jnp.arange(tree.valid.shape[-1]) > 0)
  recursed = tree.expanded & sub
  share = lambda m: jnp.sum(m & m_wrong) / jnp.maximum(jnp.sum(m), 1)
  return dict(recursed_on_error=share(recursed), subq_error=share(sub))


fold_keys = jax.jit(jax.vmap(jax.random.fold_in, (0, None)))  # keys (S,), int -> keys (S,)
History = dict[str, np.ndarray]  # name -> (num_evals, num_seeds)


def stack_rows(rows: Sequence[dict[str, np.ndarray]], num_seeds: int) -> History:
  """Evaluation rows {name: (num_seeds,)} as a history; nan where a row lacks a name."""
  nan = np.full(num_seeds, np.nan)
  names = dict.fromkeys(k for row in rows for k in row)
  return {k: np.stack([row.get(k, nan) for row in rows]) for k in names}


def unstack_rows(history: History) -> list[dict[str, np.ndarray]]:
  """Inverse of `stack_rows` (up to the nan fill): one row per evaluation."""
  num_evals = len(next(iter(history.values()))) if history else 0
  return [{k: np.asarray(v[i]) for k, v in history.items()} for i in range(num_evals)]


class Learner(NamedTuple):
  """Everything that changes during training (one seed; a vmap adds a leading axis)."""
  params: dict[str, PyTree]
  opt_state: PyTree
  calls: Calls       # cumulative human calls
  step: jax.Array


def pick_rate(wrong: jax.Array, scores: jax.Array, where: jax.Array) -> jax.Array:
  """Over the rows where exactly one of two subquestions is wrong, the share whose wrong one has
  the lower score (0.5 is chance; nan when there are none).
  wrong (n, 2) bool, scores (n, 2), where (n,) bool -> ()"""
  one_wrong = where & (wrong.sum(-1) == 1)
  picked = jnp.take_along_axis(wrong, jnp.argmin(scores, -1)[:, None], -1)[:, 0]
  n = jnp.sum(one_wrong)
  return jnp.where(n > 0, jnp.sum(picked & one_wrong) / jnp.maximum(n, 1), jnp.nan)


def evaluate(params: dict[str, PyTree], task: Task, fns: Fns, questions: jax.Array
             ) -> dict[str, jax.Array]:
  """M's exact-match accuracy on questions (n, Lq), and how often Adv points at M's mistake.

  adv_pick: over questions whose two (human) subquestions M gets exactly one wrong, the share
  where the wrong one has the lower Adv score (`pick_rate`); conf_pick: the same for M's own
  confidence (log-probability of its answer), the baseline Adv has to beat; one_wrong: the
  share of questions with exactly one wrong subquestion (what there is to find).
  """
  chex.assert_rank(questions, 2)
  acc = jnp.mean(jnp.all(models.decode(fns.m(params["m"], questions)) == task.solve(questions), -1))
  inner = ~task.is_base(questions)
  subs = jnp.stack(task.decompose(questions), axis=1)             # (n, 2, Lq)
  logits = fns.m(params["m"], subs)
  wrong = ~jnp.all(models.decode(logits) == task.solve(subs), -1)  # (n, 2)
  score = fns.adv(params["adv"], (subs, jax.nn.softmax(logits)))
  confidence = models.quality(logits, models.decode(logits))
  return dict(accuracy=acc, adv_pick=pick_rate(wrong, score, inner),
              conf_pick=pick_rate(wrong, confidence, inner),
              one_wrong=jnp.mean(inner & (wrong.sum(-1) == 1)))


class Trainer:
  """Jitted training of one static configuration (task, models, method shape), seeds in parallel.

  `run(keys, method, num_steps, eval_every, eval_questions, callback)` returns a history of
  arrays (num_evals, num_seeds): step, calls, accuracy, adv_pick and the losses; it can resume
  from, and save, (learners, history) after every chunk of eval_every steps.
  """

  def __init__(self, task: Task, *, imitate: bool, batch_size: int, learning_rate: float,
               hidden: Sequence[int], critic_hidden: Sequence[int],
               imitator_hidden: Sequence[int] | None = None, adv_reads: str = "distribution",
               shared: bool = False, fast_compile: bool = False):
    if batch_size < 1:
      raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not learning_rate > 0:
      raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    if imitate and task.rounds > 1:
      raise ValueError(f"task {task.name!r} needs the step-5 loop (rounds={task.rounds}), which "
                       "has no imitators (no combine imitator returns subquestions): methods "
                       "with distillation or H′ cannot run on it")
    self.task, self.imitate, self.batch_size = task, imitate, batch_size
    self.optimizer = optax.adam(learning_rate)
    opts = compiler_options(fast_compile)
    self.fns, self._init_params = models.build_models(
        task, hidden=hidden, critic_hidden=critic_hidden, imitate=imitate,
        imitator_hidden=imitator_hidden, adv_reads=adv_reads, shared=shared,
        compiler_options=opts)
    self._chunk = jax.jit(self._chunk_impl, static_argnums=(4, 5, 6, 7, 8, 9),
                          compiler_options=opts)
    self._eval = jax.jit(jax.vmap(lambda p, q: evaluate(p, task, self.fns, q), (0, None)),
                         compiler_options=opts)

  def init(self, key: jax.Array) -> Learner:
    params = self._init_params(key)
    return Learner(params, self.optimizer.init(params), human.no_calls(), jnp.zeros((), jnp.int32))

  def like(self, seed_keys: jax.Array) -> Learner:
    """Shapes and dtypes of the vmapped learners of `init` for seed_keys (nothing compiled)."""
    params = self._init_params.eval_shape(seed_keys[0])
    one = jax.eval_shape(lambda p: Learner(p, self.optimizer.init(p), human.no_calls(),
                                           jnp.zeros((), jnp.int32)), params)
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct((len(seed_keys), *s.shape), s.dtype), one)

  def step(self, learner: Learner, key: jax.Array, policy: Policy, alpha: jax.Array, *,
           supervised: bool, use_distill: bool, cap: int | None = None, root_pool: int = 1
           ) -> tuple[Learner, dict[str, jax.Array]]:
    """One update from a fresh batch of root questions (Adv's picks from root_pool × the batch
    when root_pool > 1); the losses see the first `cap` asked nodes of each tree (all when
    None)."""
    task, fns, b = self.task, self.fns, self.batch_size
    k_q, k_amp, k_dq, k_d = jax.random.split(key, 4)
    params = learner.params
    roots = task.sample(k_q, b * root_pool)
    if root_pool > 1:
      roots = adversarial_roots(jax.random.fold_in(k_q, 1), fns, jax.lax.stop_gradient(params),
                                roots, b, policy)
    if supervised:
      loss_fn = lambda p: supervised_loss(p, task, fns, roots)
      spent = human.Calls(jnp.int32(b), jnp.int32(0))  # one oracle label per question
    else:
      frozen = jax.lax.stop_gradient(params)
      tree = rounds.amplify_any_batch(k_amp, task, fns, frozen, roots, policy, alpha)
      dtree = (distill(k_d, task, fns, frozen, task.sample(k_dq, b, all_levels=True))
               if use_distill else None)
      loss_fn = lambda p: tree_losses(p, task, fns, tree if cap is None else asked_first(tree, cap),
                                      dtree)
      spent = jax.tree.map(jnp.sum, tree.calls)
    (_, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    aux = dict(aux, alpha=jnp.asarray(alpha, jnp.float32),
               calls_per_question=spent.total.astype(jnp.float32) / b,
               **({} if supervised else targeting(task, tree)))
    updates, opt_state = self.optimizer.update(grads, learner.opt_state, params)
    calls = jax.tree.map(jnp.add, learner.calls, spent)
    return Learner(optax.apply_updates(params, updates), opt_state, calls, learner.step + 1), aux

  def _chunk_impl(self, learner, keys, policy, alphas, num, anneal_steps, supervised,
                  use_distill, cap, root_pool):
    """`num` steps of every seed's learner (leading axis of learner and keys)."""

    def one_seed(lr, key):
      def body(lr, k):
        alpha = alpha_at(lr.step, alphas, anneal_steps)
        return self.step(lr, k, policy, alpha, supervised=supervised, use_distill=use_distill,
                         cap=cap, root_pool=root_pool)

      lr, aux = jax.lax.scan(body, lr, jax.random.split(key, num))
      return lr, jax.tree.map(jnp.mean, aux)

    return jax.vmap(one_seed)(learner, keys)

  def run_chunk(self, learner: Learner, keys: jax.Array, method: Method, num: int,
                anneal_steps: int) -> tuple[Learner, dict[str, jax.Array]]:
    """`num` steps of every seed's learner by `method` (one compiled chunk; keys (S,))."""
    # One-path rules ask few nodes per tree: the losses need look at no others.
    cap = rounds.max_one_path(self.task) if method.rule in ONE_PATH else None
    return self._chunk(learner, keys, method.policy, method.alphas, num, anneal_steps,
                       method.rule == "supervised", method.distill, cap, method.root_pool)

  def run(self, seed_keys: jax.Array, method: Method, num_steps: int, eval_every: int,
          eval_questions: jax.Array, callback: Callable[[int, dict[str, np.ndarray]], Any] | None
          = None, *, anneal_steps: int | None = None,
          restore: Callable[[Learner], tuple[Learner, History] | None] | None = None,
          save: Callable[[Learner, History], Any] | None = None, return_learner: bool = False
          ) -> History | tuple[History, Learner]:
    """Train len(seed_keys) independent learners; evaluate every `eval_every` steps.

    α follows a schedule of `anneal_steps` steps (default num_steps).  `restore(like)` (like:
    `self.like(seed_keys)`) may return (learners, history) saved after a chunk: training goes on
    from its step exactly as an uninterrupted run would (keys fold in the step), its rows are
    replayed to `callback`.  `save(learners, history)` is called after every chunk.  With
    return_learner, the final learners (a leading seed axis) come back beside the history.
    """
    if method.imitate and not self.imitate:
      raise ValueError(f"method {method.name!r} needs imitators; build the Trainer with "
                       "imitate=True")
    if method.shared != self.fns.shared:
      raise ValueError(f"method {method.name!r} has shared={method.shared}; build the Trainer "
                       f"with shared={method.shared}")
    if num_steps < 1 or eval_every < 1 or num_steps % eval_every:
      raise ValueError("num_steps must be a positive multiple of eval_every (one compiled chunk), "
                       f"got {num_steps}, {eval_every}")
    anneal_steps = num_steps if anneal_steps is None else int(anneal_steps)
    if anneal_steps < 1:
      raise ValueError(f"anneal_steps must be >= 1, got {anneal_steps}")
    rows = []

    def record(learner, aux):
      ev = jax.device_get(self._eval(learner.params, eval_questions))
      row = dict(step=np.asarray(learner.step), calls=np.asarray(learner.calls.total),
                 **{k: np.asarray(v) for k, v in {**ev, **jax.device_get(aux)}.items()})
      rows.append(row)
      if callback is not None:
        callback(int(row["step"][0]), row)

    resumed = None if restore is None else restore(self.like(seed_keys))
    if resumed is None:
      learner = jax.vmap(self.init)(fold_keys(seed_keys, 0))
      record(learner, {})
    else:
      # As host arrays, uncommitted like fresh ones: the jitted chunk is not compiled again.
      learner = jax.tree.map(jnp.asarray, jax.device_get(resumed[0]))
      rows = unstack_rows(resumed[1])
      _check_resumed(learner, rows, num_steps, eval_every)
      for row in rows:
        if callback is not None:
          callback(int(row["step"][0]), row)
    done = int(rows[-1]["step"][0])
    while done < num_steps:
      learner, aux = self.run_chunk(learner, fold_keys(seed_keys, 1 + done), method, eval_every,
                                    anneal_steps)
      done += eval_every
      record(learner, aux)
      if save is not None:
        save(learner, stack_rows(rows, len(seed_keys)))
    history = stack_rows(rows, len(seed_keys))
    return (history, learner) if return_learner else history


def _check_resumed(learner: Learner, rows: Sequence[dict[str, np.ndarray]], num_steps: int,
                   eval_every: int) -> None:
  """Raises ValueError unless a resumed (learners, rows) is one after a chunk, ≤ num_steps."""
  step = np.asarray(jax.device_get(learner.step))
  steps = [int(row["step"][0]) for row in rows]
  if steps != list(range(0, eval_every * len(rows), eval_every)) or np.any(step != steps[-1]):
    raise ValueError(f"resumed state is inconsistent: learners at step {step}, history at steps "
                     f"{steps} (eval_every={eval_every})")
  if steps[-1] > num_steps:
    raise ValueError(f"resumed state is at step {steps[-1]}, past num_steps={num_steps}")
