import os
import sys

# Tests run on the CPU, deterministically, whatever accelerator the machine has.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The suite is dominated by XLA:CPU compile time of small programs; the cheapest backend
# optimisation level roughly halves it and changes no result the tests compare (each comparison
# runs both sides through the same compiler). Set GRADTX_TEST_FULL_XLA=1 to test with defaults.
if not os.environ.get("GRADTX_TEST_FULL_XLA"):
  os.environ["XLA_FLAGS"] = " ".join(filter(None, [
      os.environ.get("XLA_FLAGS", ""),
      "--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true"]))
sys.path.insert(0, os.path.dirname(__file__))


def _group_suffix(item):
  names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                  for m in item.iter_markers("xdist_group")})
  return "@" + "_".join(names) if names else ""


import pytest  # noqa: E402


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
  """`--dist loadgroup` on pytest >= 9.2: pytest-xdist 3.8 marks a test's group by appending
  "@group" to `item._nodeid`, which pytest 9.2 no longer reads (node ids are structured, in
  `item._id`), so every `xdist_group` was silently ignored and shared expensive fixtures (the docs
  build, zero's 8-device worker, the benchmark smoke runs) were set up once per worker. On a
  worker with loadgroup, this appends the suffix where pytest 9.2 reads it."""
  if not getattr(config.option, "loadgroup", False):
    return
  try:
    from _pytest.nodeid import NodeId  # pytest >= 9.2
  except ImportError:  # older pytest: xdist's own suffix works
    return
  for item in items:
    suffix = _group_suffix(item)
    if suffix and not item.nodeid.endswith(suffix):
      item._id = NodeId.parse(item.nodeid + suffix)  # pylint: disable=protected-access
