"""Diagnostics against planted problems on synthetic clustered embeddings."""
import numpy as np
import pytest

import facequal_jax as fq
from facequal_jax.data import variants
from reference import clustered_gaussian


def _diagnose(embeddings, labels, k=10):
  report = fq.intrinsic_quality(embeddings, labels, k=k)
  return report, fq.diagnose(report, embeddings)


@pytest.fixture(scope="module")
def planted():
  """200 identities × 15 samples in 32-d, 10 % of labels flipped (300 flips)."""
  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(200), 15)
  centres = rng.normal(size=(200, 32))
  embeddings = (centres[labels] + 0.45 * rng.normal(size=(3000, 32))).astype(np.float32)
  view = variants.flip_labels(variants.View(None, np.arange(3000), labels), 0.1, seed=1)
  return embeddings, view.labels, view.flipped


def test_suspects_are_the_planted_flips(planted):
  embeddings, labels, flipped = planted
  report, found = _diagnose(embeddings, labels)
  top = [item["sample"] for item in found["suspected_mislabeled"][:100]]
  assert len(top) == 100
  precision = np.mean(flipped[report.sample_rows[top]])
  assert precision >= 0.5, precision
  # The suggestion is the true identity for most true positives.
  original = np.repeat(np.arange(200), 15)
  hits = [item for item in found["suspected_mislabeled"][:100] if flipped[item["sample"]]]
  assert np.mean([item["suggested_label"] == original[item["sample"]] for item in hits]) >= 0.9
  assert found["estimated_noise_rate"] == pytest.approx(0.1, abs=0.03)


def test_findings_name_input_rows_on_a_subset(planted):
  """On a subset every finding refers to input rows: a suspect's label, neighbours and their labels read back
  from the input arrays."""
  embeddings, labels, flipped = planted
  report = fq.intrinsic_quality(embeddings, labels, k=10, subset_size=1500, images_per_identity=15)
  assert not np.array_equal(report.sample_rows, np.arange(len(report.sample_rows)))
  found = fq.diagnose(report, embeddings)
  suspects = found["suspected_mislabeled"]
  assert len(suspects) > 20 and np.mean([flipped[item["sample"]] for item in suspects[:50]]) >= 0.5
  for item in suspects:
    assert labels[item["sample"]] == item["label"] and item["sample"] not in item["neighbors"]
    np.testing.assert_array_equal(labels[item["neighbors"]], item["neighbor_labels"])
    assert set(item["neighbors"]) <= set(report.sample_rows.tolist())
  for item in found["merge_candidates"]:
    assert np.all(labels[item["examples_a"]] == item["identity_a"])


def test_merge_split_duplicates_and_outliers_are_found():
  rng = np.random.default_rng(2)
  embeddings, labels = clustered_gaussian(rng, 600, 16, clusters=30, spread=0.1)
  labels = labels.astype(np.int64)
  # Identity 31: samples of identity 0 filed under a second label (a merge).
  merged = np.flatnonzero(labels == 0)[::2]
  labels[merged] = 31
  # Identity 32: samples from two far-apart clusters 1 and 2 under one label (a split).
  sizes = sorted((int(np.sum(labels == 1)), int(np.sum(labels == 2))), reverse=True)
  original = labels.copy()
  labels[np.flatnonzero(np.isin(labels, [1, 2]))] = 32
  # A cross-identity exact duplicate pair and a far outlier.
  a, b = np.flatnonzero(labels == 3)[0], np.flatnonzero(labels == 4)[0]
  embeddings[b] = embeddings[a]
  embeddings[5] = 25 * rng.normal(size=16)
  report, found = _diagnose(embeddings, labels, k=5)
  pairs = [(m["identity_a"], m["identity_b"]) for m in found["merge_candidates"]]
  assert pairs[0] == (0, 31)
  splits = {item["identity"]: item for item in found["split_candidates"]}
  assert splits[32]["group_sizes"] == sizes  # exactly the two planted clusters
  # Example rows of each group: the first four (in row order) of that planted cluster, largest group first.
  by_size = sorted(([row for row in np.flatnonzero(original == cluster)] for cluster in (1, 2)), key=len,
                   reverse=True)
  assert splits[32]["group_examples"] == [group[:4] for group in by_size]
  assert all(identity in (0, 31, 32) for identity in splits)  # 0 and 31 share one cluster, half each
  duplicates = [(d["sample_a"], d["sample_b"]) for d in found["near_duplicates"]]
  assert duplicates[0] == tuple(sorted((a, b))) and found["near_duplicates"][0]["similarity"] == pytest.approx(1.0)
  assert found["outliers"][0]["sample"] == 5
