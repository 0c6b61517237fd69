r"""Runs the IQ validation experiment: `python -m train.protocol --config=protocol_lfw --workdir=DIR`.

Writes DIR/protocol.{md,csv,json,svg}; each variant's proxy and result live in
DIR/variants/NAME/, so an interrupted run resumes at the variant (and the step)
where it stopped.
"""
from absl import app, flags
from ml_collections import config_flags

from facequal_jax import console
from facequal_jax.jobs import experiment

console.prepare_argv(default_config="protocol_lfw")
_CONFIG = config_flags.DEFINE_config_file("config", None, "A packaged config (protocol_lfw[:VARIANT]) "
                                          "or a config file, PATH[:ARG]; default: protocol_lfw.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Results, checkpoints and the table go here.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  experiment.run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
