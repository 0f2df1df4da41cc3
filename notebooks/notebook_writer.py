"""Writes a notebook from its cells (no outputs; stable cell ids, so regenerating gives the same
file).  The builders `make_<name>.py` call `write`; `--execute` also runs it once with nbclient."""

import pathlib
import sys

import nbformat
from nbformat.v4 import new_notebook


def write(name: str, cells: list) -> pathlib.Path:
  path = pathlib.Path(__file__).with_name(f"{name}.ipynb")
  for i, cell in enumerate(cells):
    cell.id = f"cell-{i}"
  nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3",
                                                          "display_name": "Python 3",
                                                          "language": "python"}})
  nbformat.write(nb, path)
  print("wrote", path)
  if "--execute" in sys.argv:
    import nbclient
    ran = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(ran, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parents[1])}}).execute()
    print("executed OK")
  return path
