"""The demo program, `python -m gradtx.demo`: gradtx's optimizers on scikit-learn's digits
(`digits.py`) or on the classic test functions of Ruder's figures (`cli.py`)."""
