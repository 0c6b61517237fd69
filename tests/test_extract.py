"""Extraction killed mid-way and restarted yields exactly the rows of an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys

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


def _run(root, out_dir, kill_after_chunk=None):
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  extra = [] if kill_after_chunk is None else [str(kill_after_chunk)]
  process = subprocess.run([sys.executable, HELPER, root, out_dir] + extra, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300, check=False)
  return process.returncode, process.stdout


@pytest.fixture(scope="module")
def reference(image_root, tmp_path_factory):
  out_dir = str(tmp_path_factory.mktemp("reference"))
  returncode, output = _run(image_root, out_dir)
  assert returncode == 0, output
  return np.load(os.path.join(out_dir, extract.RESULT))


@pytest.mark.parametrize("kill_after_chunk", [0, 3, 6])
def test_killed_extraction_resumes_to_the_same_rows(image_root, reference, tmp_path, kill_after_chunk):
  out_dir = str(tmp_path / "resumed")
  returncode, output = _run(image_root, out_dir, kill_after_chunk)
  assert returncode == -signal.SIGKILL, output
  chunks = os.path.join(out_dir, extract.CHUNKS)
  written = sorted(n for n in os.listdir(chunks) if n.endswith(".npz"))
  assert written == [f"chunk_{n:06d}.npz" for n in range(kill_after_chunk + 1)]
  assert not os.path.exists(os.path.join(out_dir, extract.RESULT))
  before = {name: os.stat(os.path.join(chunks, name)).st_mtime_ns for name in written}
  returncode, output = _run(image_root, out_dir)
  assert returncode == 0, output
  assert {name: os.stat(os.path.join(chunks, name)).st_mtime_ns for name in written} == before  # not redone

  got = np.load(os.path.join(out_dir, extract.RESULT))
  for key in ("embeddings", "labels", "positions", "source_rows"):
    np.testing.assert_array_equal(got[key], reference[key])
  assert len(reference["positions"]) == 240 and reference["embeddings"].shape == (240, 6)


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
  with pytest.raises(ValueError, match="holds an extraction of other data or settings"):
    extract.extract_embeddings(view, encode, "first4", str(tmp_path), face=FacePreprocess(size=4, template="arcface"),
                               chunk_rows=50)


def test_an_extraction_whose_manifest_predates_templates_resumes(image_root, tmp_path):
  """A manifest written before faces could be cut to another template (no `template` field) is one of
  dlib's chip: it resumes, recomputing nothing."""
  view = variants.full_view(ImageFolderSource(image_root))
  encode = lambda images: images.reshape(len(images), -1)[:, :4].astype(np.float32)
  first = extract.extract_embeddings(view, encode, "first4", str(tmp_path), face=FacePreprocess(size=4),
                                     chunk_rows=50, workers=1)
  manifest = json.loads((tmp_path / extract.MANIFEST).read_text())
  assert manifest["preprocess"] == {"size": 4, "crop": 0, "channels": "rgb", "align": "centre"}  # the old form
  refused = lambda images: pytest.fail("recomputed")
  again = extract.extract_embeddings(view, refused, "first4", str(tmp_path), face=FacePreprocess(size=4),
                                     chunk_rows=50, workers=1)
  np.testing.assert_array_equal(again.embeddings, first.embeddings)
