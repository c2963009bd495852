"""The documentation site (docs/, issue 20): it builds with warnings as errors and nitpicky
references, every public name has its API entry, the pages' code runs, the docstrings follow
one template (with the exceptions listed here, each with its reason), no page loads anything
from the network, and a real browser (headless Chromium) typesets the equations and shows the
notebooks' plots.

Run alone: `python -m pytest tests/test_docs.py -n 0`. The build (about 40 s of CPU) happens once
per session, into a temporary directory, from a copy of docs/ (nothing is written into the
repository). `python tests/test_docs.py` prints the template dicts as they are now.
"""

import contextlib
import inspect
import io
import os
import pathlib
import re
import shutil
import subprocess
import sys
import typing

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))
import gradtx_docs  # noqa: E402  (docs/_ext: the generator the build uses)

pytestmark = pytest.mark.xdist_group("docs")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _have_sphinx():
  try:
    import myst_nb  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
    import sphinx  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
    import sphinx_book_theme  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
  except ImportError:
    return False
  return True


needs_sphinx = pytest.mark.skipif(not _have_sphinx(),
                                  reason="the docs packages are not installed: pip install -e '.[dev]'")


@pytest.fixture(scope="session")
def built_docs(tmp_path_factory):
  """Builds the site once: -W (warnings are errors), -n (nitpicky), --keep-going (report all)."""
  if not _BUILT:  # once per process, even if pytest sets the session fixture up again
    _BUILT.append(_build(tmp_path_factory))
  return _BUILT[0]


_BUILT: list = []


def _build(tmp_path_factory):
  """The build (~40 s of CPU)."""
  tmp = tmp_path_factory.mktemp("docs")
  src = tmp / "src"
  shutil.copytree(DOCS, src, ignore=shutil.ignore_patterns(*gradtx_docs.GENERATED, "_build",
                                                             "jupyter_execute", "__pycache__"))
  out = tmp / "html"
  env = dict(os.environ, GRADTX_DOCS_ROOT=str(ROOT), JAX_PLATFORMS="cpu",
             PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
  proc = subprocess.run(
      [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html",
       "-d", str(tmp / "doctrees"), str(src), str(out)],
      capture_output=True, text=True, env=env, cwd=tmp, timeout=600, check=False)
  return proc, out


@needs_sphinx
def test_docs_build_without_warnings(built_docs):
  proc, out = built_docs
  assert proc.returncode == 0, proc.stderr[-6000:] + proc.stdout[-2000:]
  assert "WARNING" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr[-6000:]
  for page in ["index", "getting_started", "migrating", "which_optimizer", "api/index",
               "notebooks/index", "benchmarks/index"]:
    assert (out / f"{page}.html").exists(), page


@needs_sphinx
def test_every_public_name_has_an_api_entry(built_docs):
  proc, out = built_docs
  assert proc.returncode == 0, proc.stderr[-3000:]
  missing = []
  for ns in gradtx_docs.namespaces():
    html = (out / "api" / f"{ns.__name__}.html").read_text()
    assert f'id="module-{ns.__name__}"' in html, ns.__name__
    for name in ns.__all__:
      obj = getattr(ns, name)
      anchor = f"module-{obj.__name__}" if inspect.ismodule(obj) else f"{ns.__name__}.{name}"
      page = out / "api" / f"{obj.__name__}.html" if inspect.ismodule(obj) else None
      if f'id="{anchor}"' not in (page.read_text() if page else html):
        missing.append(f"{ns.__name__}.{name}")
  assert not missing, f"{len(missing)} names without an API entry: {missing[:20]}"


@needs_sphinx
def test_every_notebook_and_benchmark_chart_is_rendered(built_docs):
  proc, out = built_docs
  assert proc.returncode == 0, proc.stderr[-3000:]
  for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
    html = (out / "notebooks" / f"{nb.stem}.html").read_text()
    assert "cell_output" in html or "output" in html, f"{nb.stem}: no outputs rendered"
    if '"image/png"' in nb.read_text():  # every plot in the committed outputs is on the page
      assert "<img" in html, f"{nb.stem}: no plot rendered from the committed outputs"
  bench = (out / "benchmarks" / "index.html").read_text()
  for png in sorted((ROOT / "benchmarks").rglob("*.png")):
    assert png.name in bench, png


@needs_sphinx
def test_no_page_loads_anything_from_the_network(built_docs):
  proc, out = built_docs
  assert proc.returncode == 0, proc.stderr[-3000:]
  remote = re.compile(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=[\"'](https?:)?//", re.I)
  bad = {}
  for page in out.rglob("*.html"):
    hits = [m.group(0) for m in remote.finditer(page.read_text())]
    if hits:
      bad[str(page.relative_to(out))] = hits[:3]
  assert not bad, bad
  mathjax = (out / "api" / "gradtx.optimizers.html").read_text()
  assert re.search(r'<script[^>]*src="\.\./_static/mathjax/tex-chtml\.js"', mathjax)
  assert (out / "_static" / "mathjax" / "tex-chtml.js").exists()
  for css_js in list(out.rglob("*.css")) + list((out / "_static").glob("*.js")):
    text = css_js.read_text(errors="ignore")
    assert not re.search(r"@import\s+url\([\"']?https?://", text), css_js


def _markdown_python_blocks(page):
  return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)


@pytest.mark.parametrize("page", ["getting_started.md", "migrating.md"])
def test_the_pages_code_runs(page):
  pytest.importorskip("flax")
  if page == "migrating.md":
    pytest.importorskip("optax")
  namespace = {"__name__": f"docs_{page}"}
  with contextlib.redirect_stdout(io.StringIO()):
    for block in _markdown_python_blocks(page):  # in order, as one program
      exec(compile(block, str(DOCS / page), "exec"), namespace)  # pylint: disable=exec-used


def test_migration_table_has_every_documented_difference():
  table, rows = gradtx_docs.differences(ROOT)
  section = re.search(r"\A# Differences from optax\n(.*)",
                      (ROOT / "docs" / "differences.md").read_text(), re.S).group(1)
  assert rows == len(re.findall(r"^ *- ", section, re.M)) and rows >= 20
  assert "adadelta" in table and "checkpoint" in table


# --- the docstring template --------------------------------------------------------------
# Every public docstring: a one-line summary; the update rule as math; Args; Returns; an
# Example (a doctest, run by tests/test_api.py); References. Classes document their fields
# (Attributes or Args) and return nothing; names whose docstring has no equation to show are in
# EXEMPT_EQUATION with the reason; PENDING_TEMPLATE lists the sections each docstring still
# lacks and may only shrink: a name listed here that became compliant fails the test, so the
# list is kept exact.

SECTIONS = ("summary", "math", "args", "returns", "example", "references")


def _kind(obj):
  if typing.get_origin(obj) is not None:  # a typing alias (Union[...], Callable[...]) is callable
    return "data"
  if inspect.isclass(obj):
    return "class"
  return "function" if callable(obj) else "data"


def _parameters(obj):
  """The arguments a docstring must describe: a function's parameters, a class's fields."""
  fields = getattr(obj, "_fields", None)
  if fields is not None:
    return list(fields)
  try:
    params = inspect.signature(obj).parameters
  except (TypeError, ValueError):
    return []
  return [n for n, p in params.items() if n not in ("self", "cls")
          and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _data_doc(key):
  """A data name's documentation: its `#:` comment in the source, as autodoc reads it (a typing
  alias such as `Union[...]` cannot carry a `__doc__` of its own)."""
  analyzer = pytest.importorskip("sphinx.pycode").ModuleAnalyzer  # the `docs` extra (in `dev`)
  module, _, name = key.rpartition(".")
  docs = analyzer.for_module(f"gradtx.{module}").find_attr_docs()
  return inspect.cleandoc("\n".join(docs.get(("", name), [])))


def template_gaps(obj, key=None):
  """The template sections `obj`'s docstring lacks (`key`: its "family.name", for data names)."""
  if _kind(obj) == "data" and key is not None:
    doc = _data_doc(key)
  else:
    doc = inspect.getdoc(obj) or ""
  lines = doc.splitlines()
  kind = _kind(obj)
  gaps = []
  if not lines or not lines[0].strip() or (len(lines) > 1 and lines[1].strip()):
    gaps.append("summary")
  if ":math:`" not in doc and ".. math::" not in doc:
    gaps.append("math")
  has = lambda *heads: any(re.search(rf"^{h}:\s*$", doc, re.M) for h in heads)
  if kind == "function":
    if _parameters(obj) and not has("Args", "Arguments"):
      gaps.append("args")
    if not has("Returns", "Yields"):
      gaps.append("returns")
  elif kind == "class" and _parameters(obj) and not has("Args", "Attributes", "Arguments"):
    gaps.append("args")
  if not has("Example", "Examples"):
    gaps.append("example")
  if not has("References", "Reference"):
    gaps.append("references")
  return gaps


def documented_names():
  """{"family.module.name" (without `gradtx.`): object} for every name a family defines."""
  out = {}
  for mod in gradtx_docs.families():
    for name in mod.__all__:
      obj = getattr(mod, name)
      if inspect.ismodule(obj):
        continue
      out[f"{mod.__name__.removeprefix('gradtx.')}.{name}"] = obj
  return out


def exemption_reason(key, obj):
  """Why a name's docstring has no equation to show, or None when it should have one."""
  family = key.rsplit(".", 1)[0]
  if _kind(obj) == "data":
    return "type alias"
  if inspect.isclass(obj):
    if issubclass(obj, tuple) and key.endswith(("State", "Info")):
      return "state container"
    return "container or protocol class"
  if family.startswith(("tree.", "tree_utils.")):
    return "tree utility without an update rule"
  if family in {"base", "combine", "update"} or family.startswith("transforms.masking"):
    return "combinator without an update rule"
  if family.startswith(("tuning.", "transforms.monitoring", "transforms.layouts",
                        "transforms.precision", "transforms.conditional",
                        "transforms.failsafe", "transforms.freezing", "microbatching.",
                        "learned.checkpoint")):
    return "utility or wrapper without an update rule of its own"
  if key in ("learned.es.es_init", "learned.tasks.wrap_task"):  # set-up helpers, no formula
    return "utility or wrapper without an update rule of its own"
  return None


def current_template():
  """(EXEMPT_EQUATION, PENDING_TEMPLATE) as the docstrings are now."""
  exempt, pending = {}, {}
  for key, obj in sorted(documented_names().items()):
    gaps = template_gaps(obj, key)
    reason = exemption_reason(key, obj)
    if "math" in gaps and reason:
      exempt[key] = reason
      gaps.remove("math")
    if _kind(obj) != "function" and reason:  # a state container or alias: fields, no paper
      gaps = [g for g in gaps if g not in ("example", "references")]
    if gaps:
      pending[key] = tuple(gaps)
  return exempt, pending


def test_docstrings_follow_the_template():
  exempt_now, pending_now = current_template()
  names = documented_names()
  stale = sorted(set(EXEMPT_EQUATION) - set(names)) + sorted(set(PENDING_TEMPLATE) - set(names))
  assert not stale, f"listed names that no longer exist: {stale}"
  unlisted = {k: v for k, v in pending_now.items() if set(v) - set(PENDING_TEMPLATE.get(k, ()))}
  assert not unlisted, f"docstrings missing template sections (write them): {unlisted}"
  fixed = {k: sorted(set(v) - set(pending_now.get(k, ()))) for k, v in PENDING_TEMPLATE.items()
           if set(v) - set(pending_now.get(k, ()))}
  assert not fixed, f"these now have the sections; remove them from PENDING_TEMPLATE: {fixed}"
  new_exempt = sorted(set(exempt_now) - set(EXEMPT_EQUATION))
  assert not new_exempt, f"no equation and no listed reason (add math or a reason): {new_exempt}"
  has_math = sorted(k for k in EXEMPT_EQUATION if k in names and k not in exempt_now
                    and "math" not in template_gaps(names[k], k))
  assert not has_math, f"these now show an equation; remove them from EXEMPT_EQUATION: {has_math}"


# --- a real browser --------------------------------------------------------------------------

_CHECK_IMAGES = """<script>
window.addEventListener('load', () => setTimeout(() => {
  const imgs = Array.from(document.querySelectorAll('img'));
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
}, 500));
</script></body>"""


def _chromium(*args, timeout=120):
  cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--allow-file-access-from-files", "--virtual-time-budget=20000",
         *args]
  return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


@needs_sphinx
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install "
                    "chromium; .ci/run installs it): the browser check of the built site is skipped")
def test_browser_typesets_math_and_shows_plots(built_docs, tmp_path):
  proc, out = built_docs
  assert proc.returncode == 0, proc.stderr[-3000:]
  pages = {"index": out / "index.html", "adam": out / "api" / "gradtx.optimizers.html",
           "notebook": out / "notebooks" / "03_amsgrad_counterexample.html"}
  doms = {}
  for key, page in pages.items():
    probe = page.with_name(f"_probe_{page.name}")  # the page plus an image check, beside it
    probe.write_text(page.read_text().replace("</body>", _CHECK_IMAGES, 1))
    run = _chromium("--dump-dom", probe.as_uri())
    doms[key] = run.stdout
    assert "<html" in run.stdout, (key, run.stderr[-2000:])
    shot = tmp_path / f"{key}.png"
    _chromium("--window-size=1280,2000", f"--screenshot={shot}", probe.as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000, (key, "blank or missing screenshot")
    if os.environ.get("GRADTX_DOCS_SCREENSHOTS"):  # to look at them: a folder to copy them to
      shutil.copy(shot, pathlib.Path(os.environ["GRADTX_DOCS_SCREENSHOTS"]) / shot.name)
  assert "gradtx" in doms["index"]
  for key in ("adam", "notebook"):
    assert doms[key].count("<mjx-container") >= 3, f"{key}: MathJax typeset no equations"
    assert "<mjx-merror" not in doms[key], f"{key}: MathJax could not parse an equation"
  loaded = re.search(r'data-images="(\d+)/(\d+)"', doms["notebook"])
  assert loaded, "the image check did not run"
  ok, total = map(int, loaded.groups())
  assert total >= 2 and ok == total, f"notebook plots loaded: {ok} of {total}"


# Generated by `python tests/test_docs.py` when the test was written (issue 20); edit by hand
# from then on: remove a name once its docstring has the section (the test says which).
EXEMPT_EQUATION = {
    'base.ArrayTree': 'container or protocol class',
    'base.EmptyState': 'state container',
    'base.GradientTransformation': 'container or protocol class',
    'base.GradientTransformationExtraArgs': 'container or protocol class',
    'base.MaskOrFn': 'type alias',
    'base.Numeric': 'type alias',
    'base.OptState': 'container or protocol class',
    'base.Params': 'container or protocol class',
    'base.ScalarOrSchedule': 'type alias',
    'base.Schedule': 'type alias',
    'base.TransformInitFn': 'container or protocol class',
    'base.TransformUpdateExtraArgsFn': 'container or protocol class',
    'base.TransformUpdateFn': 'container or protocol class',
    'base.Updates': 'container or protocol class',
    'base.identity': 'combinator without an update rule',
    'base.init_empty_state': 'combinator without an update rule',
    'base.set_to_zero': 'combinator without an update rule',
    'base.stateless': 'combinator without an update rule',
    'base.stateless_with_tree_map': 'combinator without an update rule',
    'base.with_extra_args_support': 'combinator without an update rule',
    'combine.PartitionState': 'state container',
    'combine.chain': 'combinator without an update rule',
    'combine.named_chain': 'combinator without an update rule',
    'combine.partition': 'combinator without an update rule',
    'contrib.ademamix.ScaleByAdemamixState': 'state container',
    'contrib.ademamix.ScaleBySimplifiedAdEMAMixState': 'state container',
    'contrib.complex.SplitRealAndImaginaryState': 'state container',
    'contrib.galore.GaLoreState': 'state container',
    'contrib.hutchinson.HutchinsonState': 'state container',
    'contrib.muon.MuonDimensionNumbers': 'container or protocol class',
    'contrib.muon.MuonState': 'state container',
    'contrib.plateau.ReduceLROnPlateauState': 'state container',
    'contrib.privacy.DifferentiallyPrivateAggregateState': 'state container',
    'contrib.sam.SAMState': 'state container',
    'contrib.schedule_free.ScheduleFreeState': 'state container',
    'contrib.sophia.SophiaState': 'state container',
    'curvature.kronecker.KroneckerLayer': 'container or protocol class',
    'curvature.monitor.CurvatureMonitorState': 'state container',
    'curvature.operators.LinearOperator': 'container or protocol class',
    'distributed.compression.PowerSGDState': 'state container',
    'distributed.compression.SignCompressionState': 'state container',
    'distributed.compression.TopKState': 'state container',
    'distributed.delay_tolerant.DelayTolerantAdagradState': 'state container',
    'distributed.delayed.DelayedState': 'state container',
    'distributed.diloco.DiLoCoState': 'state container',
    'distributed.downpour.DownpourState': 'state container',
    'distributed.easgd.EASGDState': 'state container',
    'distributed.hogwild.HogwildState': 'state container',
    'distributed.local_sgd.LocalSGDState': 'state container',
    'learned.checkpoint.load_meta_params': 'utility or wrapper without an update rule of its own',
    'learned.checkpoint.save_meta_params': 'utility or wrapper without an update rule of its own',
    'learned.es.ESState': 'state container',
    'learned.es.es_init': 'utility or wrapper without an update rule of its own',
    'learned.lstm.LSTMOptimizerState': 'state container',
    'learned.lstm.LearnedOptimizer': 'container or protocol class',
    'learned.meta.MetaTrainResult': 'container or protocol class',
    'learned.mlp.MLPOptimizerState': 'state container',
    'learned.search.SearchResult': 'result container',
    'learned.tasks.Task': 'container or protocol class',
    'learned.tasks.wrap_task': 'utility or wrapper without an update rule of its own',
    'learned.update_rule.ScaleByUpdateRuleState': 'state container',
    'microbatching.accumulators.AccumulationType': 'container or protocol class',
    'microbatching.loop.micro_vmap': 'utility or wrapper without an update rule of its own',
    'schedules.inject.InjectStatefulHyperparamsState': 'state container',
    'schedules.inject.StatefulSchedule': 'container or protocol class',
    'schedules.inject.WrappedSchedule': 'container or protocol class',
    'transforms.accumulation.ApplyEvery': 'container or protocol class',
    'transforms.accumulation.MultiStepsState': 'state container',
    'transforms.adahessian.ScaleByAdaHessianState': 'state container',
    'transforms.asgd.ScaleByAsgdState': 'state container',
    'transforms.averaging.SnapshotEnsembleState': 'state container',
    'transforms.conditional.ConditionFn': 'container or protocol class',
    'transforms.conditional.ConditionallyMaskState': 'state container',
    'transforms.conditional.ConditionallyTransformState': 'state container',
    'transforms.coordinate.BlockCoordinateDescentState': 'state container',
    'transforms.decay.WeightDecaySchedule': 'container or protocol class',
    'transforms.dog.ScaleByDistanceOverGradientsState': 'state container',
    'transforms.entropy_sgd.ScaleByEntropySGDState': 'state container',
    'transforms.factored.FactoredState': 'state container',
    'transforms.failsafe.ApplyIfFiniteState': 'state container',
    'transforms.failsafe.ShouldSkipUpdateFunction': 'container or protocol class',
    'transforms.failsafe.ZeroNansState': 'state container',
    'transforms.freezing.selective_transform': 'utility or wrapper without an update rule of its own',
    'transforms.kfac.ScaleByKfacState': 'state container',
    'transforms.least_squares.ScaleByGaussNewtonState': 'state container',
    'transforms.linesearch.ScaleByBacktrackingLinesearchState': 'state container',
    'transforms.linesearch.ScaleByZoomLinesearchState': 'state container',
    'transforms.linesearch.ZoomLinesearchInfo': 'state container',
    'transforms.lion.ScaleByLionState': 'state container',
    'transforms.lookahead.LookaheadParams': 'container or protocol class',
    'transforms.lookahead.LookaheadState': 'state container',
    'transforms.masking.MaskedNode': 'container or protocol class',
    'transforms.masking.MaskedState': 'state container',
    'transforms.momentum.EmaState': 'state container',
    'transforms.momentum.TraceState': 'state container',
    'transforms.momentum.TraceWithCountState': 'state container',
    'transforms.monitoring.EarlyStopping': 'container or protocol class',
    'transforms.monitoring.EarlyStoppingState': 'state container',
    'transforms.monitoring.MonitorState': 'state container',
    'transforms.monitoring.SnapshotState': 'state container',
    'transforms.monitoring.health_monitor': 'utility or wrapper without an update rule of its own',
    'transforms.monitoring.monitor': 'utility or wrapper without an update rule of its own',
    'transforms.monitoring.read_measures': 'utility or wrapper without an update rule of its own',
    'transforms.monitoring.snapshot': 'utility or wrapper without an update rule of its own',
    'transforms.newton.ScaleByNewtonCGState': 'state container',
    'transforms.newton.ScaleBySaddleFreeNewtonState': 'state container',
    'transforms.noise.AddNoiseState': 'state container',
    'transforms.optimistic.ScaleByOptimisticGradientState': 'state container',
    'transforms.precision.MixedPrecisionState': 'state container',
    'transforms.precision.state_bytes': 'utility or wrapper without an update rule of its own',
    'transforms.precision.state_bytes_per_param': 'utility or wrapper without an update rule of its own',
    'transforms.rprop.ScaleByRpropState': 'state container',
    'transforms.scaling.ScaleByScheduleState': 'state container',
    'transforms.shampoo.ScaleByShampooState': 'state container',
    'transforms.sign.ScaleByAddsignState': 'state container',
    'transforms.sign.ScaleByPowersignState': 'state container',
    'transforms.sm3.ScaleBySM3State': 'state container',
    'transforms.soap.ScaleBySoapState': 'state container',
    'tree.access.NamedTupleKey': 'container or protocol class',
    'tree.access.get': 'tree utility without an update rule',
    'tree.access.get_all_with_path': 'tree utility without an update rule',
    'tree.access.map_params': 'tree utility without an update rule',
    'tree.access.set': 'tree utility without an update rule',
    'tree.arithmetic.add': 'tree utility without an update rule',
    'tree.arithmetic.add_scale': 'tree utility without an update rule',
    'tree.arithmetic.allclose': 'tree utility without an update rule',
    'tree.arithmetic.clip': 'tree utility without an update rule',
    'tree.arithmetic.conj': 'tree utility without an update rule',
    'tree.arithmetic.div': 'tree utility without an update rule',
    'tree.arithmetic.max': 'tree utility without an update rule',
    'tree.arithmetic.min': 'tree utility without an update rule',
    'tree.arithmetic.mul': 'tree utility without an update rule',
    'tree.arithmetic.real': 'tree utility without an update rule',
    'tree.arithmetic.scale': 'tree utility without an update rule',
    'tree.arithmetic.size': 'tree utility without an update rule',
    'tree.arithmetic.sub': 'tree utility without an update rule',
    'tree.arithmetic.sum': 'tree utility without an update rule',
    'tree.arithmetic.where': 'tree utility without an update rule',
    'tree.casting.batch_shape': 'tree utility without an update rule',
    'tree.casting.cast': 'tree utility without an update rule',
    'tree.casting.cast_like': 'tree utility without an update rule',
    'tree.casting.dtype': 'tree utility without an update rule',
    'tree.casting.full_like': 'tree utility without an update rule',
    'tree.casting.ones_like': 'tree utility without an update rule',
    'tree.casting.zeros_like': 'tree utility without an update rule',
    'tree.moments.moment_like': 'tree utility without an update rule',
    'tree.random.random_like': 'tree utility without an update rule',
    'tree.random.split_key_like': 'tree utility without an update rule',
    'tree.random.unwrap_random_key_data': 'tree utility without an update rule',
    'tuning.plots.plot_lr_range_test': 'utility or wrapper without an update rule of its own',
    'tuning.plots.plot_schedule': 'utility or wrapper without an update rule of its own',
    'tuning.range_test.LRRangeTestResult': 'container or protocol class',
    'tuning.sweep.grid_sweep': 'utility or wrapper without an update rule of its own',
    'update.apply_updates': 'combinator without an update rule',
}

PENDING_TEMPLATE = {
}


if __name__ == "__main__":  # prints the dicts as the docstrings are now
  e, p = current_template()
  print("EXEMPT_EQUATION = {")
  for k, v in e.items():
    print(f"    {k!r}: {v!r},")
  print("}\n\nPENDING_TEMPLATE = {")
  for k, v in p.items():
    print(f"    {k!r}: {v!r},")
  print("}")
