r"""Runs the IQ validation experiment: `python -m train.protocol --config=protocol_lfw --workdir=DIR`.

Writes DIR/protocol.{md,csv,json,svg} (and the α-curve and training-spectrum
plots); each run's proxy and result live in DIR/variants/NAME/seed_S/, so an
interrupted experiment resumes at the run (and the step) where it stopped.
"""
from absl import app, flags
from ml_collections import config_flags

from facequal_jax import console
from facequal_jax.research import configs as research_configs
from facequal_jax.research import experiment

console.prepare_argv(default_config="protocol_lfw", config_folder=research_configs.FOLDER)
_CONFIG = config_flags.DEFINE_config_file("config", None, "A packaged config (protocol_lfw[:VARIANT]) "
                                          "or a config file, PATH[:ARG]; default: protocol_lfw.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Results, checkpoints and the table go here.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  experiment.run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
