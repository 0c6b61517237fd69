"""TFDS round trip: image folder → builder → source gives back the same images and labels."""
import hashlib

import numpy as np
import pytest
from PIL import Image

tfds = pytest.importorskip("tensorflow_datasets")

from facequal_jax.data import tfds_data  # pylint: disable=wrong-import-position
from facequal_jax.data.preprocess import decode  # pylint: disable=wrong-import-position
from facequal_jax.data.sources import ImageFolderSource  # pylint: disable=wrong-import-position


def _fingerprints(source):
  out = []
  for i in range(len(source)):
    try:
      pixels = np.asarray(decode(source.read(i)).convert("RGB"))
    except ValueError:
      continue
    out.append((source.identity_names[source.labels[i]], hashlib.sha256(pixels.tobytes()).hexdigest()))
  return sorted(out)


def test_folder_builder_source_round_trip(tmp_path):
  rng = np.random.default_rng(0)
  root = tmp_path / "faces"
  for name, count in [("ann", 3), ("ben", 2), ("cy", 4)]:
    (root / name).mkdir(parents=True)
    for i in range(count):
      fmt = ["PNG", "JPEG", "GIF"][i % 3]
      Image.fromarray(rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)).save(root / name / f"{i}.img", format=fmt)
  (root / "ben" / "bad.jpg").write_bytes(b"not an image")

  skipped = tfds_data.prepare_image_folder(str(root), str(tmp_path / "tfds"))
  assert [path.endswith("bad.jpg") for path, _ in skipped] == [True]
  source = tfds_data.TfdsSource("face_folder", str(tmp_path / "tfds"), str(tmp_path / "cache"))
  assert len(source) == 9
  assert _fingerprints(source) == _fingerprints(ImageFolderSource(str(root)))


def test_missing_feature_is_named(tmp_path):
  root = tmp_path / "faces" / "ann"
  root.mkdir(parents=True)
  Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "0.png")
  tfds_data.prepare_image_folder(str(tmp_path / "faces"), str(tmp_path / "tfds"))
  with pytest.raises(ValueError, match="has no feature 'identity'"):
    tfds_data.TfdsSource("face_folder", str(tmp_path / "tfds"), str(tmp_path / "cache"), label_key="identity")
