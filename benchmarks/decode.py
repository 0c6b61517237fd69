r"""Read + decode + align throughput of an image source (images/s), by decoding threads, and per core.

Any source the command reads as images (a folder, a `.lst`, a `.rec` pack) with the alignment the command
gives it by default (a `.rec` pack: the ArcFace template; folders and lists: detection), onto the face
network's 150 × 150 RGB chip; then the face network's own rate on those chips, for the ratio that says
whether decoding keeps the encoder fed.

  python benchmarks/decode.py --data=../shared/data/lfw_dev --limit=3000
  python benchmarks/decode.py --data=/tmp/facequal_pack/faces.rec --limit=20000 --workers=1,2
"""
import os
import time

import numpy as np
from absl import app, flags

import facequal_jax as fq
from facequal_jax.data import kinds
from facequal_jax.data.pipeline import decode_batches
from facequal_jax.data.preprocess import FacePreprocess

_DATA = flags.DEFINE_string("data", "../shared/data/lfw_dev", "An image folder, .lst or .rec pack.")
_LIMIT = flags.DEFINE_integer("limit", 3000, "Images decoded per setting (the first ones).")
_WORKERS = flags.DEFINE_list("workers", ["1", "2", "4"], "Decoding thread counts to compare.")
_EMBED = flags.DEFINE_integer("embed", 512, "Chips the face network embeds for its rate (0: skip).")


def main(argv):
  del argv
  source = kinds.open_path(_DATA.value, "--data")
  align = kinds.kind_of_path(_DATA.value).align
  face = FacePreprocess(150, 0, "rgb", align)
  rows = range(min(_LIMIT.value, len(source)))
  print(f"{_DATA.value}: {len(source):,} images; decoding {len(rows):,} per setting ({align} alignment, "
        f"{os.cpu_count()} cores)")
  print(f"{'threads':>8}{'images/s':>10}{'per thread':>12}")
  chips = None
  for workers in map(int, _WORKERS.value):
    start = time.perf_counter()
    batches = list(decode_batches(source, rows, face, 256, workers))
    rate = sum(len(batch.rows) for batch in batches) / (time.perf_counter() - start)
    print(f"{workers:>8}{rate:>10,.0f}{rate / workers:>12,.0f}")
    chips = np.concatenate([batch.images for batch in batches])[:_EMBED.value]
  if _EMBED.value and chips is not None:
    network = fq.load_encoder()
    network(chips[:64])  # compiles
    start = time.perf_counter()
    network(chips)
    rate = len(chips) / (time.perf_counter() - start)
    print(f"face network: {rate:,.1f} faces/s on {fq.make_mesh().devices.size} device(s)")


if __name__ == "__main__":
  app.run(main)
