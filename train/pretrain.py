r"""Pretrains the MIM face encoder: `python -m train.pretrain --config=configs/pretrain_paco.py:tiny --workdir=DIR`.

Resumes from the newest checkpoint in DIR/checkpoints; metrics go to
DIR/metrics.jsonl and the log (loss terms, code usage, images/s); at the end
the embedding part of the model is written to DIR/encoder.msgpack (what
`facequal_jax.load_encoder` reads).
"""
import json
import os
import time

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from facequal_jax import sharding
from facequal_jax.models import pretrain

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/pretrain_paco.py:tiny.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints and metrics go here.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  config, workdir = _CONFIG.value, _WORKDIR.value
  os.makedirs(workdir, exist_ok=True)
  images, skipped = pretrain.load_faces(config)
  logging.info("%d training faces from %s (%d files skipped)", len(images), config.data.images, len(skipped))
  mesh = sharding.make_mesh(config.num_devices)
  model, state = pretrain.create_state(config)
  manager = pretrain.checkpoint_manager(os.path.join(os.path.abspath(workdir), "checkpoints"), config)
  state = pretrain.restore_latest(manager, state)
  train_step = pretrain.make_train_step(model, config, mesh)
  start_step = window_step = int(state.step)
  start_time = window_time = time.perf_counter()
  with open(os.path.join(workdir, "metrics.jsonl"), "a") as log:
    for step in range(start_step, config.steps):
      state, metrics = train_step(state, pretrain.batch_at(images, step, config.batch_size, config.seed))
      done = step + 1
      if done % config.log_every == 0 or done == config.steps:
        metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
        now = time.perf_counter()
        elapsed = now - start_time
        # The rate over the last window: the first window also holds compilation.
        metrics.update(step=done, images_per_second=(done - window_step) * config.batch_size / (now - window_time))
        window_step, window_time = done, now
        log.write(json.dumps(metrics) + "\n")
        log.flush()
        logging.info("step %d/%d loss %.4f recon %.4f code %.4f perplexity %.1f dead %d, %.0f images/s, ETA %.0f s",
                     done, config.steps, metrics["loss"], metrics["reconstruction_loss"],
                     metrics.get("code_loss", 0.0), metrics.get("code_perplexity", 0.0),
                     metrics.get("dead_codes", 0), metrics["images_per_second"],
                     (config.steps - done) * elapsed / (done - start_step))
      if done % config.checkpoint_every == 0 or done == config.steps:
        pretrain.save(manager, state, force=done == config.steps)
  manager.wait_until_finished()
  pretrain.export_encoder(state, config, os.path.join(workdir, pretrain.ENCODER_FILE))
  logging.info("encoder written to %s", os.path.join(workdir, pretrain.ENCODER_FILE))


if __name__ == "__main__":
  app.run(main)
