"""Applying decisions: exactly the decided samples change, everything else is copied as it was, the source is
never written to, and a killed apply resumes to the same output."""
import hashlib
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from facequal_jax import files
from facequal_jax.cleaning import carry_out, decisions as d
from facequal_jax.data import recordio
from facequal_jax.data.sources import ImageListSource, RecordIOSource
from facequal_jax.errors import DataError, UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABELS = [3, 1, 3, 7, 1, 1, 5, 5, 3, 7, 1, 5]  # identities 1, 3, 5, 7


def _png(seed):
  buffer = io.BytesIO()
  Image.fromarray(np.random.default_rng(seed).integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(buffer, "PNG")
  return buffer.getvalue()


def _tree_digest(folder):
  digest = hashlib.sha256()
  for base, _, names in sorted(os.walk(folder)):
    for name in sorted(names):
      digest.update(name.encode() + open(os.path.join(base, name), "rb").read())
  return digest.hexdigest()


@pytest.fixture()
def pack(tmp_path):
  """A 12-image insightface pack; keys 1 … 12 hold the images grouped by label: 1 ×4, 3 ×3, 5 ×3, 7 ×2."""
  rec = tmp_path / "src" / "train.rec"
  rec.parent.mkdir()
  recordio.write_face_pack(str(rec), [(label, _png(i)) for i, label in enumerate(LABELS)])
  return str(rec)


def _pack_decisions(path):
  made = [d.Decision(True, "sample", "2", "drop"),  # an image of identity 1
          d.Decision(True, "sample", "5", "relabel:7"),  # identity 3 → 7
          d.Decision(True, "identity", "5", "drop"),  # keys 8, 9, 10
          d.Decision(True, "identity", "1", "merge:3"),  # keys 1, 3, 4 (2 is dropped)
          d.Decision(False, "sample", "12", "drop")]  # for review: stays
  d.write(str(path), made, "unused")
  return str(path)


def _records(rec):
  """{image header id: (label, record data)} of every image record, and the identity ranges by label."""
  source = RecordIOSource(rec)
  images = {}
  for i in range(len(source)):
    header, _ = recordio.unpack(source.record(i))
    images[header.id] = (int(header.label), source.record(i))
  reader = recordio.RecordIOReader(rec)
  first, end = (int(x) for x in recordio.unpack(reader.read(0))[0].label)
  ranges = {}
  for key in range(first, end):
    start, stop = (int(x) for x in recordio.unpack(reader.read(key))[0].label)
    labels = {int(recordio.unpack(reader.read(k))[0].label) for k in range(start, stop)}
    assert len(labels) == 1, "an identity record's range holds one label"
    ranges[labels.pop()] = (start, stop)
  return images, ranges


def test_pack_keeps_every_other_record_byte_for_byte(tmp_path, pack):
  before_digest = _tree_digest(tmp_path / "src")
  before, _ = _records(pack)
  summary = carry_out.carry_out(_pack_decisions(tmp_path / "decisions.csv"), str(tmp_path / "out"), pack)
  assert _tree_digest(tmp_path / "src") == before_digest  # the source is untouched
  after, ranges = _records(str(tmp_path / "out" / "train.rec"))
  # By the rules: key 2 dropped, identity 5 (keys 8-10) dropped, key 5 relabelled to 7, identity 1 (keys 1, 3, 4)
  # joins 3; key 12 was only proposed.
  expected = {1: 3, 3: 3, 4: 3, 5: 7, 6: 3, 7: 3, 11: 7, 12: 7}
  assert {key: label for key, (label, _) in after.items()} == expected
  for key, (label, data) in after.items():
    header, payload = recordio.unpack(data)
    assert payload == recordio.unpack(before[key][1])[1]
    if label == before[key][0]:
      assert data == before[key][1]  # unchanged records are copied byte for byte
    else:
      assert header.id == key and header.flag == 0
  # Grouped by identity with header ranges: 3 ×5 at keys 1-5, 7 ×3 at keys 6-8.
  assert ranges == {3: (1, 6), 7: (6, 9)}
  assert summary["samples_after"] == 8 and summary["left_for_review"] == 1 and summary["changed_labels"] == 4
  assert sorted(os.listdir(tmp_path / "out")) == ["apply_summary.json", "train.idx", "train.rec"]


def test_killed_pack_apply_resumes_to_the_same_output(tmp_path, pack):
  decisions = _pack_decisions(tmp_path / "decisions.csv")
  carry_out.carry_out(decisions, str(tmp_path / "whole"), pack, chunk_records=2)

  class Killed(Exception):
    pass

  def kill(chunk):
    if chunk == 2:
      raise Killed

  with pytest.raises(Killed):
    carry_out.carry_out(decisions, str(tmp_path / "resumed"), pack, after_chunk=kill, chunk_records=2)
  assert not os.path.exists(tmp_path / "resumed" / "train.rec")  # nothing half-written in place
  with open(tmp_path / "resumed" / "train.rec.partial", "ab") as torn:  # a record cut short by the kill
    torn.write(b"\x0a\x23\xd7\xce\x99")
  seen = []
  carry_out.carry_out(decisions, str(tmp_path / "resumed"), pack, after_chunk=seen.append, chunk_records=2)
  assert seen == [3]  # chunks 1 and 2 were not written again
  for name in ("train.rec", "train.idx"):
    assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
  assert sorted(os.listdir(tmp_path / "resumed")) == ["apply_summary.json", "train.idx", "train.rec"]


@pytest.fixture()
def folder(tmp_path):
  root = tmp_path / "faces"
  for i, label in enumerate(LABELS):
    (root / f"id{label}").mkdir(parents=True, exist_ok=True)
    (root / f"id{label}" / f"{i:02d}.png").write_bytes(_png(i))
  return root


def test_image_folder_gives_a_list_of_the_kept_files(tmp_path, folder):
  before_digest = _tree_digest(folder)
  made = [d.Decision(True, "sample", "id1/01.png", "drop"), d.Decision(True, "sample", "id3/02.png", "relabel:id7"),
          d.Decision(True, "identity", "id5", "drop"), d.Decision(True, "sample", "id3/08.png", "relabel:someone new")]
  d.write(str(tmp_path / "decisions.csv"), made, str(folder))
  summary = carry_out.carry_out(str(tmp_path / "decisions.csv"), str(tmp_path / "out"))  # source from the file
  assert _tree_digest(folder) == before_digest
  listed = ImageListSource(str(tmp_path / "out" / "faces.lst"))
  kept = {os.path.relpath(path, folder): listed.identity_names[label] for path, label in zip(listed.paths,
                                                                                            listed.labels)}
  expected = {f"id{label}/{i:02d}.png": f"id{label}" for i, label in enumerate(LABELS) if label != 5 and i != 1}
  expected.update({"id3/02.png": "id7", "id3/08.png": "someone new"})
  assert kept == expected
  assert listed.identity_names == ["id1", "id3", "id7", "someone new"]
  for i in range(len(listed)):  # the list points at the source's own files
    assert listed.read(i) == open(listed.paths[i], "rb").read() and listed.paths[i].startswith(str(folder))
  assert summary["samples_after"] == 8 and summary["identities_after"] == 4


def test_killed_list_apply_leaves_no_list_and_reruns_to_the_same_one(tmp_path, folder, monkeypatch):
  d.write(str(tmp_path / "decisions.csv"), [d.Decision(True, "sample", "id3/02.png", "relabel:id7")], str(folder))
  carry_out.carry_out(str(tmp_path / "decisions.csv"), str(tmp_path / "whole"))
  write_bytes = files.write_bytes

  def killed_at_the_list(path, data):
    if path.endswith(".lst"):
      raise KeyboardInterrupt
    write_bytes(path, data)

  monkeypatch.setattr(files, "write_bytes", killed_at_the_list)
  with pytest.raises(KeyboardInterrupt):
    carry_out.carry_out(str(tmp_path / "decisions.csv"), str(tmp_path / "resumed"))
  assert sorted(os.listdir(tmp_path / "resumed")) == ["faces_identities.txt"]  # no list, no summary
  monkeypatch.setattr(files, "write_bytes", write_bytes)
  carry_out.carry_out(str(tmp_path / "decisions.csv"), str(tmp_path / "resumed"))
  for name in ("faces.lst", "faces_identities.txt"):
    assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


def test_embeddings_npz_keeps_rows_and_names(tmp_path):
  rng = np.random.default_rng(0)
  rows = rng.normal(size=(6, 4)).astype(np.float32)
  np.savez(tmp_path / "emb.npz", embeddings=rows, labels=np.array([0, 0, 1, 1, 2, 2]), names=np.array(["a", "b", "c"]))
  d.write(str(tmp_path / "decisions.csv"), [d.Decision(True, "sample", "1", "drop"),
                                             d.Decision(True, "identity", "c", "merge:a")], str(tmp_path / "emb.npz"))
  carry_out.carry_out(str(tmp_path / "decisions.csv"), str(tmp_path / "out"))
  with np.load(tmp_path / "out" / "emb.npz") as out:
    np.testing.assert_array_equal(out["embeddings"], rows[[0, 2, 3, 4, 5]])
    assert [out["names"][label] for label in out["labels"]] == ["a", "b", "b", "a", "a"]


def test_the_source_is_never_written_to(tmp_path, pack, folder):
  d.write(str(tmp_path / "decisions.csv"), [], "")
  with pytest.raises(UsageError, match="inside the image folder"):
    carry_out.carry_out(str(tmp_path / "decisions.csv"), str(folder / "cleaned"), str(folder))
  with pytest.raises(UsageError, match="holds the source"):
    carry_out.carry_out(str(tmp_path / "decisions.csv"), os.path.dirname(pack), pack)
  with pytest.raises(UsageError, match="names no source"):
    carry_out.carry_out(str(tmp_path / "decisions.csv"), str(tmp_path / "out"))
  d.write(str(tmp_path / "flipped.csv"), [], pack, flipped_on_purpose=3)
  with pytest.raises(DataError, match="flipped 3 labels on purpose"):
    carry_out.carry_out(str(tmp_path / "flipped.csv"), str(tmp_path / "out"))


def test_command_prints_the_summary_and_names_a_bad_line(tmp_path, folder):
  d.write(str(tmp_path / "decisions.csv"), [d.Decision(True, "sample", "id1/01.png", "drop")], str(folder))
  command = [sys.executable, "-m", "facequal_jax.apply", f"--decisions={tmp_path / 'decisions.csv'}",
             f"--out={tmp_path / 'out'}"]
  done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr
  assert "kept 11 of 12 samples and 4 of 4 identities" in done.stdout
  with open(tmp_path / "decisions.csv", "a") as f:
    f.write("yes,sample,id9/99.png,drop,,\n")
  done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  lines = open(tmp_path / "decisions.csv").read().splitlines()
  assert done.returncode == 1
  assert done.stderr.strip() == (f"error: {tmp_path / 'decisions.csv'}: line {len(lines)}: the source has no sample "
                                 "'id9/99.png'")
