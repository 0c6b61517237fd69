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
import multiprocessing
import os
import sys

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import made_faces  # pylint: disable=wrong-import-position

from facequal_jax.data import recordio  # pylint: disable=wrong-import-position
from facequal_jax.data.sources import ImageFolderSource  # pylint: disable=wrong-import-position
from facequal_jax.progress import Progress  # pylint: disable=wrong-import-position

_IMAGES = flags.DEFINE_string("images", "../shared/data/lfw_dev", "Image folder the faces come from.")
_OUT = flags.DEFINE_string("out", "/tmp/facequal_pack/faces.rec", "The pack to write (.idx beside it).")
_NUM = flags.DEFINE_integer("num_images", 1_000_000, "Images in the pack.")
_PER_IDENTITY = flags.DEFINE_integer("images_per_identity", 20, "Images of each made identity.")
_WORKERS = flags.DEFINE_integer("workers", 0, "Encoding processes; 0 = one per core.")
_CHUNK = 2000  # images per task

_photos = None  # uint8 [P, REGION, REGION, 3], set in each worker


def _start_worker(photos: np.ndarray) -> None:
  global _photos
  _photos = photos


def _chunk(start: int):
  """(label, JPEG) pairs of images start … start + _CHUNK − 1 (each image seeded by its number)."""
  out = []
  for number in range(start, min(start + _CHUNK, _NUM.value)):
    identity = number // _PER_IDENTITY.value
    out.append((identity, made_faces.made_face(_photos[identity % len(_photos)], np.random.default_rng(number))))
  return out


def main(argv):
  del argv
  photos = made_faces.central_regions(ImageFolderSource(_IMAGES.value))
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
