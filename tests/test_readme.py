"""The README's notebook snippet runs as written."""
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
