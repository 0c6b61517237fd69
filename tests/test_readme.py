"""The README: its API block and notebook snippet run as written; it stays short and links every page of docs/;
the config table in docs/command.md is the config's own description."""
import json
import os
import re

import pytest

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


def test_api_example_runs_on_embeddings_it_is_given(tmp_path, monkeypatch, capsys):
  """The README's API block as written, on 12,000 clustered rows saved as emb.npy / labels.npy, with `rows`
  and `other` defined as a reader would; its printed report is the same IQ as numpy's float64 reference."""
  from reference import iq_by_numpy  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 600, size=12_000)
  embeddings = (rng.normal(size=(600, 32))[labels] + 0.5 * rng.normal(size=(12_000, 32))).astype(np.float32)
  monkeypatch.chdir(tmp_path)
  np.save("emb.npy", embeddings)
  np.save("labels.npy", labels)
  block = re.search(r"<!-- api-example -->\n```python\n(.*?)```", _read("README.md"), re.S).group(1)
  namespace = {"rows": np.arange(0, 12_000, 7), "other": embeddings[:50] + 0.01}
  exec(compile(block, "README.md", "exec"), namespace)  # pylint: disable=exec-used
  printed = json.loads(capsys.readouterr().out)
  assert printed["iq"] == pytest.approx(iq_by_numpy(embeddings, labels), abs=1e-5)
  assert namespace["found"].counts()["suspected_mislabeled"] == len(namespace["found"]["suspected_mislabeled"])
