"""Config of the latent-search experiment (issue 16 item 4): Mz fit to the human's exploration,
search in its latent against search in Z, at equal human queries.  Presets: smoke (< 60 s on 2
CPU cores), default (≤ 10 min on 2 cores, 5 seeds), full (10 seeds, longer chains).

  python3 -m experiments.ltp_search --config=experiments/configs/ltp_search.py:smoke --workdir=DIR

Each task is one row of DIR/rows/tasks.jsonl: rerunning a command re-reports the finished tasks
and computes only the missing ones; `tasks` may grow on a workdir, any other change is refused.
"""

import ml_collections


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.num_seeds = 5
  # synonyms: agree 0.9; synonyms_tight: agree 0.99 (one-field moves cannot cross between a set's
  # sentiments: where Mz's block moves must help); synonyms_indep: no structure to learn (the
  # limit where they must not)
  c.tasks = "synonyms,synonyms_tight,synonyms_indep"
  c.size = 256               # |D|
  c.n_test = 1000            # D* questions
  c.steps = 40000            # Metropolis steps of every search
  c.beta = 0.03              # pCN step in Mz's latent
  c.budgets = (50000, 200000, 1000000)  # human queries at which the table compares
  c.explore = ml_collections.ConfigDict(dict(walks=20000, length=2))  # the human's walks
  c.mz = ml_collections.ConfigDict(dict(latent=128, hidden=(256,), batch=256, lr=1e-3,
                                        max_steps=4000, kl_warmup=1000))
  c.gold = ml_collections.ConfigDict(dict(sweeps=300, burn=50))  # block Gibbs reference
  c.synonyms = ml_collections.ConfigDict(dict(agree=0.9))
  c.synonyms_tight = ml_collections.ConfigDict(dict(agree=0.99))
  c.synonyms_indep = ml_collections.ConfigDict(dict(order=1))
  preset = preset or "default"
  if preset == "smoke":
    c.num_seeds, c.tasks, c.steps, c.n_test = 2, "synonyms", 2000, 200
    c.budgets = (5000, 20000)
    c.explore.walks = 1000
    c.mz.max_steps, c.mz.kl_warmup, c.mz.hidden = 300, 100, (64,)
    c.gold.sweeps, c.gold.burn = 20, 5
  elif preset == "full":
    c.num_seeds, c.steps = 10, 100000
    c.budgets = (50000, 200000, 1000000, 4000000)
    c.explore.walks = 50000
    c.mz.max_steps = 8000
  elif preset != "default":
    raise ValueError(f"unknown preset {preset!r}; choose smoke, default or full")
  c.preset = preset
  return c
