"""The README: its notebook snippet runs as written; its config table is the config's own description."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_colab_snippet_runs(capsys):
  with open(os.path.join(ROOT, "README.md")) as f:
    readme = f.read()
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
  with open(os.path.join(ROOT, "README.md")) as f:
    readme = f.read()
  table = re.search(r"<!-- iq-config-table -->\n(.*?)\n<!-- /iq-config-table -->", readme, re.S).group(1)
  assert table == config_files.as_markdown(config_files.describe(config_files.resolve("iq")))
