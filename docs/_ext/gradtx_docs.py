"""Generates the parts of gradtx's documentation that follow the repository, at build time.

- `api/`: one page per public namespace (`gradtx`, `gradtx.transforms`, ...), found by walking
  the package as `tests/test_api.py` does, with one autodoc entry for every name of the
  namespace's `__all__`, grouped by the family module that defines it. A name added to an
  `__all__` gets its entry in the next build; a new namespace gets its page.
- `notebooks/`: every `notebooks/NN_*.ipynb` (rendered by myst-nb from its committed outputs)
  and the files beside them, with `notebooks/README.md` as the index.
- `benchmarks/`: the benchmark write-ups (`benchmarks/**/*.md`) and their charts (`*.png`).
- `_generated/differences.md`: docs/differences.md's bullets as a table.

Generated files are written into the source directory only when their content changed (so
incremental builds stay incremental) and are ignored by git.
"""

from __future__ import annotations

import importlib
import inspect
import pathlib
import pkgutil
import re

from sphinx.domains.python import PythonDomain

PROGRAMS = ("gradtx.demo",)  # programs, not API namespaces (as tests/test_api.py)
GENERATED = ("api", "notebooks", "benchmarks", "_generated")


def namespaces():
  """`gradtx` and every public subpackage, in walk order."""
  import gradtx  # pylint: disable=import-outside-toplevel
  out = [gradtx]
  for info in pkgutil.walk_packages(gradtx.__path__, prefix="gradtx."):
    parts = info.name.split(".")
    if not info.ispkg or any(p.startswith("_") for p in parts):
      continue
    if any(info.name == p or info.name.startswith(p + ".") for p in PROGRAMS):
      continue
    out.append(importlib.import_module(info.name))
  return out


def families():
  """Every public family module (the files that define the names), as tests/test_api.py."""
  import gradtx  # pylint: disable=import-outside-toplevel
  out = []
  for info in pkgutil.walk_packages(gradtx.__path__, prefix="gradtx."):
    parts = info.name.split(".")
    if info.ispkg or any(p.startswith("_") for p in parts):
      continue
    if any(info.name == p or info.name.startswith(p + ".") for p in PROGRAMS):
      continue
    out.append(importlib.import_module(info.name))
  return out


def public_names():
  """{namespace name: [its __all__]}; the API entries the docs must have."""
  return {ns.__name__: list(ns.__all__) for ns in namespaces()}


def _write(path: pathlib.Path, text: str | bytes):
  """Writes only if the content differs, so unchanged pages are not re-read by Sphinx."""
  path.parent.mkdir(parents=True, exist_ok=True)
  data = text.encode() if isinstance(text, str) else text
  if not path.exists() or path.read_bytes() != data:
    path.write_bytes(data)


def _copy(src: pathlib.Path, dst: pathlib.Path):
  _write(dst, src.read_bytes())


def _summary(obj) -> str:
  doc = inspect.getdoc(obj) or ""
  return doc.strip().split("\n\n")[0].replace("\n", " ").strip()


def _directive(obj) -> str:
  if inspect.ismodule(obj):
    return "module"
  if inspect.isclass(obj):
    return "autoclass"
  if callable(obj):
    return "autofunction"
  return "autodata"


def _family(ns, obj) -> str:
  """The family module that defines `obj` (its section on the namespace page)."""
  mod = getattr(obj, "__module__", None) or ns.__name__
  if not isinstance(mod, str) or not mod.startswith("gradtx"):
    mod = ns.__name__  # typing aliases and the like: documented with the namespace itself
  return mod


def api_page(ns) -> str:
  name = ns.__name__
  lines = [name, "=" * len(name), "", f".. py:module:: {name}", ""]
  doc = inspect.getdoc(ns) or ""
  if doc:
    lines += [f"*{_summary(ns)}*", ""]
  lines += [f"{len(ns.__all__)} public names.", ""]
  groups: dict[str, list[str]] = {}
  subpackages = [n for n in ns.__all__ if inspect.ismodule(getattr(ns, n))]
  if subpackages:  # documented on their own pages; listed here with a link
    lines += ["Namespaces: " + ", ".join(
        f":py:mod:`{getattr(ns, n).__name__}`" for n in subpackages) + ".", ""]
  for n in ns.__all__:
    if n not in subpackages:
      groups.setdefault(_family(ns, getattr(ns, n)), []).append(n)
  for mod in sorted(groups):
    title = mod if mod != name else f"{name} (types and aliases)"
    lines += [title, "-" * len(title), "", f".. currentmodule:: {name}", ""]
    for n in groups[mod]:
      obj = getattr(ns, n)
      directive = _directive(obj)
      lines.append(f".. {directive}:: {n}")
      if directive == "autodata":
        lines.append("   :no-value:")
      lines.append("")
  return "\n".join(lines) + "\n"


def api_index(pages) -> str:
  lines = ["# API reference", "",
           "One page per namespace, as in optax: `import gradtx as optax` reaches the same names "
           "at the same dotted paths. Each entry shows the signature, the update equation, the "
           "arguments, a runnable example and the paper.", "",
           "| namespace | names | what it holds |", "| --- | --- | --- |"]
  for ns in pages:
    summary = _summary(ns).replace("|", "\\|")
    lines.append(f"| [`{ns.__name__}`]({ns.__name__}.rst) | {len(ns.__all__)} | {summary} |")
  lines += ["", "```{toctree}", ":hidden:", ":maxdepth: 1", ""]
  lines += [ns.__name__ for ns in pages]
  lines += ["```", ""]
  return "\n".join(lines)


_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def _fix_links(text: str, here: pathlib.Path, available: set[str]) -> str:
  """Keeps links to pages and images that are part of the docs; the rest become plain text
  (links to JSON files, folders or files outside docs/ would be broken references)."""
  def sub(m):
    bang, label, target = m.groups()
    if re.match(r"[a-z]+:", target) or target.startswith("#"):
      return m.group(0)
    path, _, anchor = target.partition("#")
    resolved = (here / path).as_posix()
    key = str(pathlib.PurePosixPath(resolved))
    if key in available or _normpath(resolved) in available:
      return m.group(0)
    return label if bang == "" else f"*{label}*"
  return _LINK.sub(sub, text)


def _normpath(p: str) -> str:
  import posixpath  # pylint: disable=import-outside-toplevel
  return posixpath.normpath(p)


def notebooks(root: pathlib.Path, out: pathlib.Path) -> list[str]:
  src = root / "notebooks"
  names = []
  for path in sorted(src.glob("*")):
    if path.is_file() and path.suffix in {".ipynb", ".gif", ".png", ".svg", ".jpg"}:
      if path.suffix == ".ipynb" and not re.match(r"\d\d_", path.name):
        continue
      _copy(path, out / path.name)
      if path.suffix == ".ipynb":
        names.append(path.stem)
  readme = (src / "README.md").read_text() if (src / "README.md").exists() else "# Notebooks\n"
  available = {f"{n}.ipynb" for n in names}
  readme = _fix_links(readme, pathlib.PurePosixPath("."), available)
  # The table names each notebook in backticks: link it to its page.
  for n in names:
    readme = readme.replace(f"| `{n}` |", f"| [`{n}`]({n}.ipynb) |")
  readme += "\n```{toctree}\n:hidden:\n:glob:\n\n[0-9][0-9]_*\n```\n"
  _write(out / "index.md", readme)
  return names


def benchmarks(root: pathlib.Path, out: pathlib.Path) -> list[str]:
  src = root / "benchmarks"
  mds = sorted(p for p in src.rglob("*.md"))
  pngs = sorted(p for p in src.rglob("*.png"))
  available = {p.relative_to(src).as_posix() for p in mds + pngs}
  for p in pngs:
    _copy(p, out / p.relative_to(src))
  pages = []
  for p in mds:
    rel = p.relative_to(src)
    text = _fix_links(p.read_text(), pathlib.PurePosixPath(rel.parent.as_posix()), available)
    if not text.lstrip().startswith("# "):  # a fragment (NOTES.md is included by RESULTS.md)
      text = f"# {rel.as_posix()}\n\n" + text
    _write(out / rel, text)
    pages.append(rel.with_suffix("").as_posix())
  lines = ["# Benchmark results", "",
           "Step time, compile time and memory of gradtx against optax and torch.optim, measured "
           "by the scripts in `benchmarks/` (`python -m benchmarks.run`, `--quick` for a short "
           "run; each writes its results next to it). The pages below are the committed "
           "write-ups, with the machine, the versions and the reason for every row where gradtx "
           "does not win.", ""]
  for p in pngs:
    rel = p.relative_to(src).as_posix()
    lines += [f"## {rel}", "", f"![{rel}]({rel})", ""]
  lines += ["```{toctree}", ":maxdepth: 1", ""] + pages + ["```", ""]
  _write(out / "index.md", "\n".join(lines))
  return pages


def differences(root: pathlib.Path) -> tuple[str, int]:
  """docs/differences.md's bullets as a two-column table (where, difference)."""
  text = (root / "docs" / "differences.md").read_text()
  m = re.search(r"\A# Differences from optax\n(.*)", text, re.S)
  if not m:
    raise RuntimeError("docs/differences.md does not start with '# Differences from optax'")
  items = []  # (depth, text)
  for line in m.group(1).splitlines():
    bullet = re.match(r"^( *)- (.*)", line)
    if bullet:
      items.append([len(bullet.group(1)) // 2, bullet.group(2).strip()])
    elif line.strip() and items:
      items[-1][1] += " " + line.strip()
  rows, parent = [], ""
  for depth, body in items:
    lead = re.match(r"^\*\*(.+?)\*\*\s*(.*)", body)
    if lead:
      where, what = lead.group(1).rstrip(".:"), lead.group(2)
    else:
      names = re.findall(r"`([A-Za-z_][\w.]*)(?:\(|`)", body)
      where = ", ".join(dict.fromkeys(f"`{n}`" for n in names[:3])) or "general"
      what = body
    if depth == 0:
      parent = where
    else:
      where = f"{parent}: {where}"
    if not what.strip():
      what = "(see the rows below)"
    rows.append((where, what))
  esc = lambda s: s.replace("|", "\\|")
  lines = ["| where | gradtx compared with optax 0.2.8 |", "| --- | --- |"]
  lines += [f"| {esc(w)} | {esc(t)} |" for w, t in rows]
  return "\n".join(lines) + "\n", len(rows)


def generate(srcdir: pathlib.Path, root: pathlib.Path):
  pages = namespaces()
  for ns in pages:
    _write(srcdir / "api" / f"{ns.__name__}.rst", api_page(ns))
  _write(srcdir / "api" / "index.md", api_index(pages))
  notebooks(root, srcdir / "notebooks")
  benchmarks(root, srcdir / "benchmarks")
  table, _ = differences(root)
  _write(srcdir / "_generated" / "differences.md", table)


# --- Sphinx-side fixes for a package whose names are exported by several namespaces ---------

_CODE_SPAN = re.compile(r"``[^`\n]+``|`[^`\n]+`")  # left to right, so pairs stay paired


_SUBSTITUTION = re.compile(r"(?<![\\|])\|(?=[^\s|])([^|\n]*?[^\s\\|])\|(?!\|)")


def _prose_lines(lines):
  """Indices of the lines that are reST prose: not inside a block introduced by `::` (math,
  code, literal blocks) and not doctest lines."""
  block_indent = None
  for i, line in enumerate(lines):
    indent = len(line) - len(line.lstrip())
    if block_indent is not None:
      if not line.strip() or indent > block_indent:
        continue
      block_indent = None
    if line.lstrip().startswith((">>>", "...")):
      continue
    if line.rstrip().endswith("::"):
      block_indent = indent
    yield i


def _on_docstring(app, what, name, obj, options, lines):
  """Two habits of the docstrings that reST reads otherwise, fixed where Sphinx reads them:
  "`Array`s" (reST needs a break after a closing backtick: "`Array`\\ s" renders the same),
  and "|h|" for an absolute value in prose (reST's substitution syntax: escaped to "\\|h|").
  Code spans, math roles, `::` blocks and doctests are left as written."""
  del app, what, name, obj, options
  for i in _prose_lines(lines):
    line = lines[i]
    out, pos = [], 0
    for m in _CODE_SPAN.finditer(line):
      out.append(_SUBSTITUTION.sub(r"\\|\1|", line[pos:m.start()]))
      out.append(m.group(0) + ("\\ " if line[m.end():m.end() + 1].isalpha() else ""))
      pos = m.end()
    out.append(_SUBSTITUTION.sub(r"\\|\1|", line[pos:]))
    lines[i] = "".join(out)


def _resolve(dotted: str):
  """The Python object a documented name refers to, or a unique sentinel."""
  parts = dotted.split(".")
  for i in range(len(parts), 0, -1):
    try:
      obj = importlib.import_module(".".join(parts[:i]))
    except ImportError:
      continue
    try:
      for part in parts[i:]:
        obj = getattr(obj, part)
    except AttributeError:
      return object()
    return obj
  return object()


class GradtxPythonDomain(PythonDomain):
  """The Python domain, aware that one object has several public names.

  `gradtx.adam`, `gradtx.optimizers.adam` are one function, and a class's canonical name
  (`gradtx.transforms.adaptive.ScaleByAdamState`) is noted by each of its entries: two
  aliases of one canonical name are not a duplicate description, and a short reference
  (`MonitorState` in an annotation) whose every match is the same object is not ambiguous.
  """

  def note_object(self, name, objtype, node_id, aliased=False, location=None):
    if aliased and name in self.objects and self.objects[name].aliased:
      return  # keep the first entry as the canonical name's target
    super().note_object(name, objtype, node_id, aliased=aliased, location=location)

  def find_obj(self, env, modname, classname, name, type, searchmode=0):  # noqa: A002
    matches = super().find_obj(env, modname, classname, name, type, searchmode)
    if len(matches) > 1:
      objs = [_resolve(m[0]) for m in matches]
      if all(o is objs[0] for o in objs):
        matches = [min(matches, key=lambda m: (m[1].aliased, len(m[0]), m[0]))]
    return matches


def _on_builder_inited(app):
  root = pathlib.Path(app.config.gradtx_root or pathlib.Path(app.srcdir).parent)
  generate(pathlib.Path(app.srcdir), root)


def setup(app):
  app.add_config_value("gradtx_root", "", "env")
  app.connect("builder-inited", _on_builder_inited)
  app.connect("autodoc-process-docstring", _on_docstring)
  app.add_domain(GradtxPythonDomain, override=True)
  return {"parallel_read_safe": True, "parallel_write_safe": True}
