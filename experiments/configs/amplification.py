"""Config of the amplification-with-an-adversary experiment (DESIGN §7, issues 7 and 15).
Presets: smoke (< 60 s on 2 CPU cores), default (≤ 10 min on 2 cores), full.

Tasks: the uneven-difficulty ones, where M's errors on one subquestion persist (chain: a trivial
first element plus the hard remainder; lookup: Zipf-distributed keys of a fixed table, rare
keys stay wrong; pooled: a lookup whose keys come from 16 common and thousands of rare ones, so
a rare key M has not learnt sits in either half of a fifth of the questions; mixed: a balanced
expression whose ops make some halves irrelevant), one that needs the post's step-5 loop
(chase: T**k(x) through a fixed permutation; the second leg is a new subquestion returned by the
combine of the first), and the uniform-difficulty contrast (sum: Σ mod m in halves; perm:
permutation powering).  Methods with imitators (iterate, iterate_shared) do not run on chase,
and the real-error search neither: the report says so.

  python3 -m experiments.amplification --config=experiments/configs/amplification.py:smoke \
      --workdir=/tmp/amp [--config.num_seeds=5 ...]

A workdir's checkpoints belong to one run identity: the whole config except num_steps.  Raising
num_steps (e.g. --config.num_steps.sum=4000) extends a run from its last checkpoint; the α
schedules follow anneal_steps, not num_steps, so extending changes no earlier step.  Any other
change (anneal_steps included) is refused with the keys that differ.
"""

import ml_collections

# adversary/random/always: amplification, one recursion per asked question chosen by Adv's
# Gumbel-max, uniformly, or both; adversary_cold: the same at a low temperature; supervised:
# true answers at one call each (upper anchor); coin: the comment thread's zero/one/two
# recursions with annealed α; iterate: adversary with distillation, then H′ swaps in the models
# (imitators, M) where Adv clears α.  The controls: confidence / confidence_coin (M's own
# confidence as the score), blind_coin (the coin's schedule, a constant score per tree).  Adv
# itself: adversary_answer (Adv reads only M's answer), adversary_roots (Adv picks the roots;
# its control confidence_roots: M's confidence picks roots and subquestions),
# adversary_w<w> (Adv at width w, for each w in adv_widths); iterate_shared: iterate with the
# post's shared-parameter form (the imitators are M and Adv called on a transformed input).
CORE = ("adversary", "random", "confidence", "coin", "blind_coin", "confidence_coin",
        "adversary_answer", "always", "supervised")
METHODS = CORE + ("adversary_roots", "confidence_roots", "adversary_cold", "iterate",
                  "iterate_shared")


# Default training steps per task kind, from pilots (BUILD_NOTES): where random reaches 0.8
# (chain) or every method's accuracy has flattened (lookup, mixed).
STEPS = dict(chain=1000, lookup=2000, pooled=2000, mixed=2000, chase=1000, sum=2000, perm=400)


def _set_steps(c: ml_collections.ConfigDict, n: int) -> None:
  """num_steps and anneal_steps of every task kind to n."""
  for kind in c.num_steps:
    c.num_steps[kind] = c.anneal_steps[kind] = n


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.num_seeds = 3
  c.prng_impl = "rbg"        # jax.random key implementation (rbg compiles far faster on CPU)
  c.fast_compile = False     # XLA options that trade run speed for compile speed
  c.tasks = "chain,lookup,mixed"
  c.chain = ml_collections.ConfigDict(dict(m=3, length=6))      # Σ of 6 mod 3, peeled one by one
  c.lookup = ml_collections.ConfigDict(dict(m=5, log2_len=2, num_keys=128, zipf_a=1.0,
                                            table_seed=0))      # Σ of 4 table values mod 5
  # T[k1] + T[k2] mod 5, each key from 16 common keys (90% of draws) or 4,080 rare ones (each
  # drawn ~3 times in 2,000 steps): 19% of questions hold a rare key that M keeps getting wrong
  c.pooled = ml_collections.ConfigDict(dict(m=5, log2_len=1, num_keys=4096, common_keys=16,
                                            common_share=0.9, table_seed=0))
  c.mixed = ml_collections.ConfigDict(dict(m=5, log2_len=2, p_easy=0.5))  # 4 leaves, 3 ops
  c.chase = ml_collections.ConfigDict(dict(n=128, max_steps=8, table_seed=0))  # T**8(x), |T| = 128
  c.sum = ml_collections.ConfigDict(dict(m=3, log2_len=3))      # Σ of 8 numbers mod 3
  c.perm = ml_collections.ConfigDict(dict(n=4, max_power=8))    # p**k, p ∈ S_4, k ≤ 8
  c.methods = ",".join(CORE)
  c.adv_widths = ()          # Adv's size sweep: methods adversary_w<w> (critic_hidden's depth)
  c.num_steps = ml_collections.ConfigDict(STEPS)  # per task kind
  # Length of the α schedules (coin's anneal, iterate's warm-up fraction), per task kind; after
  # it α stays at its end value.  Set equal to num_steps in every preset; kept when num_steps is
  # raised to extend a run (it is part of the run identity, num_steps is not).
  c.anneal_steps = ml_collections.ConfigDict(STEPS)
  c.eval_every = 100
  c.batch_size = 32          # root questions per step
  c.num_eval = 1000          # held-out questions (fresh, of the training distribution)
  c.learning_rate = 3e-3
  c.hidden = (128, 128)      # M
  c.critic_hidden = (64, 64) # Adv
  c.imitator_hidden = (64,)  # the decompose and combine imitators and their adversaries
  c.temperature = 0.5        # Boltzmann temperature of every Gumbel choice (nats) …
  c.cold_temperature = 0.05  # … except adversary_cold's
  c.alpha = -0.3             # iteration's confidence threshold on Adv's score (log-prob)
  c.iterate_warmup = 0.5     # iterate: fraction of anneal_steps of plain amplification first
  c.coin_alpha_start = 0.0   # coin: α annealed linearly over anneal_steps from here …
  c.coin_alpha_end = -0.5    # … to here
  c.target_accuracy = 0.8    # the table reports human calls to first reach this accuracy …
  c.target_accuracy_high = 0.95  # … and this one

  # Transparency with the real adversary: each listed method's trained Adv searches its own M's
  # trees (num_trees questions of every level per seed) for M's real errors.
  c.real_errors = ml_collections.ConfigDict(dict(methods="adversary", num_trees=1000))

  c.transparency = ml_collections.ConfigDict()
  c.transparency.tasks = "perm,sum"
  c.transparency.sum = ml_collections.ConfigDict(dict(m=3, log2_len=5))
  c.transparency.perm = ml_collections.ConfigDict(dict(n=4, max_power=32))
  c.transparency.num_trees = 400     # per seed
  c.transparency.critic_steps = 2000
  c.transparency.critic_batch = 128
  c.transparency.critic_hidden = (256, 256)
  c.transparency.at = "leaf"         # where the error is planted: 'leaf' or 'any'

  preset = preset or "default"
  if preset == "smoke":
    c.num_seeds, c.eval_every, c.batch_size, c.num_eval = 2, 20, 16, 200
    _set_steps(c, 40)
    c.hidden, c.critic_hidden, c.imitator_hidden = (32,), (16,), (16,)
    c.fast_compile = True
    c.tasks = "chain"
    c.chain.length, c.sum.log2_len = 4, 2
    c.transparency.tasks = "perm"
    c.transparency.perm.max_power = 8
    c.transparency.num_trees, c.transparency.critic_steps = 100, 50
    c.real_errors.num_trees = 200
    c.transparency.critic_hidden = (32,)
  elif preset == "full":
    c.num_seeds, c.eval_every, c.batch_size = 5, 250, 64
    _set_steps(c, 6000)
    c.tasks = "chain,lookup,pooled,mixed,chase,sum,perm"
    c.methods, c.adv_widths = ",".join(METHODS), (16, 256)
    c.pooled.num_keys = 24576  # each rare key still drawn ~3 times in 6,000 steps of 64
    c.real_errors.methods = "adversary,adversary_answer"
    c.hidden, c.critic_hidden, c.imitator_hidden = (256, 256), (128, 128), (128, 128)
    c.sum.log2_len, c.perm.n, c.perm.max_power = 3, 5, 16
    c.transparency.perm.max_power = 64
    c.transparency.critic_steps = 20000
  elif preset != "default":
    raise ValueError(f"unknown preset {preset!r}; choose smoke, default or full")
  c.preset = preset
  return c
