"""Face sources: labelled, randomly addressable collections of encoded face images.

A source knows every sample's label up front (no decoding) and hands out the
encoded bytes of one sample at a time, so decoding can stream in parallel and a
bad file costs one sample, not the run:

  len(source), source.labels (int64 [N]), source.identity_names (label → name),
  source.read(i) → bytes or uint8 array, source.describe(i) → a path or key,
  source.sample_id(i) → the sample's name within the source (what a decisions file
  names: a path under the folder, a list's path, a record key),
  source.listing_skipped → [(path, reason)] for entries refused while listing.
"""
import os
from typing import List, Tuple

import numpy as np

from facequal_jax import files
from facequal_jax.data import recordio
from facequal_jax.errors import DataError, MissingFile


class _ImageFiles:
  """A source of image files at `self.paths` (set by the subclass)."""
  paths: List[str]

  def __len__(self) -> int:
    return len(self.paths)

  def read(self, i: int) -> bytes:
    with open(self.paths[i], "rb") as f:
      return f.read()

  def describe(self, i: int) -> str:
    return self.paths[i]


# What an im2rec list (`index<TAB>label<TAB>path` lines) and its identities file (a name a line) cannot hold.
UNLISTABLE = {"\t": "a tab", "\n": "a line break", "\r": "a carriage return"}


def _check_listable(root: str, names: List[str]) -> None:
  """Refuses, in one line, a folder whose identity or file names an im2rec list cannot carry (what the apply
  step writes for a folder), before anything is computed from it."""
  bad = [name for name in names if any(character in name for character in UNLISTABLE)]
  if bad:
    found = sorted({what for name in bad for character, what in UNLISTABLE.items() if character in name})
    raise DataError(f"image folder {root!r}: {len(bad)} names hold {' or '.join(found)}, which an im2rec list "
                    f"cannot carry (first: {bad[0]!r}): rename them")


class ImageFolderSource(_ImageFiles):
  """Images in `ROOT/<identity>/<image>`, any format PIL reads, any extension.

  Identities are the sub-folders in sorted order (label i = i-th name), files
  within them in sorted order. Hidden entries (leading '.') are ignored; files
  directly under ROOT and folders nested deeper belong to no identity, so they
  are listed in `listing_skipped`. A name holding a tab or a line break is
  refused (`UNLISTABLE`): the cleaned copy of a folder is an im2rec list.
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
    _check_listable(root, [os.path.relpath(path, root) for path in paths])
    self.paths = paths
    self.labels = np.asarray(labels, np.int64)

  def sample_id(self, i: int) -> str:
    return os.path.relpath(self.paths[i], self.root).replace(os.sep, "/")


def list_names_path(lst_path: str) -> str:
  """Where the identity names of a `.lst` are kept: `NAME_identities.txt` beside `NAME.lst`."""
  return os.path.splitext(lst_path)[0] + "_identities.txt"


class ImageListSource(_ImageFiles):
  """Images listed in an MXNet im2rec `.lst`: one `index<TAB>label<TAB>path` line per image.

  Relative paths are relative to the list's folder. Labels are integers
  (im2rec writes them as floats: `3.000000`). The identity names are the lines
  of `NAME_identities.txt` beside `NAME.lst` (label i on line i) when that file
  exists, else the labels as text. A line that does not parse is an error that
  names the file and line; a listed file that does not exist is skipped and
  reported when it is read.
  """

  def __init__(self, lst_path: str):
    if not os.path.isfile(lst_path):
      raise MissingFile(f"image list {lst_path!r} does not exist")
    self.root = os.path.dirname(os.path.abspath(lst_path))
    self.listing_skipped: List[Tuple[str, str]] = []
    self._listed, labels = [], []
    with open(lst_path, encoding="utf-8") as f:
      for line_number, line in enumerate(f, 1):
        if not line.strip():
          continue
        fields = line.rstrip("\n").split("\t")
        try:
          if len(fields) < 3:
            raise ValueError
          label = float(fields[1])
          if not label.is_integer() or label < 0:
            raise ValueError
        except ValueError:
          raise DataError(f"{lst_path}: line {line_number} is not 'index<TAB>label<TAB>path' with a whole "
                          f"label >= 0: {line.strip()!r}") from None
        self._listed.append(fields[-1])
        labels.append(int(label))
    if not labels:
      raise DataError(f"image list {lst_path!r} lists no images")
    self.labels = np.asarray(labels, np.int64)
    names_path = list_names_path(lst_path)
    if os.path.exists(names_path):
      with open(names_path, encoding="utf-8") as f:
        self.identity_names = [line.rstrip("\n") for line in f]
      if self.labels.max() >= len(self.identity_names):
        raise DataError(f"{names_path} names {len(self.identity_names)} identities but {lst_path} uses label "
                        f"{self.labels.max()}")
    else:
      self.identity_names = [str(n) for n in range(self.labels.max() + 1)]
    self.paths = [os.path.join(self.root, path) for path in self._listed]

  def sample_id(self, i: int) -> str:
    return self._listed[i]


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

  def record(self, i: int) -> bytes:
    """The whole record data of sample i (image header and encoded image)."""
    return self.reader.read_at(self._offsets[i])

  def read(self, i: int) -> bytes:
    _, payload = recordio.unpack(self.record(i), self.describe(i))
    return payload

  def describe(self, i: int) -> str:
    return f"{self.reader.path}#{self.keys[i]}"

  def sample_id(self, i: int) -> str:
    return str(self.keys[i])


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

  def sample_id(self, i: int) -> str:
    return self._names[i]


class EmbeddingsSource:
  """An `.npz` of embeddings as a source of rows: sample i is row i (named "i").

  Attributes:
    embeddings: float [N, d]; labels: int64 [N] (checked by `files.load_embeddings_npz`).
    given_names: the file's `names` (label → identity name), or None when it has none.
    identity_names: `given_names`, or each label as text.
    encoder: the fingerprint of the encoder that made them (`encoder`, written by the IQ job's extraction),
      or "" when the file does not say.
    quality: float32 [N, 4] each face's quality and its terms (`quality`, written by the extraction), or None.
  """

  def __init__(self, path: str):
    self.path = path
    self.embeddings, self.labels = files.load_embeddings_npz(path)
    self.given_names = files.load_identity_names(path, self.labels)
    self.identity_names = (self.given_names if self.given_names is not None
                           else [str(n) for n in range(int(self.labels.max()) + 1)])
    with np.load(path, allow_pickle=False) as stored:
      self.encoder = str(stored["encoder"]) if "encoder" in stored.files else ""
      self.quality = None
      if "quality" in stored.files:
        self.quality = np.asarray(stored["quality"], np.float32)
        if self.quality.shape != (len(self.labels), 4):
          raise DataError(f"{path}: `quality` must be float [{len(self.labels)}, 4] (score, evidence, stability, "
                          f"light), got shape {self.quality.shape}")

  def __len__(self) -> int:
    return len(self.labels)

  def sample_id(self, i: int) -> str:
    return str(i)
