"""Verification metrics on constructed pairs, checked against values worked by hand."""
import threading

import numpy as np
import pytest

from facequal_jax.research import statistics, verification


def test_best_threshold_accuracy_by_hand():
  # Sorted: 0.1 I, 0.2 I, 0.3 G, 0.4 I, 0.5 G, 0.6 G. Best cut: between 0.2 and 0.3 → 5/6 correct.
  scores = np.array([0.5, 0.1, 0.4, 0.6, 0.2, 0.3])
  same = np.array([True, False, False, True, False, True])
  accuracy, threshold = verification.best_threshold_accuracy(scores, same)
  assert accuracy == pytest.approx(5 / 6) and threshold == pytest.approx(0.25)


def test_threshold_never_splits_ties():
  scores = np.array([0.5, 0.5, 0.5, 0.9])
  same = np.array([True, False, False, True])
  accuracy, _ = verification.best_threshold_accuracy(scores, same)
  assert accuracy == pytest.approx(3 / 4)  # accept only 0.9: 3 of 4; splitting the 0.5s is impossible


def test_auc_and_tar_by_hand():
  scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
  same = np.array([True, False, True, False, True, False])
  # Genuine 0.9, 0.7, 0.5 vs impostors 0.8, 0.6, 0.4: pairs won 3 + 2 + 1 = 6 of 9.
  assert verification.roc_auc(scores, same) == pytest.approx(6 / 9)
  # FAR 1/3 allows one impostor above the threshold (0.6): genuine above 0.6 are 0.9, 0.7.
  assert verification.tar_at_far(scores, same, 1 / 3) == pytest.approx(2 / 3)
  assert verification.tar_at_far(scores, same, 0.0) == pytest.approx(1 / 3)  # threshold 0.8


def test_evaluate_on_constructed_embeddings():
  # Identity centres on orthogonal axes with small noise; the second image of
  # identities 0-3 is moved onto an axis of its own, so those four genuine
  # pairs score exactly 0 and fail at any useful threshold: 36 of 40 right.
  labels = np.repeat(np.arange(20), 2)
  embeddings = np.zeros((40, 24))
  embeddings[:, :20] = np.eye(20)[labels] + 0.005 * np.random.default_rng(0).normal(size=(40, 20))
  for identity in range(4):
    embeddings[2 * identity + 1] = np.eye(24)[20 + identity]
  pairs = verification.held_out_pairs(labels, max_genuine=20, seed=0)
  assert pairs[:, 2].sum() == 20 and len(pairs) == 40
  np.testing.assert_array_equal(verification.held_out_pairs(labels, max_genuine=0, seed=0), pairs)  # 0: all 20
  assert np.all(labels[pairs[:20, 0]] == labels[pairs[:20, 1]])
  assert np.all(labels[pairs[20:, 0]] != labels[pairs[20:, 1]])
  result = verification.evaluate(embeddings, pairs)
  assert result.accuracy == pytest.approx(0.9)  # every fold: 4 pairs, its threshold in the (0.02, 0.99) gap
  assert result.tar_at_far_1e2 == pytest.approx(16 / 20)  # FAR 0 allowed: threshold = highest impostor > 0
  assert 16 * 20 / 400 <= result.roc_auc < 1.0


def _in_thread(function, *args, **kwargs):
  """Runs `function` in a daemon thread, so a regression to an endless loop fails the test instead of hanging."""
  result = {}
  thread = threading.Thread(target=lambda: result.update(value=function(*args, **kwargs)), daemon=True)
  thread.start()
  thread.join(timeout=60)
  assert not thread.is_alive(), f"{function.__name__} did not return"
  return result["value"]


def test_held_out_pairs_cap_at_the_impostor_pairs_that_exist():
  labels = np.array([0] * 40 + [1])  # 780 genuine pairs, but only 40 distinct impostor pairs
  pairs = _in_thread(verification.held_out_pairs, labels, max_genuine=100, seed=0)
  genuine, impostor = pairs[pairs[:, 2] == 1], pairs[pairs[:, 2] == 0]
  assert len(genuine) == len(impostor) == 40
  assert {(a, b) for a, b, _ in impostor} == {(row, 40) for row in range(40)}
  assert np.all(labels[genuine[:, 0]] == labels[genuine[:, 1]]) and len({(a, b) for a, b, _ in genuine}) == 40
  with pytest.raises(ValueError, match="one identity"):
    verification.held_out_pairs(np.zeros(5, int), max_genuine=10)


def test_correlations_against_hand_values():
  x, y = [1, 2, 3, 4], [1, 3, 2, 4]
  # Spearman: d = (0, 1, 1, 0), ρ = 1 − 6·2/(4·15) = 0.8. Kendall: 5 concordant, 1 discordant → 4/6.
  assert statistics.spearman(x, y) == pytest.approx(0.8)
  assert statistics.kendall(x, y) == pytest.approx(4 / 6)
  assert statistics.pearson(x, y) == pytest.approx(0.8)
  assert statistics.kendall([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / np.sqrt(2 * 3))  # τ-b with a tie
