"""The README: its notebook snippet runs as written; it stays short and links every page of docs/;
the config table in docs/command.md is the config's own description."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*parts):
  with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
    return f.read()


def test_colab_snippet_runs(capsys):
  readme = _read("README.md")
  snippet = re.search(r"<!-- colab-snippet -->\n```python\n(.*?)```", readme, re.S).group(1)
  exec(compile(snippet, "README.md", "exec"), {})
  lines = capsys.readouterr().out.strip().splitlines()
  assert len(lines) == 2
  consis = [float(re.search(r"Consis ([0-9.]+)", line).group(1)) for line in lines]
  # With 20 % of labels flipped, a sample and a true neighbour agree when neither
  # was flipped: about 0.8² = 0.64.
  assert consis[0] > 0.95 and 0.6 < consis[1] < 0.7


def test_config_table_is_the_configs_own_description():
  from facequal_jax import config_files  # pylint: disable=import-outside-toplevel
  page = _read("docs", "command.md")
  table = re.search(r"<!-- iq-config-table -->\n(.*?)\n<!-- /iq-config-table -->", page, re.S).group(1)
  assert table == config_files.as_markdown(config_files.describe(config_files.resolve("iq")))


def test_readme_is_short_and_links_every_doc():
  readme = _read("README.md")
  assert len(readme.splitlines()) <= 300
  targets = {target.split("#")[0] for target in re.findall(r"\]\(([^)\s]+)\)", readme)}
  pages = sorted(name for name in os.listdir(os.path.join(ROOT, "docs")) if name.endswith(".md"))
  assert pages
  missing = [name for name in pages if f"docs/{name}" not in targets]
  assert not missing, f"README.md does not link {missing}"
