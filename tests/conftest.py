import os
import sys

# Tests run on the CPU, deterministically, whatever accelerator the machine has.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(__file__))
