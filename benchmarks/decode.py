r"""Decode + preprocess throughput of an image folder (images/s), by threads and output format.

  python benchmarks/decode.py --images=../shared/data/lfw_dev --limit=3000
"""
import time

from absl import app, flags

from facequal_jax.data.pipeline import decode_batches
from facequal_jax.data.preprocess import FacePreprocess
from facequal_jax.data.sources import ImageFolderSource

_IMAGES = flags.DEFINE_string("images", "../shared/data/lfw_dev", "Image folder ROOT/<identity>/<image>.")
_LIMIT = flags.DEFINE_integer("limit", 3000, "Images decoded per setting.")
_WORKERS = flags.DEFINE_list("workers", ["1", "2", "4"], "Decoding thread counts to compare.")


def main(argv):
  del argv
  source = ImageFolderSource(_IMAGES.value)
  rows = range(min(_LIMIT.value, len(source)))
  print(f"{_IMAGES.value}: {len(source)} images; decoding {len(rows)} per setting")
  print(f"{'output':<22}{'threads':>8}{'images/s':>10}")
  for face in (FacePreprocess(112, 0, "rgb"), FacePreprocess(64, 120, "grey")):
    for workers in map(int, _WORKERS.value):
      start = time.perf_counter()
      count = sum(len(b.rows) for b in decode_batches(source, rows, face, 256, workers))
      rate = count / (time.perf_counter() - start)
      print(f"{str(face.shape) + ' ' + face.channels:<22}{workers:>8}{rate:>10.0f}")


if __name__ == "__main__":
  app.run(main)
