"""Builds and executes the notebooks (not collected by pytest; run from the repository root).

  python notebooks/build.py from-script SRC.py notebooks/NN_name.ipynb   # percent-format -> ipynb
  python notebooks/build.py execute notebooks/NN_name.ipynb [...]        # run, save with outputs

A percent-format script separates cells with `# %%` lines (code) and `# %% [markdown]` lines
(markdown; each following line starts with `# `). Notebooks run with the full settings here and
are committed with their outputs; tests/test_notebooks.py re-runs each one with
GRADTX_NOTEBOOK_QUICK=1 (small settings) so every notebook stays working.
"""

from __future__ import annotations

import os
import sys
import time

import nbformat
from nbclient import NotebookClient


def from_script(src: str, dst: str) -> None:
  cells, kind, lines = [], None, []

  def flush():
    if kind is None:
      return
    text = "\n".join(lines).strip("\n")
    if kind == "markdown":
      text = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in text.split("\n"))
      cells.append(nbformat.v4.new_markdown_cell(text))
    elif text:
      cells.append(nbformat.v4.new_code_cell(text))

  with open(src) as f:
    for line in f.read().split("\n"):
      if line.startswith("# %%"):
        flush()
        kind, lines = ("markdown" if "[markdown]" in line else "code"), []
      else:
        lines.append(line)
  flush()
  nb = nbformat.v4.new_notebook(cells=cells)
  nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
  nb.metadata["language_info"] = {"name": "python"}
  nbformat.write(nb, dst)


def execute(path: str, timeout: int = 900) -> float:
  nb = nbformat.read(path, as_version=4)
  start = time.perf_counter()
  NotebookClient(nb, timeout=timeout, kernel_name="python3",
                 resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}}).execute()
  elapsed = time.perf_counter() - start
  nbformat.write(nb, path)
  return elapsed


if __name__ == "__main__":
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  cmd, *args = sys.argv[1:]
  if cmd == "from-script":
    from_script(*args)
  elif cmd == "execute":
    for p in args:
      print(f"{p}: executed in {execute(p):.1f} s")
  else:
    raise SystemExit(__doc__)
