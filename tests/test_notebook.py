"""The Colab quickstart executes top to bottom on CPU and shows what it promises."""
import os

import nbformat
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quickstart_runs_and_finds_the_flips(tmp_path):
  notebook = nbformat.read(os.path.join(ROOT, "examples", "quickstart.ipynb"), as_version=4)
  NotebookClient(notebook, timeout=600, kernel_name="python3",
                 resources={"metadata": {"path": str(tmp_path)}}).execute()
  text = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                 for output in cell.get("outputs", []))
  assert "IQ 0.7369" in text  # the same number as the command line's built-in default
  flips = int(text.split(" labels flipped")[0].split()[-1])
  real = int(text.split(" of the top ")[0].split()[-1])
  assert flips == 40 and real >= 10
  html = [output for output in notebook.cells[-1].outputs if "text/html" in output.get("data", {})]
  assert html and "Suspected mislabelled samples" in html[0]["data"]["text/html"]
  assert (tmp_path / "report.html").exists()

