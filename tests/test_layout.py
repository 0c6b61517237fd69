"""The house: the product never imports the research, stays small, and docs/layout.md matches the tree."""
import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "facequal_jax")
RESEARCH = os.path.join(PACKAGE, "research")


def _product_modules():
  for folder, dirs, names in os.walk(PACKAGE):
    dirs[:] = [name for name in dirs if os.path.join(folder, name) != RESEARCH and name != "__pycache__"]
    yield from (os.path.join(folder, name) for name in names if name.endswith(".py"))


def _imported(path: str):
  """Every module an import statement of `path` names, top-level and inside functions alike."""
  for node in ast.walk(ast.parse(open(path).read(), path)):
    if isinstance(node, ast.Import):
      yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      yield node.module
      yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_the_product_never_imports_the_research():
  modules = list(_product_modules())
  assert len(modules) > 50
  offending = sorted(f"{os.path.relpath(path, ROOT)}: {name}" for path in modules for name in _imported(path)
                     if name == "facequal_jax.research" or name.startswith("facequal_jax.research."))
  assert offending == []


def test_the_product_stays_small():
  """The product without the research: under 8,900 lines (7,406 when the research moved out; 7,613 with the
  suspicion score, the copy check and the weak-evidence and name checks; 7,831 with every finding kept, the
  stored search, the threshold selection of the k-NN tiles, the streamed pack writer and the bfloat16 face
  network; 8,438 with the ONNX graph converter and encoder)."""
  lines = sum(len(open(path).readlines()) for path in _product_modules())
  assert lines <= 8900, lines


def _layout_paths():
  with open(os.path.join(ROOT, "docs", "layout.md")) as f:
    table = re.search(r"<!-- layout-table -->\n(.*?)\n<!-- /layout-table -->", f.read(), re.S).group(1)
  rows = [line for line in table.splitlines() if line.startswith("| `")]
  return [path for row in rows for path in re.findall(r"`([^`]+)`", row.split("|")[1])]


def test_the_layout_table_matches_the_tree():
  paths = _layout_paths()
  missing = [path for path in paths if not os.path.exists(os.path.join(ROOT, path))]
  assert missing == []
  listed_folders = {os.path.normpath(path) for path in paths if path.endswith("/")}
  folders = {os.path.relpath(folder, ROOT) for folder, _, names in os.walk(PACKAGE)
             if "__init__.py" in names and folder != PACKAGE}
  assert sorted(folders - listed_folders) == []
  for top in ("train", "configs", "benchmarks", "tests", "docs", "examples", "results"):
    assert top in listed_folders, top
  top_modules = {os.path.join("facequal_jax", name) for name in os.listdir(PACKAGE) if name.endswith(".py")}
  assert sorted(top_modules - set(paths)) == []


def test_each_package_row_names_every_module_of_its_folder():
  with open(os.path.join(ROOT, "docs", "layout.md")) as f:
    rows = [line.split("|") for line in f.read().splitlines() if line.startswith("| `facequal_jax/")]
  unnamed = {}
  for row in rows:
    folder = row[1].strip().strip("`")
    if not folder.endswith("/") or not os.path.exists(os.path.join(ROOT, folder, "__init__.py")):
      continue
    named = set(re.findall(r"`([\w.]+)`", row[2]))
    modules = {name[:-3] for name in os.listdir(os.path.join(ROOT, folder)) if name.endswith(".py")} - {"__init__"}
    if modules - named:
      unnamed[folder] = sorted(modules - named)
  assert unnamed == {}
