"""Config of the conjunction experiment (DESIGN §6, issue 6).  Presets: smoke (< 60 s on 2 CPU
cores), default (a few minutes).

  python3 -m experiments.conjunction --config=experiments/configs/conjunction.py:smoke --workdir=DIR

Rerunning a command on its workdir computes only the rows it lacks.  The sweeps whose values
are rows (smooth.kernels, lengthscales, ns, num_seeds; debater.ms, exchangeable_ms,
exchangeable_orders) may grow there; any other change is refused (a fresh --workdir runs it).
`pad_to` is the statement count every n is padded to (one compiled shape, and the random
numbers of a row): ns / ms may grow up to it; raising it changes every row.
"""

import ml_collections


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0

  s = c.smooth = ml_collections.ConfigDict()
  s.kernels = ("se", "matern12", "decoder")
  s.lengthscales = (0.05, 0.2)  # decoder: sharpness of its tanh features (see smooth.kernel_corr)
  s.ns = (4, 8, 16, 32, 64, 128)  # statements on one latent path of fixed length: denser with n
  s.pad_to = 128  # every n padded to this (with certain statements): >= max(ns)
  s.windows = (1, 2, 4, 8)  # the w-neighbour estimates
  s.num_seeds = 3  # seeds draw P(A_i) ~ U(p_low, p_high) and the decoder's weights
  s.p_low, s.p_high = 0.85, 0.97
  s.path_length, s.latent_dim = 1.0, 2
  s.max_exact_n = 16  # exact max-ent by enumeration up to here
  s.max_lp_n = 10  # sharp LP bounds up to here
  s.truth_samples = 8192  # GHK samples for P(all true)
  s.window_samples = 2048  # GHK samples per window conditional
  s.cutoff_tol = 0.05  # nats: w* is the smallest w with |error| below this

  d = c.debater = ml_collections.ConfigDict()
  d.kernel, d.lengthscale = "se", 0.2
  d.p_low, d.p_high = 0.85, 0.97
  d.path_length, d.latent_dim = 1.0, 2
  d.ms = (3, 4, 6, 8, 10, 12, 14, 16)  # exact pricing (the global worst case) up to 16
  d.pad_to = 16  # every m padded to this for the truth and the initial worlds: >= max(ms)
  d.num_rounds = 60  # the debater's budget: master LPs per direction
  d.init_worlds = 256  # honest worlds the debater starts from
  d.truth_samples = 16384
  d.max_exact_n = 16
  d.exchangeable_q = 0.95
  d.exchangeable_ms = (3, 5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200)
  d.exchangeable_orders = (1, 2, 3, 4)

  preset = preset or "default"
  if preset == "smoke":
    s.kernels, s.lengthscales, s.ns, s.windows = ("se", "matern12"), (0.2,), (4, 8, 16), (1, 2)
    s.pad_to = 16
    s.num_seeds, s.max_exact_n, s.max_lp_n = 2, 8, 6
    s.truth_samples, s.window_samples = 4096, 1024
    d.ms, d.num_rounds, d.init_worlds, d.truth_samples = (3, 4, 6), 20, 64, 4096
    d.pad_to = 6
    d.exchangeable_ms, d.exchangeable_orders = (3, 5, 10, 20, 30, 50), (1, 2, 3)
  elif preset != "default":
    raise ValueError(f"unknown preset {preset!r}; choose smoke or default")
  c.preset = preset
  return c
