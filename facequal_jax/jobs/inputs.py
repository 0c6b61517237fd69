"""From the `data` section of a config to labelled embeddings (`load`).

Sources: `data.images` (image folder), `data.rec` (RecordIO pack), `data.tfds`
(+ `data.tfds_dir`), `data.embeddings` (an .npz of embeddings), or none (the
bundled ORL faces with eigenfaces). The view can carry label noise and a
per-identity cap; faces are decoded, preprocessed and embedded by eigenfaces
fitted on a sample of the view, with resumable extraction into
`WORKDIR/embeddings/`.
"""
import dataclasses
import os
from typing import Callable, List, Optional

import jax
import ml_collections
import numpy as np
from absl import logging

from facequal_jax import files
from facequal_jax.data import extract, orl, pipeline, variants
from facequal_jax.data.preprocess import FacePreprocess
from facequal_jax.data.sources import ImageFolderSource, RecordIOSource
from facequal_jax.encoders.eigenfaces import EigenfaceEncoder

ENCODER_FILE = "encoder.npz"


def has_image_source(data: ml_collections.ConfigDict) -> bool:
  return bool(data.images or data.rec or data.tfds)


def build_source(data: ml_collections.ConfigDict, workdir: str):
  """The one face source the config names, and a description of it."""
  named = [key for key in ("images", "rec", "tfds") if data[key]]
  if len(named) != 1:
    raise ValueError(f"give exactly one of data.images, data.rec, data.tfds (got {named or 'none'})")
  if data.images:
    return ImageFolderSource(data.images), {"images": os.path.abspath(data.images)}
  if data.rec:
    return RecordIOSource(data.rec), {"rec": os.path.abspath(data.rec)}
  if not data.tfds_dir:
    raise ValueError("data.tfds needs data.tfds_dir, the folder holding the prepared dataset")
  from facequal_jax.data.tfds_data import TfdsSource  # pylint: disable=import-outside-toplevel  (optional extra)
  source = TfdsSource(data.tfds, data.tfds_dir, os.path.join(workdir, "tfds_cache"), split=data.tfds_split)
  return source, {"tfds": data.tfds, "tfds_dir": os.path.abspath(data.tfds_dir), "split": data.tfds_split}


def build_view(source, data: ml_collections.ConfigDict) -> variants.View:
  view = variants.full_view(source)
  if data.max_images_per_identity:
    view = variants.cap_images_per_identity(view, data.max_images_per_identity, data.noise_seed)
  if data.label_noise:
    view = variants.flip_labels(view, data.label_noise, data.noise_seed)
  return view


def fit_encoder(view: variants.View, face: FacePreprocess, config: ml_collections.ConfigDict,
                workdir: str) -> EigenfaceEncoder:
  """Eigenfaces fitted on up to `encoder.fit_images` samples spread over the view (kept in workdir)."""
  path = os.path.join(workdir, ENCODER_FILE)
  if os.path.exists(path):
    return EigenfaceEncoder.load(path)
  count = min(config.encoder.fit_images, len(view))
  rows = view.rows[np.linspace(0, len(view) - 1, count).astype(np.int64)]
  images = np.concatenate([b.images for b in pipeline.decode_batches(view.source, rows, face, 512,
                                                                     config.extract.workers)])
  logging.info("fitting %d eigenfaces on %d images of shape %s", config.encoder.dim, len(images), face.shape)
  encoder = EigenfaceEncoder.fit(images, config.encoder.dim)
  encoder.save(path)
  return encoder


@dataclasses.dataclass(frozen=True)
class LabelledEmbeddings:
  """What the IQ job scores.

  Attributes:
    embeddings: float [n, D]; labels: int64 [n].
    description: where they came from (for report.json).
    skipped: [{"file", "reason"}] of every input left out.
    flipped: bool [n] samples whose label was flipped on purpose
      (`data.label_noise`), or None.
    image_of: sample → uint8 face image, or None when there are no images.
    name_of: sample → file or record name, or None.
  """
  embeddings: np.ndarray
  labels: np.ndarray
  description: dict
  skipped: List[dict]
  flipped: Optional[np.ndarray] = None
  image_of: Optional[Callable[[int], np.ndarray]] = None
  name_of: Optional[Callable[[int], str]] = None


def embed(config: ml_collections.ConfigDict, workdir: str) -> LabelledEmbeddings:
  """Decodes, embeds (resumably) and describes the faces of the configured source."""
  source, description = build_source(config.data, workdir)
  view = build_view(source, config.data)
  face = FacePreprocess(config.preprocess.size, config.preprocess.crop, config.preprocess.channels)
  encoder = fit_encoder(view, face, config, workdir)
  result = extract.extract_embeddings(
      view, encoder, encoder.fingerprint(), os.path.join(workdir, "embeddings"),
      face=face, chunk_rows=config.extract.chunk_rows, batch_size=config.extract.batch_size,
      workers=config.extract.workers)
  skipped = [{"file": where, "reason": reason} for where, reason in source.listing_skipped]
  skipped += [{"file": where, "reason": reason} for _, where, reason in result.skipped]
  description.update(num_files=len(source), num_flipped=int(view.flipped.sum()) if view.flipped is not None else 0,
                     encoder=encoder.fingerprint())
  flipped = view.flipped[result.positions] if view.flipped is not None else None

  def image_of(sample: int) -> np.ndarray:
    batch = next(pipeline.decode_batches(source, [int(result.source_rows[sample])], face, 1, workers=1))
    return batch.images[0] if len(batch.images) else np.zeros(face.shape, np.uint8)

  return LabelledEmbeddings(result.embeddings, result.labels, description, skipped, flipped, image_of,
                            lambda sample: source.describe(int(result.source_rows[sample])))


def _with_label_noise(data: LabelledEmbeddings, config: ml_collections.ConfigDict):
  """`data.label_noise` applied to already-embedded data (image sources apply it to their view)."""
  if not config.data.label_noise:
    return data
  view = variants.flip_labels(variants.View(None, np.arange(len(data.labels)), data.labels),
                              config.data.label_noise, config.data.noise_seed)
  description = dict(data.description, num_flipped=int(view.flipped.sum()))
  return LabelledEmbeddings(data.embeddings, view.labels, description, data.skipped, view.flipped,
                            data.image_of, data.name_of)


def load(config: ml_collections.ConfigDict, workdir: str) -> LabelledEmbeddings:
  """The configured data: an image source, an .npz of embeddings, or the bundled ORL faces."""
  if has_image_source(config.data):
    if config.data.embeddings:
      raise ValueError("give data.embeddings or an image source, not both")
    if jax.process_count() > 1:
      raise ValueError("image sources are embedded by one process: extract first, then run IQ "
                       "multi-process on WORKDIR/embeddings/embeddings.npz")
    return embed(config, workdir)
  if config.data.embeddings:
    embeddings, labels = files.load_embeddings_npz(config.data.embeddings)
    data = LabelledEmbeddings(embeddings, labels, {"embeddings": os.path.abspath(config.data.embeddings)}, [])
  else:
    images, labels = orl.load_orl()
    data = LabelledEmbeddings(
        EigenfaceEncoder.fit(images, config.data.demo_dim)(images), labels,
        {"builtin": "ORL faces (Olivetti Research Laboratory), eigenfaces", "dim": config.data.demo_dim}, [],
        image_of=lambda sample: images[sample], name_of=lambda sample: f"s{sample // 10 + 1}/{sample % 10 + 1}.pgm")
  return _with_label_noise(data, config)
