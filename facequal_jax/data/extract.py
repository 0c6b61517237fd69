"""Embedding extraction to disk in chunks, resumable after a kill.

Layout of `out_dir`:
  extract.json            what is being extracted (rows and the samples' names,
                          encoder, preprocessing);
                          a resume with anything different is refused (the
                          labels may differ: views with other labels share it)
  chunks/chunk_NNNNNN.npz one per `chunk_rows` view positions, written atomically:
                          positions, embeddings, each face's quality and its
                          terms (`metrics/face_quality.py`), and the skipped
                          positions with where / why
  embeddings.npz          the assembled result: embeddings, labels, positions,
                          source_rows, quality (written last, atomically)

A killed run restarted with the same arguments redoes only the chunks that are
missing, so the result has exactly the rows of an uninterrupted run.
"""
import dataclasses
import hashlib
import json
import os
from typing import Callable, List, Optional, Tuple

import numpy as np

from facequal_jax import files
from facequal_jax.data.pipeline import decode_batches
from facequal_jax.data.preprocess import FacePreprocess
from facequal_jax.data.variants import View
from facequal_jax.metrics import face_quality
from facequal_jax.progress import LOGGER as PROGRESS_LOG, Progress

MANIFEST, CHUNKS, RESULT = "extract.json", "chunks", "embeddings.npz"


@dataclasses.dataclass(frozen=True)
class Extraction:
  """Embeddings of the samples of a view that decoded.

  Attributes:
    embeddings: float32 [n, D].
    labels: int64 [n] identities (the view's labels).
    positions: int64 [n] positions in the view.
    source_rows: int64 [n] rows of the source.
    skipped: (position, where, reason) of each sample that did not decode.
    no_face: (position, where) of each sample where face detection found no
      face (embedded from its centred crop).
    pixel_std: float32 [n] standard deviation of each embedded face's pixels
      (0–255): near-uniform images have almost none.
    quality: float32 [n, 4] each face's quality score in [0, 1] and its terms (evidence, stability, light):
      `face_quality.FIELDS`; NaN rows for chunks extracted without it.
  """
  embeddings: np.ndarray
  labels: np.ndarray
  positions: np.ndarray
  source_rows: np.ndarray
  skipped: List[Tuple[int, str, str]]
  no_face: List[Tuple[int, str]] = dataclasses.field(default_factory=list)
  pixel_std: Optional[np.ndarray] = None
  quality: Optional[np.ndarray] = None


def _manifest(view: View, encoder_id: str, face: FacePreprocess, chunk_rows: int) -> dict:
  digest = hashlib.sha256(view.rows.tobytes()).hexdigest()  # labels do not change embeddings
  names = "\n".join(view.source.sample_id(int(row)) for row in view.rows)  # the same rows of other data differ
  preprocess = dataclasses.asdict(face)
  if preprocess["template"] == "chip":  # as written before templates were chosen: those extractions resume
    del preprocess["template"]
  return {"num_rows": len(view), "rows_sha256": digest, "samples_sha256": hashlib.sha256(names.encode()).hexdigest(),
          "encoder": encoder_id, "preprocess": preprocess, "chunk_rows": chunk_rows}


def _chunk_path(out_dir: str, number: int) -> str:
  return os.path.join(out_dir, CHUNKS, f"chunk_{number:06d}.npz")


def _quality(encode, images: np.ndarray, embeddings: np.ndarray, terms: np.ndarray) -> np.ndarray:
  """float32 [b, 4]: `face_quality.FIELDS` of a batch; the mirror images go through the encoder too."""
  stable = face_quality.stability(embeddings, np.asarray(encode(images[:, :, ::-1]), np.float32))
  evidence, light = terms[:, 0], terms[:, 1]
  return np.stack([face_quality.quality(evidence, stable, light), evidence, stable, light], axis=1)


def _extract_chunk(view: View, encode, face: FacePreprocess, positions: np.ndarray, batch_size: int,
                   workers: int, landmarks, progress: Progress, quality: bool) -> dict:
  good, embeddings, skipped, no_face, pixel_std, scores = [], [], [], [], [], []
  for batch in decode_batches(view.source, view.rows[positions], face, batch_size, workers, landmarks, quality):
    if len(batch.rows):
      embeddings.append(np.asarray(encode(batch.images), np.float32))
      pixel_std.append(batch.images.reshape(len(batch.images), -1).std(axis=1).astype(np.float32))
      if quality:
        scores.append(_quality(encode, batch.images, embeddings[-1], batch.terms))
      good.extend(positions[batch.indices].tolist())
    skipped.extend((int(positions[index]), where, reason) for index, where, reason in batch.skipped)
    no_face.extend((int(positions[index]), where) for index, where in batch.no_face)
    progress.advance(len(batch.rows) + len(batch.skipped))
  return {"positions": np.asarray(good, np.int64),
          "embeddings": np.concatenate(embeddings) if embeddings else np.zeros((0, 0), np.float32),
          "pixel_std": np.concatenate(pixel_std) if pixel_std else np.zeros(0, np.float32),
          "quality": np.concatenate(scores) if scores else face_quality.unscored(len(good)),
          "skipped_positions": np.asarray([s[0] for s in skipped], np.int64),
          "skipped_where": np.asarray([s[1] for s in skipped], str),
          "skipped_reason": np.asarray([s[2] for s in skipped], str),
          "no_face_positions": np.asarray([s[0] for s in no_face], np.int64),
          "no_face_where": np.asarray([s[1] for s in no_face], str)}


def extract_embeddings(view: View, encode: Callable[[np.ndarray], np.ndarray], encoder_id: str, out_dir: str, *,
                       face: FacePreprocess, chunk_rows: int = 4096, batch_size: int = 256, workers: int = 0,
                       landmarks: Optional[Callable[[int], np.ndarray]] = None,
                       after_chunk: Optional[Callable[[int], None]] = None,
                       result_path: Optional[str] = None, quality: bool = True) -> Extraction:
  """Embeds every sample of `view`, resuming from the chunks already in `out_dir`.

  Args:
    view: the samples (see `variants.View`).
    encode: uint8 [B, H, W, C] → float32 [B, D].
    encoder_id: identifies `encode` (a resume with another encoder is refused).
    out_dir: where chunks and the result go.
    face: preprocessing applied before `encode`.
    chunk_rows: view positions per chunk file (the unit of resumption).
    batch_size: images per `encode` call.
    workers: decoding threads (0: one per core).
    landmarks: optional source row → [5, 2] landmarks.
    after_chunk: called with each chunk's number once its file is written
      (a hook: tests stop the process there to check resumption).
    result_path: where the assembled result goes (default
      `out_dir/embeddings.npz`); views that differ only in their labels share
      `out_dir` and write their results apart.
    quality: also score each face's quality (`metrics/face_quality.py`: a second pass of the encoder over the
      mirror images, and dlib's detector over the faces in the decoding threads).
  """
  os.makedirs(os.path.join(out_dir, CHUNKS), exist_ok=True)
  manifest = _manifest(view, encoder_id, face, chunk_rows)
  manifest_path = os.path.join(out_dir, MANIFEST)
  if os.path.exists(manifest_path):
    with open(manifest_path) as f:
      previous = json.load(f)
    if previous != manifest:
      raise ValueError(f"{out_dir!r} holds an extraction of other data or settings ({manifest_path}); "
                       "use a new directory")
  else:
    files.write_json(manifest_path, manifest)

  num_chunks = -(-len(view) // chunk_rows)
  done = [n for n in range(num_chunks) if os.path.exists(_chunk_path(out_dir, n))]
  if done and len(done) < num_chunks:
    PROGRESS_LOG.info("resuming: %d of %d chunks already in %s", len(done), num_chunks, out_dir)
  progress = Progress("embedding", total=len(view), unit="images",
                      done=sum(min(chunk_rows, len(view) - n * chunk_rows) for n in done))
  for number in range(num_chunks):
    if number in done:
      continue
    positions = np.arange(number * chunk_rows, min((number + 1) * chunk_rows, len(view)))
    chunk = _extract_chunk(view, encode, face, positions, batch_size, workers, landmarks, progress, quality)
    files.write_npz(_chunk_path(out_dir, number), **chunk)
    if after_chunk:
      after_chunk(number)

  parts = [np.load(_chunk_path(out_dir, n), allow_pickle=False) for n in range(num_chunks)]
  positions = np.concatenate([p["positions"] for p in parts]).astype(np.int64)
  embeddings = np.concatenate([p["embeddings"] for p in parts if len(p["positions"])]) if len(positions) else \
      np.zeros((0, 0), np.float32)
  skipped = [(int(pos), str(where), str(reason)) for p in parts
             for pos, where, reason in zip(p["skipped_positions"], p["skipped_where"], p["skipped_reason"])]
  no_face = [(int(pos), str(where)) for p in parts for pos, where in zip(p["no_face_positions"], p["no_face_where"])]
  pixel_std = np.concatenate([p["pixel_std"] for p in parts]).astype(np.float32)
  scores = np.concatenate([p["quality"] if "quality" in p.files else  # a chunk written before quality scores
                           face_quality.unscored(len(p["positions"])) for p in parts])
  result = Extraction(embeddings, view.labels[positions], positions, view.rows[positions], skipped, no_face,
                      pixel_std, scores.astype(np.float32))
  files.write_npz(result_path or os.path.join(out_dir, RESULT), embeddings=result.embeddings, labels=result.labels,
                  positions=result.positions, source_rows=result.source_rows, encoder=np.asarray(encoder_id),
                  quality=result.quality)
  return result
