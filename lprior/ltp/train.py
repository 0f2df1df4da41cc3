"""Training steps for `lprior.train.fit`: the joint z / f (/ prior-predictor) step of learning
the prior, and the supervised step of the baselines.  Each is a pure
`step(state, data, step) -> (state, metrics)` for one run; the experiment vmaps it over
arms × data sizes × seeds.

What f reads (`f_input`):
  hypothesis  f(y | x, Z) for a hypothesis Z drawn from Mz(·, z) (one-hot levels): f imitates the
              human on concrete hypotheses, and the z-step ascends E_{Z ~ Mz(·,z)}[log Prior_H(Z) +
              Σ_D log f(y | x, Z)] with the Rao–Blackwellised estimator of `lprior.ltp.prior`
              (neighbour differences of f's log-likelihood next to the human's prior ratios).
              That objective is linear in Mz's probabilities, so it peaks at a single hypothesis.
  levels      f(y | x, z) reads Mz's per-field level probabilities and imitates the human's
              mixture forecast under Mz(·, z); the data term's gradient is autodiff through f.
  latent      the same with z itself as f's input.
  read        as hypothesis, for a human who reads a few fields per question (`Human.reads`):
              f reads x's entries at those fields and Z's levels there, and the data term's
              neighbour differences are computed only where an example reads
              (`prior.read_score_deltas`): what makes Z with hundreds of fields affordable.

One joint step (the seed's "train f in parallel with optimising Z*"):
  1. `f_steps` updates of f on questions x from D and D* (a `star_share` from D*) at latents near
     the current z (z + `perturb`·(τ/τ₀)·ε, a `prior_share` from N(0, I)); targets are the human's
     forecasts under hypotheses drawn from Mz(·, latent);
  2. (prior_mode 'learned') one update of the prior predictor on `g_batch` human ratio judgments
     of pairs (Z, Z′) near the current z (a `g_uniform_share` of them anywhere in Z);
  3. one ascent step on J (MAP) or the ELBO (posterior) from `z_warmup` on, on a minibatch of D.
Mz's blur τ is annealed from tau_start to tau_end.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

from lprior.ltp import decoder, objective, prior
from lprior.ltp import human as hm
from lprior.ltp.models import conditional, make_net, make_prior_net
from lprior.ltp.tasks import Task
from lprior.pytree import PyTree


class LTPData(NamedTuple):
  """One run's data: D (valid entries first, w = 1 on them, 0 on padding), D*'s questions, the
  arm (posterior 0: MAP, 1: full posterior) and the reference hypothesis of ratio-mode logs."""
  x: jax.Array       # (N, dx)
  y: jax.Array       # (N,)
  w: jax.Array       # (N,)
  x_star: jax.Array  # (N*, dx)
  posterior: jax.Array  # () float 0/1
  z_ref: jax.Array   # (K,) int


@flax.struct.dataclass
class LTPState:
  mu: jax.Array         # (K,) the latent (MAP) or q's mean
  log_sigma: jax.Array  # (K,) q's log std (unused by MAP)
  f_params: PyTree
  f_opt: Any
  z_opt: Any
  g_params: PyTree      # prior predictor ('learned'); {} otherwise
  g_opt: Any
  key: jax.Array
  queries: hm.Queries   # the human's queries so far, counted where they are made


def _check(cfg) -> None:
  prior.check_mode(cfg.prior_mode)
  for name in ("f_steps", "f_batch", "human_samples", "z_batch", "z_samples", "prior_samples"):
    if int(cfg[name]) < 1:
      raise ValueError(f"ltp.{name} must be >= 1, got {cfg[name]}")
  if not (cfg.tau_start > 0 and cfg.tau_end > 0):
    raise ValueError(f"ltp.tau_start and ltp.tau_end must be > 0, got {cfg.tau_start}, "
                     f"{cfg.tau_end}")
  if int(cfg.anneal_steps) < 1:
    raise ValueError(f"ltp.anneal_steps must be >= 1, got {cfg.anneal_steps} (the length of "
                     "the τ annealing and learning-rate decays, set by each preset)")


def tau_at(cfg, step: jax.Array) -> jax.Array:
  """Mz's blur at a step: geometric from tau_start to tau_end over anneal_steps, then held."""
  frac = jnp.clip(step / max(int(cfg.anneal_steps), 1), 0.0, 1.0)
  return cfg.tau_start * (cfg.tau_end / cfg.tau_start) ** frac


F_INPUTS = ("hypothesis", "levels", "latent", "read")
HYPOTHESIS_INPUTS = ("hypothesis", "read")  # f reads concrete hypotheses Z ~ Mz(·, z)


def f_input_dim(space, kind: str) -> int:
  """Width of what f reads besides x: 'hypothesis' and 'levels' K·L_max, 'latent' K."""
  if kind not in F_INPUTS:
    raise ValueError(f"unknown ltp.f_input {kind!r}; choose from {F_INPUTS}")
  return space.num_fields * (1 if kind == "latent" else space.max_levels)


def read_features(space, vals: jax.Array, levels: jax.Array) -> jax.Array:
  """f's input under 'read': x's entries at the read fields and the one-hot levels there
  ((..., s), (..., s) int) -> (..., s·(1 + L_max))."""
  onehot = jax.nn.one_hot(levels, space.max_levels)
  vals = jnp.broadcast_to(vals, levels.shape)
  return jnp.concatenate([vals[..., None], onehot], -1).reshape(*levels.shape[:-1], -1)


def read_net(task: Task, cfg):
  """f under 'read': an MLP on `read_features` (ValueError for a human who reads every field)."""
  human = task.human
  if not human.reads:
    raise ValueError(f"ltp.f_input 'read' needs a human who reads a few fields per question; "
                     f"task {task.name!r} reads them all")
  return make_net(human.reads * (1 + human.space.max_levels), human.family, cfg.f_hidden)


def f_features(space, z: jax.Array, tau, kind: str) -> jax.Array:
  """What f reads: 'hypothesis' the one-hot levels of int hypotheses (..., K); 'levels' Mz's
  per-field level probabilities q_k(l | z) of latents (..., K); 'latent' the latents."""
  if kind == "hypothesis":
    return jax.nn.one_hot(z, space.max_levels).reshape(*z.shape[:-1], -1)
  if kind == "latent":
    return z
  q = decoder.level_probs(space, z, tau)
  return q.reshape(*q.shape[:-2], -1)


def make_f(task: Task, cfg):
  """(init(key) -> params, f(params, x, z_or_Z, tau) -> prediction): f(y | x, ·) reading a
  hypothesis (f_input 'hypothesis': int levels (..., K)) or a latent (else: (..., K))."""
  space = task.human.space
  if cfg.f_input == "read":
    human, net = task.human, read_net(task, cfg)

    def f_read(p, x, z, tau):
      idx, vals = hm.read(human, x)
      zb = jnp.broadcast_to(z, idx.shape[:-1] + z.shape[-1:])
      return net.apply_fn(p, read_features(space, vals, jnp.take_along_axis(zb, idx, -1)))
    return net.init, f_read
  net = make_net(task.x_dim + f_input_dim(space, cfg.f_input), task.human.family, cfg.f_hidden)
  cond = conditional(net.apply_fn)
  return net.init, lambda p, x, z, tau: cond(p, x, f_features(space, z, tau, cfg.f_input))


def predictions(task: Task, cfg, f_apply, f_params, x: jax.Array, zs: jax.Array, eps: jax.Array,
                tau) -> jax.Array:
  """f's forecasts at latents zs (E, K), as an equal-weight mixture (E, n, P): at the hypotheses
  hard(z_e + τ ε_e) (f_input 'hypothesis'; eps (E, K)), or at the latents themselves."""
  if cfg.f_input in HYPOTHESIS_INPUTS:
    zs = decoder.hard(task.human.space, zs + tau * eps)
  return jax.vmap(lambda z: f_apply(f_params, x, z, tau))(zs)


def _optimizers(cfg):
  """f, z and prior-predictor optimisers; z's learning rate decays (cosine) to lr_z_end over
  anneal_steps after z_warmup, so that z* settles inside a cell once τ is small."""
  z_lr = optax.join_schedules(
      [optax.constant_schedule(cfg.lr_z),
       optax.cosine_decay_schedule(cfg.lr_z, max(int(cfg.anneal_steps) - int(cfg.z_warmup), 1),
                                   alpha=cfg.lr_z_end / cfg.lr_z)], [int(cfg.z_warmup)])
  f_lr = optax.cosine_decay_schedule(cfg.lr_f, max(int(cfg.anneal_steps) * int(cfg.f_steps), 1),
                                     alpha=cfg.lr_f_end / cfg.lr_f)
  # z's Adam forgets fast (b2): early gradients, taken while f and the fit were poor, are orders
  # of magnitude larger than late ones and would otherwise freeze z for hundreds of steps
  return optax.adam(f_lr), optax.adam(z_lr, b2=cfg.z_b2), optax.adam(cfg.lr_g)


def init_ltp(key: jax.Array, task: Task, cfg, z_init: jax.Array) -> LTPState:
  """Initial state: μ = z_init, σ = cfg.sigma_init, f and (learned) the prior predictor fresh."""
  _check(cfg)
  space = task.human.space
  f_init, _ = make_f(task, cfg)
  k_f, k_g, k_run = jax.random.split(key, 3)
  f_params = f_init(k_f)
  opt_f, opt_z, opt_g = _optimizers(cfg)
  if cfg.prior_mode == "learned":
    g_init, _ = make_prior_net(space.num_fields, space.max_levels, cfg.g_hidden)
    g_params = g_init(k_g)
  else:
    g_params = {}
  log_sigma = jnp.full_like(z_init, jnp.log(cfg.sigma_init))
  return LTPState(z_init, log_sigma, f_params, opt_f.init(f_params),
                  opt_z.init((z_init, log_sigma)), g_params, opt_g.init(g_params), k_run,
                  hm.no_queries())


def _take(key, data: LTPData, n: int) -> tuple[jax.Array, jax.Array]:
  """n indices of D drawn uniformly with replacement among its valid entries, and the weight
  n_valid / n that makes Σ over them unbiased for Σ over D."""
  n_valid = jnp.sum(data.w)
  idx = jnp.floor(jax.random.uniform(key, (n,)) * n_valid).astype(jnp.int32)
  return idx, n_valid / n


def make_ltp_step(task: Task, cfg):
  """step(state, data, step) -> (state, metrics) for one run (see the module docstring)."""
  _check(cfg)
  human, space, family = task.human, task.human.space, task.human.family
  _, f_tau = make_f(task, cfg)
  opt_f, opt_z, opt_g = _optimizers(cfg)
  mode = cfg.prior_mode
  by_hypothesis = cfg.f_input in HYPOTHESIS_INPUTS
  if mode == "learned":
    _, g_apply = make_prior_net(space.num_fields, space.max_levels, cfg.g_hidden)
  if cfg.f_input == "read":
    net = read_net(task, cfg)

  def sigma(state, data):
    return data.posterior * jnp.exp(state.log_sigma)

  def questions(key, data):
    k_d, k_s, k_c = jax.random.split(key, 3)
    b = cfg.f_batch
    idx_d, _ = _take(k_d, data, b)
    idx_s = jax.random.randint(k_s, (b,), 0, data.x_star.shape[0])
    star = jax.random.bernoulli(k_c, cfg.star_share, (b,))
    return jnp.where(star[:, None], data.x_star[idx_s], data.x[idx_d])

  def latents(key, state, data, tau, fields):
    """f's latents near z, one row per question, at `fields` (b, F) of each."""
    k_a, k_p, k_u, k_n = jax.random.split(key, 4)
    shape = fields.shape
    anchor = state.mu[fields] + sigma(state, data)[fields] * jax.random.normal(k_a, shape)
    lat = anchor + cfg.perturb * (tau / cfg.tau_start) * jax.random.normal(k_p, shape)
    broad = jax.random.bernoulli(k_u, cfg.prior_share, shape[:1])
    return jnp.where(broad[:, None], jax.random.normal(k_n, shape), lat)

  def f_update_read(carry, key, state, data, tau):
    """f_update for f_input 'read': only the fields each question reads are drawn (Mz is a
    product over fields, so this is the same distribution there), and the neighbour share
    moves one of those fields."""
    f_params, f_state, queries = carry
    k_q, k_l, k_z, k_b, k_o, k_v = jax.random.split(key, 6)
    x = questions(k_q, data)
    idx, vals = hm.read(human, x)                                          # (b, s)
    lat = latents(k_l, state, data, tau, idx)
    m = cfg.human_samples
    eps = jax.random.normal(k_z, lat.shape[:1] + (m,) + lat.shape[1:])
    hyps = decoder.hard_at(space, idx[:, None], lat[:, None] + tau * eps)  # (b, M, s)
    slot = jax.random.randint(k_o, hyps.shape[:2], 0, idx.shape[1])
    n = jnp.asarray(space.levels)[jnp.take_along_axis(idx, slot, 1)]     # (b, M)
    shift = 1 + jnp.floor(jax.random.uniform(k_v, n.shape) * (n - 1)).astype(jnp.int32)
    at = jnp.take_along_axis(hyps, slot[..., None], -1)[..., 0]
    moved = jnp.where(jnp.arange(idx.shape[1]) == slot[..., None],
                      ((at + shift) % n)[..., None], hyps)
    swap = jax.random.bernoulli(k_b, cfg.neighbour_share, hyps.shape[:2] + (1,))
    hyps = jnp.where(swap, moved, hyps)
    forecasts, queries = hm.ask_forecast_at(human, idx[:, None], hyps, vals[:, None], queries)
    target = family.target(forecasts[..., None, :])                        # (b, M, Q)
    feats = read_features(space, vals[:, None], hyps)
    loss, g = jax.value_and_grad(
        lambda p: jnp.mean(family.cross_entropy(target, net.apply_fn(p, feats))))(f_params)
    upd, f_state = opt_f.update(g, f_state, f_params)
    return (optax.apply_updates(f_params, upd), f_state, queries), loss

  def f_update(carry, key, state, data, tau):
    f_params, f_state, queries = carry
    k_q, k_l, k_z, k_b, k_o = jax.random.split(key, 5)
    b = cfg.f_batch
    x = questions(k_q, data)
    k_ = space.num_fields
    lat = latents(k_l, state, data, tau, jnp.broadcast_to(jnp.arange(k_), (b, k_)))
    hyps = decoder.sample(k_z, space, lat, tau, cfg.human_samples)       # (b, M, K)
    if by_hypothesis:  # a share of one-field neighbours: the z-step reads f there too
      flat = hyps.reshape(-1, k_)
      swap = jax.random.bernoulli(k_b, cfg.neighbour_share, (flat.shape[0], 1))
      hyps = jnp.where(swap, prior.ratio_pairs(k_o, space, flat), flat).reshape(hyps.shape)
    forecasts, queries = hm.ask_forecast(human, hyps, x[:, None, :], queries)  # (b, M, P)
    f = lambda p, xx, zz: f_tau(p, xx, zz, tau)
    if by_hypothesis:  # f(x, Z) against the human's forecast under Z itself
      xs = jnp.broadcast_to(x[:, None, :], hyps.shape[:2] + x.shape[-1:]).reshape(-1, x.shape[-1])
      target = family.target(forecasts.reshape(-1, 1, forecasts.shape[-1]))
      inputs = hyps.reshape(-1, k_)
    else:  # f(x, z) against the human's mixture forecast under Mz(·, z)
      xs, target, inputs = x, family.target(forecasts), lat
    loss, g = jax.value_and_grad(
        lambda p: objective.imitation_loss(f, p, xs, inputs, target, family))(f_params)
    upd, f_state = opt_f.update(g, f_state, f_params)
    return (optax.apply_updates(f_params, upd), f_state, queries), loss

  def deltas(state, hyps, queries):
    if mode == "learned":
      return prior.learned_deltas(g_apply, state.g_params, space, hyps, cfg.ratio_scale), queries
    return prior.human_deltas(human, hyps, mode, queries)

  def prior_level(state, hyps, z_ref):
    """What the optimiser can say about E log Prior_H at its hypotheses: absolute ('direct'),
    relative to z_ref ('ratio': the human's judgment; 'learned': the predictor's).  A logged
    diagnostic that steers nothing: it reads the simulated human without counting queries."""
    if mode == "direct":
      return jnp.mean(hm.log_prior(human, hyps))
    if mode == "ratio":
      return jnp.mean(hm.log_ratio(human, jnp.broadcast_to(z_ref, hyps.shape), hyps))
    return cfg.ratio_scale * jnp.mean(g_apply(state.g_params, hyps) - g_apply(state.g_params, z_ref))

  def step(state: LTPState, data: LTPData, step: jax.Array):
    key = jax.random.fold_in(state.key, step)
    k_f, k_z, k_eps, k_h, k_g = jax.random.split(key, 5)
    tau = tau_at(cfg, step)
    # 1. f on the human's forecasts near the current z
    update = f_update_read if cfg.f_input == "read" else f_update
    (f_params, f_state, queries), f_losses = jax.lax.scan(
        lambda c, k: update(c, k, state, data, tau), (state.f_params, state.f_opt,
                                                        state.queries),
        jax.random.split(k_f, cfg.f_steps))
    state = state.replace(f_params=f_params, f_opt=f_state)
    metrics = dict(f_loss=f_losses[-1])
    # hypotheses near the current latent(s), for the prior estimator
    eps = jax.random.normal(k_eps, (cfg.z_samples, space.num_fields))
    zs = jax.lax.stop_gradient(state.mu + sigma(state, data) * eps)
    hyps = decoder.sample(k_h, space, zs, tau, cfg.prior_samples)          # (S, M, K)
    # 2. the learned predictor of the human's ratio judgments
    if mode == "learned":
      k1, k2, k3, k4 = jax.random.split(k_g, 4)
      flat = hyps.reshape(-1, space.num_fields)
      base = flat[jax.random.randint(k1, (cfg.g_batch,), 0, flat.shape[0])]
      uniform = jnp.floor(jax.random.uniform(k2, base.shape) * jnp.asarray(space.levels)
                          ).astype(jnp.int32)
      base = jnp.where(jax.random.bernoulli(k3, cfg.g_uniform_share, (cfg.g_batch, 1)), uniform,
                       base)
      other = prior.ratio_pairs(k4, space, base)
      judged, queries = hm.ask_ratio(human, base, other, queries)
      g_loss, gg = jax.value_and_grad(
          lambda p: prior.ratio_loss(g_apply, p, base, other, judged, cfg.ratio_scale)
      )(state.g_params)
      upd, g_state = opt_g.update(gg, state.g_opt, state.g_params)
      state = state.replace(g_params=optax.apply_updates(state.g_params, upd), g_opt=g_state)
      metrics["g_loss"] = g_loss
    # 3. ascent on J (MAP) / the ELBO (posterior)
    d, queries = deltas(state, hyps, queries)                              # (S, M, K, L)
    idx, scale = _take(k_z, data, cfg.z_batch)
    x, y = data.x[idx], data.y[idx]
    w = jnp.full((cfg.z_batch,), scale)
    f = lambda p, xx, zz: f_tau(p, xx, zz, tau)
    if by_hypothesis:
      # Σ_D log f(y | x, Z′) at every one-field neighbour Z′ of each hypothesis (f, not the human)
      lik = jax.vmap(lambda zz: objective.data_log_lik(f, state.f_params, zz, x, y, family, w))
      if cfg.f_input == "read":  # … only where an example reads
        idx, vals = hm.read(human, x)
        per_example = lambda lev: w * family.log_prob(
            net.apply_fn(state.f_params, read_features(space, vals, lev)), y)
        flat = hyps.reshape(-1, space.num_fields)
        d = d + jax.vmap(lambda zz: prior.read_score_deltas(per_example, space, idx, zz)
                         )(flat).reshape(d.shape)
      else:
        d = d + prior.score_deltas(lik, space, hyps)
      ll_now = jnp.mean(lik(hyps.reshape(-1, space.num_fields)))

    def neg_objective(params):
      mu, log_sigma = params
      z = mu + data.posterior * jnp.exp(log_sigma) * eps                  # (S, K)
      if by_hypothesis:
        ll = ll_now
      else:
        ll = jnp.mean(jax.vmap(
            lambda zz: objective.data_log_lik(f, state.f_params, zz, x, y, family, w))(z))
      pr = jax.vmap(lambda zz, dd: prior.surrogate(space, zz, tau, dd))(z, d)
      base = jnp.where(data.posterior > 0.5, -objective.gaussian_kl(mu, log_sigma),
                       decoder.log_base(mu))
      return -(ll + jnp.mean(pr) + base), (ll, base)

    (_, (ll, base)), g = jax.value_and_grad(neg_objective, has_aux=True)(
        (state.mu, state.log_sigma))
    on = (step >= cfg.z_warmup).astype(jnp.float32)
    g = jax.tree.map(lambda v: on * v, g)
    upd, z_state = opt_z.update(g, state.z_opt, (state.mu, state.log_sigma))
    upd = jax.tree.map(lambda v: on * v, upd)
    mu, log_sigma = optax.apply_updates((state.mu, state.log_sigma), upd)
    mu = jnp.clip(mu, *(jnp.asarray(b) for b in decoder.bounds(space)))  # projected ascent
    state = state.replace(mu=mu, log_sigma=log_sigma, z_opt=z_state, queries=queries)
    pl = prior_level(state, hyps, data.z_ref)
    metrics.update(log_lik_D=ll, prior=pl, objective=ll + pl + base,
                   sigma=jnp.mean(jnp.exp(log_sigma)) * data.posterior, tau=tau)
    return state, metrics

  return step


def make_selection_score(task: Task, cfg):
  """score(state, data) -> (the optimiser's own estimate of J at Z* = hard(μ) on all of D,
  the human's queries it asked): Σ_D log f(y | x, Z*) + the prior level the mode can report
  (direct: log Prior_H(Z*); ratio: the human's log Prior_H(Z*)/Prior_H(z_ref); learned: the
  predictor's).  Restarts are compared by it (one prior query each); it never sees D*."""
  human, space, family = task.human, task.human.space, task.human.family
  _, f_tau = make_f(task, cfg)
  if cfg.prior_mode == "learned":
    _, g_apply = make_prior_net(space.num_fields, space.max_levels, cfg.g_hidden)

  def score(state: LTPState, data: LTPData) -> jax.Array:
    z_star = decoder.hard(space, state.mu)
    at = z_star if cfg.f_input in HYPOTHESIS_INPUTS else state.mu
    f = lambda p, xx, zz: f_tau(p, xx, zz, cfg.tau_end)
    ll = objective.data_log_lik(f, state.f_params, at, data.x, data.y, family, data.w)
    q = hm.no_queries()
    if cfg.prior_mode == "direct":
      pr, q = hm.ask_prior(human, z_star, q)
    elif cfg.prior_mode == "ratio":
      pr, q = hm.ask_ratio(human, data.z_ref, z_star, q)
    else:
      pr = cfg.ratio_scale * (g_apply(state.g_params, z_star) - g_apply(state.g_params, data.z_ref))
    return ll + pr, q

  return score


# ------------------------------------------------------------------------------ baselines
class SupData(NamedTuple):
  """Inputs, targets (lprior.ltp.family) and weights (1 valid, 0 padding; valid entries first)."""
  x: jax.Array       # (N, dx)
  target: jax.Array  # (N, Q)
  w: jax.Array       # (N,)


@flax.struct.dataclass
class SupState:
  params: PyTree
  opt: Any
  key: jax.Array


def _sup_opt(cfg):
  return optax.adamw(cfg.lr, weight_decay=cfg.weight_decay)


def init_supervised(key: jax.Array, task: Task, cfg) -> SupState:
  net = make_net(task.x_dim, task.human.family, cfg.hidden)
  k_p, k_run = jax.random.split(key)
  params = net.init(k_p)
  return SupState(params, _sup_opt(cfg).init(params), k_run)


def make_supervised_step(task: Task, cfg):
  """step(state, data, step): one AdamW step on the mean cross-entropy of a minibatch of the
  valid entries (a network fit directly on D, or on the human's forecasts: warm-up 2)."""
  family = task.human.family
  apply_fn = make_net(task.x_dim, family, cfg.hidden).apply_fn
  opt = _sup_opt(cfg)

  def step(state: SupState, data: SupData, step: jax.Array):
    n_valid = jnp.sum(data.w)
    key = jax.random.fold_in(state.key, step)
    idx = jnp.floor(jax.random.uniform(key, (cfg.batch,)) * n_valid).astype(jnp.int32)

    def loss(p):
      return jnp.mean(family.cross_entropy(data.target[idx], apply_fn(p, data.x[idx])))

    value, g = jax.value_and_grad(loss)(state.params)
    upd, opt_state = opt.update(g, state.opt, state.params)
    return state.replace(params=optax.apply_updates(state.params, upd), opt=opt_state), \
        dict(loss=value)

  return step
