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
