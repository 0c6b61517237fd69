r"""Faces per second of the face network: the Flax port (jitted, batched, sharded) against dlib itself.

Both embed the same 150 × 150 chips (centre crops of LFW-dev faces) in one
process; the table gives faces/s of each and their ratio, and the largest
difference between the two descriptors. Runs on CPU, and on a GPU where one is
there (dlib's wheel runs on the CPU).

  python -m benchmarks.encode --faces=256 --batch=64
"""
import time

import dlib
import jax
import numpy as np
from absl import app, flags
from PIL import Image

from facequal_jax import faces_extra
from facequal_jax.data.sources import ImageFolderSource
from facequal_jax.encoders import face_resnet

_LFW = flags.DEFINE_string("lfw", "../shared/data/lfw_dev", "LFW-dev image folder.")
_FACES = flags.DEFINE_integer("faces", 256, "chips embedded by the Flax port.")
_DLIB_FACES = flags.DEFINE_integer("dlib_faces", 64, "chips embedded by dlib (a few per second on a CPU).")
_BATCH = flags.DEFINE_integer("batch", 64, "chips per call of the Flax port.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "timed passes of the Flax port; the median is reported.")


def chips(root: str, count: int) -> np.ndarray:
  source = ImageFolderSource(root)
  rows = np.random.default_rng(0).permutation(len(source))[:count]
  return np.stack([np.asarray(Image.open(source.describe(int(row))).convert("RGB").crop((50, 50, 200, 200)))
                   for row in rows])


def main(argv):
  del argv
  faces = chips(_LFW.value, _FACES.value)
  encoder = face_resnet.load_face_network()
  embed = lambda x: np.concatenate([encoder(x[i:i + _BATCH.value]) for i in range(0, len(x), _BATCH.value)])
  embed(faces[:_BATCH.value])  # compile
  times = []
  for _ in range(_REPEATS.value):
    start = time.perf_counter()
    ours = embed(faces)
    times.append(time.perf_counter() - start)
  flax_rate = len(faces) / float(np.median(times))

  network = dlib.face_recognition_model_v1(faces_extra.model_file(face_resnet.WEIGHTS_FILE))
  start = time.perf_counter()
  reference = np.stack([np.asarray(network.compute_face_descriptor(face)) for face in faces[:_DLIB_FACES.value]])
  dlib_rate = _DLIB_FACES.value / (time.perf_counter() - start)
  unit = reference / np.linalg.norm(reference, axis=1, keepdims=True)
  difference = float(np.abs(ours[:_DLIB_FACES.value] - unit).max())

  print(f"devices: {jax.devices()}")
  print(f"{'encoder':<34}{'faces':>8}{'faces/s':>12}{'ratio':>8}")
  print(f"{'dlib compute_face_descriptor':<34}{_DLIB_FACES.value:>8}{dlib_rate:>12.1f}{1.0:>8.2f}")
  print(f"{f'Flax port, batch {_BATCH.value}':<34}{len(faces):>8}{flax_rate:>12.1f}{flax_rate / dlib_rate:>8.2f}")
  print(f"largest difference of the unit descriptors over {_DLIB_FACES.value} faces: {difference:.2e}")


if __name__ == "__main__":
  app.run(main)
