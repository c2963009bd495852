"""The README's top-level Python examples run as written (the examples section is a promise)."""

import pathlib
import re

import pytest

README = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
# Unindented ```python blocks are complete programs; indented ones inside lists are sketches.
BLOCKS = re.findall(r"^```python\n(.*?)^```", README, re.S | re.M)


def test_readme_has_complete_examples():
  assert len(BLOCKS) >= 2
  assert any("nnx.Optimizer" in b for b in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, capsys):
  if "flax" in BLOCKS[index]:
    pytest.importorskip("flax")
  exec(compile(BLOCKS[index], f"README.md[python block {index}]", "exec"), {})
