r"""Runs the IQ validation experiment: `python -m train.protocol --config=configs/protocol_lfw.py --workdir=DIR`.

Writes DIR/protocol.{md,csv,json,svg}; each variant's proxy and result live in
DIR/variants/NAME/, so an interrupted run resumes at the variant (and the step)
where it stopped.
"""
from absl import app, flags
from ml_collections import config_flags

from facequal_jax.jobs import experiment

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/protocol_lfw.py or …:smoke.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Results, checkpoints and the table go here.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  experiment.run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
