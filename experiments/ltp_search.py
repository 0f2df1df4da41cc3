"""Search for Z* in Mz's latent against search in Z (issue 16 item 4): Mz, a VAE fit to a
simulated human's exploration walks, and Metropolis searches in Z (one-field moves, the human's
own edits), in Mz's latent (alone and with one-field moves), and blind fresh proposals, compared
at equal counts of human queries on the synonyms tasks, beside block Gibbs told the human's
groups and the generating Z.  Prints the table; writes results.json, table.md and
search_curves.png into --workdir.

  python3 -m experiments.ltp_search --config=experiments/configs/ltp_search.py:smoke --workdir=/tmp/s
Rerunning re-reports finished tasks from --workdir/rows and computes only the missing ones.
"""

from absl import app

from experiments.common.launch import define_flags

_CONFIG, _WORKDIR = define_flags("ltp_search")


def main(argv):
  del argv
  import matplotlib
  matplotlib.use("Agg")
  from experiments.ltp_search_report import run
  print(run(_CONFIG.value, _WORKDIR.value))


if __name__ == "__main__":
  app.run(main)
