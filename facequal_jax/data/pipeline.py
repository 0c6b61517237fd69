"""Streaming, parallel decode + preprocess of a source's rows into uint8 batches."""
import concurrent.futures
import dataclasses
import os
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from facequal_jax.data import preprocess as preprocess_lib
from facequal_jax.data import recordio


@dataclasses.dataclass(frozen=True)
class Batch:
  """Decoded faces of some requested rows.

  Attributes:
    indices: int64 [b] positions, in the requested `rows`, of the rows that decoded.
    rows: int64 [b] those source rows.
    images: uint8 [b, H, W, C].
    skipped: (position in `rows`, where, reason) for each row that did not decode.
    no_face: (position in `rows`, where) for each decoded row where face
      detection found no face (its image is the centred crop).
  """
  indices: np.ndarray
  rows: np.ndarray
  images: np.ndarray
  skipped: List[Tuple[int, str, str]]
  no_face: List[Tuple[int, str]] = dataclasses.field(default_factory=list)


def _load(source, row: int, face: preprocess_lib.FacePreprocess, landmarks):
  image = preprocess_lib.decode(source.read(row))
  return face.apply(image, None if landmarks is None else landmarks(row))


def decode_batches(source, rows: Sequence[int], face: preprocess_lib.FacePreprocess, batch_size: int,
                   workers: int = 0, landmarks: Optional[Callable[[int], np.ndarray]] = None
                   ) -> Iterator[Batch]:
  """Decodes `rows` of `source` in order, `batch_size` at a time, on a thread pool.

  A file that cannot be read or decoded is skipped and reported in its batch's
  `skipped`; it never stops the stream.

  Args:
    source: a face source (see `sources.py`).
    rows: rows to decode.
    face: the preprocessing (output shape `face.shape`).
    batch_size: rows requested per batch.
    workers: decoding threads (0: one per CPU core).
    landmarks: optional row → float [5, 2] landmarks for alignment.
  """
  workers = workers or os.cpu_count() or 1
  rows = np.asarray(rows, np.int64)

  def task(row):
    try:
      return _load(source, int(row), face, landmarks), None
    except (OSError, preprocess_lib.DecodeError, recordio.RecordIOError) as error:
      return None, str(error)

  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    starts = range(0, len(rows), batch_size)
    pending = pool.map(task, rows[:batch_size]) if len(rows) else None
    for start in starts:
      results = list(pending)
      # Start decoding the next batch while the caller works on this one.
      following = rows[start + batch_size:start + 2 * batch_size]
      pending = pool.map(task, following) if len(following) else None
      good = [i for i, (aligned, _) in enumerate(results) if aligned is not None]
      skipped = [(start + i, source.describe(int(rows[start + i])), reason)
                 for i, (aligned, reason) in enumerate(results) if aligned is None]
      no_face = [(start + i, source.describe(int(rows[start + i]))) for i in good if not results[i][0].found]
      images = (np.stack([results[i][0].image for i in good]) if good
                else np.zeros((0,) + face.shape, np.uint8))
      indices = start + np.asarray(good, np.int64)
      yield Batch(indices, rows[indices], images, skipped, no_face)
