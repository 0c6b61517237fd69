"""ArcFace logits and the class-sharded loss against a float64 numpy reference."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import facequal_jax as fq
from facequal_jax.research.training import arcface


def reference_loss(embeddings, labels, centres, scale, margin):
  """Float64 ArcFace cross-entropy written from the formula: θ = arccos(cos), target s·cos(θ + m)
  while θ + m <= π, else s·(cos θ − m·sin m)."""
  x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
  w = centres / np.linalg.norm(centres, axis=1, keepdims=True)
  cosines = np.clip(x @ w.T, -1.0, 1.0)
  logits = scale * cosines
  rows = np.arange(len(labels))
  theta = np.arccos(cosines[rows, labels])
  logits[rows, labels] = np.where(theta + margin <= math.pi, scale * np.cos(theta + margin),
                                  scale * (cosines[rows, labels] - margin * math.sin(margin)))
  peak = logits.max(axis=1, keepdims=True)
  log_normaliser = np.log(np.exp(logits - peak).sum(axis=1)) + peak[:, 0]
  return float(np.mean(log_normaliser - logits[rows, labels])), logits


def test_margin_logits_by_hand():
  # cos θ = 0 (θ = π/2) at the target with m = 0.5: s·cos(π/2 + 0.5) = −s·sin 0.5.
  # cos θ = −1 (θ = π): past π − m, so s·(−1 − 0.5·sin 0.5).
  cosines = jnp.array([[0.0, 0.3], [-1.0, 0.2]])
  target = jnp.array([[True, False], [True, False]])
  got = np.asarray(arcface.margin_logits(cosines, target, 64.0, 0.5))
  want = np.array([[-64 * math.sin(0.5), 64 * 0.3], [64 * (-1 - 0.5 * math.sin(0.5)), 64 * 0.2]])
  np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("num_devices", [1, 2, 8])
def test_sharded_loss_matches_float64_reference(num_devices):
  rng = np.random.default_rng(0)
  num_classes, dim, batch = 21, 16, 32  # 21 classes: padded to 22 or 24 over 2 or 8 devices
  embeddings = rng.normal(size=(batch, dim))
  labels = rng.integers(0, num_classes, batch)
  centres = rng.normal(size=(num_classes, dim))
  centres[labels[0]] = -embeddings[0]  # one target at θ = π: the fallback branch
  want, _ = reference_loss(embeddings, labels, centres, 64.0, 0.5)
  mesh = fq.make_mesh(num_devices)
  padded = -(-num_classes // num_devices) * num_devices
  padded_centres = np.concatenate([centres, rng.normal(size=(padded - num_classes, dim))])
  got = arcface.sharded_loss(jnp.asarray(embeddings, jnp.float32), jnp.asarray(labels, jnp.int32),
                             jnp.asarray(padded_centres, jnp.float32), mesh=mesh, scale=64.0, margin=0.5,
                             num_classes=num_classes)
  assert abs(float(got) - want) < 1e-4 * abs(want)


def test_sharded_gradients_equal_one_device():
  rng = np.random.default_rng(1)
  embeddings = jnp.asarray(rng.normal(size=(16, 8)), jnp.float32)
  labels = jnp.asarray(rng.integers(0, 16, 16), jnp.int32)
  centres = jnp.asarray(rng.normal(size=(16, 8)), jnp.float32)
  grads = [jax.grad(lambda e, c: arcface.sharded_loss(e, labels, c, mesh=fq.make_mesh(n), scale=30.0, margin=0.3,
                                                       num_classes=16), argnums=(0, 1))(embeddings, centres)
           for n in (1, 8)]
  for one, eight in zip(*grads):
    assert np.all(np.isfinite(one)) and np.any(np.asarray(one) != 0)
    np.testing.assert_allclose(np.asarray(eight), np.asarray(one), atol=1e-5, rtol=1e-4)
