"""Identities one data set shares with another (`find_overlap`): the same person under two labels.

The embeddings of both sets are made unit length and centred on their pooled
mean (face networks' cosines crowd near 1 otherwise: the shared direction of all
faces says nothing about who is who), then each identity is its unit centroid.
With exact sharded k-NN on the mesh (`knn(..., queries=…)`):
  1. every centroid is searched among the other set's centroids, both ways; a
     pair is a candidate when each is the other's nearest and the cosine
     reaches `candidate_similarity`. Its margin is how far that cosine stands
     above the runner-up, the smaller of the two directions (one person is
     one identity in each set, so a match should stand out: the ratio test);
  2. every image of a candidate identity is searched among all the other set's
     images, both ways: the pair's image share is the share of the two
     identities' images whose nearest image in the other set belongs to the
     other identity of the pair.
A candidate is shared when its centroid cosine, margin and image share all
reach their thresholds.
"""
import dataclasses
from typing import Dict, List, Optional

import numpy as np
from jax.sharding import Mesh

from facequal_jax.errors import UsageError
from facequal_jax.knn.search import knn
from facequal_jax.knn.settings import SearchSettings
from facequal_jax.metrics.centroids import identity_centroids

@dataclasses.dataclass(frozen=True)
class OverlapThresholds:
  """Knobs of `find_overlap` (defaults measured with the face network on LFW-dev; README).

  Attributes:
    centroid_similarity: centred centroid cosine a shared pair needs.
    margin: how far that cosine must stand above each identity's next-nearest
      centroid in the other set.
    image_share: share of the pair's images whose nearest image in the other
      set is of the other identity.
    candidate_similarity: centred centroid cosine from which a mutual-nearest
      pair is examined and listed (shared or not).
  """
  centroid_similarity: float = 0.7
  margin: float = 0.1
  image_share: float = 0.5
  candidate_similarity: float = 0.5

  def __post_init__(self):
    for name in ("centroid_similarity", "margin", "image_share", "candidate_similarity"):
      value = getattr(self, name)
      if not isinstance(value, (int, float)) or isinstance(value, bool) or not -1.0 <= value <= 2.0:
        raise UsageError(f"overlap.{name} must be a number in [-1, 2], got {value!r}")


def _nearest(database: np.ndarray, queries: np.ndarray, k: int, mesh, settings):
  """(indices int [q, k], cosines float [q, k]) of each query's k nearest database rows; missing slots
  (a database of fewer than k rows) are index -1 and cosine -inf."""
  if not len(queries):
    return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
  found = knn(database, min(k, len(database)), queries=queries, mesh=mesh, settings=settings)
  indices, scores = np.asarray(found.indices, np.int64), np.asarray(found.scores, np.float32)
  pad = k - indices.shape[1]
  return (np.pad(indices, ((0, 0), (0, pad)), constant_values=-1),
          np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf))


def centred_unit(embeddings: np.ndarray, other_embeddings: np.ndarray):
  """Both sets' rows made unit length, centred on their pooled mean, and made unit length again (float32)."""
  unit = lambda x: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
  a, b = unit(np.asarray(embeddings, np.float32)), unit(np.asarray(other_embeddings, np.float32))
  mean = (a.sum(0, dtype=np.float64) + b.sum(0, dtype=np.float64)) / (len(a) + len(b))
  return unit(a - mean.astype(np.float32)), unit(b - mean.astype(np.float32))


def find_overlap(embeddings: np.ndarray, labels: np.ndarray, other_embeddings: np.ndarray, other_labels: np.ndarray,
                 thresholds: OverlapThresholds = OverlapThresholds(), *, mesh: Optional[Mesh] = None,
                 settings: Optional[SearchSettings] = None) -> List[dict]:
  """Identity pairs (one of each set) that may be one person, most similar centroids first.

  Args:
    embeddings: float [N, d] and labels: int [N] of this data set.
    other_embeddings: float [M, d] and other_labels: int [M] of the other one.
    thresholds: the rule (see `OverlapThresholds`).
    mesh, settings: where and how the searches run (`knn`).

  Returns:
    Every candidate pair: {"identity", "other_identity" (labels),
    "centroid_similarity" (centred cosine), "margin", "image_share",
    "image_similarity" (mean centred cosine of the images whose nearest other
    image is of the pair), "images", "other_images" (counts), "shared" (bool)}.
  """
  if embeddings.shape[1] != other_embeddings.shape[1]:
    raise UsageError(f"the two data sets' embeddings have {embeddings.shape[1]} and {other_embeddings.shape[1]} "
                     "dimensions: embed both with the same encoder")
  embeddings, other_embeddings = centred_unit(embeddings, other_embeddings)
  identities, centroids, inverse = identity_centroids(embeddings, np.asarray(labels))
  other_identities, other_centroids, other_inverse = identity_centroids(other_embeddings, np.asarray(other_labels))
  centroids, other_centroids = centroids.astype(np.float32), other_centroids.astype(np.float32)
  forward, forward_scores = _nearest(other_centroids, centroids, 2, mesh, settings)
  backward, backward_scores = _nearest(centroids, other_centroids, 2, mesh, settings)
  mine = np.arange(len(identities))
  theirs = forward[:, 0]
  candidate = (backward[theirs, 0] == mine) & (forward_scores[:, 0] >= thresholds.candidate_similarity)
  mine, theirs = mine[candidate], theirs[candidate]
  if not len(mine):
    return []
  similarity = forward_scores[mine, 0]
  margin = np.minimum(similarity - forward_scores[mine, 1], similarity - backward_scores[theirs, 1])
  queries = np.flatnonzero(np.isin(inverse, mine))
  other_queries = np.flatnonzero(np.isin(other_inverse, theirs))
  nearest, nearest_score = _nearest(other_embeddings, embeddings[queries], 1, mesh, settings)
  back, back_score = _nearest(embeddings, other_embeddings[other_queries], 1, mesh, settings)
  partner = dict(zip(mine.tolist(), theirs.tolist()))
  hits: Dict[int, List[float]] = {}
  for a, b, score in zip(inverse[queries], other_inverse[nearest[:, 0]], nearest_score[:, 0]):
    if partner[int(a)] == b:
      hits.setdefault(int(a), []).append(float(score))
  for b, a, score in zip(other_inverse[other_queries], inverse[back[:, 0]], back_score[:, 0]):
    if partner.get(int(a)) == b:
      hits.setdefault(int(a), []).append(float(score))
  sizes, other_sizes = np.bincount(inverse), np.bincount(other_inverse)
  out = []
  for a, b, score, gap in zip(mine.tolist(), theirs.tolist(), similarity.tolist(), margin.tolist()):
    matched = hits.get(a, [])
    share = len(matched) / (sizes[a] + other_sizes[b])
    out.append({"identity": int(identities[a]), "other_identity": int(other_identities[b]),
                "centroid_similarity": float(score), "margin": float(gap), "image_share": float(share),
                "image_similarity": float(np.mean(matched)) if matched else 0.0,
                "images": int(sizes[a]), "other_images": int(other_sizes[b]),
                "shared": bool(score >= thresholds.centroid_similarity and gap >= thresholds.margin
                               and share >= thresholds.image_share)})
  out.sort(key=lambda pair: (-pair["centroid_similarity"], pair["identity"], pair["other_identity"]))
  return out
