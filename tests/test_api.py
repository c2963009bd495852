"""The public API: `__all__` is exactly the family modules' public names, every entry has a
docstring, every algorithm cites its references, and every docstring example runs."""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import gradtx

PRIVATE_OR_TOOLS = {"demo"}  # modules that are programs, not families of the API


def family_modules():
  for info in pkgutil.iter_modules(gradtx.__path__):
    if info.name.startswith("_") or info.name in PRIVATE_OR_TOOLS:
      continue
    yield importlib.import_module(f"gradtx.{info.name}")


def test_all_is_sorted_and_equals_family_public_names():
  names = set()
  for mod in family_modules():
    assert hasattr(mod, "__all__"), f"{mod.__name__} must define __all__"
    names |= set(mod.__all__)
  assert list(gradtx.__all__) == sorted(gradtx.__all__)
  assert set(gradtx.__all__) == names


def test_each_public_symbol_defined_in_one_place():
  seen = {}
  for mod in family_modules():
    for name in mod.__all__:
      obj = getattr(mod, name)
      assert getattr(gradtx, name) is obj
      home = getattr(obj, "__module__", mod.__name__)
      if obj is gradtx.EmptyState and name != "EmptyState":
        continue  # a state name optax binds to EmptyState (ScaleState, ClipState, ...): bound alike
      if (inspect.isfunction(obj) or inspect.isclass(obj)) and home != "typing":  # not type aliases
        assert home == mod.__name__, f"{name} is re-exported by {mod.__name__} from {home}"
      assert name not in seen, f"{name} exported by {seen.get(name)} and {mod.__name__}"
      seen[name] = mod.__name__


@pytest.mark.parametrize("name", sorted(gradtx.__all__))
def test_every_public_name_has_a_docstring(name):
  obj = getattr(gradtx, name)
  if not (inspect.isfunction(obj) or inspect.isclass(obj)):
    return  # type aliases
  assert inspect.getdoc(obj), f"gradtx.{name} has no docstring"


ALGORITHM_MODULES = {"momentum", "adaptive", "adam_family", "sign", "noise", "aliases",
                     "paper_schedules"}
# Algorithms that live beside helpers (accessors, plots) in their modules.
ALGORITHM_FUNCTIONS = {"polyak_averaging", "ema_params", "snapshot_ensemble", "reduce_on_plateau",
                       "lr_range_test", "lookahead", "mixed_precision"}


def test_every_algorithm_docstring_has_references_and_example():
  for mod in family_modules():
    in_algorithm_module = mod.__name__.split(".")[-1] in ALGORITHM_MODULES
    for name in mod.__all__:
      obj = getattr(mod, name)
      if inspect.isfunction(obj) and (in_algorithm_module or name in ALGORITHM_FUNCTIONS):
        doc = inspect.getdoc(obj)
        assert "References:" in doc, f"gradtx.{name} cites no references"
        assert "Example:" in doc and ">>>" in doc, f"gradtx.{name} has no example"


@pytest.mark.parametrize("mod", list(family_modules()) + [importlib.import_module("gradtx.base")],
                         ids=lambda m: m.__name__)
def test_docstring_examples_run(mod):
  result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
  assert result.failed == 0
