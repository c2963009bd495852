"""Every public name of optax is at the same dotted path in gradtx (`import gradtx as optax`).

The list is read from the installed optax with `dir()`: its top level and each public namespace.
Names that later open issues add are listed below as PENDING, by issue, so the list only shrinks:
a pending name that gradtx now has fails `test_pending_list_only_shrinks` until it is removed here.
"""

import importlib
import inspect
import types

import pytest

optax = pytest.importorskip("optax")

import gradtx  # noqa: E402

NAMESPACES = ("", "transforms", "schedules", "tree", "tree_utils", "contrib", "losses",
              "second_order", "projections", "perturbations", "assignment", "microbatching")

_ZOO = (
    ""
).split()
_CONTRIB_ZOO = (
    ""
).split()


def _all(ns):
  return sorted(n for n in dir(importlib.import_module(f"optax.{ns}")) if not n.startswith("_"))


# Names that later open issues add: "path" (dotted, "" for the top level) -> the issue. (Issue
# 13's losses, projections, perturbations, assignment, microbatching, multi_normal and nnls, issue
# 14's zoo, issue 15's second_order, power_iteration and Hutchinson estimator, and issue 16's
# L-BFGS and line searches have landed.)
PENDING = {}
for _name in _ZOO:
  PENDING[_name] = "issue 14 (the optimizer zoo)"
for _name in _CONTRIB_ZOO:
  PENDING[f"contrib.{_name}"] = "issue 14 (the optimizer zoo, optax.contrib)"
# Issue 17's optax names (matrix_inverse_pth_root, contrib.sam, SAMState, sophia, SophiaState)
# have landed.
# optax.experimental (its `aggregating` module) is not asked for by any issue yet.
PENDING["experimental"] = "not requested by an issue (optax.experimental)"


def _optax_names():
  out = []
  for ns in NAMESPACES:
    mod = importlib.import_module("optax" + (f".{ns}" if ns else ""))
    for name in dir(mod):
      if name.startswith("_"):
        continue
      value = getattr(mod, name)
      # Standard-library modules that leak into optax's namespaces (tree_utils imports
      # functools and typing): not part of the API.
      if isinstance(value, types.ModuleType) and not value.__name__.startswith("optax"):
        continue
      out.append(f"{ns}.{name}" if ns else name)
  return out


OPTAX_NAMES = _optax_names()


def _lookup(path):
  obj = gradtx
  for part in path.split("."):
    obj = getattr(obj, part)
  return obj


def _present(path):
  try:
    _lookup(path)
    return True
  except AttributeError:
    return False


def test_every_optax_name_is_in_gradtx_or_pending():
  missing = [p for p in OPTAX_NAMES if p not in PENDING and not _present(p)]
  assert not missing, f"{len(missing)} optax names missing from gradtx: {missing}"


def test_pending_list_only_shrinks():
  done = sorted(p for p in PENDING if _present(p))
  assert not done, f"now present in gradtx, remove from PENDING: {done}"
  unknown = sorted(p for p in PENDING if p not in OPTAX_NAMES)
  assert not unknown, f"PENDING names optax does not have: {unknown}"


@pytest.mark.parametrize("ns", [n for n in NAMESPACES if n])
def test_namespaces_import_both_ways(ns):
  mod = importlib.import_module(f"gradtx.{ns}")
  assert getattr(gradtx, ns) is mod
  exec(f"from gradtx import {ns} as _m", {})  # pylint: disable=exec-used


def test_namespace_kinds_match():
  """A name optax exports as a module is a module in gradtx; a class is a class; a function
  (or other callable) is callable."""
  for path in OPTAX_NAMES:
    if not _present(path):  # pending names that have landed are checked too
      continue
    ours = _lookup(path)
    theirs = optax
    for part in path.split("."):
      theirs = getattr(theirs, part)
    if isinstance(theirs, types.ModuleType):
      assert isinstance(ours, types.ModuleType), path
    elif inspect.isclass(theirs):
      assert inspect.isclass(ours) or callable(ours), path
    elif callable(theirs):
      assert callable(ours), path


def _params(fn):
  try:
    return inspect.signature(fn).parameters
  except (TypeError, ValueError):
    return None


def test_shared_functions_accept_optax_arguments():
  """For every shared function, optax's positional arguments come first in gradtx's signature in
  the same order, and every argument name optax accepts is accepted by gradtx, so optax code
  calling with positions or keywords runs unchanged."""
  problems = []
  for path in OPTAX_NAMES:
    if not _present(path):  # pending names that have landed are checked too
      continue
    theirs = optax
    for part in path.split("."):
      theirs = getattr(theirs, part)
    ours = _lookup(path)
    if not inspect.isfunction(theirs) or not callable(ours):
      continue
    tp, op = _params(theirs), _params(ours)
    if tp is None or op is None:
      continue
    positional = lambda ps: [n for n, p in ps.items() if p.kind in (
        inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    tpos, opos = positional(tp), positional(op)
    if opos[:len(tpos)] != tpos and not any(
        p.kind is inspect.Parameter.VAR_POSITIONAL for p in op.values()):
      problems.append(f"{path}: positional {opos} vs optax {tpos}")
    named = {n for n, p in tp.items() if p.kind not in (
        inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)}
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in op.values()):
      missing = named - set(op)
      if missing:
        problems.append(f"{path}: lacks {sorted(missing)}")
  assert not problems, "\n".join(problems)
