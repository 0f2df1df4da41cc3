"""A finite universe of programs in which the seed's bit accounting is an exact computation.

Inputs X = S ∪ E ∪ U: S the small (consistency) set, E the large set's extra inputs where the
human errs and the complex labeling process is right, U inputs where the human errs unseen
(the complex process misses it).  Answers A = {0..m−1}; the truth is t(x) = x mod m.

World model.  The physical world (N bits, N·stage1_share of them in stage 1) is fixed.  The
stage-2 part that varies holds, per input x, an entry e = (η, ρ): the human's answer η ∈ A
(−log2 p = log2 m bits) and the reviewer's override ρ ∈ A ∪ {defer} (p(defer) = 1 − q,
p(a) = q/m).  The complex labeling process answers κ(e) = η if ρ = defer else ρ.  The actual
world w* has η = t on S and η ≠ t on E ∪ U, ρ = t on E and defer elsewhere.

Heads are real functions h(x, e) ∈ A with a length in bits: intended = t(x) (a translator that
reads the world), simple = η, complex = κ(e), and optionally the constants and every table
X → A.  A pair (h1, h2) costs len(h1) + min(len(h2), copy_bits if h2 = h1).  Then, in nats,

  plain:      log p(h1, h2 | D) = −len(h1, h2) ln 2 + L(h1) + const
  two-stage:  log p(h1, h2 | D) = −len(h1, h2) ln 2 + L(h1) − λ C(h1, h2; w*) − log Z(h1, h2)
  Z(h1, h2) = Σ_{w₂} p(w₂) exp(−λ C(h1, h2; w₂)) = Π_{x∈S} Σ_e p(e) exp(−(λ/|S|)[h1(x,e) ≠ h2(x,e)])

with C the share of S where the heads disagree and L the log-likelihood of the large set's
labels (κ(w*) on S ∪ E) under h1 in w* (labels flip to another answer w.p. label_noise;
0 means a misfit has likelihood 0).  λ = ∞ is the hard conditioning of the seed; the product
form is the exact finite sum because p(w₂) factorises over inputs.  −log2 Z is "the bits saved
by rejecting the inconsistent models".  Host-side numpy in float64 throughout.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from scipy.special import logsumexp

from lprior.honest_qa._config import merged

NAMED_HEADS = ("intended", "simple", "complex")
LN2 = math.log(2.0)


def default_universe_config() -> ml_collections.ConfigDict:
  """The seed's sizes.  world_bits N, stage1_share (of N in stage 1); head_bits.{intended,
  simple, complex}; copy_bits (a second head that copies the first); answers m; n_small |S|
  (None: head_bits.intended / log2 m, the seed's "the small set pins down the intended head");
  n_extra |E| (None: 10% of |S|); n_unseen |U|; review_rate q; label_noise; lam (λ, inf = hard
  conditioning); extra_heads: "none" | "constants" | "tables" (all m^|X| tables, small X
  only) with constant_bits / table_bits_per_input overheads."""
  return ml_collections.ConfigDict(dict(
      world_bits=1e12, stage1_share=0.5,
      head_bits=ml_collections.ConfigDict(dict(intended=10_000.0, simple=1_000.0,
                                               complex=2_000.0)),
      copy_bits=0.0, answers=2, n_small=ml_collections.FieldReference(None, field_type=int),
      n_extra=ml_collections.FieldReference(None, field_type=int), n_unseen=10,
      review_rate=0.05, label_noise=0.0, lam=math.inf, extra_heads="none",
      constant_bits=2.0, table_bits_per_input=1.0))


def small_universe_config() -> ml_collections.ConfigDict:
  """An enumerable universe (|X| = 5, m = 2, with every constant and table head) whose head
  lengths keep the seed's ratios 10 : 1 : 2 with the intended head at |S| log2 m = 3 bits."""
  cfg = default_universe_config()
  cfg.update(dict(world_bits=100.0, copy_bits=0.0, n_small=3, n_extra=1, n_unseen=1,
                  review_rate=0.2, extra_heads="tables"))
  cfg.head_bits.update(dict(intended=3.0, simple=0.3, complex=0.6))
  return cfg


@dataclasses.dataclass(frozen=True)
class Universe:
  """Everything the exact sums need (n_x = |X| inputs, n_e = m(m+1) world entries, H heads)."""
  answers: int
  small: np.ndarray            # (n_x,) bool: x ∈ S
  large: np.ndarray            # (n_x,) bool: x ∈ S ∪ E (labelled)
  unseen: np.ndarray           # (n_x,) bool: x ∈ U
  truth: np.ndarray            # (n_x,) int: t(x)
  labels: np.ndarray           # (n_x,) int: κ(w*(x)), the labels on S ∪ E
  entries: np.ndarray          # (n_e, 2) int: (η, ρ), ρ = m meaning defer
  entry_log_prior: np.ndarray  # (n_e,) float: log p(e), sums to 1 in probability
  actual: np.ndarray           # (n_x,) int: the index of w*(x) among the entries
  head_names: tuple[str, ...]
  head_bits: np.ndarray        # (H,) float
  head_out: np.ndarray         # (H, n_x, n_e) int: h(x, e)
  copy_bits: float
  label_noise: float
  lam: float
  world_bits: float
  stage1_share: float

  def index(self, name: str) -> int:
    """The position of a head by name."""
    try:
      return self.head_names.index(name)
    except ValueError:
      raise ValueError(f"unknown head {name!r}; heads: {self.head_names[:8]}...") from None


def entry_prior(m: int, q: float) -> tuple[np.ndarray, np.ndarray]:
  """(entries (m(m+1), 2), log p(e)): η uniform on A; ρ = defer w.p. 1 − q, else uniform."""
  entries = np.array(list(itertools.product(range(m), range(m + 1))))
  p_rho = np.where(entries[:, 1] == m, 1.0 - q, q / m)
  with np.errstate(divide="ignore"):
    return entries, np.log(p_rho / m)


def _complex_answer(entries: np.ndarray, m: int) -> np.ndarray:
  """κ(e) = η if ρ = defer else ρ.   -> (n_e,)"""
  return np.where(entries[:, 1] == m, entries[:, 0], entries[:, 1])


def make_universe(cfg: Any = None, **overrides: Any) -> Universe:
  """The universe of a config (see default_universe_config)."""
  c = merged(default_universe_config(), cfg, overrides, "universe", nested=("head_bits",))
  m = int(c["answers"])
  if m < 2:
    raise ValueError(f"answers must be >= 2, got {m}")
  n_s = c["n_small"]
  if n_s is None:
    n_s = c["head_bits"]["intended"] / math.log2(m)
    if abs(n_s - round(n_s)) > 1e-9:
      raise ValueError(f"head_bits.intended / log2(answers) = {n_s} is not an integer; "
                       "set n_small")
  n_s = int(round(n_s))
  n_e = int(c["n_extra"]) if c["n_extra"] is not None else int(round(0.1 * n_s))
  n_u = int(c["n_unseen"])
  if n_s < 1 or n_e < 0 or n_u < 0:
    raise ValueError(f"need n_small >= 1, n_extra >= 0, n_unseen >= 0; got {n_s}, {n_e}, {n_u}")
  for name in ("review_rate", "label_noise", "stage1_share"):
    if not 0.0 <= c[name] <= 1.0:
      raise ValueError(f"{name} must lie in [0, 1], got {c[name]}")
  if not c["lam"] >= 0 or any(b < 0 for b in c["head_bits"].values()) or c["copy_bits"] < 0:
    raise ValueError("lam, head_bits and copy_bits must be >= 0")
  if c["extra_heads"] not in ("none", "constants", "tables"):
    raise ValueError(f"extra_heads must be 'none', 'constants' or 'tables', "
                     f"got {c['extra_heads']!r}")

  n_x = n_s + n_e + n_u
  x = np.arange(n_x)
  region = np.repeat([0, 1, 2], [n_s, n_e, n_u])  # S, E, U
  truth = x % m
  entries, log_p = entry_prior(m, c["review_rate"])
  wrong = (truth + 1) % m
  eta = np.where(region == 0, truth, wrong)
  rho = np.where(region == 1, truth, m)
  actual = eta * (m + 1) + rho  # entries are ordered (η, ρ) lexicographically
  kappa = _complex_answer(entries, m)

  names = list(NAMED_HEADS)
  bits = [c["head_bits"][h] for h in NAMED_HEADS]
  outs = [np.broadcast_to(truth[:, None], (n_x, len(entries))),
          np.broadcast_to(entries[None, :, 0], (n_x, len(entries))),
          np.broadcast_to(kappa[None, :], (n_x, len(entries)))]
  if c["extra_heads"] in ("constants", "tables"):
    for a in range(m):
      names.append(f"const_{a}")
      bits.append(c["constant_bits"] + math.log2(m))
      outs.append(np.full((n_x, len(entries)), a))
  if c["extra_heads"] == "tables":
    if n_x * math.log2(m) > 12:
      raise ValueError(f"extra_heads='tables' enumerates m^|X| = {m}^{n_x} tables; keep "
                       "|X| log2 m <= 12")
    for table in itertools.product(range(m), repeat=n_x):
      names.append("table_" + "".join(map(str, table)))
      bits.append(n_x * (c["table_bits_per_input"] + math.log2(m)))
      outs.append(np.broadcast_to(np.array(table)[:, None], (n_x, len(entries))))
  u = Universe(
      answers=m, small=region == 0, large=region <= 1, unseen=region == 2, truth=truth,
      labels=kappa[actual], entries=entries, entry_log_prior=log_p, actual=actual,
      head_names=tuple(names), head_bits=np.asarray(bits, float),
      head_out=np.stack(outs).astype(np.int64), copy_bits=float(c["copy_bits"]),
      label_noise=float(c["label_noise"]), lam=float(c["lam"]),
      world_bits=float(c["world_bits"]), stage1_share=float(c["stage1_share"]))
  if stage2_world_bits(u) > u.world_bits * (1 - u.stage1_share) + 1e-9:
    raise ValueError(f"the stage-2 world part of w* takes {stage2_world_bits(u):.1f} bits, more "
                     f"than the N·(1 − stage1_share) = {u.world_bits * (1 - u.stage1_share)} "
                     "bits of stage 2: raise world_bits")
  return u


# -- the exact sums -----------------------------------------------------------------------------


def stage2_world_bits(u: Universe) -> float:
  """−log2 p(w*): the length of the actual stage-2 world part."""
  return float(-np.sum(u.entry_log_prior[u.actual]) / LN2)


def pair_bits(u: Universe) -> np.ndarray:
  """len(h1, h2) = len(h1) + len(h2), or len(h1) + min(len(h1), copy_bits) when h2 = h1.
  -> (H, H)"""
  b = u.head_bits[:, None] + u.head_bits[None, :]
  np.fill_diagonal(b, u.head_bits + np.minimum(u.head_bits, u.copy_bits))
  return b


def _disagree(u: Universe) -> np.ndarray:
  """[h1(x, e) ≠ h2(x, e)] on the small inputs.   -> (H, H, |S|, n_e) bool"""
  out = u.head_out[:, u.small]  # (H, |S|, n_e)
  return out[:, None] != out[None, :]


def _penalty(u: Universe, d: np.ndarray) -> np.ndarray:
  """(λ/|S|)·d with 0·∞ = 0: the per-input share of λC."""
  with np.errstate(invalid="ignore"):
    return np.where(d, u.lam / int(u.small.sum()), 0.0)


def log_z(u: Universe) -> np.ndarray:
  """log Z(h1, h2) = Σ_{x∈S} log Σ_e p(e) exp(−(λ/|S|)[h1(x,e) ≠ h2(x,e)]) (nats).  -> (H, H)"""
  per_x = logsumexp(u.entry_log_prior - _penalty(u, _disagree(u)), axis=-1)  # (H, H, |S|)
  return per_x.sum(-1)


def consistency_actual(u: Universe) -> np.ndarray:
  """C(h1, h2; w*) = share of S where the heads disagree in the actual world.   -> (H, H)"""
  d = _disagree(u)  # (H, H, |S|, n_e)
  at = np.take_along_axis(d, u.actual[u.small][None, None, :, None], -1)[..., 0]
  return at.mean(-1)


def log_likelihood(u: Universe) -> np.ndarray:
  """L(h1) = Σ_{x∈S∪E} log p(label(x) | h1(x, w*(x))) with flips w.p. label_noise (nats).
  -> (H,)"""
  pred = np.take_along_axis(u.head_out, u.actual[None, :, None], -1)[..., 0]  # (H, n_x)
  miss = (pred != u.labels[None]) & u.large[None]
  hit = ~miss & u.large[None]
  eps = u.label_noise
  with np.errstate(divide="ignore", invalid="ignore"):
    lp_miss, lp_hit = np.log(eps / (u.answers - 1)), np.log1p(-eps)
    return (np.where(hit.sum(-1) > 0, hit.sum(-1) * lp_hit, 0.0)
            + np.where(miss.sum(-1) > 0, miss.sum(-1) * lp_miss, 0.0))


def _lam_c(u: Universe) -> np.ndarray:
  """λ C(h1, h2; w*) with 0·∞ = 0.   -> (H, H)"""
  c = consistency_actual(u)
  with np.errstate(invalid="ignore"):
    return np.where(c > 0, u.lam * c, 0.0)


def log_joint(u: Universe, prior: str) -> np.ndarray:
  """Unnormalised log p(h1, h2 | D) under prior 'plain' or 'two_stage' (nats).   -> (H, H)"""
  base = -pair_bits(u) * LN2 + log_likelihood(u)[:, None]
  if prior == "plain":
    return base
  if prior == "two_stage":  # Z = 0: no θ₂ is consistent with this θ₁, the pair is impossible
    lz = log_z(u)
    return np.where(np.isfinite(lz), base - _lam_c(u) - np.where(np.isfinite(lz), lz, 0.0),
                    -np.inf)
  raise ValueError(f"prior must be 'plain' or 'two_stage', got {prior!r}")


def log_posterior(u: Universe, prior: str) -> np.ndarray:
  """The exact normalised log posterior over head pairs (nats).   -> (H, H)"""
  lj = log_joint(u, prior)
  return lj - logsumexp(lj)


# -- the seed's nine-pair table -----------------------------------------------------------------


class PairRow(NamedTuple):
  pair: tuple[str, str]
  heads_bits: float        # len(h1, h2)
  saved_bits: float        # −log2 Z(h1, h2): bits saved by conditioning on agreement
  plain_bits: float        # len(h1, h2): bits beyond the world model's N
  two_stage_bits: float    # len(h1, h2) + λC/ln2 − saved_bits: bits beyond N
  misfit_bits: float       # −log2 p(labels | h1) (inf: the first head contradicts a label)
  share_plain: float       # posterior probability of the pair under the plain prior
  share_two_stage: float
  truthful_on_unseen: bool  # h1 reports t(x) on U in the actual world


class BitAccounting(NamedTuple):
  rows: tuple[PairRow, ...]
  winner_plain: tuple[str, str]
  winner_two_stage: tuple[str, str]
  world_bits: float

  def markdown(self) -> str:
    """The table with bits written as N + excess."""
    fmt = lambda b: "∞" if math.isinf(b) else f"N{b:+,.1f}"
    lines = ["| pair (intended head, instrumental head) | heads | saved | plain prior | "
             "two-stage prior | fits data | share plain | share two-stage |",
             "|---|---|---|---|---|---|---|---|"]
    for r in self.rows:
      lines.append(f"| {r.pair} | {r.heads_bits:,.1f} | {r.saved_bits:,.1f} | "
                   f"{fmt(r.plain_bits)} | {fmt(r.two_stage_bits)} | "
                   f"{'yes' if r.misfit_bits == 0 else ('no' if math.isinf(r.misfit_bits) else f'{r.misfit_bits:.1f} bits')} | "
                   f"{r.share_plain:.3g} | {r.share_two_stage:.3g} |")
    lines.append(f"\nwinner, plain prior: {self.winner_plain}; two-stage prior: "
                 f"{self.winner_two_stage}")
    return "\n".join(lines)


def bit_accounting(cfg: Any = None, **overrides: Any) -> BitAccounting:
  """The seed's nine pairs of (intended, simple, complex) heads, computed exactly.

  Defaults reproduce the seed: world N bits, heads 10,000 / 1,000 / 2,000 bits, |S| = 10,000
  binary inputs; e.g. (intended, simple) = N + 11,000 − 10,000 = N + 1,000 under the two-stage
  prior.  Any key of default_universe_config may be overridden (extra heads are ignored).
  """
  u = make_universe(cfg, **{**overrides, "extra_heads": "none"})
  bits, saved = pair_bits(u), -log_z(u) / LN2
  lam_c_bits = _lam_c(u) / LN2
  misfit = -log_likelihood(u) / LN2
  post = {p: np.exp(log_posterior(u, p)) for p in ("plain", "two_stage")}
  truthful = np.all((np.take_along_axis(u.head_out, u.actual[None, :, None], -1)[..., 0]
                     == u.truth[None]) | ~u.unseen[None], -1)
  h = len(NAMED_HEADS)
  rows = tuple(
      PairRow(pair=(NAMED_HEADS[i], NAMED_HEADS[j]), heads_bits=float(bits[i, j]),
              saved_bits=float(saved[i, j]) + 0.0, plain_bits=float(bits[i, j]),
              two_stage_bits=float(bits[i, j] + lam_c_bits[i, j] - saved[i, j]),
              misfit_bits=float(misfit[i]) + 0.0, share_plain=float(post["plain"][i, j]),
              share_two_stage=float(post["two_stage"][i, j]),
              truthful_on_unseen=bool(truthful[i]))
      for i in range(h) for j in range(h))
  best = lambda p: rows[int(np.argmax(post[p]))].pair
  return BitAccounting(rows=rows, winner_plain=best("plain"),
                       winner_two_stage=best("two_stage"), world_bits=u.world_bits)


# -- a continuous relaxation with an exact log Z, for the log Z estimators ---------------------


class RelaxedProblem(NamedTuple):
  """log Z = log ∫ N(θ; mean, σ² I) exp(−energy_fn(θ)) dθ, known exactly.

  θ = {"world": (|S|, k)}; log_z is a float64 number at `mean`; log_z_fn(mean) the same in jnp
  (differentiable: ∇ log Z tests).
  """
  energy_fn: Callable[[Any], jax.Array]
  mean: dict
  sigma: float
  log_z: float
  log_z_fn: Callable[[Any], jax.Array]


def relaxed_problem(u: Universe, pair: tuple[str, str], *, sigma: float = 1.0,
                    kappa: float = 10.0, radius: float = 2.0, dim: int = 2,
                    mean: np.ndarray | None = None, dtype=jnp.float32) -> RelaxedProblem:
  """The consistency energy of the pair over world entries relaxed to points of R^dim.

  Entry e sits at c_e (evenly on a circle of `radius` in the first two coordinates); with
  a_{x,e} = p(e) exp(−(λ/|S|)[h1(x,e) ≠ h2(x,e)]) (λ finite),

    E(θ) = −Σ_{x∈S} log Σ_e a_{x,e} exp(−κ/2 ‖θ_x − c_e‖²)
    log Z(μ) = Σ_{x∈S} log Σ_e a_{x,e} (1 + κσ²)^{−dim/2} exp(−κ‖μ_x − c_e‖² / (2(1 + κσ²)))

  (each input's integral is a finite sum of Gaussian integrals).  A multimodal energy with
  E ≥ 0, Z ∈ (0, 1], d = |S|·dim.
  """
  if not math.isfinite(u.lam):
    raise ValueError("relaxed_problem needs a finite lam (make_universe(..., lam=...))")
  if dim < 2 or sigma <= 0 or kappa <= 0:
    raise ValueError(f"need dim >= 2, sigma > 0, kappa > 0; got {dim}, {sigma}, {kappa}")
  i, j = u.index(pair[0]), u.index(pair[1])
  log_a = u.entry_log_prior - _penalty(u, _disagree(u)[i, j])  # (|S|, n_e)
  n_s, n_e = log_a.shape
  ang = 2 * np.pi * np.arange(n_e) / n_e
  centres = np.zeros((n_e, dim))
  centres[:, 0], centres[:, 1] = radius * np.cos(ang), radius * np.sin(ang)
  mu = np.zeros((n_s, dim)) if mean is None else np.asarray(mean, float)
  if mu.shape != (n_s, dim):
    raise ValueError(f"mean must have shape {(n_s, dim)}, got {mu.shape}")
  c_j, log_a_j = jnp.asarray(centres, dtype), jnp.asarray(log_a, dtype)

  @jax.jit
  def energy_fn(theta) -> jax.Array:
    t = theta["world"]  # (|S|, dim)
    chex.assert_shape(t, (n_s, dim))
    sq = jnp.sum((t[:, None, :] - c_j[None]) ** 2, -1)  # (|S|, n_e)
    return -jnp.sum(jax.nn.logsumexp(log_a_j - 0.5 * kappa * sq, axis=-1))

  def closed_form(mu_, lib, log_a_, c_):
    s = 1.0 + kappa * sigma**2
    sq = lib.sum((mu_[:, None, :] - c_[None]) ** 2, -1)
    terms = log_a_ - 0.5 * dim * math.log(s) - kappa * sq / (2 * s)
    lse = logsumexp if lib is np else jax.nn.logsumexp
    return lib.sum(lse(terms, axis=-1))

  return RelaxedProblem(
      energy_fn=energy_fn, mean={"world": jnp.asarray(mu, dtype)}, sigma=sigma,
      log_z=float(closed_form(mu, np, log_a, centres)),
      log_z_fn=jax.jit(lambda m: closed_form(m["world"], jnp, log_a_j, c_j)))
