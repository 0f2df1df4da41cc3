"""Config of the benchmarks (`python -m experiments.bench`).  Presets: quick (< 3 min on 2 CPU
cores; the test suite runs its log Z and tracking parts, and training, memory and scaling under
`-m slow`, so the benchmarks never rot), default (the figures in BUILD_NOTES; its
tracking_network part is sized for a GPU) and cpu (tracking_network cut to what 2 cores run in
about an hour).  `--quick` is short for `--config=experiments/configs/bench.py:quick`."""

import ml_collections
from ml_collections.config_dict import placeholder

BENCHMARKS = ("logz", "multimodal", "coverage", "tracking", "tracking_feedback", "training",
              "scaling", "memory", "tracking_network", "logz_network")


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # a comma-separated subset; tracking_network (GPU-sized at this preset) and logz_network run
  # when named
  c.benchmarks = ",".join(b for b in BENCHMARKS if b not in ("tracking_network", "logz_network"))
  # 1. log Z accuracy against compute, ours beside BlackJAX (same N, MCMC steps, target ESS)
  # targets with an exact log Z (experiments/bench/problems.py): the quadratic, a mixture of
  # unequal bumps, a spike-and-slab phase transition
  c.targets = "quadratic,mixture,spike_slab"
  c.dims = (100, 1000, 10000)
  c.lams = (1.0, 100.0, 1000.0)
  c.particles = (64, 256)
  c.methods = "smc,smc_diag,smc_laplace,blackjax,naive,laplace"  # also 'ais' (64 fixed steps)
  c.mcmc_steps = 8
  c.target_ess = 0.9
  c.repeats = 10
  # d >= large.dim: only these budgets and repeats (a d = 10⁴ run at λ = 10³ takes minutes)
  c.large = ml_collections.ConfigDict(dict(dim=10000, particles=(64,), repeats=3))
  # ... and on the multimodal / phase-transition targets, with nested sampling (ours: BlackJAX's
  # nss; the peer: jaxns, `pip install -e '.[bench]'`) beside the tempered SMCs
  c.multimodal = ml_collections.ConfigDict(dict(
      targets="mixture,spike_centred,spike_slab", dims=(10, 50), lams=(10.0, 100.0),
      particles=(256,), methods="smc,smc_diag,blackjax,ns,ns_plain,jaxns", mcmc_steps=8,
      target_ess=0.9, repeats=10, large=ml_collections.ConfigDict(dict(
          dim=50, particles=(256,), repeats=5))))
  # ... are the SMC's error bars honest (experiments/bench/coverage.py)?  cells
  # 'target:d:lambda'; B = 1 (one run) and B > 1 independent batches of N/B particles
  c.coverage = ml_collections.ConfigDict(dict(
      cells=("quadratic:50:100", "quadratic:200:1000", "quadratic:1000:1000", "mixture:50:10",
             "mixture:50:100", "spike_slab:50:10"),
      batches=(1, 4), particles=256, repeats=50, seed=0))
  # ... and the tracking estimator against fresh SMC of equal accuracy
  c.tracking = ml_collections.ConfigDict(dict(
      dim=1000, lam=100.0, rank=32, metric_rank=40, num_particles=256, mcmc_steps=2,
      init_mcmc_steps=16, num_steps=100, fresh_particles=(64, 128, 256, 512, 1024),
      fresh_repeats=3))
  # ... and whether a tracker drifts because its own ∇ chose the step (closed-form quadratic;
  # experiments/bench/tracking_feedback.py): θ₁ descends pull·‖θ₁‖²/2 + log Z plus a fixed walk
  c.tracking_feedback = ml_collections.ConfigDict(dict(
      paths="exact,noise,own", dim=500, lam=10.0, num_particles=8, mcmc_steps=2,
      precondition="diag", num_steps=300, lr=0.05, pull=2.0, walk=0.03, seed=0))
  # 2. training overhead over plain SGD (honest-QA model at that config's preset)
  c.training = ml_collections.ConfigDict(dict(preset="default", particles=(8, 32), num_steps=150,
                                              eval_every=10, theta2_steps=(1, 10),
                                              update_rules=("alternating", "simultaneous"),
                                              target_fraction=0.9))
  # 3. scaling over devices (subprocesses)
  # x64: float64 workers, where every layout must give the same log Z (float32 is what is timed)
  c.scaling = ml_collections.ConfigDict(dict(devices=(1, 2, 4, 8), multiprocess=True, dim=2000,
                                             num_particles=512, steps=10, x64=False))
  # 4. memory (compile-only analyses; `measure` runs (N, d) in a fresh process)
  c.memory = ml_collections.ConfigDict(dict(
      particles=(64, 256, 1024), dims=(1000, 10000, 100000), measure=((256, 100000),),
      budget_gib=24.0, fit_particles=(256,)))
  # 5. the tracked log Z and ∇θ₁ log Z on the honest-QA network during training, against two
  # independent fresh SMC references (experiments/bench/tracking_network.py)
  c.tracking_network = ml_collections.ConfigDict(dict(
      preset="default", lams=(10.0, 100.0, 1000.0), kappas=(0.1, 0.3, 1.0), partitioned=True,
      partitioned_lam=10.0, num_steps=1500, compare_every=300, ref_particles=1024,
      ref_max_particles=4096, ref_mcmc_steps=8, ref_check_mcmc_steps=32, min_cosine=0.9,
      replay=False,  # also replay each trained θ₁ path with an independent tracker (feedback?)
      # overrides of the main job's trainer where set (frontier points, e.g.
      # --config.tracking_network.train.num_particles=32)
      train=ml_collections.ConfigDict(dict(
          num_particles=placeholder(int), num_mcmc_steps=placeholder(int),
          max_moves=placeholder(int), jump_target=placeholder(float),
          max_substeps=placeholder(int), transport=placeholder(str),
          logz=placeholder(str), fresh_every=placeholder(int), on_cap=placeholder(str),
          logz_check_every=placeholder(int), logz_check_policy=placeholder(str),
          logz_check_particles=placeholder(int), logz_check_mcmc_steps=placeholder(int)))))
  # 6. every log Z estimator on the honest-QA network's own energy, at θ₁ where training starts
  # and after train_steps two-heads steps, against agreeing fresh SMC references
  # (experiments/bench/logz_network.py)
  c.logz_network = ml_collections.ConfigDict(dict(
      preset="default", lams=(10.0, 100.0), train_steps=300, particles=256, mcmc_steps=8,
      target_ess=0.9, repeats=3, methods="smc,smc_diag,smc_laplace,auto,smc_modes,laplace,ns",
      ref_particles=1024, ref_max_particles=4096, ref_mcmc_steps=8, ref_check_mcmc_steps=32,
      min_cosine=0.9))
  preset = preset or "default"
  if preset == "cpu":  # what a 2-core machine can run in about an hour
    c.benchmarks = "tracking_network"
    c.tracking_network.update(lams=(10.0, 100.0), kappas=(0.3,), num_steps=200,
                              compare_every=50, ref_particles=256, ref_max_particles=1024)
  elif preset == "quick":
    c.dims, c.lams, c.particles, c.repeats = (100,), (10.0,), (64,), 2
    c.targets = "quadratic"
    c.methods = "smc,blackjax,naive,laplace"
    c.multimodal.update(targets="spike_centred", dims=(10,), lams=(10.0,), particles=(200,),
                        methods="smc,ns,ns_plain", repeats=2)
    c.coverage.update(cells=("quadratic:20:10",), batches=(1, 4), particles=128, repeats=8)
    c.tracking.update(dim=100, metric_rank=16, num_particles=64, num_steps=10,
                      fresh_particles=(64, 256), fresh_repeats=2, init_mcmc_steps=8)
    c.tracking_feedback.update(dim=100, num_steps=40)
    c.training.update(preset="smoke", particles=(8,), num_steps=20, eval_every=5,
                      theta2_steps=(1,), update_rules=("simultaneous",))
    c.scaling.update(devices=(1, 2), multiprocess=True, dim=200, num_particles=64, steps=3,
                     x64=True)
    c.memory.update(particles=(64,), dims=(1000, 10000), measure=(), budget_gib=1.0,
                    fit_particles=(64,))
  elif preset != "default":
    raise ValueError(f"unknown preset {preset!r}; choose quick, cpu or default")
  c.preset = preset
  return c
