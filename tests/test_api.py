"""The public API and the layout: the folders are the namespaces, each namespace's `__init__.py`
only gathers names (sorted `__all__`), every public symbol is defined once in a family module,
every entry has a docstring, every algorithm cites its references, and every docstring example
runs."""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import gradtx

PROGRAMS = {"gradtx.demo"}  # programs, not families of the API


def _walk():
  for info in pkgutil.walk_packages(gradtx.__path__, prefix="gradtx."):
    parts = info.name.split(".")
    if any(p.startswith("_") for p in parts) or any(info.name.startswith(p) for p in PROGRAMS):
      continue
    yield info


def family_modules():
  """Every non-private module file (not a package `__init__`)."""
  return [importlib.import_module(i.name) for i in _walk() if not i.ispkg]


def namespaces():
  """`gradtx` and every public subpackage."""
  return [gradtx] + [importlib.import_module(i.name) for i in _walk() if i.ispkg]


FAMILIES = family_modules()
NAMESPACES = namespaces()


@pytest.mark.parametrize("ns", NAMESPACES, ids=lambda m: m.__name__)
def test_namespace_only_gathers_names_in_a_sorted_all(ns):
  assert list(ns.__all__) == sorted(ns.__all__), f"{ns.__name__}.__all__ is not sorted"
  assert len(set(ns.__all__)) == len(ns.__all__)
  for name in ns.__all__:
    obj = getattr(ns, name)
    if inspect.isfunction(obj) or inspect.isclass(obj):
      assert obj.__module__ != ns.__name__, f"{ns.__name__}/__init__.py defines {name}"


def test_each_family_module_name_is_exported_by_a_namespace():
  exported = {id(getattr(ns, n)) for ns in NAMESPACES for n in ns.__all__}
  for mod in FAMILIES:
    assert hasattr(mod, "__all__"), f"{mod.__name__} must define __all__"
    for name in mod.__all__:
      assert id(getattr(mod, name)) in exported, f"{mod.__name__}.{name} is in no namespace"


# Names optax itself gives to two different objects in two namespaces: `optax.scale` (a
# transformation) and `optax.tree.scale` (tree arithmetic); likewise `clip`.
# gradtx's own: `gradtx.curvature.gauss_newton` (the J^T H J operator, issue 15) and the optimizer
# `gradtx.gauss_newton` (issue 16, a chain that uses the operator), as the issue names them.
HOMONYMS = {"clip": {"gradtx.transforms.clipping", "gradtx.tree.arithmetic"},
            "scale": {"gradtx.transforms.scaling", "gradtx.tree.arithmetic"},
            "gauss_newton": {"gradtx.curvature.operators", "gradtx.optimizers.newton"}}


def test_each_public_symbol_defined_in_one_place():
  seen = {}
  for mod in FAMILIES:
    for name in mod.__all__:
      obj = getattr(mod, name)
      home = getattr(obj, "__module__", mod.__name__)
      if obj is gradtx.EmptyState and name != "EmptyState":
        continue  # a state name optax binds to EmptyState (ScaleState, ClipState, ...): bound alike
      if (inspect.isfunction(obj) or inspect.isclass(obj)) and home != "typing":  # not type aliases
        assert home == mod.__name__, f"{name} is re-exported by {mod.__name__} from {home}"
      homonym = name in HOMONYMS and {seen.get(name), mod.__name__} == HOMONYMS[name]
      assert name not in seen or homonym, f"{name} exported by {seen.get(name)} and {mod.__name__}"
      seen[name] = mod.__name__


def test_namespace_names_are_the_family_objects():
  """A namespace binds its names to the family modules' objects (tree_utils renames them)."""
  defined = {id(getattr(m, n)) for m in FAMILIES for n in m.__all__}
  for ns in NAMESPACES:
    for name in ns.__all__:
      obj = getattr(ns, name)
      if inspect.ismodule(obj) or not (inspect.isfunction(obj) or inspect.isclass(obj)):
        continue
      assert id(obj) in defined, f"{ns.__name__}.{name} is not defined in a family module"


def _public_objects():
  for ns in NAMESPACES:
    for name in ns.__all__:
      yield f"{ns.__name__}.{name}", getattr(ns, name)


@pytest.mark.parametrize("path,obj", list(_public_objects()), ids=lambda x: x if isinstance(x, str)
                         else "")
def test_every_public_name_has_a_docstring(path, obj):
  if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismodule(obj)):
    return  # type aliases
  assert inspect.getdoc(obj), f"{path} has no docstring"


# Modules whose every public function is an algorithm from a paper.
ALGORITHM_MODULES = {
    "gradtx.transforms.momentum", "gradtx.transforms.adaptive", "gradtx.transforms.sign",
    "gradtx.transforms.noise", "gradtx.schedules.restarts", "gradtx.schedules.cyclic",
    "gradtx.schedules.transformer", "gradtx.schedules.momentum", "gradtx.schedules.batch_size"}
ALGORITHM_PACKAGES = ("gradtx.optimizers.",)
# Algorithms that live beside helpers (accessors, plots) in their modules.
ALGORITHM_FUNCTIONS = {"polyak_averaging", "ema_params", "snapshot_ensemble", "reduce_on_plateau",
                       "lr_range_test", "lookahead", "mixed_precision"}


def test_every_algorithm_docstring_has_references_and_example():
  for mod in FAMILIES:
    in_algorithm_module = (mod.__name__ in ALGORITHM_MODULES
                           or mod.__name__.startswith(ALGORITHM_PACKAGES))
    for name in mod.__all__:
      obj = getattr(mod, name)
      if inspect.isfunction(obj) and (in_algorithm_module or name in ALGORITHM_FUNCTIONS):
        doc = inspect.getdoc(obj)
        assert "References:" in doc, f"{mod.__name__}.{name} cites no references"
        assert "Example:" in doc and ">>>" in doc, f"{mod.__name__}.{name} has no example"


@pytest.mark.parametrize("mod", FAMILIES + [importlib.import_module("gradtx.base")],
                         ids=lambda m: m.__name__)
def test_docstring_examples_run(mod):
  result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
  assert result.failed == 0
