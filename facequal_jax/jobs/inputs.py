"""From the `data` section of a config to labelled embeddings (`load`).

Sources: one of the kinds of `data.kinds` (an image folder or `.lst`, a RecordIO
pack, a TFDS dataset, an .npz of embeddings), or none (the bundled ORL faces). The view can carry label noise and a per-identity cap;
faces are decoded, aligned (`preprocess.align`) and embedded by the configured
encoder (`encoder.name`: the pretrained face network by default), with
resumable extraction into `WORKDIR/embeddings/`.
"""
import dataclasses
import os
from typing import Callable, List, Optional, Tuple

import jax
import ml_collections
import numpy as np
from absl import logging
from PIL import Image

from facequal_jax import checks, sharding
from facequal_jax.data import align as align_lib
from facequal_jax.data import extract, kinds, orl, pipeline, preprocess, variants
from facequal_jax.data.preprocess import FacePreprocess
from facequal_jax.encoders import registry as encoders
from facequal_jax.encoders.base import Encoder
from facequal_jax.errors import UsageError
from facequal_jax.progress import Stages

ENCODER_FILE, EMBEDDINGS_DIR = "encoder.npz", "embeddings"
BUILTIN = "ORL faces (Olivetti Research Laboratory)"


def build_source(data: ml_collections.ConfigDict, workdir: str):
  """The one source of faces the config names (none: the bundled ORL faces), and a description of it.

  The `data` section is checked already (`preflight.check_fields`: one source, a TFDS one with its folder).
  """
  kind = kinds.configured(data)
  if kind is None:
    return orl.orl_source(), {"builtin": BUILTIN}
  return kind.open(data, workdir), kind.describe(data)


def build_view(source, data: ml_collections.ConfigDict) -> variants.View:
  view = variants.full_view(source)
  if data.max_images_per_identity:
    view = variants.cap_images_per_identity(view, data.max_images_per_identity, data.noise_seed)
  if data.label_noise:
    view = variants.flip_labels(view, data.label_noise, data.noise_seed)
  return view


def choose_embedding(config: ml_collections.ConfigDict) -> Tuple[str, str]:
  """(encoder name, alignment) for the configured image source.

  `preprocess.align` "auto" is "arcface" for `.rec` packs (insightface packs
  hold ArcFace-aligned crops) and "detect" otherwise. Without the optional extra
  `faces`, the face network falls back to eigenfaces and automatic detection to
  the centred crop, said in one log line; detection asked for by name without
  the extra is an error.
  """
  name, align = config.encoder.name, config.preprocess.align  # valid values (`preflight.check_fields`)
  if align == "auto":
    kind = kinds.configured(config.data)
    align = kind.align if kind else "detect"
  fallbacks = []
  chosen = encoders.entry(name)
  if not chosen.available():
    name = chosen.fallback
    fallbacks.append(f"with {name}")
  if align == "detect" and not align_lib.detection_available():
    if config.preprocess.align == "detect":
      raise align_lib.DetectorUnavailable('preprocess.align="detect" needs the optional extra: '
                                          'pip install "facequal_jax[faces]"')
    align = "centre"
    fallbacks.append("on centred crops")
  if fallbacks:
    logging.warning('the face network and face detection need the optional extra (pip install '
                    '"facequal_jax[faces]"): embedding %s instead', " ".join(fallbacks))
  return name, align


def face_preprocess(config: ml_collections.ConfigDict, align: str, encoder: Optional[Encoder] = None
                    ) -> FacePreprocess:
  """How faces are cut for `encoder` (None: one to be fitted): aligned to its template, `preprocess.size`
  pixels or else its own input size (the chip's 150 where it takes any)."""
  template = encoder.template if encoder else "chip"
  size = config.preprocess.size or (encoder.input_size if encoder else 0) or align_lib.CHIP_SIZE
  return FacePreprocess(size, config.preprocess.crop, config.preprocess.channels, align, template)


def make_encoder(name: str, view: variants.View, align: str, config: ml_collections.ConfigDict,
                 workdir: str) -> Tuple[Encoder, FacePreprocess]:
  """The encoder `name` names (`encoders.entry`) and the faces it takes: a pretrained one loaded, a fitted one
  fitted on up to `encoder.fit_images` samples spread over the view and kept in the workdir (read back when
  there)."""
  chosen = encoders.entry(name, config.encoder.onnx.to_dict())
  if chosen.fitted is None:
    encoder = chosen.load(sharding.make_mesh(config.mesh.num_devices))
    return encoder, face_preprocess(config, align, encoder)
  face = face_preprocess(config, align)
  path = os.path.join(workdir, ENCODER_FILE)
  if os.path.exists(path):
    return chosen.fitted.load(path), face
  count = min(config.encoder.fit_images, len(view))
  rows = view.rows[np.linspace(0, len(view) - 1, count).astype(np.int64)]
  images = np.concatenate([b.images for b in pipeline.decode_batches(view.source, rows, face, 512,
                                                                     config.extract.workers)])
  logging.info("fitting %s (dim %d) on %d images of shape %s", name, config.encoder.dim, len(images), face.shape)
  encoder = chosen.fitted.fit(images, config.encoder.dim)
  encoder.save(path)
  return encoder, face


@dataclasses.dataclass(frozen=True)
class LabelledEmbeddings:
  """What the IQ job scores.

  Attributes:
    embeddings: float [n, D]; labels: int64 [n].
    description: where they came from (for report.json).
    skipped: [{"file", "reason"}] of every input left out.
    no_face: [{"file"}] of every image where face detection found no face
      (embedded from its centred crop).
    pixel_std: float32 [n] pixel standard deviation of each embedded face, or
      None without images.
    flipped: bool [n] samples whose label was flipped on purpose
      (`data.label_noise`), or None.
    image_of: sample → uint8 face image, or None when there are no images.
    name_of: sample → file or record name, or None.
    identity_names: label → identity name (folder, TFDS label or `names` of
      the .npz), or None when the data has none.
    original_labels: int64 [n] the labels before `data.label_noise` flipped
      some, or None.
    sample_id_of: sample → its name within the source (what a decisions file
      names: a path under the folder, a `.rec` key, an `.npz` row).
    photo_of: sample → the decoded image as stored (PIL), or None without images.
    face_found: bool [n] whether face detection found each sample's face (all
      True where nothing was detected), or None without images.
    quality: float32 [n, 4] each face's quality score and its terms (`face_quality.FIELDS`; NaN where not
      scored), or None without images.
  """
  embeddings: np.ndarray
  labels: np.ndarray
  description: dict
  skipped: List[dict]
  no_face: List[dict] = dataclasses.field(default_factory=list)
  pixel_std: Optional[np.ndarray] = None
  flipped: Optional[np.ndarray] = None
  image_of: Optional[Callable[[int], np.ndarray]] = None
  name_of: Optional[Callable[[int], str]] = None
  identity_names: Optional[List[str]] = None
  original_labels: Optional[np.ndarray] = None
  sample_id_of: Callable[[int], str] = str
  photo_of: Optional[Callable[[int], Image.Image]] = None
  face_found: Optional[np.ndarray] = None
  quality: Optional[np.ndarray] = None

  @property
  def source_path(self) -> str:
    """The file or folder the data came from ("" for the bundled faces and TFDS: nothing apply can write)."""
    return next((self.description[kind.key] for kind in kinds.KINDS
                 if kind.extension is not None and kind.key in self.description), "")


def embed(config: ml_collections.ConfigDict, workdir: str, stages: Stages) -> LabelledEmbeddings:
  """Decodes, embeds (resumably) and describes the faces of the configured source."""
  with stages("listing", "listing the faces"):
    source, description = build_source(config.data, workdir)
    view = build_view(source, config.data)
  checks.check_k(config.k, len(view) - 1, "--config.", f"; the data has {len(view)}")  # before any compute
  name, align = choose_embedding(config)
  chosen = encoders.entry(name)
  with stages("encoder", f"fitting {name}" if chosen.fitted else f"loading the encoder {name}"):
    encoder, face = make_encoder(name, view, align, config, workdir)
  with stages("embedding", f"embedding {len(view):,} faces ({align} alignment, {face.template} template)"):
    result = extract.extract_embeddings(
        view, encoder, encoder.fingerprint(), config.extract.dir or os.path.join(workdir, EMBEDDINGS_DIR),
        face=face, chunk_rows=config.extract.chunk_rows, batch_size=config.extract.batch_size,
        workers=config.extract.workers, result_path=os.path.join(workdir, EMBEDDINGS_DIR, extract.RESULT),
        quality=config.extract.quality and chosen.decides)  # not eigenfaces: no face network
  skipped = [{"file": where, "reason": reason} for where, reason in source.listing_skipped]
  skipped += [{"file": where, "reason": reason} for _, where, reason in result.skipped]
  description.update(num_files=len(source), num_flipped=int(view.flipped.sum()) if view.flipped is not None else 0,
                     encoder=encoder.describe(),
                     preprocess=dataclasses.asdict(face))
  flipped = view.flipped[result.positions] if view.flipped is not None else None
  no_face = [{"file": where} for _, where in result.no_face]

  def photo_of(sample: int) -> Image.Image:
    return preprocess.decode(source.read(int(result.source_rows[sample])))

  def image_of(sample: int) -> np.ndarray:
    """The face as it was embedded (decoded and aligned in this thread, whose detector stays loaded)."""
    return face(photo_of(sample))

  return LabelledEmbeddings(result.embeddings, result.labels, description, skipped, no_face, result.pixel_std,
                            flipped, image_of, lambda sample: source.describe(int(result.source_rows[sample])),
                            list(source.identity_names), source.labels[result.source_rows],
                            lambda sample: source.sample_id(int(result.source_rows[sample])), photo_of,
                            ~np.isin(result.positions, [position for position, _ in result.no_face]),
                            result.quality)


def _with_label_noise(data: LabelledEmbeddings, config: ml_collections.ConfigDict):
  """`data.label_noise` applied to already-embedded data (image sources apply it to their view)."""
  if not config.data.label_noise:
    return data
  view = variants.flip_labels(variants.View(None, np.arange(len(data.labels)), data.labels),
                              config.data.label_noise, config.data.noise_seed)
  description = dict(data.description, num_flipped=int(view.flipped.sum()))
  return dataclasses.replace(data, labels=view.labels, description=description, flipped=view.flipped,
                             original_labels=data.labels)


def load(config: ml_collections.ConfigDict, workdir: str, stages: Optional[Stages] = None) -> LabelledEmbeddings:
  """The configured data (checked by `preflight.check`): an .npz of embeddings, or faces (an image source or
  the bundled ORL faces) embedded."""
  stages = stages or Stages()
  kind = kinds.configured(config.data)
  if kind is None or kind.faces:
    if jax.process_count() > 1:
      raise UsageError("faces are embedded by one process: extract first, then run IQ "
                       "multi-process on WORKDIR/embeddings/embeddings.npz")
    return embed(config, workdir, stages)
  path = config.data[kind.key]
  with stages("loading", f"reading {path}"):
    source = kind.open(config.data, workdir)
  checks.check_k(config.k, len(source) - 1, "--config.", f"; {path} has {len(source)}")
  description = kind.describe(config.data)
  if source.encoder:  # embeddings the IQ job extracted say by which encoder
    description["encoder"] = {"name": source.encoder.partition(":")[0], "fingerprint": source.encoder}
  data = LabelledEmbeddings(source.embeddings, source.labels, description, [], identity_names=source.given_names,
                            quality=source.quality)
  return _with_label_noise(data, config)
