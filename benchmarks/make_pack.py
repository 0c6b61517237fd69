r"""Builds a large insightface `.rec` pack of 112 × 112 face JPEGs from the faces at hand, for benchmarks.

The faces come from an image folder (default LFW-dev: 250 × 250 photos with the face centred). Identity j's
images are all made from one of those photos (photo j mod the number of photos), each a new crop of the
face region (offset and scale jittered, near the ArcFace template's framing), with its own lighting (gain,
gamma, a darker side now and then) and JPEG quality (75–95), encoded afresh. The identities are made
here, not real people: a pack for measuring reading, decoding, alignment and embedding at scale — how
the faces are packed, sized and compressed is what matters — not for judging label quality.

  python benchmarks/make_pack.py --out=/tmp/pack/faces.rec --num_images=1000000 --images_per_identity=20

Encoding is spread over the cores in chunks; the pack is written as the chunks arrive, in identity
order (`recordio.write_face_pack` with a count: never held in memory), with progress lines.
"""
import io
import multiprocessing
import os

import numpy as np
from absl import app, flags
from PIL import Image

from facequal_jax.data import recordio
from facequal_jax.data.sources import ImageFolderSource
from facequal_jax.progress import Progress

_IMAGES = flags.DEFINE_string("images", "../shared/data/lfw_dev", "Image folder the faces come from.")
_OUT = flags.DEFINE_string("out", "/tmp/facequal_pack/faces.rec", "The pack to write (.idx beside it).")
_NUM = flags.DEFINE_integer("num_images", 1_000_000, "Images in the pack.")
_PER_IDENTITY = flags.DEFINE_integer("images_per_identity", 20, "Images of each made identity.")
_WORKERS = flags.DEFINE_integer("workers", 0, "Encoding processes; 0 = one per core.")
_CHUNK = 2000  # images per task
_REGION = 176  # side of the central region kept of each photo (the face and some margin)

_photos = None  # uint8 [P, _REGION, _REGION, 3], set in each worker


def central_regions(folder: str) -> np.ndarray:
  """uint8 [P, _REGION, _REGION, 3]: the centre of every photo of the folder, resized when it is smaller."""
  source = ImageFolderSource(folder)
  regions = np.empty((len(source), _REGION, _REGION, 3), np.uint8)
  for i in range(len(source)):
    image = Image.open(io.BytesIO(source.read(i))).convert("RGB")
    if min(image.size) < _REGION:
      image = image.resize((_REGION, _REGION))
    left, top = (image.size[0] - _REGION) // 2, (image.size[1] - _REGION) // 2
    regions[i] = np.asarray(image.crop((left, top, left + _REGION, top + _REGION)))
  return regions


def _start_worker(photos: np.ndarray) -> None:
  global _photos
  _photos = photos


def made_face(photo: np.ndarray, rng: np.random.Generator) -> bytes:
  """One 112 × 112 JPEG of the face in `photo` [_REGION, _REGION, 3]: jittered crop, lighting, quality."""
  side = int(rng.integers(136, 157))  # eyes about a third of the width apart, as in the ArcFace template
  left, top = (int(rng.integers(-5, 6)) + (_REGION - side) // 2 for _ in range(2))
  face = np.asarray(Image.fromarray(photo).crop((left, top, left + side, top + side)).resize((112, 112),
                                                                                             Image.BILINEAR))
  gain, gamma = rng.uniform(0.6, 1.4), rng.uniform(0.8, 1.25)
  lit = np.take((255.0 * np.clip(np.arange(256) / 255.0 * gain, 0.0, 1.0) ** gamma).astype(np.uint8), face)
  if rng.random() < 0.2:  # one side in shadow
    lit = (lit * np.linspace(rng.uniform(0.2, 0.6), 1.0, 112)[None, ::rng.choice((-1, 1)), None]).astype(np.uint8)
  out = io.BytesIO()
  Image.fromarray(lit).save(out, format="JPEG", quality=int(rng.integers(75, 96)))
  return out.getvalue()


def _chunk(start: int):
  """(label, JPEG) pairs of images start … start + _CHUNK − 1 (each image seeded by its number)."""
  out = []
  for number in range(start, min(start + _CHUNK, _NUM.value)):
    identity = number // _PER_IDENTITY.value
    out.append((identity, made_face(_photos[identity % len(_photos)], np.random.default_rng(number))))
  return out


def main(argv):
  del argv
  photos = central_regions(_IMAGES.value)
  os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
  progress = Progress("making the pack", total=_NUM.value, unit="images")

  def stream(pool):
    for chunk in pool.imap(_chunk, range(0, _NUM.value, _CHUNK)):
      yield from chunk
      progress.advance(len(chunk))

  with multiprocessing.get_context("fork").Pool(_WORKERS.value or os.cpu_count(), _start_worker, (photos,)) as pool:
    recordio.write_face_pack(_OUT.value, stream(pool), count=_NUM.value)
  size = os.path.getsize(_OUT.value)
  print(f"{_OUT.value}: {_NUM.value:,} images of {-(-_NUM.value // _PER_IDENTITY.value):,} identities, "
        f"{size / 2**30:.2f} GiB ({size / _NUM.value / 1024:.1f} KiB per image)")


if __name__ == "__main__":
  app.run(main)
