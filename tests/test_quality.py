"""Neighbour consistency, per-identity aggregates and IQ against hand-worked values."""
import json
import math

import numpy as np
import pytest

import facequal_jax as fq
from reference import brute_force_knn, clustered_gaussian, unit_rows64


def test_consistency_by_hand():
  labels = np.array([7, 7, 7, 9, 9])
  indices = np.array([[1, 3], [0, 2], [3, 4], [4, 0], [3, 1]])
  # Row 0: 7,9 → 1/2; row 1: 7,7 → 1; row 2: 9,9 → 0; row 3: 9,7 → 1/2; row 4: 9,7 → 1/2.
  np.testing.assert_allclose(fq.neighbor_consistency(indices, labels), [0.5, 1, 0, 0.5, 0.5])


def test_identity_table_by_hand():
  labels = np.array([7, 7, 7, 9, 9, 4])
  indices = np.array([[1, 3], [0, 5], [3, 4], [4, 0], [3, 5], [0, 1]])
  c = fq.neighbor_consistency(indices, labels)
  table = fq.identity_table(indices, labels, c)
  np.testing.assert_array_equal(table.identity, [4, 7, 9])
  np.testing.assert_array_equal(table.num_images, [1, 3, 2])
  # Identity 7: c = 1/2, 1/2, 0 → 1/3; foreign slots: 9, 4, 9, 9 → 9 holds 3 of 6.
  # Identity 9: c = 1/2, 1/2 → 1/2; foreign slots: 7, 4 → tie, lower label 4, 1 of 4.
  # Identity 4: both neighbours are 7 → 7 with 2 of 2.
  np.testing.assert_allclose(table.mean_consistency, [0.0, 1 / 3, 0.5])
  np.testing.assert_array_equal(table.top_foreign_identity, [7, 9, 4])
  np.testing.assert_allclose(table.top_foreign_share, [1.0, 0.5, 0.25])


def test_iq_on_a_hand_worked_set():
  # Eight identities of two images each: e_i with 2·e_i, and −e_i with −3·e_i.
  # With k = 1 each row's nearest neighbour is its scaled twin: Consis = 1.
  # Centred covariance is diag(1/4 × 4) → r̃ = 1. IQ = 0.2 · 1 + 0.8 · 1 = 1.
  rows = np.concatenate([np.eye(4), 2 * np.eye(4), -np.eye(4), -3 * np.eye(4)]).astype(np.float32)
  labels = np.array([0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 7])
  report = fq.intrinsic_quality(rows, labels, k=1)
  assert report.consistency == pytest.approx(1.0)
  assert report.effective_rank_normalized == pytest.approx(1.0, abs=1e-5)
  assert report.iq == pytest.approx(1.0, abs=1e-5)
  # With k = 3 the other two slots hold rows at cosine 0 (ties → lowest index).
  report = fq.intrinsic_quality(rows, labels, k=3, alpha=0.5)
  want = brute_force_knn(rows, 3, query_ids=np.arange(16))[0]
  want_consis = (labels[want] == labels[:, None]).mean()
  assert report.consistency == pytest.approx(want_consis, abs=1e-6)
  assert report.iq == pytest.approx(0.5 * want_consis + 0.5 * 1.0, abs=1e-5)


@pytest.mark.parametrize("num_devices", (1, 8))
def test_iq_matches_float64_reference_and_one_device(num_devices):
  rng = np.random.default_rng(0)
  rows, labels = clustered_gaussian(rng, 2000, 24, clusters=40, spread=0.9)
  report = fq.intrinsic_quality(rows, labels, k=10, mesh=fq.make_mesh(num_devices), block=128)
  indices, _ = brute_force_knn(rows, 10, query_ids=np.arange(len(rows)))
  consis = (labels[indices] == labels[:, None]).mean()
  unit = unit_rows64(rows)
  eigenvalues = np.linalg.eigvalsh(np.cov(unit.T, bias=True))
  p = np.clip(eigenvalues, 0, None) / np.clip(eigenvalues, 0, None).sum()
  r_norm = -(p[p > 0] * np.log(p[p > 0])).sum() / math.log(24)
  assert report.consistency == pytest.approx(consis, abs=1e-5)
  assert report.effective_rank_normalized == pytest.approx(r_norm, abs=1e-5)
  assert report.iq == pytest.approx(0.2 * consis + 0.8 * r_norm, abs=1e-5)
  assert report.num_samples == 2000 and report.num_identities == 40 and report.num_singletons == 0


def test_singletons_are_left_out_of_consis_and_counted():
  rng = np.random.default_rng(1)
  rows, labels = clustered_gaussian(rng, 600, 16, clusters=20, spread=0.3)
  labels = labels.copy()
  labels[:5] = 1000 + np.arange(5)  # five identities with one image each
  report = fq.intrinsic_quality(rows, labels, k=5)
  assert report.num_singletons == 5 and report.singleton[:5].all() and not report.singleton[5:].any()
  assert report.consistency == pytest.approx(report.per_sample_consistency[5:].mean(), abs=1e-7)
  included = fq.intrinsic_quality(rows, labels, k=5, singletons="include")
  assert included.consistency == pytest.approx(report.per_sample_consistency.mean(), abs=1e-7)


def test_stratified_subset_keeps_groups_and_reproduces():
  labels = np.repeat(np.arange(300), np.random.default_rng(2).integers(1, 30, 300))
  rows = fq.stratified_identity_subset(labels, 1000, images_per_identity=11, min_images=2, seed=3)
  assert 1000 - 11 < len(rows) <= 1000 and len(np.unique(rows)) == len(rows)
  counts = np.unique(labels[rows], return_counts=True)[1]
  assert counts.min() >= 2 and counts.max() <= 11
  np.testing.assert_array_equal(rows, fq.stratified_identity_subset(labels, 1000, 11, 2, seed=3))
  assert not np.array_equal(rows, fq.stratified_identity_subset(labels, 1000, 11, 2, seed=4))


def test_stratified_subset_with_an_identity_limit_has_the_same_shape_where_data_allow():
  # 40 identities with 6 images, 40 with 2: the limit takes 12 identities, 4 images each where they have them.
  labels = np.repeat(np.arange(80), [6] * 40 + [2] * 40)
  rich = fq.stratified_identity_subset(labels[:240], 48, 4, 2, seed=0, max_identities=12)
  assert len(np.unique(labels[rich])) == 12 and set(np.bincount(labels[rich])[labels[rich]]) == {4}
  poor = fq.stratified_identity_subset(labels[240:], 48, 4, 2, seed=0, max_identities=12)
  assert len(np.unique(labels[240:][poor])) == 12 and len(poor) == 24  # two each: all they have


def test_subset_mode_scores_only_the_subset():
  rng = np.random.default_rng(3)
  rows, labels = clustered_gaussian(rng, 3000, 16, clusters=150, spread=0.5)
  report = fq.intrinsic_quality(rows, labels, k=5, subset_size=600, seed=1)
  subset = fq.stratified_identity_subset(labels, 600, 6, 2, seed=1)
  np.testing.assert_array_equal(report.sample_rows, subset)
  direct = fq.intrinsic_quality(rows[subset], labels[subset], k=5)
  assert report.iq == pytest.approx(direct.iq, abs=1e-7)


def test_to_json_has_the_documented_keys():
  rng = np.random.default_rng(4)
  rows, labels = clustered_gaussian(rng, 200, 8, clusters=10, spread=0.3)
  parsed = json.loads(fq.intrinsic_quality(rows, labels).to_json())
  for key in ("iq", "consistency", "effective_rank_normalized", "effective_rank", "rankme",
              "num_samples", "num_identities", "k", "alpha"):
    assert key in parsed


def test_a_stored_search_is_reused_only_for_the_same_rows_k_and_precision(tmp_path, monkeypatch):
  from facequal_jax.metrics import quality  # pylint: disable=import-outside-toplevel
  rows, labels = clustered_gaussian(np.random.default_rng(8), 300, 16, clusters=20, spread=0.4)
  stored = str(tmp_path / "search" / "neighbors.npz")
  first = fq.intrinsic_quality(rows, labels, k=5, search_cache=stored)
  searches = []
  real_search = quality.self_search
  monkeypatch.setattr(quality, "self_search", lambda *a, **kw: searches.append(1) or real_search(*a, **kw))
  again = fq.intrinsic_quality(rows, labels, k=5, search_cache=stored, block=64)  # another tiling: same answer
  assert not searches and again.iq == first.iq
  np.testing.assert_array_equal(again.neighbors.indices, brute_force_knn(rows, 5, query_ids=np.arange(300))[0])
  fq.intrinsic_quality(rows, labels, k=6, search_cache=stored)
  moved = rows.copy()
  moved[0] += 0.1
  fq.intrinsic_quality(moved, labels, k=6, search_cache=stored)
  assert len(searches) == 2  # another k, other rows: searched anew
