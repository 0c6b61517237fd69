"""The suspicion score against a float64 brute force of its definition, and on planted wrong labels."""
import numpy as np
import pytest

import facequal_jax as fq
from facequal_jax.metrics import suspicion as suspicion_lib


def _by_hand(embeddings, labels, indices, scores):
  """Every sample's terms worked out one by one, in float64: the leave-one-out centroid of its identity, every
  other identity's centroid (the nearest and the mean of the next four; how far the nearest stands above them
  counts where it is nearer than the own centroid), the weighted vote of its neighbours, and whether
  the two identities' centroids are farther apart than the median of its identity's leave-one-out cosines."""
  unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
  identities = np.unique(labels)
  centroids = {z: unit[labels == z].sum(0) / np.linalg.norm(unit[labels == z].sum(0)) for z in identities}
  out = []
  for i in range(len(labels)):
    rest = unit[(labels == labels[i]) & (np.arange(len(labels)) != i)]
    own = unit[i] @ rest.sum(0) / np.linalg.norm(rest.sum(0)) if len(rest) else np.nan
    others = {z: unit[i] @ c for z, c in centroids.items() if z != labels[i]}
    suggested = max(others, key=others.get)
    runner = np.mean(sorted(others.values(), reverse=True)[1:5])  # the next (up to) four other identities
    weights = np.maximum(scores[i], 0)
    vote = weights[labels[indices[i]] == labels[i]].sum() / weights.sum()
    nearer = others[suggested] - own
    out.append((nearer + 0.25 * (1 - vote) + (2 * (others[suggested] - runner) if nearer > 0 else 0), suggested,
                own, others[suggested], vote))
  own_of = {z: [row[2] for row, label in zip(out, labels) if label == z] for z in identities}
  typical = {z: np.nanmedian(own) if np.isfinite(own).any() else np.inf for z, own in own_of.items()}  # no own: +inf
  return [row + (centroids[labels[i]] @ centroids[row[1]] < typical[labels[i]],) for i, row in enumerate(out)]


def _moved_faces(seed, *, identities, per_identity, dim, spread, count):
  """Gaussian identities, `count` faces filed under another identity at random: (float32 embeddings, labels,
  true labels, the moved rows)."""
  rng = np.random.default_rng(seed)
  truth = np.repeat(np.arange(identities), per_identity)
  embeddings = (rng.normal(size=(identities, dim))[truth]
                + spread * rng.normal(size=(len(truth), dim))).astype(np.float32)
  moved = rng.permutation(len(truth))[:count]
  labels = truth.copy()
  labels[moved] = (truth[moved] + 1 + rng.integers(0, identities - 1, size=count)) % identities
  return embeddings, labels, truth, moved


def test_terms_and_score_match_the_definition_worked_by_hand():
  rng = np.random.default_rng(3)
  labels = np.array([5, 5, 5, 9, 9, 9, 9, 2, 2, 7])  # identity 7 has one sample
  embeddings = (rng.normal(size=(4, 6))[np.searchsorted([2, 5, 7, 9], labels)]
                + 0.8 * rng.normal(size=(10, 6))).astype(np.float32)
  nn = fq.knn(embeddings, 3)
  unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
  found = suspicion_lib.suspicion(unit, labels, np.asarray(nn.indices), np.asarray(nn.scores),
                                  mesh=fq.make_mesh(2))
  want = _by_hand(embeddings.astype(np.float64), labels, np.asarray(nn.indices), np.asarray(nn.scores, np.float64))
  for i, (score, suggested, own, other, vote, separable) in enumerate(want):
    assert found.suggested[i] == suggested and found.separable[i] == separable
    np.testing.assert_allclose([found.other[i], found.vote[i]], [other, vote], atol=1e-5)
    if np.isnan(own):  # the singleton: no own centroid, no score
      assert np.isnan(found.own[i]) and np.isnan(found.score[i])
    else:
      np.testing.assert_allclose([found.own[i], found.score[i]], [own, score], atol=1e-5)


def test_moved_samples_lead_the_ranking_and_the_list():
  """40 identities × 8 samples, 32 of them filed under another identity: the 32 rank first, each suggested back
  to its own identity, and the list holds them and nothing else."""
  embeddings, labels, truth, moved = _moved_faces(4, identities=40, per_identity=8, dim=24, spread=0.5, count=32)
  report = fq.intrinsic_quality(embeddings, labels, k=7)
  found = fq.diagnose(report, embeddings)  # the default threshold: correct samples score below 0, moved ones 1.6 up
  assert set(np.argsort(-found.suspicion)[:32].tolist()) == set(moved.tolist())
  listed = found["suspected_mislabeled"]
  assert {item["sample"] for item in listed} == set(moved.tolist())
  assert all(item["suggested_label"] == truth[item["sample"]] for item in listed)
  assert found.estimated_noise_rate == pytest.approx(32 / 320)


def test_one_identity_and_an_identity_whose_rows_cancel():
  unit = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 1]]
  unit[1] = -unit[0]  # identity 0: two opposite rows, no direction
  nn = fq.knn(unit, 2)
  lonely = suspicion_lib.suspicion(unit, np.zeros(5, np.int64), np.asarray(nn.indices), np.asarray(nn.scores))
  assert np.isnan(lonely.score).all() and (lonely.suggested == -1).all()  # no other identity: nothing to suspect
  labels = np.array([0, 0, 1, 1, 2])
  found = suspicion_lib.suspicion(unit, labels, np.asarray(nn.indices), np.asarray(nn.scores))
  assert np.isfinite(found.score[:4]).all() and np.isnan(found.score[4])  # row 4 is a singleton
  assert set(found.suggested[:2]) <= {1, 2}


def test_a_face_nearer_its_own_identity_is_not_lifted_by_a_lone_face_of_its_person_elsewhere():
  """Label 8 holds a single face, of identity 0 (a 2-image identity whose other face was filed elsewhere):
  its "centroid" is that face, and it stands out near every face of identity 0 — who are still nearer their own
  identity, and stay off the list."""
  rng = np.random.default_rng(6)
  labels = np.r_[np.repeat(np.arange(8), 12), 8]
  truth = np.where(labels == 8, 0, labels)
  embeddings = (rng.normal(size=(8, 32))[truth] + 0.45 * rng.normal(size=(97, 32))).astype(np.float32)
  report = fq.intrinsic_quality(embeddings, labels, k=5)
  found = fq.diagnose(report, embeddings)
  zero = np.flatnonzero(labels == 0)
  assert (found.suspicion[zero] < fq.Thresholds().suspect_score).all() and not found["suspected_mislabeled"]


def test_candidate_identities_give_every_moved_face_its_nearest_other_identity():
  """60 identities (more than the NEARBY + 1 that make every identity a candidate), 36 faces moved: each moved
  face's nearest other identity and its cosine are those worked out over every centroid by hand, and so are
  those of nearly all the rest; the runners-up, taken among fewer centroids, can only be lower, so the score
  only higher than by hand where the nearest other identity is the same; as many moved faces rank first."""
  embeddings, labels, _, moved = _moved_faces(8, identities=60, per_identity=6, dim=16, spread=0.6, count=36)
  assert len(np.unique(labels)) > suspicion_lib.NEARBY + 1
  nn = fq.knn(embeddings, 5)
  unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
  found = suspicion_lib.suspicion(unit, labels, np.asarray(nn.indices), np.asarray(nn.scores))
  want = _by_hand(embeddings.astype(np.float64), labels, np.asarray(nn.indices), np.asarray(nn.scores, np.float64))
  want_score, want_suggested, _, want_other, _, _ = map(np.array, zip(*want))
  np.testing.assert_array_equal(found.suggested[moved], want_suggested[moved])
  np.testing.assert_allclose(found.other[moved], want_other[moved], atol=1e-5)
  same = found.suggested == want_suggested
  assert same.mean() > 0.9
  np.testing.assert_allclose(found.other[same], want_other[same], atol=1e-5)
  assert (found.score[same] >= want_score[same] - 1e-5).all()
  first_36 = lambda score: len(set(np.argsort(-score)[:36].tolist()) & set(moved.tolist()))
  assert first_36(found.score) >= first_36(want_score) >= 35
