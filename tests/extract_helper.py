"""Runs one extraction; the kill/resume test starts it as a separate process.

  python tests/extract_helper.py IMAGE_ROOT OUT_DIR [KILL_AFTER_CHUNK]

With KILL_AFTER_CHUNK the process kills itself (SIGKILL, no clean-up) right
after that chunk's file is written: a deterministic kill point.
"""
import os
import signal
import sys

import numpy as np

from facequal_jax.data import extract, variants
from facequal_jax.data.preprocess import FacePreprocess
from facequal_jax.data.sources import ImageFolderSource

PROJECTION = np.random.default_rng(0).normal(size=(8 * 8 * 3, 6)).astype(np.float32)


def main(root, out_dir, kill_after_chunk=None):
  def after_chunk(number):
    if number == kill_after_chunk:
      os.kill(os.getpid(), signal.SIGKILL)

  view = variants.flip_labels(variants.full_view(ImageFolderSource(root)), 0.1, seed=0)
  encode = lambda images: images.reshape(len(images), -1).astype(np.float32) @ PROJECTION
  extract.extract_embeddings(view, encode, "projection-v1", out_dir, face=FacePreprocess(size=8), chunk_rows=32,
                             batch_size=8, workers=2, after_chunk=after_chunk)


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None)
