"""Streaming, parallel decode + preprocess of a source's rows into uint8 batches."""
import concurrent.futures
import dataclasses
import os
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from facequal_jax.data import align as align_lib
from facequal_jax.data import preprocess as preprocess_lib
from facequal_jax.data import recordio
from facequal_jax.metrics import face_quality


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
    terms: float32 [b, 2] each face's (evidence, light) for its quality score (`face_quality.face_terms`),
      or None where they were not asked for.
  """
  indices: np.ndarray
  rows: np.ndarray
  images: np.ndarray
  skipped: List[Tuple[int, str, str]]
  no_face: List[Tuple[int, str]] = dataclasses.field(default_factory=list)
  terms: Optional[np.ndarray] = None


def _load(source, row: int, face: preprocess_lib.FacePreprocess, landmarks, quality_terms):
  image = preprocess_lib.decode(source.read(row))
  aligned = face.apply(image, None if landmarks is None else landmarks(row))
  return aligned, quality_terms(aligned.image) if quality_terms else None


def decode_batches(source, rows: Sequence[int], face: preprocess_lib.FacePreprocess, batch_size: int,
                   workers: int = 0, landmarks: Optional[Callable[[int], np.ndarray]] = None,
                   quality_terms: bool = False) -> Iterator[Batch]:
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
    quality_terms: also each face's terms of its quality score, in the decoding threads.
  """
  workers = workers or os.cpu_count() or 1
  rows = np.asarray(rows, np.int64)
  terms = None
  if quality_terms:
    detect = align_lib.detection_available()
    terms = lambda image: face_quality.face_terms(image, face.template, detect)

  def task(row):
    try:
      return _load(source, int(row), face, landmarks, terms), None
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
      good = [i for i, (loaded, _) in enumerate(results) if loaded is not None]
      skipped = [(start + i, source.describe(int(rows[start + i])), reason)
                 for i, (loaded, reason) in enumerate(results) if loaded is None]
      no_face = [(start + i, source.describe(int(rows[start + i]))) for i in good if not results[i][0][0].found]
      images = (np.stack([results[i][0][0].image for i in good]) if good
                else np.zeros((0,) + face.shape, np.uint8))
      found_terms = np.asarray([results[i][0][1] for i in good], np.float32).reshape(-1, 2) if terms else None
      indices = start + np.asarray(good, np.int64)
      yield Batch(indices, rows[indices], images, skipped, no_face, found_terms)
