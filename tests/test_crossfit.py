"""Cross-fitted neighbour consistency worked by hand on points of the unit circle; the low-resolution faces of
the experiment's lowres variant."""
import numpy as np
import pytest

from facequal_jax.research import crossfit


def _circle(degrees):
  radians = np.deg2rad(np.asarray(degrees, np.float64))
  return np.stack([np.cos(radians), np.sin(radians)], axis=1).astype(np.float32)


def test_each_face_is_scored_by_the_proxy_that_did_not_train_on_it():
  labels = np.array([0, 0, 0, 1, 1, 1])
  half = np.array([0, 1, 0, 1, 0, 1])
  # The proxy trained on half 0 scores rows 1, 3, 5; the one trained on half 1 scores rows 0, 2, 4 (k = 2).
  trained_on_0 = _circle([0, 9, 20, 100, 110, 15])
  trained_on_1 = _circle([0, 12, 200, 35, 28, 25])
  # Row 1 (at 9°): row 5 (6° away, label 1), row 0 (9°, label 0) → 0.5. Row 3 (100°): row 4 (10°, 1),
  # row 2 (80°, 0) → 0.5. Row 5 (15°): row 2 (5°, 0), row 1 (6°, 0) → 0.
  # Row 0 (0°): row 2 (12°, 0), row 5 (25°, 1) → 0.5. Row 2 (12°): row 0 (12°, 0), row 5 (13°, 1) → 0.5.
  # Row 4 (28°): row 5 (3°, 1), row 3 (7°, 1) → 1.
  got = crossfit.out_of_sample_consistency(np.stack([trained_on_0, trained_on_1]), labels, half, k=2)
  np.testing.assert_allclose(got, [0.5, 0.5, 0.5, 0.5, 1.0, 0.0])
  # With the proxies swapped, every face is scored by the proxy that trained on it: other values.
  swapped = crossfit.out_of_sample_consistency(np.stack([trained_on_1, trained_on_0]), labels, half, k=2)
  assert not np.allclose(swapped, got)


def test_a_face_without_another_of_its_identity_is_not_scored():
  labels = np.array([0, 0, 1, 2, 2])
  points = _circle([0, 10, 50, 100, 105])
  got = crossfit.out_of_sample_consistency(np.stack([points, points]), labels, np.array([0, 1, 0, 0, 1]), k=1)
  assert np.isnan(got[2]) and np.allclose(got[[0, 1, 3, 4]], 1.0)


def test_halves_split_every_identity_evenly():
  labels = np.repeat(np.arange(7), [2, 3, 3, 5, 1, 4, 7])
  half = crossfit.halves(labels, seed=3)
  for identity, count in enumerate([2, 3, 3, 5, 1, 4, 7]):
    assert abs(2 * np.sum(half[labels == identity]) - count) <= 1  # n // 2 or (n + 1) // 2 in half 1
  assert abs(np.sum(half == 0) - np.sum(half == 1)) <= 1  # the odd ones alternate: 5 odd counts
  np.testing.assert_array_equal(half, crossfit.halves(labels, seed=3))
  assert not np.array_equal(half, crossfit.halves(labels, seed=4))


def test_low_resolution_faces_are_block_means_enlarged_back():
  from facequal_jax.research.faces import lower_resolution
  faces = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype(np.uint8)
  faces[1] = 77  # a flat face stays as it is
  out = lower_resolution(faces, 4)
  assert out.shape == faces.shape and out.dtype == np.uint8
  np.testing.assert_array_equal(out[1], faces[1])
  # 2 × 2 pixels, each the mean of a 4 × 4 block; bicubic back up keeps each block's mean within rounding.
  blocks = faces[0].astype(np.float64).reshape(2, 4, 2, 4, 3).mean(axis=(1, 3))
  np.testing.assert_allclose(out[0].astype(np.float64).reshape(2, 4, 2, 4, 3).mean(axis=(1, 3)), blocks, atol=12)
  assert np.abs(out[0].astype(int) - faces[0]).mean() > 20  # the detail is gone
