"""The one training loop: resume, step, log, checkpoint — for MIM pretraining and the ArcFace proxy alike.

A task supplies an initial state (a pytree with an integer `step`), a jitted
step `(state, *batch) → (state, metrics)` and `batch_at(step)`, a pure function
of the step. The loop restores the newest checkpoint of `WORKDIR/checkpoints`
(orbax), so a killed run continues with exactly the batches, masks and random
draws an uninterrupted one would have used (metrics logged after that
checkpoint are dropped, to be logged again). Every `log_every` steps it appends
the metrics (and an optional probe's, e.g. the embeddings' spectrum) to
`WORKDIR/metrics.jsonl` and logs a progress line (rate, ETA, loss); every `checkpoint_every` steps, and at the end, it saves the state.
"""
import json
import os
from typing import Callable, Dict, List, Optional

import jax
import ml_collections
import numpy as np

from facequal_jax import files
from facequal_jax.progress import Progress
from facequal_jax.research.training import checkpoints

METRICS_FILE = "metrics.jsonl"


def _line(metrics: Dict[str, float]) -> str:
  return ", ".join(f"{name} {value:.4g}" for name, value in metrics.items() if name not in ("step",))


def train(state, step_fn: Callable, batch_at: Callable[[int], tuple], config: ml_collections.ConfigDict,
          workdir: str, what: str, probe: Optional[Callable[..., Dict[str, float]]] = None):
  """Runs (or resumes) `config.steps` steps in `workdir`; returns the final state.

  Args:
    state: the initial state, placed with its shardings (restored states take them).
    step_fn: jitted `(state, *batch) → (state, metrics dict of scalars)`.
    batch_at: step → the batch arrays of that step.
    config: with steps, batch_size, log_every, checkpoint_every.
    workdir: checkpoints/ and metrics.jsonl go here.
    what: the name of the progress lines ("proxy training", …).
    probe: state → more metrics, measured at every logged step.
  """
  os.makedirs(workdir, exist_ok=True)
  manager = checkpoints.manager(os.path.join(os.path.abspath(workdir), "checkpoints"), config.checkpoint_every)
  state = checkpoints.restore_latest(manager, state)
  start = int(state.step)
  logged = read_metrics(workdir)
  if any(record["step"] > start for record in logged):  # logged after the checkpoint it resumes from: redone
    files.write_bytes(os.path.join(workdir, METRICS_FILE), "".join(
        json.dumps(record) + "\n" for record in logged if record["step"] <= start).encode())
  progress = Progress(what, total=config.steps, unit="steps", every_s=0.0, done=start)
  with open(os.path.join(workdir, METRICS_FILE), "a") as log:
    for step in range(start, config.steps):
      state, metrics = step_fn(state, *batch_at(step))
      done = step + 1
      if done % config.log_every == 0 or done == config.steps:
        record = {name: float(value) for name, value in jax.device_get(metrics).items()}
        record.update(probe(state) if probe else {})
        progress.advance(done - progress.done, note=_line(record))
        record.update(step=done, images_per_second=progress.recent_rate * config.batch_size)
        log.write(json.dumps(record) + "\n")
        log.flush()
      if done % config.checkpoint_every == 0 or done == config.steps:
        checkpoints.save(manager, state, force=done == config.steps)
  manager.wait_until_finished()
  return state


def read_metrics(workdir: str) -> List[Dict[str, float]]:
  """The records `train` logged in `workdir` (oldest first; [] if it logged none)."""
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def batch_positions(num_samples: int, step: int, batch_size: int, seed: int) -> np.ndarray:
  """int64 [batch_size] positions of the samples of `step`: each epoch is a seeded permutation, so any step's
  batch can be recomputed (what makes resuming exact)."""
  per_epoch = num_samples // batch_size
  epoch, index = divmod(step, per_epoch)
  order = np.random.default_rng([seed, epoch]).permutation(num_samples)
  return order[index * batch_size:(index + 1) * batch_size]
