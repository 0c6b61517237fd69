"""Proxy training: the data-parallel, class-sharded step equals one device (resuming: test_training.py)."""
import jax
import numpy as np
import pytest

import facequal_jax as fq
from facequal_jax.research.configs import proxy_arcface
from facequal_jax.research.training import loop, proxy


def _config(steps):
  config = proxy_arcface.get_config("tiny")
  config.model.image_size, config.model.widths, config.model.embedding_dim = 16, (8, 16), 16
  config.batch_size, config.steps, config.warmup_steps = 16, steps, 2
  config.log_every, config.checkpoint_every = 1, 2
  return config


def _data():
  rng = np.random.default_rng(0)
  return rng.integers(0, 256, (64, 16, 16, 3), dtype=np.uint8), np.repeat(np.arange(13), 5)[:64] * 7


def test_step_on_eight_devices_equals_one():
  """Eight devices: 13 classes padded to 16 centre rows; the BatchNorm head's moments are the global batch's
  (per-device moments of two faces would move its running averages and every gradient). (One, two and eight
  devices for the class-sharded loss and its gradients alone: test_arcface.py.)"""
  images, labels = _data()
  _, classes = np.unique(labels, return_inverse=True)
  results = {}
  for devices in (1, 8):
    mesh = fq.make_mesh(devices)
    config = _config(1)
    model, state, shardings = proxy.create_state(config, 13, mesh)
    step = proxy.make_train_step(model, config, mesh, 13, shardings)
    positions = loop.batch_positions(len(images), 0, config.batch_size, config.seed)
    state, metrics = step(state, images[positions], classes[positions].astype(np.int32))
    params = jax.device_get(state.params)
    params["centres"] = params["centres"][:13]  # padded to 16 rows on 8 devices: compare the real ones
    assert config.model.head_norm == "batchnorm"
    results[devices] = (float(metrics["loss"]), {"params": params, "batch_stats": jax.device_get(state.batch_stats)})
  loss_one, params_one = results[1]
  assert np.isfinite(loss_one)
  loss_eight, params_eight = results[8]
  assert loss_eight == pytest.approx(loss_one, rel=1e-5)
  running_mean = params_one["batch_stats"]["BatchNorm_0"]["mean"]
  assert np.abs(running_mean).max() > 1e-3  # one update of the running moments happened
  for one, eight in zip(jax.tree.leaves(params_one), jax.tree.leaves(params_eight)):
    np.testing.assert_allclose(eight, one, atol=2e-5, rtol=1e-4)
