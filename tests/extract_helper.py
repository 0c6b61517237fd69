"""Runs one extraction; the kill/resume test starts it as a separate process.

  python tests/extract_helper.py IMAGE_ROOT OUT_DIR SLEEP_SECONDS_PER_BATCH
"""
import sys
import time

import numpy as np

from facequal_jax.data import extract, variants
from facequal_jax.data.preprocess import FacePreprocess
from facequal_jax.data.sources import ImageFolderSource

PROJECTION = np.random.default_rng(0).normal(size=(8 * 8 * 3, 6)).astype(np.float32)


def main(root, out_dir, sleep):
  def encode(images):
    time.sleep(sleep)
    return images.reshape(len(images), -1).astype(np.float32) @ PROJECTION

  view = variants.flip_labels(variants.full_view(ImageFolderSource(root)), 0.1, seed=0)
  extract.extract_embeddings(view, encode, "projection-v1", out_dir, face=FacePreprocess(size=8), chunk_rows=32,
                             batch_size=8, workers=2)


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
