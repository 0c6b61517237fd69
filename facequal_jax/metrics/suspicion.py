"""One suspicion score for every sample: how much more its face looks like another identity than its own.

For sample i of identity y, with unit embeddings e and unit identity centroids:

  own_i    = cos(e_i, centroid of y's other samples)          (leave-one-out: i does not pull it)
  other_i  = max over z ≠ y of cos(e_i, centroid of z)       (an exact k-NN search over the centroids)
  runner_i = the mean cosine of e_i to the next RUNNERS_UP nearest other centroids
  vote_i   = the similarity-weighted share of i's k nearest neighbours labelled y (negative cosines count 0)
  score_i  = other_i − own_i + VOTE_WEIGHT · (1 − vote_i) + DISTINCT_WEIGHT · (other_i − runner_i)

A face filed under the wrong identity sits near its true identity's centroid and far from the one it is
filed under, its neighbours are not of its label, and it is near that one other identity in particular, not
vaguely near many: all four terms point the same way. A hard photo of the right person (profile, head down)
is far from its own centroid too, but no nearer one other identity than several — the last term is what
tells them apart (hubness, corrected as CSLS does for word translation). The centroid terms rank across
identities of any size (a sample of a 4-image identity is judged as well as one of 400); the vote separates
faces the centroids leave close. `suggested_i` is the identity of the nearest other centroid.
Samples whose identity has one sample (`singleton`) have no own centroid: their score is NaN.

Whether the encoder tells the two identities apart at all (`separable_i`): the cosine between the centroids
of y and of the suggested identity is below the median `own` of y's samples — y's faces sit nearer their own
centroid than the other identity's centroid does. Where it is not (an encoder that cannot separate these
faces, or two names of one person), a suspicion is no ground for acting alone.

Measured on LFW-dev's identities with >= 4 images with 10 % of the faces moved to another identity
(`benchmarks/suspects_lfw.py`, docs/acting.md).
"""
import dataclasses
from typing import Optional

import numpy as np
from jax.sharding import Mesh

from facequal_jax.knn.search import knn
from facequal_jax.knn.settings import SearchSettings

VOTE_WEIGHT, DISTINCT_WEIGHT, RUNNERS_UP = 0.25, 2.0, 4
SUSPECT_SCORE = 0.3  # the suspect list's threshold (precision 0.97, recall 0.99 on LFW-dev with 10 % of the faces moved)


@dataclasses.dataclass(frozen=True)
class Suspicion:
  """Per sample (positions 0 … n − 1): `score` float64 [n] (NaN for singletons), `suggested` int64 [n] (the
  nearest other identity's label, −1 when there is none), `own`, `other`, `runner` and `vote` float64 [n] (the
  terms),
  `separable` bool [n] (module docstring)."""
  score: np.ndarray
  suggested: np.ndarray
  own: np.ndarray
  other: np.ndarray
  runner: np.ndarray
  vote: np.ndarray
  separable: np.ndarray


def suspicion(embeddings: np.ndarray, labels: np.ndarray, indices: np.ndarray, scores: np.ndarray,
              mesh: Optional[Mesh] = None, settings: Optional[SearchSettings] = None) -> Suspicion:
  """The score of every sample (module docstring).

  Args:
    embeddings: float32 [n, d] unit rows; labels: int64 [n].
    indices, scores: the self k-NN of the rows, [n, k] (int, float).
    mesh, settings: how the centroid search runs (default: every device, float32).
  """
  identities, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
  sums = np.zeros((len(identities), embeddings.shape[1]))
  np.add.at(sums, inverse, embeddings)
  own_sum = sums[inverse] - embeddings
  own_norm = np.linalg.norm(own_sum, axis=1)
  own = np.where(counts[inverse] > 1, np.einsum("nd,nd->n", embeddings, own_sum) / np.maximum(own_norm, 1e-12),
                 np.nan)
  other = np.full(len(labels), -np.inf)
  runner = np.full(len(labels), -np.inf)
  suggested = np.full(len(labels), -1, np.int64)
  separable = np.ones(len(labels), bool)
  if len(identities) > 1:
    centroids = (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    count = min(RUNNERS_UP + 2, len(identities))  # the own centroid may be among them
    nearest = knn(centroids, count, queries=embeddings, exclude_self=False, mesh=mesh, settings=settings)
    found, cosine = np.asarray(nearest.indices), np.asarray(nearest.scores, np.float64)
    others = found != inverse[:, None]
    rank = np.cumsum(others, axis=1)  # 1 for the nearest other centroid, 2 for the next, …
    rows = np.arange(len(labels))
    pick = np.argmax(others, axis=1)  # the best centroid that is not the sample's own
    other, suggested = cosine[rows, pick], identities[found[rows, pick]]
    runners = others & (rank >= 2) & (rank <= RUNNERS_UP + 1)
    runner = np.where(runners.any(axis=1), (cosine * runners).sum(axis=1) / np.maximum(runners.sum(axis=1), 1),
                      other)
    order = np.argsort(inverse, kind="stable")
    typical_own = np.array([np.nanmedian(part) if np.isfinite(part).any() else np.inf
                            for part in np.split(own[order], np.cumsum(counts)[:-1])])
    between = np.einsum("nd,nd->n", centroids[inverse].astype(np.float64), centroids[found[rows, pick]])
    separable = between < typical_own[inverse]
  weights = np.maximum(np.asarray(scores, np.float64), 0.0)
  same = labels[indices] == labels[:, None]
  vote = (weights * same).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-12)
  distinct = np.where(np.isfinite(runner), other - runner, 0.0)  # 0 where there is no other identity
  score = other - own + VOTE_WEIGHT * (1.0 - vote) + DISTINCT_WEIGHT * distinct
  return Suspicion(score, suggested, own, other, runner, vote, separable)
