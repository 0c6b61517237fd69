"""Face sources: labelled, randomly addressable collections of encoded face images.

A source knows every sample's label up front (no decoding) and hands out the
encoded bytes of one sample at a time, so decoding can stream in parallel and a
bad file costs one sample, not the run:

  len(source), source.labels (int64 [N]), source.identity_names (label → name),
  source.read(i) → bytes or uint8 array, source.describe(i) → a path or key,
  source.listing_skipped → [(path, reason)] for entries refused while listing.
"""
import os
from typing import List, Tuple

import numpy as np

from facequal_jax.data import recordio
from facequal_jax.errors import DataError, MissingFile


class ImageFolderSource:
  """Images in `ROOT/<identity>/<image>`, any format PIL reads, any extension.

  Identities are the sub-folders in sorted order (label i = i-th name), files
  within them in sorted order. Hidden entries (leading '.') are ignored; files
  directly under ROOT and folders nested deeper belong to no identity, so they
  are listed in `listing_skipped`.
  """

  def __init__(self, root: str):
    if not os.path.isdir(root):
      raise MissingFile(f"image folder {root!r} does not exist or is not a folder")
    self.root = root
    self.listing_skipped: List[Tuple[str, str]] = []
    self.identity_names: List[str] = []
    paths, labels = [], []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
      if entry.name.startswith("."):
        continue
      if not entry.is_dir():
        self.listing_skipped.append((entry.path, "not inside an identity folder"))
        continue
      label = len(self.identity_names)
      self.identity_names.append(entry.name)
      for item in sorted(os.scandir(entry.path), key=lambda e: e.name):
        if item.name.startswith("."):
          continue
        if item.is_dir():
          self.listing_skipped.append((item.path, "folder nested inside an identity folder"))
          continue
        paths.append(item.path)
        labels.append(label)
    if not paths:
      raise DataError(f"image folder {root!r} holds no images: expected ROOT/<identity>/<image> "
                      f"({len(self.identity_names)} identity folders, all empty)")
    self.paths = paths
    self.labels = np.asarray(labels, np.int64)

  def __len__(self) -> int:
    return len(self.paths)

  def read(self, i: int) -> bytes:
    with open(self.paths[i], "rb") as f:
      return f.read()

  def describe(self, i: int) -> str:
    return self.paths[i]


class RecordIOSource:
  """Face images in an insightface/MXNet RecordIO pack.

  With an insightface header record (key 0, flag > 0) the images are keys
  1 … a − 1; otherwise every record is an image. Without an `.idx` the pack is
  scanned once to find the records. Labels come from each image's header
  (scalar, or the first entry of a vector label); identity names are the
  label values as text.
  """

  def __init__(self, rec_path: str, idx_path: str = None):
    self.reader = recordio.RecordIOReader(rec_path, idx_path)
    self.listing_skipped: List[Tuple[str, str]] = []
    if self.reader.offsets is not None:
      keyed = sorted(self.reader.offsets.items())
    else:
      keyed = list(enumerate(offset for offset, _ in self.reader.scan()))
    offsets = dict(keyed)
    first = self._header_record(offsets)
    keys = [k for k, _ in keyed if k > 0 and (first is None or k < first)] if first else [k for k, _ in keyed]
    self.keys, self._offsets, labels = [], [], []
    for key in keys:
      try:
        header, _ = recordio.unpack(self.reader.read_at(offsets[key]), f"{rec_path} key {key}")
        label = recordio.image_label(header)
      except recordio.RecordIOError as error:
        self.listing_skipped.append((f"{rec_path}#{key}", str(error)))
        continue
      self.keys.append(key)
      self._offsets.append(offsets[key])
      labels.append(label)
    raw = np.asarray(labels, np.int64)
    values, self.labels = np.unique(raw, return_inverse=True)
    self.labels = self.labels.astype(np.int64)
    self.identity_names = [str(v) for v in values]

  def _header_record(self, offsets: dict):
    """Key of the first identity record if key 0 is an insightface header, else None."""
    if 0 not in offsets:
      return None
    header, _ = recordio.unpack(self.reader.read_at(offsets[0]), f"{self.reader.path} key 0")
    return int(header.label[0]) if header.flag > 0 else None

  def __len__(self) -> int:
    return len(self.keys)

  def read(self, i: int) -> bytes:
    _, payload = recordio.unpack(self.reader.read_at(self._offsets[i]), self.describe(i))
    return payload

  def describe(self, i: int) -> str:
    return f"{self.reader.path}#{self.keys[i]}"


class ArraySource:
  """Faces already in memory as a source: uint8 images [N, H, W] or [N, H, W, C] with int labels [N].

  Attributes as the other sources: labels, identity_names, listing_skipped.
  """

  def __init__(self, images: np.ndarray, labels: np.ndarray, names: List[str], identity_names: List[str]):
    if not len(images) == len(labels) == len(names):
      raise ValueError(f"{len(images)} images, {len(labels)} labels and {len(names)} names must match")
    self.images, self.labels, self._names = images, np.asarray(labels, np.int64), names
    self.identity_names = list(identity_names)
    self.listing_skipped: List[Tuple[str, str]] = []

  def __len__(self) -> int:
    return len(self.images)

  def read(self, i: int) -> np.ndarray:
    return self.images[i]

  def describe(self, i: int) -> str:
    return self._names[i]
