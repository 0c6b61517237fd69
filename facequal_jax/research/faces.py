"""Face pools for training and the experiment: every face of an identity folder decoded, cached per listing."""
import dataclasses
import hashlib
import json
import os

import numpy as np
from absl import logging
from PIL import Image

from facequal_jax import files
from facequal_jax.data import preprocess as preprocess_lib
from facequal_jax.data.pipeline import decode_batches
from facequal_jax.data.sources import ImageFolderSource


def decode_all(source, face: preprocess_lib.FacePreprocess, workers: int = 0):
  """Every row of `source` decoded at once.

  Returns:
    (images uint8 [n, H, W, C], source rows int64 [n] that decoded, skipped
    [(where, reason)] for the rest, the listing's own skips included).
  """
  images, rows = [np.zeros((0,) + face.shape, np.uint8)], [np.zeros(0, np.int64)]
  skipped = list(getattr(source, "listing_skipped", []))
  for batch in decode_batches(source, range(len(source)), face, 512, workers):
    images.append(batch.images)
    rows.append(batch.rows)
    skipped.extend((where, reason) for _, where, reason in batch.skipped)
  return np.concatenate(images), np.concatenate(rows), skipped


def decode_labelled_folder(root: str, face: preprocess_lib.FacePreprocess, workers: int = 0, cache_dir: str = ""):
  """Every face of an identity folder ROOT/<identity>/<image>, each skipped file logged with its reason.

  With `cache_dir`, the decoded faces are kept there as one `.npz` per (folder listing, preprocessing):
  a rerun with the same files (paths, sizes, modification times) and the same `face` reads them back
  instead of decoding (and detecting) again; any change to either decodes afresh.

  Returns:
    (images uint8 [n, H, W, C], labels int64 [n], skipped [(where, reason)]).
  """
  source = ImageFolderSource(root)
  cache = os.path.join(cache_dir, f"faces_{_listing_key(source, face)}.npz") if cache_dir else ""
  if cache and os.path.exists(cache):
    with np.load(cache, allow_pickle=False) as stored:
      images, rows, skipped = stored["images"], stored["rows"], json.loads(str(stored["skipped"]))
    logging.info("%d decoded faces of %s read from %s", len(rows), root, cache)
  else:
    images, rows, skipped = decode_all(source, face, workers)
    if cache:
      files.write_npz(cache, images=images, rows=rows, skipped=np.asarray(json.dumps(skipped)))
  for where, reason in skipped:
    logging.warning("skipped %s: %s", where, reason)
  return images, np.asarray(source.labels, np.int64)[rows], [tuple(item) for item in skipped]


def _listing_key(source: ImageFolderSource, face: preprocess_lib.FacePreprocess) -> str:
  """A digest of the folder's files (path, size, modification time) and of the preprocessing."""
  digest = hashlib.sha256(repr(dataclasses.astuple(face)).encode())
  digest.update(os.path.abspath(source.root).encode())
  for path in source.paths:
    status = os.stat(path)
    digest.update(f"\0{path}\0{status.st_size}\0{status.st_mtime_ns}".encode())
  return digest.hexdigest()[:20]


def lower_resolution(faces: np.ndarray, factor: int) -> np.ndarray:
  """The faces as a camera `factor` times coarser would give them: each shrunk to 1/factor of its side (box
  filter: the mean of each factor × factor block) and enlarged back (bicubic).

  Args:
    faces: uint8 [n, S, S, C].

  Returns:
    uint8 [n, S, S, C], a new array.
  """
  size = faces.shape[1]
  small = max(1, round(size / factor))
  out = np.empty_like(faces)
  for i, face in enumerate(faces):
    image = Image.fromarray(face[..., 0] if face.shape[-1] == 1 else face)
    image = image.resize((small, small), Image.BOX).resize((size, size), Image.BICUBIC)
    out[i] = np.asarray(image).reshape(face.shape)
  return out
