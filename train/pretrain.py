r"""Pretrains the MIM face encoder: `python -m train.pretrain --config=pretrain_paco:tiny --workdir=DIR`.

Resumes from the newest checkpoint in DIR/checkpoints; metrics go to
DIR/metrics.jsonl and the log (loss terms, code usage, images/s); at the end
the embedding part of the model is written to DIR/encoder.msgpack (what
`facequal_jax.load_encoder` reads).
"""
import os

from absl import app, flags, logging
from ml_collections import config_flags

from facequal_jax import console, sharding
from facequal_jax.research import configs as research_configs
from facequal_jax.research.training import mim

console.prepare_argv(default_config="pretrain_paco:tiny", config_folder=research_configs.FOLDER)
_CONFIG = config_flags.DEFINE_config_file("config", None, "A packaged config (pretrain_paco[:VARIANT]) "
                                          "or a config file, PATH[:ARG]; default: pretrain_paco:tiny.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints and metrics go here.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  config, workdir = _CONFIG.value, _WORKDIR.value
  images, skipped, teacher = mim.load_faces(config)
  logging.info("%d training faces from %s (%d files skipped)", len(images), config.data.images, len(skipped))
  state = mim.pretrain(config, images, workdir, sharding.make_mesh(config.num_devices), teacher)
  mim.export_encoder(state, config, os.path.join(workdir, mim.ENCODER_FILE))
  logging.info("encoder written to %s", os.path.join(workdir, mim.ENCODER_FILE))


if __name__ == "__main__":
  app.run(main)
