"""One suspicion score for every sample: how much more its face looks like another identity than its own.

For sample i of identity y, with unit embeddings e and unit identity centroids:

  own_i    = cos(e_i, centroid of y's other samples)          (leave-one-out: i does not pull it)
  other_i  = max over z ≠ y of cos(e_i, centroid of z)       (over the candidate identities below)
  runner_i = the mean cosine of e_i to the next RUNNERS_UP nearest other centroids
  vote_i   = the similarity-weighted share of i's k nearest neighbours labelled y (negative cosines count 0)
  score_i  = other_i − own_i + VOTE_WEIGHT · (1 − vote_i) + DISTINCT_WEIGHT · (other_i − runner_i) · [other_i > own_i]

A face filed under the wrong identity sits near its true identity's centroid and far from the one it is
filed under, its neighbours are not of its label, and it is near that one other identity in particular, not
vaguely near many: all four terms point the same way. A hard photo of the right person (profile, head down)
is far from its own centroid too, but no nearer one other identity than several — the last term is what
tells them apart (hubness, corrected as CSLS does for word translation). It counts only where the face is
nearer that identity than its own: a face nearer its own centroid than any other is not lifted onto the
list because one other centroid stands out (a 2-image identity left holding a single face of another person
has a "centroid" that is that face: every face of that person stands out near it). The centroid terms rank across
identities of any size (a sample of a 4-image identity is judged as well as one of 400); the vote separates
faces the centroids leave close. `suggested_i` is the identity of the nearest other centroid.
Samples whose identity has one sample (`singleton`) have no own centroid: their score is NaN.

Candidate identities, so that the cost grows with the samples, not samples × identities: the identities of
i's k neighbours, and the NEARBY identities whose centroids are nearest the centroid of y and nearest that of
the first neighbour filed under another identity (a centroid k-NN, C² / 2 scores for C identities — 1/400 of
the self-search's when identities average 20 faces). A face filed under the wrong identity has its true
identity among its neighbours; the centroids near the two identities hold the runners-up. With at most
NEARBY + 1 identities every other identity is a candidate and the terms are exact; on more, the runners-up,
taken among fewer centroids, can only be lower, and a face's nearest other centroid may lie outside its
candidates where all it is near are about as far. On LFW-dev the ranking is as good as over every centroid
(`benchmarks/suspects_lfw.py`: 30-seed average precision 0.9991, against 0.9992).

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
from facequal_jax.metrics.centroids import CHUNK, identity_sums

VOTE_WEIGHT, DISTINCT_WEIGHT, RUNNERS_UP = 0.25, 2.0, 4
NEARBY = 8  # centroids nearest each identity's centroid, among a sample's candidate identities
SUSPECT_SCORE = 0.3  # the suspect list's threshold (precision 0.97, recall 0.99 on LFW-dev, 10 % of the faces moved)


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
  """The score of every sample (module docstring); NaN for singletons and where there is no other identity.

  Args:
    embeddings: float32 [n, d] unit rows; labels: int64 [n].
    indices, scores: the self k-NN of the rows, [n, k] (int, float).
    mesh, settings: how the centroid search runs (default: every device, float32).

  Works in chunks of `CHUNK` rows: besides the inputs, memory holds [C, d] centroids, [C, NEARBY] centroid
  neighbours and [n] vectors.
  """
  n = len(labels)
  identities, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
  sums = identity_sums(embeddings, inverse, len(identities))
  squared = np.einsum("cd,cd->c", sums, sums)
  own = np.full(n, np.nan)
  for start in range(0, n, CHUNK):  # cos(e_i, S_y − e_i) for unit e_i: (e_i·S_y − 1) / ‖S_y − e_i‖
    part = slice(start, start + CHUNK)
    dot = np.einsum("nd,nd->n", np.asarray(embeddings[part], np.float64), sums[inverse[part]])
    rest = np.sqrt(np.maximum(squared[inverse[part]] - 2.0 * dot + 1.0, 1e-12))
    own[part] = np.where(counts[inverse[part]] > 1, (dot - 1.0) / rest, np.nan)
  other = np.full(n, -np.inf)
  runner = np.full(n, -np.inf)
  suggested = np.full(n, -1, np.int64)
  separable = np.ones(n, bool)
  if len(identities) > 1:
    norms = np.sqrt(squared)[:, None]
    order = np.argsort(inverse, kind="stable")
    first_rows = embeddings[order[np.searchsorted(inverse[order], np.arange(len(identities)))]]
    # an identity whose rows cancel out has no direction: its first row stands for it
    centroids = np.where(norms > 1e-9, sums / np.maximum(norms, 1e-12), first_rows).astype(np.float32)
    nearby = knn(centroids, min(NEARBY, len(identities) - 1), mesh=mesh, settings=settings).indices
    best, other, runner = _nearest_other_centroids(embeddings, inverse, inverse[np.asarray(indices)], centroids,
                                                   np.asarray(nearby))
    suggested = np.where(best >= 0, identities[np.maximum(best, 0)], -1)
    typical_own = np.array([np.nanmedian(part) if np.isfinite(part).any() else np.inf
                            for part in np.split(own[order], np.cumsum(counts)[:-1])])
    for start in range(0, n, CHUNK):
      part = slice(start, start + CHUNK)
      between = np.einsum("nd,nd->n", centroids[inverse[part]], centroids[np.maximum(best[part], 0)])
      separable[part] = (between < typical_own[inverse[part]]) | (best[part] < 0)
  weights = np.maximum(np.asarray(scores, np.float64), 0.0)
  same = labels[indices] == labels[:, None]
  vote = (weights * same).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-12)
  score = np.full(n, np.nan)
  known = np.isfinite(other)
  nearer = other[known] - own[known]
  score[known] = (nearer + VOTE_WEIGHT * (1.0 - vote[known])
                  + DISTINCT_WEIGHT * (other[known] - runner[known]) * (nearer > 0))
  return Suspicion(score, suggested, own, other, runner, vote, separable)


def _nearest_other_centroids(embeddings: np.ndarray, inverse: np.ndarray, neighbour_identities: np.ndarray,
                             centroids: np.ndarray, nearby: np.ndarray):
  """For each sample, the nearest other identity among its candidates (module docstring) and the terms.

  Args:
    embeddings: float32 [n, d] unit rows; inverse: int [n] identity positions.
    neighbour_identities: int [n, k] identity positions of each sample's k neighbours.
    centroids: float32 [C, d] unit; nearby: int [C, m] each centroid's nearest other centroids.

  Returns:
    (best int64 [n]: the nearest other identity's position, −1 when there is none; other float64 [n]: its
    cosine, −inf when none; runner float64 [n]: the mean cosine of the next RUNNERS_UP, `other` when none).
  """
  n = len(inverse)
  best, other, runner = np.full(n, -1, np.int64), np.full(n, -np.inf), np.full(n, -np.inf)
  rows = np.arange(n)
  elsewhere = neighbour_identities != inverse[:, None]
  first_elsewhere = neighbour_identities[rows, np.argmax(elsewhere, axis=1)]
  first_elsewhere = np.where(elsewhere.any(axis=1), first_elsewhere, inverse)
  step = max(1, CHUNK // 16)  # [step, k + 2 m, d] float32 gathered at a time
  for start in range(0, n, step):
    part = slice(start, start + step)
    candidates = np.sort(np.concatenate([neighbour_identities[part], nearby[inverse[part]],
                                         nearby[first_elsewhere[part]]], axis=1), axis=1)
    repeated = np.zeros(candidates.shape, bool)
    repeated[:, 1:] = candidates[:, 1:] == candidates[:, :-1]
    cosine = np.einsum("nd,nkd->nk", embeddings[part], centroids[candidates]).astype(np.float64)
    cosine[repeated | (candidates == inverse[part, None])] = -np.inf
    top = min(RUNNERS_UP + 1, candidates.shape[1])
    ranked = np.argsort(-cosine, axis=1, kind="stable")[:, :top]
    ranked_cosine = np.take_along_axis(cosine, ranked, axis=1)
    found = ranked_cosine[:, 0] > -np.inf
    best[part] = np.where(found, np.take_along_axis(candidates, ranked[:, :1], axis=1)[:, 0], -1)
    other[part] = ranked_cosine[:, 0]
    runners = ranked_cosine[:, 1:]
    valid = runners > -np.inf
    runner[part] = np.where(valid.any(axis=1), np.where(valid, runners, 0.0).sum(axis=1)
                            / np.maximum(valid.sum(axis=1), 1), other[part])
  return best, other, runner
