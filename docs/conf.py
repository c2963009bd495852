"""Sphinx configuration for gradtx's documentation.

Build: `python -m pip install -e '.[docs]' && sphinx-build -W -b html docs docs/_build/html`.
Everything that depends on the package (one API page per namespace, the notebooks, the benchmark
pages, the table of differences from optax) is generated at build time by `_ext/gradtx_docs.py`
from the namespaces' `__all__` and the repository's files, so new names and notebooks appear
without editing the docs. Nothing is loaded from the network: MathJax is the local copy that
the `sphinx-mathjax-offline` package ships.
"""

import os
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
# The repository whose package, notebooks and benchmarks are documented (tests build a copy of
# docs/ in a temporary directory and point here).
ROOT = pathlib.Path(os.environ.get("GRADTX_DOCS_ROOT", HERE.parent)).resolve()
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE / "_ext"))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

project = "gradtx"
author = "the gradtx authors"
copyright = "the gradtx authors; Apache-2.0"  # noqa: A001 (Sphinx's name)

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # copies its MathJax 3 into _static and points mathjax_path there
    "myst_nb",
    "gradtx_docs",
]

# --- autodoc / napoleon: Google-style docstrings, one entry per public name ---------------
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_inherit_docstrings = False
autodoc_preserve_defaults = True
# The page tables of contents list the family sections, not the ~750 entries: with every entry
# in the toctree, the theme copies the whole tree for each page's sidebar (27 of the build's
# 40 CPU seconds, measured with cProfile); each entry keeps its anchor and the search index.
toc_object_entries = False  # show `b1=0.9`, not a repr of an evaluated default object

# --- nitpicky cross-references --------------------------------------------------------------
# The build runs with -n. Without network there is no intersphinx inventory for Python, NumPy,
# JAX or chex, so references to their types in signatures cannot resolve; these are the only
# references ignored, each family with its reason.
nitpick_ignore_regex = [
    # Python builtins and the standard library's typing / collections / enum names.
    (r"py:(class|obj|data)", r"(int|float|bool|str|bytes|complex|tuple|list|dict|set|object|"
                             r"type|None|NoneType|Ellipsis|slice|callable|iterable|sequence)"),
    (r"py:(class|obj|data)", r"(typing|collections|collections\.abc|enum|types|functools|"
                             r"abc|dataclasses|numbers|os|pathlib)\..*"),
    (r"py:(class|obj|data)", r"(Any|Callable|Optional|Union|Sequence|Mapping|Iterable|Iterator|"
                             r"Hashable|Literal|NamedTuple|Protocol|TypeVar|Generic|ClassVar|"
                             r"Tuple|List|Dict|Set|Type|P|T|ParamSpec)"),
    # JAX, jaxlib, NumPy and chex types (external packages, no inventory offline).
    (r"py:(class|obj|data)", r"(jax|jaxlib|numpy|np|jnp|chex|ml_dtypes|flax|optax)(\..*)?"),
    (r"py:(class|obj|data)", r"(Array|ArrayLike|PRNGKey|PyTree|DTypeLike|Numeric|Shape|"
                             r"ndarray|dtype|Sharding|NamedSharding|Mesh|PartitionSpec)"),
    # Internal classes that appear in a public signature or state field but are not exported
    # (optax does not export them either): the perturbations' sampler returned by
    # `multi_normal`, and the backtracking line search's info record.
    ("py:class", "gradtx.perturbations.noise.MultiNormalDiagFromLogScale"),
    ("py:class", r"(gradtx\.transforms\.linesearch\.)?BacktrackingLinesearchInfo"),
]

# --- myst / myst-nb: notebooks rendered from their committed outputs -----------------------
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_merge_streams = True

# --- HTML ----------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "gradtx"
html_theme_options = {
    "show_toc_level": 2,
    "max_navbar_depth": 2,
    "home_page_in_toc": True,
    "use_download_button": False,
    "use_fullscreen_button": False,
    # The theme's icon links and repository buttons point at remote hosts: none here.
    "use_repository_button": False,
    "use_source_button": False,
    "use_issues_button": False,
    "use_edit_page_button": False,
}
html_static_path = []
html_last_updated_fmt = None

exclude_patterns = ["_build", "_ext", "_generated", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
suppress_warnings = []

# Read by _ext/gradtx_docs.py: the repository whose files are documented.
gradtx_root = str(ROOT)
