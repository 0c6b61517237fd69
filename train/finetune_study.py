r"""Runs the fine-tuning study: `python -m train.finetune_study --config=finetune_study --workdir=DIR`.

Writes DIR/finetune_study.{md,csv,json}; every run's proxy and result live in
DIR/ARM/clean_F/seed_S/, so an interrupted study resumes where it stopped.
"""
from absl import app, flags
from ml_collections import config_flags

from facequal_jax import console
from facequal_jax.research import configs as research_configs
from facequal_jax.research import pretraining_study

console.prepare_argv(default_config="finetune_study", config_folder=research_configs.FOLDER)
_CONFIG = config_flags.DEFINE_config_file("config", None, "A packaged config (finetune_study[:sweep]) "
                                          "or a config file, PATH[:ARG]; default: finetune_study.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Every run's checkpoints and results, and the tables, go here.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  pretraining_study.run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
