"""The README's and the guides' top-level Python examples run as written (the examples are a
promise). The guides (docs/guides/*.md) hold the README's former long sections and their code."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs" / "guides").glob("*.md"))
# Unindented ```python blocks are complete programs; indented ones inside lists are sketches, and
# so is an unindented block with no import (a fragment of the text around it: K-FAC's update call).
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
ALL_BLOCKS = [(p.relative_to(ROOT).as_posix(), i, b)
              for p in PAGES for i, b in enumerate(FENCE.findall(p.read_text()))]
BLOCKS = [blk for blk in ALL_BLOCKS if re.search(r"^(import|from) ", blk[2], re.M)]
SKETCHES = 1  # docs/guides/preconditioned.md's K-FAC call; a new fragment must be counted here


def test_readme_has_complete_examples():
  readme = [b for name, _, b in BLOCKS if name == "README.md"]
  assert len(readme) >= 2
  assert any("nnx.Optimizer" in b for b in readme)
  assert len(ALL_BLOCKS) - len(BLOCKS) == SKETCHES


@pytest.mark.parametrize("page,index,block", BLOCKS, ids=[f"{n}[{i}]" for n, i, _ in BLOCKS])
def test_readme_example_runs(page, index, block, capsys):
  if "flax" in block:
    pytest.importorskip("flax")
  exec(compile(block, f"{page}[python block {index}]", "exec"), {})  # pylint: disable=exec-used
