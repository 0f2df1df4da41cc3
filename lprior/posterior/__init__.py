"""The nested posterior over (θ₁, θ₂) of DESIGN §1: divergences, C and L, the partition of a
parameter tree, both prior forms and their per-layer scales, log posteriors and the energies whose log-integral is log Z."""

from lprior.posterior.data import Data, as_data
from lprior.posterior.divergences import (DIVERGENCES, Divergence, get_divergence, jensen_shannon,
                                          squared_logits, symmetric_kl, total_variation)
from lprior.posterior.log_posterior import (TERM_KEYS, chained_energy, chained_log_posterior,
                                            partitioned_energy, partitioned_log_posterior)
from lprior.posterior.partition import (check_mask, default_mask, mask_from_predicate, merge,
                                        split)
from lprior.posterior import scales
from lprior.posterior.prior import chained_log_prior_terms, partitioned_log_prior_terms
from lprior.posterior.terms import (LIKELIHOODS, ApplyFn, bradley_terry_log_likelihood,
                                   consistency, get_likelihood, heads, log_likelihood)

__all__ = [
    "ApplyFn", "DIVERGENCES", "Data", "Divergence", "LIKELIHOODS", "TERM_KEYS", "as_data",
    "bradley_terry_log_likelihood", "chained_energy", "get_likelihood",
    "chained_log_posterior", "chained_log_prior_terms", "check_mask", "consistency",
    "default_mask", "get_divergence", "heads", "jensen_shannon", "log_likelihood", "merge",
    "mask_from_predicate", "partitioned_energy", "partitioned_log_posterior",
    "partitioned_log_prior_terms", "scales", "split", "squared_logits", "symmetric_kl", "total_variation",
]
