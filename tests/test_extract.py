"""Extraction killed mid-way and restarted yields exactly the rows of an uninterrupted run."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from facequal_jax.data import extract, variants
from facequal_jax.data.preprocess import FacePreprocess
from facequal_jax.data.sources import ImageFolderSource

HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "extract_helper.py")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
  root = tmp_path_factory.mktemp("faces")
  rng = np.random.default_rng(1)
  for identity in range(12):
    folder = root / f"id{identity:02d}"
    folder.mkdir()
    for image in range(20):
      Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).save(folder / f"{image}.png")
  (root / "id03" / "broken.png").write_bytes(b"\x89PNG broken")
  (root / "id07" / "empty.jpg").write_bytes(b"")
  return str(root)


def _run(root, out_dir, sleep):
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  return subprocess.Popen([sys.executable, HELPER, root, out_dir, str(sleep)], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def test_killed_extraction_resumes_to_the_same_rows(image_root, tmp_path):
  reference_dir, resumed_dir = str(tmp_path / "reference"), str(tmp_path / "resumed")
  assert _run(image_root, reference_dir, 0).wait(timeout=120) == 0

  process = _run(image_root, resumed_dir, 0.2)  # ~0.8 s per chunk: the kill lands mid-way even on a busy machine
  chunks = os.path.join(resumed_dir, extract.CHUNKS)
  deadline = time.time() + 120
  while time.time() < deadline and (not os.path.isdir(chunks) or len(os.listdir(chunks)) < 2):
    time.sleep(0.02)
  os.kill(process.pid, signal.SIGKILL)
  process.wait()
  written = [n for n in os.listdir(chunks) if n.endswith(".npz")]
  assert 2 <= len(written) < 8, "the kill must land mid-way"
  assert not os.path.exists(os.path.join(resumed_dir, extract.RESULT))
  restart = _run(image_root, resumed_dir, 0)
  output, _ = restart.communicate(timeout=120)
  assert restart.returncode == 0, output

  want = np.load(os.path.join(reference_dir, extract.RESULT))
  got = np.load(os.path.join(resumed_dir, extract.RESULT))
  for key in ("embeddings", "labels", "positions", "source_rows"):
    np.testing.assert_array_equal(got[key], want[key])
  assert len(want["positions"]) == 240 and want["embeddings"].shape == (240, 6)


def test_skipped_files_are_returned_and_resume_refuses_other_settings(image_root, tmp_path):
  view = variants.full_view(ImageFolderSource(image_root))
  encode = lambda images: images.reshape(len(images), -1)[:, :4].astype(np.float32)
  result = extract.extract_embeddings(view, encode, "first4", str(tmp_path), face=FacePreprocess(size=4),
                                      chunk_rows=50, batch_size=16, workers=1)
  assert sorted(os.path.basename(where) for _, where, _ in result.skipped) == ["broken.png", "empty.jpg"]
  assert len(result.positions) + len(result.skipped) == len(view)
  np.testing.assert_array_equal(result.labels, view.labels[result.positions])
  with pytest.raises(ValueError, match="holds an extraction of other data or settings"):
    extract.extract_embeddings(view, encode, "other-encoder", str(tmp_path), face=FacePreprocess(size=4),
                               chunk_rows=50)
