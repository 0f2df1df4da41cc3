"""Config of the learning-the-prior experiment (DESIGN §5, issue 5).  Presets: smoke (< 60 s on
2 CPU cores), default (≤ 10 min on 2 cores, 5 seeds), full.

  python3 -m experiments.learning_the_prior --config=experiments/configs/learning_the_prior.py:smoke \
      --workdir=/tmp/ltp [--config.ltp.prior_mode=learned ...]

Schedules do not follow num_steps: every preset sets ltp.anneal_steps (τ's annealing and the
learning-rate decays) to its own num_steps, so num_steps (and baseline.num_steps) may be raised
on a workdir to continue its runs from their checkpoints; other changes are refused there.
"""

import ml_collections


def ltp_config() -> ml_collections.ConfigDict:
  """The joint z / f step (lprior.ltp.train)."""
  return ml_collections.ConfigDict(dict(
      prior_mode="ratio",     # direct | ratio | learned (lprior.ltp.prior)
      restarts=1,             # starts per run (z_init, then N(0, I)); the best by J on D is kept
      z_init="zero",          # zero (centre of Mz's latent) | prior_mode
      tau_start=0.5,          # Mz's blur, annealed geometrically …
      tau_end=0.05,           # … to this over anneal_steps (also the length of the learning-
      anneal_steps=1000,      # rate decays; held after it); the presets set their num_steps
      f_input="hypothesis",   # what f reads: a hypothesis Z ~ Mz(·, z) | Mz's level probabilities
                              # (f imitates the mixture) | the latent z itself
      f_hidden=(64, 64),
      f_steps=4,              # f updates per z update
      f_batch=48,             # questions per f update …
      star_share=0.5,         # … this share from D*, the rest from D
      human_samples=4,        # hypotheses from Mz(·, latent) per question (the human's forecasts)
      neighbour_share=0.5,    # f_input 'hypothesis': share of them moved to a one-field neighbour
      perturb=0.3,            # f's latents: z + perturb·(τ/tau_start)·ε …
      prior_share=0.0,        # … and this share from N(0, I)
      lr_f=3e-3, lr_f_end=3e-4,
      z_warmup=100,           # z holds still while f learns around it
      lr_z=3e-2, lr_z_end=3e-3,
      z_b2=0.9,               # Adam's second-moment decay for z (short memory)
      z_batch=32,             # D examples per z update (drawn with replacement)
      z_samples=2,            # latents per z update (posterior: from q; MAP: z itself)
      prior_samples=1,        # hypotheses per latent for the gradient (each with its neighbours)
      sigma_init=0.3,         # q's initial standard deviation (posterior)
      g_hidden=(32,),         # the learned prior predictor …
      g_batch=16,             # … trained on this many human ratio judgments per step
      g_uniform_share=0.5,    # share of judged pairs drawn anywhere in Z (the rest near z)
      lr_g=3e-3,
      ratio_scale=10.0,       # the predictor works in units of this many nats
  ))


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.num_seeds = 5
  c.prng_impl = "rbg"        # jax.random key implementation (rbg compiles far faster on CPU)
  c.fast_compile = False     # XLA options that trade run speed for compile speed
  # spurious_soft / spurious_wrong: where the prior decides (a 20-nat background ban the data
  # overturn as |D| grows; a human sure of a wrong collar weight the method must follow)
  # synonyms / synonyms_indep: a Z too large to enumerate (2^512), with a prior from 2-way
  # judgments and its 1-way control
  c.tasks = "spurious,trend,spurious_soft,spurious_wrong,synonyms,synonyms_indep"
  c.sizes = (16, 32, 64, 128, 256)  # |D| of the data-efficiency curve …
  c.main_size = 256          # … and the one of the main table
  c.posterior_at_all_sizes = False  # the full posterior on the whole curve (else main_size only)
  c.n_pool = 512             # D* questions for training (f's questions, warm-up 2's forecasts)
  c.n_test = 1000            # held-out D* questions (with true answers)
  c.num_steps = 1000         # joint steps of learning the prior (may be raised on a workdir)
  c.eval_every = 500
  c.log_every = 10           # metrics (JSONL, TensorBoard, progress) every this many steps
  c.checkpoint_every = 1000
  c.eval_samples = 16        # latents from q for the posterior's predictions
  c.eval_batch = 16          # runs evaluated at once (memory: runs × n_test × eval_samples)
  c.compare_prior_modes = "learned"  # extra MAP runs at main_size with these modes …
  # … on these tasks ("" = every task): the learned predictor reads every field's one-hot
  # levels, which is neither cheap nor a fair model of a human judging 512 words
  c.compare_prior_modes_tasks = "spurious,trend,spurious_soft,spurious_wrong"
  c.warmup2 = ml_collections.ConfigDict(dict(
      forecasts=256,         # iid D* questions the human forecasts for warm-up 2
      human_reads=16))       # warmup2_reads: the human reads only this many examples of D
  c.baseline = ml_collections.ConfigDict(dict(
      hidden=(64, 64), lr=3e-3, weight_decay=1e-4, batch=64, num_steps=1000))
  c.ltp = ltp_config()
  c.ltp.anneal_steps = 1000  # = num_steps, as a value: raising num_steps keeps the schedule
  # per-task changes to c.ltp: the trend task has coordinate-wise local optima (growth rate and
  # ceiling trade off on D), so it gets a second start
  c.ltp_overrides = ml_collections.ConfigDict(dict(
      spurious=ml_collections.ConfigDict(), trend=ml_collections.ConfigDict(dict(restarts=2))))
  c.spurious = ml_collections.ConfigDict(dict(background_cost=1000.0, bg_shift=1.0, bg_noise=0.5))
  c.spurious_soft = ml_collections.ConfigDict(dict(background_cost=20.0, bg_shift=1.0,
                                                   bg_noise=0.5))
  c.spurious_wrong = ml_collections.ConfigDict(dict(background_cost=1000.0, bg_shift=1.0,
                                                    bg_noise=0.5, wrong_collar=True))
  c.trend = ml_collections.ConfigDict()
  # a Z too large to read whole (2^512 hypotheses): reviews of a few words each; the human's
  # prior over synonym sets from 2-way judgments (synonyms) or 1-way only (synonyms_indep)
  c.synonyms = ml_collections.ConfigDict(dict(num_sets=128, set_size=4, seen=2, reads=3,
                                              agree=0.9, strength=3.0, order=2, table_seed=0))
  c.synonyms_indep = c.synonyms.copy_and_resolve_references()
  c.synonyms_indep.order = 1
  c.ltp_overrides.synonyms = ml_collections.ConfigDict(dict(f_input="read"))
  c.ltp_overrides.synonyms_indep = ml_collections.ConfigDict(dict(f_input="read"))
  # the gold reference where Z cannot be enumerated (lprior.ltp.gibbs): block-Gibbs chains on
  # the human's posterior, pooled; coordinate ascent for maximum likelihood
  c.gold = ml_collections.ConfigDict(dict(chains=2, sweeps=300, burn=50, mle_sweeps=20))
  preset = preset or "default"
  if preset == "smoke":
    c.num_seeds, c.sizes, c.main_size = 2, (16, 64), 64
    c.tasks = "spurious,trend"
    c.n_pool, c.n_test, c.num_steps, c.eval_every, c.checkpoint_every = 128, 200, 60, 30, 60
    c.ltp.anneal_steps = 60
    c.log_every = 5
    c.warmup2.forecasts, c.baseline.num_steps = 64, 60
    c.compare_prior_modes = ""
    c.ltp.z_warmup, c.ltp.f_steps, c.ltp.f_hidden = 10, 2, (32,)
    c.ltp_overrides.trend.restarts = 1
    c.baseline.hidden = (32,)
    c.fast_compile = True
  elif preset == "full":
    c.num_seeds, c.sizes, c.main_size = 10, (16, 32, 64, 128, 256, 512), 256
    c.n_pool, c.n_test, c.num_steps, c.ltp.anneal_steps = 1024, 4000, 3000, 3000
    c.eval_every, c.checkpoint_every = 500, 1000
    c.compare_prior_modes = "direct,ratio,learned"
    c.posterior_at_all_sizes = True
    c.ltp.restarts = 2
    c.ltp_overrides.trend.restarts = 4
    c.ltp.f_hidden, c.ltp.f_steps, c.ltp.z_samples = (128, 128), 8, 4
    c.baseline.num_steps = 3000
  elif preset != "default":
    raise ValueError(f"unknown preset {preset!r}; choose smoke, default or full")
  c.preset = preset
  return c
