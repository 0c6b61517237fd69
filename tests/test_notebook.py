"""The Colab quickstart executes top to bottom on CPU and shows what it promises."""
import os

import nbformat
import numpy as np
from nbclient import NotebookClient

from facequal_jax.data import orl
from reference import iq_by_numpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _iq_of_orl_eigenfaces_by_numpy(dim: int = 64) -> float:
  """IQ of the bundled faces' eigenfaces from the definitions, in float64 numpy (SVD, brute-force k-NN)."""
  images, labels = orl.load_orl()
  pixels = images.reshape(len(images), -1).astype(np.float64)
  centred = pixels - pixels.mean(axis=0)
  _, _, directions = np.linalg.svd(centred, full_matrices=False)
  return iq_by_numpy(centred @ directions[:dim].T, labels)


def test_quickstart_runs_and_finds_the_flips(tmp_path):
  notebook = nbformat.read(os.path.join(ROOT, "examples", "quickstart.ipynb"), as_version=4)
  NotebookClient(notebook, timeout=600, kernel_name="python3",
                 resources={"metadata": {"path": str(tmp_path)}}).execute()
  text = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                 for output in cell.get("outputs", []))
  printed = float(text.split("IQ ")[1].split()[0])
  assert abs(printed - _iq_of_orl_eigenfaces_by_numpy()) < 1e-4
  flips = int(text.split(" labels flipped")[0].split()[-1])
  real = int(text.split(" of the top ")[0].split()[-1])
  assert flips == 40 and real >= 10
  html = [output for output in notebook.cells[-1].outputs if "text/html" in output.get("data", {})]
  assert html and "Suspected mislabelled samples" in html[0]["data"]["text/html"]
  assert (tmp_path / "report.html").exists()

