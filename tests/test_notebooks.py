"""Every notebook under notebooks/ runs top to bottom (at its small default size)."""

import pathlib

import nbclient
import nbformat
import pytest

from lprior.xla import FAST_COMPILE_FLAGS

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


# honest_qa trains the main job's key arms (80 s alone, 4 min beside the suite) and
# learning_the_prior trains a spurious-task run and a synonyms Gibbs chain (70 s beside the
# suite; the same code paths run in tests/test_ltp_launcher.py and
# tests/test_learning_the_prior_large.py); amplification trains on three tasks (31 s beside the
# suite; its launcher and controls run in tests/test_amplification*.py): `slow`
SLOW = {"honest_qa", "learning_the_prior", "amplification"}


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW
                                  else p for p in NOTEBOOKS], ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
  # the kernel sees one CPU device, as a reader's laptop would, and compiles cheaply
  monkeypatch.setenv("XLA_FLAGS", FAST_COMPILE_FLAGS)
  nb = nbformat.read(path, as_version=4)
  client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": str(ROOT)}})
  client.execute()
  errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"]
  assert not errors, errors
