"""The one training loop serves MIM pretraining and proxy training; a run resumed from a checkpoint ends exactly
where an uninterrupted one does, and both log through it."""
import json
import os
import shutil

import jax
import numpy as np

import facequal_jax as fq
from facequal_jax.research.configs import pretrain_paco, proxy_arcface
from facequal_jax.research.training import loop, mim, proxy


def _pretrain_config():
  config = pretrain_paco.get_config("tiny")
  config.model.update(image_size=32, patch=4, dim=32, depth=1, heads=2, decoder_dim=32, decoder_depth=1,
                      codebook_size=32)
  config.update(batch_size=8, steps=6, warmup_steps=2, incubation_steps=2, log_every=2, checkpoint_every=3)
  return config


def _proxy_config():
  config = proxy_arcface.get_config("tiny")
  config.model.image_size, config.model.widths, config.model.embedding_dim = 16, (8, 16), 16
  config.update(batch_size=16, steps=6, warmup_steps=2, log_every=2, checkpoint_every=3)
  return config


def _interrupt_after_the_first_checkpoint(workdir: str, config) -> None:
  """What a kill after the first checkpoint leaves: the later checkpoints removed."""
  checkpoints = os.path.join(workdir, "checkpoints")
  for step in os.listdir(checkpoints):
    if step.isdigit() and int(step) > config.checkpoint_every:
      shutil.rmtree(os.path.join(checkpoints, step))


def test_pretraining_resumes_exactly(tmp_path):
  config, mesh = _pretrain_config(), fq.make_mesh(2)
  images = np.random.default_rng(1).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
  straight = mim.pretrain(config, images, str(tmp_path / "straight"), mesh)
  workdir = str(tmp_path / "resumed")
  shutil.copytree(tmp_path / "straight", workdir)  # what the straight run left, then cut back to step 3
  _interrupt_after_the_first_checkpoint(workdir, config)
  resumed = mim.pretrain(config, images, workdir, mesh)
  assert int(resumed.step) == int(straight.step) == 6
  for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(straight.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  with open(os.path.join(workdir, loop.METRICS_FILE)) as f:
    records = [json.loads(line) for line in f]
  # Step 2 from the first run; 4 and 6, logged after the step-3 checkpoint, dropped and logged again.
  assert [r["step"] for r in records] == [2, 4, 6]
  straight_records = loop.read_metrics(str(tmp_path / "straight"))
  assert [r["loss"] for r in records] == [r["loss"] for r in straight_records]
  assert all(np.isfinite(r["loss"]) and r["images_per_second"] > 0 for r in records)


def test_proxy_training_resumes_exactly(tmp_path):
  rng = np.random.default_rng(0)
  images, labels = rng.integers(0, 256, (64, 16, 16, 3), dtype=np.uint8), np.repeat(np.arange(13), 5)[:64] * 7
  config, mesh = _proxy_config(), fq.make_mesh(2)
  config.probe_images = 32  # the spectrum of 32 fixed faces at every logged step
  straight = proxy.train(config, images, labels, str(tmp_path / "straight"), mesh)(images[:8])
  workdir = str(tmp_path / "resumed")
  shutil.copytree(tmp_path / "straight", workdir)
  _interrupt_after_the_first_checkpoint(workdir, config)
  resumed = proxy.train(config, images, labels, workdir, mesh)(images[:8])
  np.testing.assert_array_equal(resumed, straight)
  np.testing.assert_allclose(np.linalg.norm(straight, axis=1), 1.0, atol=1e-6)
  logged = loop.read_metrics(workdir)
  assert [r["step"] for r in logged] == [2, 4, 6]
  assert logged == [dict(r, images_per_second=l["images_per_second"])
                    for r, l in zip(loop.read_metrics(str(tmp_path / "straight")), logged)]
  assert all(0 < r["probe_effective_rank_normalized"] <= 1 for r in logged)


def test_batch_positions_are_seeded_epochs():
  first_epoch = np.concatenate([loop.batch_positions(10, step, 3, seed=4) for step in range(3)])
  assert len(set(first_epoch.tolist())) == 9  # three batches of one permutation: no repeats
  np.testing.assert_array_equal(first_epoch, np.random.default_rng([4, 0]).permutation(10)[:9])
  np.testing.assert_array_equal(loop.batch_positions(10, 3, 3, seed=4),
                                np.random.default_rng([4, 1]).permutation(10)[:3])
