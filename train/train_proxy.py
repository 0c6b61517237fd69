r"""Trains the ArcFace proxy on an identity-folder dataset:
`python -m train.train_proxy --config=proxy_arcface:tiny --workdir=DIR`.

Identities with fewer than `config.data.min_images` images are left out.
Resumes from DIR/checkpoints; logs loss and images/s to DIR/metrics.jsonl; at
the end writes the training faces' embeddings with their labels to
DIR/embeddings.npz, which
`python -m facequal_jax --config.data.embeddings=DIR/embeddings.npz` scores.
"""
import os

import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from facequal_jax import console, files, sharding
from facequal_jax.research.faces import decode_labelled_folder
from facequal_jax.data.preprocess import FacePreprocess
from facequal_jax.research import configs as research_configs
from facequal_jax.research.training import proxy

console.prepare_argv(default_config="proxy_arcface:tiny", config_folder=research_configs.FOLDER)
_CONFIG = config_flags.DEFINE_config_file("config", None, "A packaged config (proxy_arcface[:VARIANT]) "
                                          "or a config file, PATH[:ARG]; default: proxy_arcface:tiny.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics and embeddings go here.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  config, workdir = _CONFIG.value, _WORKDIR.value
  os.makedirs(workdir, exist_ok=True)
  face = FacePreprocess(config.model.image_size, config.data.crop, "rgb" if config.model.channels == 3 else "grey",
                        config.data.align)
  images, labels, skipped = decode_labelled_folder(config.data.images, face, config.data.workers, config.data.cache)
  keep = np.bincount(labels)[labels] >= config.data.min_images
  images, labels = images[keep], labels[keep]
  logging.info("%d training faces of %d identities (%d files skipped)", len(labels), len(np.unique(labels)),
               len(skipped))
  embed = proxy.train(config, images, labels, workdir, sharding.make_mesh(config.num_devices))
  out = os.path.join(workdir, "embeddings.npz")
  files.write_npz(out, embeddings=embed(images), labels=labels)
  logging.info("embeddings of the training faces written to %s", out)


if __name__ == "__main__":
  app.run(main)
