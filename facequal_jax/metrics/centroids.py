"""Identity centroids: the sum and the unit mean direction of each identity's rows; an identity's first rows."""
from typing import Callable, List

import numpy as np

CHUNK = 65536  # rows per step: no [n, d] float64 copy of the embeddings is made


def identity_sums(embeddings: np.ndarray, inverse: np.ndarray, num_identities: int) -> np.ndarray:
  """float64 [C, d] the sum of each identity's rows (`inverse` [n]: row → identity position), in row chunks."""
  sums = np.zeros((num_identities, embeddings.shape[1]))
  for start in range(0, len(inverse), CHUNK):
    codes = inverse[start:start + CHUNK]
    order = np.argsort(codes, kind="stable")
    present, starts = np.unique(codes[order], return_index=True)
    rows = np.asarray(embeddings[start:start + CHUNK][order], np.float64)
    sums[present] += np.add.reduceat(rows, starts, axis=0)
  return sums


def identity_centroids(embeddings: np.ndarray, labels: np.ndarray):
  """(identities [C], unit centroids [C, d] of the unit embeddings (zero where the rows cancel), inverse [n]
  sample → identity position)."""
  identities, inverse = np.unique(labels, return_inverse=True)
  sums = identity_sums(embeddings, inverse, len(identities))
  norms = np.linalg.norm(sums, axis=1, keepdims=True)
  return identities, sums / np.where(norms > 0, norms, 1.0), inverse


def first_rows(labels: np.ndarray, count: int) -> Callable[[int], List[int]]:
  """label → the first `count` rows holding it (in row order), from one sort of the labels [n] (no scan of every
  row per identity asked about)."""
  order = np.argsort(labels, kind="stable")
  ordered = np.asarray(labels)[order]

  def rows_of(label: int) -> List[int]:
    start, end = np.searchsorted(ordered, label), np.searchsorted(ordered, label, side="right")
    return order[start:min(end, start + count)].tolist()

  return rows_of
