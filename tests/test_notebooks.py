"""Every notebook in notebooks/ runs top to bottom on small settings (GRADTX_NOTEBOOK_QUICK=1).

The committed notebooks carry the outputs of their full-size run; this test only proves they
still execute against the current library, in a scratch directory so nothing is written into
the repository.
"""

import pathlib
import shutil

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_small_settings(path, tmp_path, monkeypatch):
  monkeypatch.setenv("GRADTX_NOTEBOOK_QUICK", "1")
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  monkeypatch.setenv("MPLBACKEND", "Agg")
  shutil.copy(path, tmp_path / path.name)
  nb = nbformat.read(tmp_path / path.name, as_version=4)
  nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}}).execute()
  errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"]
  assert not errors, errors


def test_committed_notebooks_are_executed_with_outputs():
  assert len(NOTEBOOKS) == 17, [p.name for p in NOTEBOOKS]
  for path in NOTEBOOKS:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), f"{path.name} is not executed"
    assert any(c.get("outputs") for c in code), f"{path.name} has no outputs"
