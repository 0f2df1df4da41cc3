"""Learning the prior (DESIGN §5, issue 5): optimise background knowledge z against a human prior
while f(y | x, z) learns to imitate the human's forecasts.

space       the human-readable hypothesis space Z (named fields with levels)
family      observation families: how a prediction scores an answer (binary, gaussian)
human       the simulated human: Prior_H(Z), ratio queries, forecasts P_H(y | x, Z)
tasks       spurious-correlation classification and trend extrapolation, each with its human
exact       the ideal: the human updated exactly on D by enumerating Z
decoder     Mz(·, z): compact latent z -> distribution over hypotheses
prior       Prior(z) through Mz in 'direct', 'ratio' and 'learned' modes (unbiased gradients)
objective   J(z) = log Prior(z) + Σ_D log f(y | x, z), the ELBO of the full posterior
models      f, the baseline nets and the prior-judgment predictor (Flax MLPs, apply_fn form)
train       the joint z / f step and the baselines' step for `lprior.train.fit`
experiment  the issue's comparison on D* as data (the launcher writes tables and plots)
explorer    the human exploring Z: fresh hypotheses and one-unit edits, counted as proposals
mz          Mz(·, u): a VAE over hypotheses fit to the human's exploration walks
latent_search  Metropolis searches for Z* in Z, with the human's edits, or in Mz's latent,
            at counted human queries
search_experiment  latent search against search in Z, as data (experiments.ltp_search)
"""
