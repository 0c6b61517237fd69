"""The kinds of data source, one table: how each is named in a config, recognised by its path, checked, opened
and described.

The IQ command's `data` section names at most one source (`data.KEY`); `--compare`, `--overlap_with` and the
apply step's `--source` take a path and find its kind by `kind_of_path`. With no source, the bundled ORL faces
are scored (`orl`). A new kind is one entry of `KINDS`.
"""
import dataclasses
import os
from typing import Callable, Optional

import ml_collections

from facequal_jax.data.sources import EmbeddingsSource, ImageFolderSource, ImageListSource, RecordIOSource
from facequal_jax.errors import MissingFile, UsageError


def _open_tfds(data: ml_collections.ConfigDict, workdir: str):
  from facequal_jax.data.tfds_data import TfdsSource  # pylint: disable=import-outside-toplevel  (optional extra)
  return TfdsSource(data.tfds, data.tfds_dir, os.path.join(workdir, "tfds_cache"), split=data.tfds_split)


def _check_tfds(data: ml_collections.ConfigDict) -> None:
  if not data.tfds_dir:
    raise UsageError("--config.data.tfds needs --config.data.tfds_dir, the folder holding the prepared dataset")
  readable(data.tfds_dir, "--config.data.tfds_dir", folder=True)


@dataclasses.dataclass(frozen=True)
class Kind:
  """One kind of data source.

  Attributes:
    key: its field under the config's `data` section (two kinds may share one: a folder or a `.lst`).
    noun: how a person calls it ("image folder").
    extension: what its path ends with; "" for a folder, None for what is not a path (TFDS names a dataset).
    open: (the `data` section, workdir) → the source (`sources`' interface).
    description: report.json's `data` section for it, from the `data` section (default: its path).
    phrase: that section in words, formatted with its fields, `noun` and `path` (the field `key`).
    check: raises `MissingFile` / `UsageError` unless the `data` section's source can be read (default: its path).
    faces: whether it holds images to embed (False: embeddings already).
    align: how its faces are aligned when `preprocess.align` is "auto" (insightface packs hold ArcFace crops).
  """
  key: str
  noun: str
  extension: Optional[str]
  open: Callable[[ml_collections.ConfigDict, str], object]
  description: Optional[Callable[[ml_collections.ConfigDict], dict]] = None
  phrase: str = "the {noun} {path}"
  check: Optional[Callable[[ml_collections.ConfigDict], None]] = None
  faces: bool = True
  align: str = "detect"

  def describe(self, data: ml_collections.ConfigDict) -> dict:
    return self.description(data) if self.description else {self.key: os.path.abspath(data[self.key])}

  def where(self, description: dict) -> str:
    """report.json's `data` section as the page's words: "the image folder /data/faces"."""
    return self.phrase.format(noun=self.noun, path=description.get(self.key), **description)

  def check_readable(self, data: ml_collections.ConfigDict) -> None:
    if self.check:
      self.check(data)
    else:
      readable(data[self.key], f"--config.data.{self.key}", folder=self.extension == "")


KINDS = (
    Kind("images", "image folder", "", lambda data, _: ImageFolderSource(data.images)),
    Kind("images", "image list", ".lst", lambda data, _: ImageListSource(data.images)),
    Kind("rec", "RecordIO pack", ".rec", lambda data, _: RecordIOSource(data.rec), align="arcface"),
    Kind("embeddings", "embeddings", ".npz", lambda data, _: EmbeddingsSource(data.embeddings), faces=False),
    Kind("tfds", "TFDS dataset", None, _open_tfds,
         lambda data: {"tfds": data.tfds, "tfds_dir": os.path.abspath(data.tfds_dir), "split": data.tfds_split},
         "the {noun} {tfds} ({split}) in {tfds_dir}", _check_tfds),
)
KEYS = tuple(dict.fromkeys(kind.key for kind in KINDS))  # the `data` fields that name a source


def readable(path: str, flag: str, folder: bool = False) -> None:
  """Raises `MissingFile` naming `flag` unless `path` is an existing, readable file (or folder)."""
  what = "folder" if folder else "file"
  if not os.path.exists(path) or os.path.isdir(path) != folder:
    raise MissingFile(f"{flag}={path}: no such {what}")
  if not os.access(path, os.R_OK | (os.X_OK if folder else 0)):
    raise MissingFile(f"{flag}={path}: the {what} cannot be read (permissions)")


def kind_of_path(path: str) -> Optional[Kind]:
  """The kind of the file or folder at `path` by its extension (a folder: an image folder), or None."""
  if os.path.isdir(path):
    return KINDS[0]
  return next((kind for kind in KINDS if kind.extension and path.endswith(kind.extension)), None)


def configured(data) -> Optional[Kind]:
  """The kind of the one source `data` (the config's section, or report.json's) names, or None (the bundled faces).

  Raises:
    UsageError: more than one source named.
  """
  named = [key for key in KEYS if data[key]]
  if len(named) > 1:
    raise UsageError(f"give at most one data source, got {', '.join('--config.data.' + key for key in named)}")
  if not named:
    return None
  candidates = [kind for kind in KINDS if kind.key == named[0]]
  return next((kind for kind in candidates if kind.extension and data[kind.key].endswith(kind.extension)),
              candidates[0])


def point_at(data: ml_collections.ConfigDict, path: str) -> None:
  """Makes `path` the only source of `data` (a path of no known kind: an image folder, for the checks to refuse),
  without label noise or a cap."""
  key = (kind_of_path(path) or KINDS[0]).key
  for other in KEYS:
    data[other] = ""
  data.label_noise, data.max_images_per_identity = 0.0, 0
  data[key] = path


def open_path(path: str, flag: str):
  """The source at `path` (of any kind that is a path), opened; `flag` names it in errors."""
  if not os.path.exists(path):
    raise UsageError(f"{flag}={path}: no such file or folder")
  kind = kind_of_path(path)
  if kind is None:
    paths = [f"a {kind.extension}" if kind.extension else f"an {kind.noun}" for kind in KINDS
             if kind.extension is not None]
    raise UsageError(f"{flag}={path}: give {', '.join(paths[:-1])} or {paths[-1]}")
  return kind.open(ml_collections.ConfigDict({kind.key: path}), "")
