"""Names every output can hold: a folder listed, cleaned by the apply command and read back keeps each image
under its identity whatever its name holds (commas, quotes, spaces, non-ASCII); names a list cannot carry (tabs,
line breaks) are refused in one line before anything is computed; the decisions file is CSV, quoted fields
with commas, quotes and line breaks included."""
import io
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from facequal_jax import files
from facequal_jax.cleaning import decisions as d
from facequal_jax.data.sources import ImageFolderSource, ImageListSource

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDENTITIES = {"com,ma": ["a,b.png", "c.png"], 'quo"te \'x\'': ['"q".png', "r s.png"], "Zoë Ünal": ["1.png", "2.png"]}


def _image(seed: int) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8), dtype=np.uint8)).save(buffer, "PNG")
  return buffer.getvalue()


def _folder(root, identities) -> dict:
  """Writes ROOT/identity/file for each; returns {image bytes: identity}."""
  made = {}
  for number, (identity, names) in enumerate(identities.items()):
    for index, name in enumerate(names):
      os.makedirs(root / identity, exist_ok=True)
      data = _image(10 * number + index)
      (root / identity / name).write_bytes(data)
      made[data] = identity
  return made


def _apply(decisions, out, source=None):
  command = [sys.executable, "-m", "facequal_jax.apply", f"--decisions={decisions}", f"--out={out}"]
  return subprocess.run(command + ([f"--source={source}"] if source else []), cwd=ROOT, capture_output=True,
                        text=True, timeout=300, check=False)


def test_a_folder_of_awkward_names_comes_back_whole_after_apply(tmp_path):
  made = _folder(tmp_path / "faces", IDENTITIES)
  listed = ImageFolderSource(str(tmp_path / "faces"))
  assert sorted(listed.identity_names) == sorted(IDENTITIES) and len(listed) == 6
  drop, move = "com,ma/a,b.png", 'quo"te \'x\'/"q".png'
  d.write(str(tmp_path / "decisions.csv"), [d.Decision(True, "sample", drop, "drop", "a, \"reason\"\nover lines"),
                                             d.Decision(True, "sample", move, 'relabel:new, "one"')],
          str(tmp_path / "faces"))
  done = _apply(tmp_path / "decisions.csv", tmp_path / "out")
  assert done.returncode == 0, done.stderr
  back = ImageListSource(str(tmp_path / "out" / "faces.lst"))
  came_back = {open(back.paths[i], "rb").read(): back.identity_names[back.labels[i]] for i in range(len(back))}
  want = {data: identity for data, identity in made.items()
          if data != (tmp_path / "faces" / drop).read_bytes()}
  want[(tmp_path / "faces" / move).read_bytes()] = 'new, "one"'
  assert came_back == want


def test_names_a_list_cannot_carry_are_refused_in_one_line_before_any_compute(tmp_path):
  _folder(tmp_path / "faces", {"tab\tid": ["1.png", "2.png"], "plain": ["new\nline.png", "ok.png"]})
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu")
  done = subprocess.run([sys.executable, "-m", "facequal_jax", f"--workdir={tmp_path / 'w'}",
                         f"--config.data.images={tmp_path / 'faces'}"], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=300, check=False)
  errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
  assert done.returncode == 1 and len(errors) == 1, done.stderr
  assert "3 names hold a line break or a tab, which an im2rec list cannot carry" in errors[0]
  assert "Traceback" not in done.stderr and not (tmp_path / "w" / "embeddings").exists()
  d.write(str(tmp_path / "decisions.csv"), [d.Decision(True, "sample", "plain/ok.png", "drop")],
          str(tmp_path / "faces"))
  done = _apply(tmp_path / "decisions.csv", tmp_path / "out")
  assert done.returncode == 1 and "cannot carry" in done.stderr and not (tmp_path / "out" / "faces.lst").exists()


def test_a_relabel_to_a_name_a_list_cannot_carry_is_refused(tmp_path):
  _folder(tmp_path / "faces", {"a": ["1.png"], "b": ["2.png"]})
  d.write(str(tmp_path / "decisions.csv"), [d.Decision(True, "sample", "a/1.png", "relabel:two\nlines")],
          str(tmp_path / "faces"))
  done = _apply(tmp_path / "decisions.csv", tmp_path / "out")
  assert done.returncode == 2 and "the identity name 'two\\nlines' holds a tab or a line break" in done.stderr
  assert not (tmp_path / "out" / "faces.lst").exists()


def test_decisions_round_trip_quoted_fields_and_apply_them_to_embeddings_with_such_names(tmp_path):
  names = np.asarray(["new\nline", 'say "hi", twice', "plain"])
  labels = np.array([0, 0, 1, 1, 2, 2])
  files.write_npz(str(tmp_path / "emb.npz"), embeddings=np.eye(6, dtype=np.float32), labels=labels, names=names)
  made = [d.Decision(True, "identity", "new\nline", 'merge:say "hi", twice', "one\nperson", 0.97),
          d.Decision(False, "sample", "5", "drop", "", None)]
  d.write(str(tmp_path / "decisions.csv"), made, str(tmp_path / "emb.npz"))
  read = d.read(str(tmp_path / "decisions.csv"))
  assert [(x.apply, x.kind, x.item, x.action, x.reason, x.score) for x in read.decisions] == [
      (x.apply, x.kind, x.item, x.action, x.reason, x.score) for x in made]
  notes = len(d._HELP.splitlines()) + 1  # the help and the source line (no policy given)
  assert [x.line for x in read.decisions] == [notes + 2, notes + 5]  # the first row spans three lines
  done = _apply(tmp_path / "decisions.csv", tmp_path / "out")
  assert done.returncode == 0, done.stderr
  out = np.load(tmp_path / "out" / "emb.npz")
  kept_names = [str(out["names"][label]) for label in out["labels"]]
  assert kept_names == ['say "hi", twice'] * 4 + ["plain"] * 2
