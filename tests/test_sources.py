"""Image folders and lists: exact counts on ORL; every bad file reported, every good one read; a bad list line
named."""
import io
import os

import numpy as np
import pytest
from PIL import Image

from facequal_jax.research import faces
from facequal_jax.data.pipeline import decode_batches
from facequal_jax.data.preprocess import FacePreprocess
from facequal_jax.data.sources import ImageFolderSource, ImageListSource
from facequal_jax.errors import DataError
import shared_data

ORL = shared_data.path("orl_faces")


def _encoded(array, fmt):
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format=fmt)
  return buffer.getvalue()


@shared_data.needs("orl_faces")
def test_orl_folder_has_exact_counts_and_decodes():
  source = ImageFolderSource(ORL)
  assert len(source) == 400 and len(source.identity_names) == 40
  np.testing.assert_array_equal(np.bincount(source.labels), [10] * 40)
  assert source.identity_names == sorted(f"s{i}" for i in range(1, 41))
  assert source.listing_skipped == [(os.path.join(ORL, "README"), "not inside an identity folder")]
  face = FacePreprocess(size=32, channels="grey")
  batches = list(decode_batches(source, range(len(source)), face, batch_size=64, workers=2))
  assert sum(len(b.rows) for b in batches) == 400 and not any(b.skipped for b in batches)
  first = batches[0].images[0, :, :, 0]
  want = np.asarray(Image.open(source.paths[0]).crop((0, 10, 92, 102)).resize((32, 32), Image.BILINEAR))
  np.testing.assert_array_equal(first, want)


@pytest.fixture
def planted_folder(tmp_path):
  """Two identities with good files under odd names and five kinds of bad file."""
  rng = np.random.default_rng(0)
  faces = {name: rng.integers(0, 256, (40, 30, 3), dtype=np.uint8) for name in "abcdef"}
  good = {
      "alice/a.jpg": _encoded(faces["a"], "PNG"),          # PNG behind a .jpg name
      "alice/b": _encoded(faces["b"], "JPEG"),             # no extension
      "alice/c.PGM": _encoded(faces["c"][..., 0], "PPM"),  # grey PGM, upper-case extension
      "bob/d.txt": _encoded(faces["d"], "GIF"),            # GIF behind .txt
      "bob/e.png": _encoded(faces["e"], "PNG"),
  }
  truncated = _encoded(faces["f"], "JPEG")
  bad = {
      "alice/empty.jpg": b"",
      "alice/noise.jpg": rng.integers(0, 256, 500, dtype=np.uint8).tobytes(),
      "bob/cut.jpg": truncated[: len(truncated) // 2],
      "bob/header_only.png": _encoded(faces["f"], "PNG")[:40],
      "bob/text.png": b"this is not an image\n",
  }
  for name, data in {**good, **bad}.items():
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
  (tmp_path / "stray.jpg").write_bytes(good["alice/b"])
  (tmp_path / ".hidden").write_bytes(b"")
  (tmp_path / "bob" / "nested").mkdir()
  return tmp_path, sorted(good), sorted(bad)


def test_every_bad_file_is_reported_and_every_good_one_read(planted_folder):
  root, good, bad = planted_folder
  source = ImageFolderSource(str(root))
  assert source.identity_names == ["alice", "bob"]
  assert sorted(path for path, _ in source.listing_skipped) == [str(root / "bob" / "nested"),
                                                               str(root / "stray.jpg")]
  batches = list(decode_batches(source, range(len(source)), FacePreprocess(size=16), batch_size=3, workers=2))
  read = sorted(os.path.relpath(source.paths[r], root) for b in batches for r in b.rows)
  skipped = {os.path.relpath(where, root): reason for b in batches for _, where, reason in b.skipped}
  assert read == good
  assert sorted(skipped) == bad
  assert skipped["alice/empty.jpg"] == "empty file (0 bytes)"
  assert all(reason.startswith("cannot decode image") for name, reason in skipped.items() if name != "alice/empty.jpg")
  assert all(b.images.shape[1:] == (16, 16, 3) and b.images.dtype == np.uint8 for b in batches)


def test_labels_follow_sorted_identity_names(planted_folder):
  root, _, _ = planted_folder
  source = ImageFolderSource(str(root))
  for path, label in zip(source.paths, source.labels):
    assert source.identity_names[label] == os.path.basename(os.path.dirname(path))


def test_missing_folder():
  with pytest.raises(FileNotFoundError, match="image folder '/no/such' does not exist"):
    ImageFolderSource("/no/such")


def test_decoded_faces_are_cached_per_listing_and_preprocessing(planted_folder, tmp_path_factory, monkeypatch):
  root, good, bad = planted_folder
  cache = str(tmp_path_factory.mktemp("cache"))
  face = FacePreprocess(size=16)
  images, labels, skipped = faces.decode_labelled_folder(str(root), face, 2, cache)
  assert len(os.listdir(cache)) == 1 and len(images) == len(good)
  want_skipped = {os.path.relpath(where, root) for where, _ in skipped}
  assert want_skipped == set(bad) | {"stray.jpg", os.path.join("bob", "nested")}

  def no_decoding(*args):
    raise AssertionError("decoded again although the cache holds these faces")
  monkeypatch.setattr(faces, "decode_all", no_decoding)
  again = faces.decode_labelled_folder(str(root), face, 2, cache)
  np.testing.assert_array_equal(again[0], images)
  np.testing.assert_array_equal(again[1], labels)
  assert again[2] == skipped
  monkeypatch.undo()
  # Another preprocessing, or a changed file, decodes afresh into a new entry.
  assert faces.decode_labelled_folder(str(root), FacePreprocess(size=8), 2, cache)[0].shape[1:] == (8, 8, 3)
  (root / "bob" / "e.png").write_bytes(_encoded(np.zeros((40, 30, 3), np.uint8), "PNG"))
  changed = faces.decode_labelled_folder(str(root), face, 2, cache)
  assert len(os.listdir(cache)) == 3 and not np.array_equal(changed[0], images)
  np.testing.assert_array_equal(changed[0][-1], np.zeros((16, 16, 3), np.uint8))


def test_image_list_reads_im2rec_lines_and_names_a_bad_one(tmp_path):
  (tmp_path / "img").mkdir()
  for name in ("a.png", "b.png"):
    (tmp_path / "img" / name).write_bytes(_encoded(np.full((4, 4, 3), 7, np.uint8), "PNG"))
  (tmp_path / "faces.lst").write_text(f"0\t1.000000\timg/a.png\n\n1\t0\t{tmp_path / 'img' / 'b.png'}\n")
  listed = ImageListSource(str(tmp_path / "faces.lst"))
  assert listed.labels.tolist() == [1, 0] and listed.identity_names == ["0", "1"]  # no names file: the labels
  assert listed.paths == [str(tmp_path / "img" / "a.png"), str(tmp_path / "img" / "b.png")]  # beside the list
  assert [listed.sample_id(i) for i in range(2)] == ["img/a.png", str(tmp_path / "img" / "b.png")]
  assert listed.read(0) == (tmp_path / "img" / "a.png").read_bytes()
  (tmp_path / "faces_identities.txt").write_text("Ann\nBob\n")
  assert ImageListSource(str(tmp_path / "faces.lst")).identity_names == ["Ann", "Bob"]
  (tmp_path / "faces_identities.txt").write_text("Ann\n")
  with pytest.raises(DataError, match="names 1 identities but .*faces.lst uses label 1"):
    ImageListSource(str(tmp_path / "faces.lst"))
  (tmp_path / "bad.lst").write_text("0\t0\timg/a.png\n1\timg/b.png\t0\n")  # insightface's column order
  with pytest.raises(DataError, match=r"bad.lst: line 2 is not 'index<TAB>label<TAB>path'"):
    ImageListSource(str(tmp_path / "bad.lst"))
