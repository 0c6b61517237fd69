"""SearchSettings: one validated object; bad values name the valid ones on every entry point."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import facequal_jax as fq
from facequal_jax.knn.settings import SearchSettings
from reference import brute_force_knn, clustered_gaussian

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRECISION_ERROR = "precision must be one of 'float32', 'bfloat16'"


@pytest.fixture(scope="module")
def data():
  rows, labels = clustered_gaussian(np.random.default_rng(0), 300, 16, clusters=10, spread=0.3)
  return rows, labels


def test_knn_refuses_a_precision_it_would_not_run(data):
  rows, _ = data
  with pytest.raises(ValueError, match=PRECISION_ERROR + ", got 'bf16'"):
    fq.knn(rows, 5, precision="bf16")
  with pytest.raises(ValueError, match=PRECISION_ERROR):
    fq.knn(rows, 5, settings=SearchSettings(), precision="half")
  with pytest.raises(ValueError, match=PRECISION_ERROR):
    fq.streaming_knn(rows, 5, precision="bf16")


def test_intrinsic_quality_refuses_an_unknown_precision(data):
  rows, labels = data
  with pytest.raises(ValueError, match=PRECISION_ERROR + ", got 'half'"):
    fq.intrinsic_quality(rows, labels, precision="half")


@pytest.mark.parametrize("field, value, message", [
    ("kernel", "cuda", "kernel must be one of 'auto', 'xla', 'pallas', 'pallas_interpret'"),
    ("kernel", "pallas", "use precision='bfloat16'"),
    ("margin", -1, "margin must be an integer >= 0"),
    ("block", 8, "block must be an integer >= 16"),
    ("chunk_tiles", 0, "chunk_tiles must be an integer >= 1"),
    ("symmetric", "yes", "symmetric must be True or False"),
])
def test_each_field_is_checked(field, value, message):
  with pytest.raises(ValueError, match=message):
    SearchSettings(**{field: value})


def test_candidates_kept_and_overrides():
  assert SearchSettings().candidates_kept(10) == 10
  assert SearchSettings(precision="bfloat16", margin=7).candidates_kept(10) == 17
  merged = SearchSettings.merged(SearchSettings(precision="bfloat16", margin=7), margin=3, block=None)
  assert merged == SearchSettings(precision="bfloat16", margin=3)
  assert SearchSettings(precision="bfloat16").kernel_for(64) == "xla"  # auto picks Pallas on GPU only
  with pytest.raises(TypeError, match="unknown search settings"):
    SearchSettings.merged(tile=128)
  with pytest.raises(ValueError, match="kernel='pallas_interpret' does not apply"):
    fq.streaming_knn(np.eye(20, dtype=np.float32), 2,
                     settings=SearchSettings(precision="bfloat16", kernel="pallas_interpret"))


@pytest.mark.parametrize("settings", [SearchSettings(precision="bfloat16", margin=4, block=64, chunk_tiles=2),
                                      SearchSettings(symmetric=False, block=32)])
def test_settings_object_gives_the_exact_answer(data, settings):
  rows, _ = data
  want, _ = brute_force_knn(rows, 5, query_ids=np.arange(len(rows)))
  np.testing.assert_array_equal(fq.knn(rows, 5, settings=settings).indices, want)
  report = fq.intrinsic_quality(rows, data[1], k=5, settings=settings)
  assert report.precision == settings.precision


def test_command_refuses_an_unknown_precision_before_computing(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  command = [sys.executable, "-m", "facequal_jax", "--config=configs/iq.py", f"--workdir={tmp_path}",
             "--config.knn.precision=half"]
  process = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
  assert process.returncode != 0 and PRECISION_ERROR + ", got 'half'" in process.stderr
  assert not os.path.exists(tmp_path / "report.json")


def test_report_records_the_precision_that_ran(data):
  rows, labels = data
  report = fq.intrinsic_quality(rows, labels, k=5, precision="bfloat16", margin=8)
  assert json.loads(report.to_json())["precision"] == "bfloat16"
