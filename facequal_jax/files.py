"""Reading embedding files and writing outputs atomically."""
import csv
import io
import json
import os
import tempfile
import zipfile
from typing import Iterable, Sequence

import numpy as np

from facequal_jax import checks
from facequal_jax.errors import DataError, MissingFile

EMBEDDINGS_KEY, LABELS_KEY, NAMES_KEY = "embeddings", "labels", "names"


def load_embeddings_npz(path: str):
  """Reads an `.npz` with arrays `embeddings` [N, d] (float) and `labels` [N] (int).

  Object arrays are refused (no pickle is ever loaded).

  Returns:
    (embeddings [N, d] numpy float array, labels int64 [N]).

  Raises:
    FileNotFoundError: no such file.
    ValueError: unreadable file, a missing key, or arrays that fail the checks;
      the message names the file and the key.
  """
  if not os.path.exists(path):
    raise MissingFile(f"embeddings file {path!r} does not exist")
  try:
    archive = np.load(path, allow_pickle=False)
  except (OSError, ValueError, zipfile.BadZipFile) as error:
    raise DataError(f"{path!r} is not a readable .npz file: {error}") from error
  if not isinstance(archive, np.lib.npyio.NpzFile):
    raise DataError(f"{path!r} is a single .npy array, not an .npz with keys "
                     f"{EMBEDDINGS_KEY!r} and {LABELS_KEY!r}")
  with archive:
    arrays = {}
    for key in (EMBEDDINGS_KEY, LABELS_KEY):
      if key not in archive.files:
        raise DataError(f"{path!r} has no array {key!r} (it has {sorted(archive.files)})")
      try:
        arrays[key] = archive[key]
      except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise DataError(f"{path!r}: array {key!r} cannot be read: {error}") from error
  embeddings = checks.check_embeddings(arrays[EMBEDDINGS_KEY], name=f"{path}:{EMBEDDINGS_KEY}")
  labels = checks.check_labels(arrays[LABELS_KEY], embeddings.shape[0], name=f"{path}:{LABELS_KEY}")
  return embeddings, labels


def load_identity_names(path: str, labels: np.ndarray):
  """The optional `names` array of an embeddings `.npz`: str [L], the name of identity label i at i.

  Returns:
    A list of names, or None when the file has no `names`.

  Raises:
    DataError: `names` is not 1-D text, or does not name every label (the message names the file).
  """
  with np.load(path, allow_pickle=False) as archive:
    if NAMES_KEY not in archive.files:
      return None
    try:
      names = archive[NAMES_KEY]
    except ValueError as error:
      raise DataError(f"{path!r}: array {NAMES_KEY!r} cannot be read (a text array, not objects): {error}") from error
  if names.ndim != 1 or names.dtype.kind not in "US":
    raise DataError(f"{path!r}: {NAMES_KEY!r} must be a 1-D text array (name of label i at i), "
                    f"got dtype {names.dtype} shape {names.shape}")
  if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
    raise DataError(f"{path!r}: {NAMES_KEY!r} has {len(names)} entries but the labels run from {labels.min()} "
                    f"to {labels.max()}: it needs the name of every label")
  return [str(name) for name in names.astype(str)]


def _atomic_write(path: str, data: bytes) -> None:
  """Writes `data` to a temporary file beside `path`, then renames it into place."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are ordinary files
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_bytes(path: str, data: bytes) -> None:
  _atomic_write(path, data)


def write_json(path: str, obj) -> None:
  _atomic_write(path, (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode())


def write_csv(path: str, header: Sequence[str], rows: Iterable[Sequence]) -> None:
  text = io.StringIO()
  writer = csv.writer(text, lineterminator="\n")
  writer.writerow(header)
  writer.writerows(rows)
  _atomic_write(path, text.getvalue().encode())


def write_npz(path: str, **arrays) -> None:
  buffer = io.BytesIO()
  np.savez_compressed(buffer, **arrays)
  _atomic_write(path, buffer.getvalue())
