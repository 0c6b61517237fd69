"""Face verification on held-out pairs: LFW-protocol accuracy, ROC-AUC, TAR at fixed FAR."""
import dataclasses

import numpy as np

from facequal_jax.knn.search import knn
from facequal_jax.research import statistics


def _all_impostor_pairs(labels: np.ndarray) -> set:
  """Every (a, b), a < b, of rows with different labels (call only when there are few)."""
  pairs = set()
  for identity in np.unique(labels):
    rows, others = np.flatnonzero(labels == identity), np.flatnonzero(labels > identity)
    pairs.update((int(min(a, b)), int(max(a, b))) for a in rows for b in others)
  return pairs


def held_out_pairs(labels: np.ndarray, max_genuine: int, seed: int = 0) -> np.ndarray:
  """Balanced genuine / impostor pairs among `labels` (seeded).

  Every same-identity pair is a candidate genuine pair (at most `max_genuine`
  are drawn; 0: all of them); as many impostor pairs are drawn uniformly among rows of
  different identities, without repeats. When fewer distinct impostor pairs
  exist than genuine pairs were drawn, both counts are capped at the number of
  impostor pairs.

  Returns:
    int64 [P, 3]: row i, row j, 1 if genuine else 0; genuine pairs first.

  Raises:
    ValueError: no identity has two images, or all images share one identity.
  """
  labels = np.asarray(labels)
  rng = np.random.default_rng(seed)
  genuine = []
  for identity in np.unique(labels):
    rows = np.flatnonzero(labels == identity)
    genuine.extend((a, b) for x, a in enumerate(rows) for b in rows[x + 1:])
  if not genuine:
    raise ValueError("held-out identities give no genuine pair: each needs at least two images")
  counts = np.unique(labels, return_counts=True)[1].astype(np.int64)
  num_impostor = int((counts.sum() ** 2 - (counts ** 2).sum()) // 2)
  if num_impostor == 0:
    raise ValueError("held-out images all have one identity: there is no impostor pair")
  genuine = np.asarray(genuine, np.int64)
  genuine = genuine[np.sort(rng.permutation(len(genuine))[:min(max_genuine or len(genuine), num_impostor)])]
  if num_impostor <= 4 * len(genuine):  # few impostor pairs: draw among all of them
    every = sorted(_all_impostor_pairs(labels))
    impostor = {every[i] for i in rng.choice(len(every), size=len(genuine), replace=False)}
  else:  # many: rejection sampling needs few draws
    impostor = set()
    while len(impostor) < len(genuine):
      a, b = sorted(rng.integers(0, len(labels), 2).tolist())
      if labels[a] != labels[b]:
        impostor.add((a, b))
  impostor = np.asarray(sorted(impostor), np.int64)
  return np.concatenate([np.column_stack([genuine, np.ones(len(genuine), np.int64)]),
                         np.column_stack([impostor, np.zeros(len(impostor), np.int64)])])


def best_threshold_accuracy(scores: np.ndarray, same: np.ndarray):
  """(accuracy, threshold) of the rule "same iff score > t" at the t that classifies best; t is the
  midpoint of the gap between the scores it separates."""
  order = np.argsort(scores, kind="stable")
  sorted_scores, sorted_same = scores[order], same[order]
  # Threshold below everything, then just above each distinct score.
  below = np.concatenate([[0], np.cumsum(~sorted_same)])  # impostors at or below each cut
  above_genuine = sorted_same.sum() - np.concatenate([[0], np.cumsum(sorted_same)])
  distinct = np.concatenate([[True], sorted_scores[1:] != sorted_scores[:-1], [True]])
  correct = np.where(distinct, below + above_genuine, -1)
  cut = int(np.argmax(correct))
  if cut == 0:
    threshold = sorted_scores[0] - 1.0
  elif cut == len(scores):
    threshold = sorted_scores[-1]
  else:
    threshold = (sorted_scores[cut - 1] + sorted_scores[cut]) / 2
  return correct[cut] / len(scores), float(threshold)


def roc_auc(scores: np.ndarray, same: np.ndarray) -> float:
  """P(genuine score > impostor score), ties counted half (Mann–Whitney)."""
  ranks = statistics.average_ranks(scores)
  positives, negatives = same.sum(), (~same).sum()
  return float((ranks[same].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def tar_at_far(scores: np.ndarray, same: np.ndarray, far: float) -> float:
  """Fraction of genuine pairs accepted at the lowest threshold whose impostor acceptance is <= `far`."""
  impostor = np.sort(scores[~same])[::-1]
  allowed = int(np.floor(far * len(impostor)))  # impostors that may score above the threshold
  threshold = impostor[allowed] if allowed < len(impostor) else -np.inf
  return float(np.mean(scores[same] > threshold))


@dataclasses.dataclass(frozen=True)
class Verification:
  """accuracy (mean over folds) ± accuracy_std, roc_auc, tar_at_far_1e2/_1e3, num_pairs."""
  accuracy: float
  accuracy_std: float
  roc_auc: float
  tar_at_far_1e2: float
  tar_at_far_1e3: float
  num_pairs: int


def evaluate(embeddings: np.ndarray, pairs: np.ndarray, folds: int = 10, seed: int = 0) -> Verification:
  """Cosine-score the pairs; accuracy by the LFW protocol: for each of `folds`
  seeded folds, the threshold that is best on the other folds, applied to it."""
  unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
  scores = np.sum(unit[pairs[:, 0]] * unit[pairs[:, 1]], axis=1)
  same = pairs[:, 2].astype(bool)
  fold_of = np.random.default_rng(seed).permutation(len(pairs)) % folds
  accuracies = []
  for fold in range(folds):
    _, threshold = best_threshold_accuracy(scores[fold_of != fold], same[fold_of != fold])
    accuracies.append(np.mean((scores[fold_of == fold] > threshold) == same[fold_of == fold]))
  return Verification(float(np.mean(accuracies)), float(np.std(accuracies)), roc_auc(scores, same),
                      tar_at_far(scores, same, 1e-2), tar_at_far(scores, same, 1e-3), len(pairs))


def identification_and_roc_auc(embeddings: np.ndarray, labels: np.ndarray):
  """Leave-one-out 1-NN identification accuracy and the ROC-AUC over all pairs (cosine) of a labelled set.

  Args:
    embeddings: float [n, d]; labels: int [n].

  Returns:
    (accuracy, roc_auc) floats.
  """
  labels = np.asarray(labels)
  nearest = knn(embeddings, 1).indices[:, 0]
  unit = np.asarray(embeddings, np.float64)
  unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
  upper = np.triu_indices(len(unit), 1)
  genuine = (labels[:, None] == labels[None, :])[upper]
  return float(np.mean(labels[nearest] == labels)), roc_auc((unit @ unit.T)[upper], genuine)
