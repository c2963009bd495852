"""`python -m gradtx.demo`: runs the demo's command line (see `gradtx/demo/cli.py`)."""

from gradtx.demo.cli import main

if __name__ == "__main__":
  main()
