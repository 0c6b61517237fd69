"""Neighbour consistency: how often a sample's nearest neighbours share its identity."""
import dataclasses
from typing import Callable, List

import numpy as np


def neighbor_consistency(indices: np.ndarray, labels: np.ndarray, query_labels=None) -> np.ndarray:
  """Per-sample consistency c_i = (1/k) Σ_{j ∈ N_k(i)} 1[y_j = y_i].

  Args:
    indices: int [Nq, k] neighbour rows (from `knn`).
    labels: int [N] identity of every database row.
    query_labels: int [Nq] identity of each query; default `labels` (self search).

  Returns:
    float32 [Nq] in [0, 1].
  """
  labels = np.asarray(labels)
  query_labels = labels if query_labels is None else np.asarray(query_labels)
  indices = np.asarray(indices)
  if indices.ndim != 2 or len(indices) != len(query_labels):
    raise ValueError(f"indices must be [Nq, k] with Nq = {len(query_labels)} query labels, got {indices.shape}")
  same = labels[indices] == query_labels[:, None]
  return same.mean(axis=1, dtype=np.float64).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class IdentityTable:
  """Per-identity aggregates, one entry per identity, sorted by identity.

  Attributes:
    identity: int64 [C] identity label.
    num_images: int64 [C] samples of the identity.
    mean_consistency: float64 [C] mean c_i over its samples.
    top_foreign_identity: int64 [C] the other identity that fills most of its
      neighbour slots (ties: lower label), -1 if none.
    top_foreign_share: float64 [C] the fraction of its k · num_images neighbour
      slots held by that identity.
  """
  identity: np.ndarray
  num_images: np.ndarray
  mean_consistency: np.ndarray
  top_foreign_identity: np.ndarray
  top_foreign_share: np.ndarray

  COLUMNS = ("identity", "num_images", "mean_consistency", "top_foreign_identity", "top_foreign_share")

  def rows(self, digits: int = 6):
    """Yields one tuple per identity, in `COLUMNS` order, floats rounded to `digits`."""
    columns = [getattr(self, c) for c in self.COLUMNS]
    columns = [np.round(c, digits) if c.dtype.kind == "f" else c for c in columns]
    yield from zip(*(c.tolist() for c in columns))

  NAMED_COLUMNS = ("identity", "name", "num_images", "mean_consistency", "top_foreign_identity",
                   "top_foreign_name", "top_foreign_share")

  def named_rows(self, identity_name: Callable[[int], str], digits: int = 6) -> List[tuple]:
    """One tuple per identity in `NAMED_COLUMNS` order: `rows()` with the identity's name and its top
    foreign identity's ("" when none)."""
    return [(identity, identity_name(identity), images, mean, foreign, identity_name(foreign) if foreign >= 0 else "",
             share) for identity, images, mean, foreign, share in self.rows(digits)]


def identity_table(indices: np.ndarray, labels: np.ndarray, consistency: np.ndarray) -> IdentityTable:
  """Aggregates a self k-NN result per identity.

  Args:
    indices: int [N, k] neighbours of every row; labels: int [N];
    consistency: float [N] per-sample c_i.
  """
  labels = np.asarray(labels, np.int64)
  identity, inverse, num_images = np.unique(labels, return_inverse=True, return_counts=True)
  mean_consistency = np.bincount(inverse, weights=consistency, minlength=len(identity)) / num_images

  k = indices.shape[1]
  owner = np.repeat(inverse, k)
  neighbour = inverse[np.asarray(indices).ravel()]
  foreign = owner != neighbour
  pairs = owner[foreign] * len(identity) + neighbour[foreign]
  pair, count = np.unique(pairs, return_counts=True)
  pair_owner, pair_neighbour = pair // len(identity), pair % len(identity)
  # Best foreign identity per owner: most slots, then lower label.
  order = np.lexsort((pair_neighbour, -count, pair_owner))
  first = order[np.r_[True, pair_owner[order][1:] != pair_owner[order][:-1]]] if len(order) else order
  top_foreign = np.full(len(identity), -1, np.int64)
  top_share = np.zeros(len(identity))
  top_foreign[pair_owner[first]] = identity[pair_neighbour[first]]
  top_share[pair_owner[first]] = count[first] / (k * num_images[pair_owner[first]])
  return IdentityTable(identity, num_images, mean_consistency, top_foreign, top_share)
