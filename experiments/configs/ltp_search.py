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
  # synonyms: agree 0.9; synonyms_tight: agree 0.99 (one-field moves between a set's sentiments
  # are rarely accepted: where block moves can help); synonyms_indep: no structure to learn (the
  # limit where Mz's block moves cannot help)
  c.tasks = "synonyms,synonyms_tight,synonyms_indep"
  c.size = 256               # |D|
  c.n_test = 1000            # D* questions
  # Metropolis steps per search, enough for each to spend the largest budget (the table shows
  # the queries each used): a one-field move asks ~2.5 queries, a fresh proposal |D| + 2
  c.steps = ml_collections.ConfigDict(dict(site=280000, edits=180000, latent=280000,
                                           latent_site=250000, fresh=2800))
  c.beta = 0.03              # pCN step in Mz's latent
  c.budgets = (50000, 200000, 700000)  # human queries at which the table compares
  c.explore = ml_collections.ConfigDict(dict(walks=20000, length=2))  # the human's walks
  c.mz = ml_collections.ConfigDict(dict(latent=128, hidden=(256,), batch=256, lr=1e-3,
                                        max_steps=4000, kl_warmup=1000))
  c.gold = ml_collections.ConfigDict(dict(sweeps=300, burn=50))  # block Gibbs reference
  c.synonyms = ml_collections.ConfigDict(dict(agree=0.9))
  c.synonyms_tight = ml_collections.ConfigDict(dict(agree=0.99))
  c.synonyms_indep = ml_collections.ConfigDict(dict(order=1))
  preset = preset or "default"
  if preset == "smoke":
    c.num_seeds, c.tasks, c.n_test = 2, "synonyms", 200
    c.steps = ml_collections.ConfigDict(dict(site=8000, edits=5000, latent=8000,
                                             latent_site=7000, fresh=80))
    c.budgets = (5000, 20000)
    c.explore.walks = 1000
    c.mz.max_steps, c.mz.kl_warmup, c.mz.hidden = 300, 100, (64,)
    c.gold.sweeps, c.gold.burn = 20, 5
  elif preset == "full":
    c.num_seeds = 10
    c.budgets = (50000, 200000, 700000, 3000000)
    for m in c.steps:
      c.steps[m] = int(4.3 * c.steps[m])
    c.explore.walks = 50000
    c.mz.max_steps = 8000
  elif preset != "default":
    raise ValueError(f"unknown preset {preset!r}; choose smoke, default or full")
  c.preset = preset
  return c
