"""Dataset variants are index views with the promised statistics."""
import numpy as np
import pytest

from facequal_jax.data import variants


class _Labels:
  """A minimal source: labels and names only."""

  def __init__(self, labels, names=None):
    self.labels = np.asarray(labels, np.int64)
    self.identity_names = names or [str(i) for i in range(self.labels.max() + 1)]
    self.listing_skipped = []

  def __len__(self):
    return len(self.labels)


SOURCE = _Labels(np.repeat(np.arange(37), np.arange(1, 38)))  # 703 samples, sizes 1 … 37


@pytest.mark.parametrize("rate", [0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 1.0])
def test_label_flips_hit_the_rate_and_never_keep_the_label(rate):
  view = variants.full_view(SOURCE)
  noisy = variants.flip_labels(view, rate, seed=3)
  n = len(view)
  changed = noisy.labels != view.labels
  assert abs(changed.mean() - rate) <= 1.0 / n
  np.testing.assert_array_equal(changed, noisy.flipped)
  assert set(np.unique(noisy.labels)) <= set(np.unique(view.labels))  # closed set
  np.testing.assert_array_equal(noisy.rows, view.rows)  # a view: same samples
  again = variants.flip_labels(view, rate, seed=3)
  np.testing.assert_array_equal(again.labels, noisy.labels)
  if 0 < rate < 1:
    assert not np.array_equal(variants.flip_labels(view, rate, seed=4).labels, noisy.labels)


def test_flipped_labels_spread_over_the_other_identities():
  view = variants.full_view(_Labels(np.repeat(np.arange(4), 5000)))
  noisy = variants.flip_labels(view, 0.5, seed=0)
  moved = noisy.labels[noisy.flipped]
  for original in range(4):
    targets = moved[view.labels[noisy.flipped] == original]
    shares = np.bincount(targets, minlength=4) / len(targets)
    assert shares[original] == 0 and np.all(np.abs(np.delete(shares, original) - 1 / 3) < 0.04)


def test_cap_and_identity_subset():
  view = variants.full_view(SOURCE)
  capped = variants.cap_images_per_identity(view, 5, seed=1)
  np.testing.assert_array_equal(np.bincount(capped.labels), np.minimum(np.arange(1, 38), 5))
  assert np.all(np.diff(capped.rows) > 0)
  subset = variants.identity_subset(view, [2, 30])
  assert sorted(set(subset.labels)) == [2, 30] and len(subset) == 3 + 31
