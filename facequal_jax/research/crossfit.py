"""Cross-fitted (out-of-sample) neighbour consistency: every face scored by a proxy that never trained on it.

A proxy trained on a data set has seen every face it then embeds, and at small scale it memorises their labels
— a face whose label was flipped sits among the faces of its wrong label — so its in-sample Consis cannot see
the noise it learnt. Cross-fitting splits each identity's faces into two halves, trains one proxy per half, and
scores each face in the embedding of the proxy trained on the *other* half: its k nearest neighbours among all
the scored faces there, itself excluded (DESIGN.md §2's c_i, k and ties).
"""
import numpy as np

from facequal_jax.metrics import quality


def halves(labels: np.ndarray, seed: int = 0) -> np.ndarray:
  """Each identity's samples split into two random halves (seeded).

  Args:
    labels: int [n] identities.

  Returns:
    int64 [n] of 0 / 1: the half of each sample. An identity with an odd count gives its extra sample to
    half 0 or half 1 in turn (by the order of identities), so the halves differ in size by at most one.
  """
  labels = np.asarray(labels)
  rng = np.random.default_rng(seed)
  half = np.zeros(len(labels), np.int64)
  odd = 0
  for identity in np.unique(labels):
    rows = rng.permutation(np.flatnonzero(labels == identity))
    half[rows[(len(rows) + 1 - odd) // 2:]] = 1
    odd ^= len(rows) % 2
  return half


def out_of_sample_consistency(embeddings: np.ndarray, labels: np.ndarray, half: np.ndarray, k: int) -> np.ndarray:
  """Per-sample neighbour consistency, each sample scored by the proxy that did not train on it.

  Args:
    embeddings: float [2, n, d]: `embeddings[h]` is every sample embedded by the proxy trained on half h.
    labels: int [n] identities (the labels the proxies trained with).
    half: int [n] of 0 / 1 (`halves`).
    k: neighbours per sample.

  Returns:
    float64 [n]: c_i of sample i among all n samples embedded by the proxy of half 1 − half[i]; NaN for a
    sample whose identity has no other sample (no neighbour can agree with it).
  """
  labels, half = np.asarray(labels), np.asarray(half)
  out = np.empty(len(labels), np.float64)
  for scored_half in (0, 1):
    report = quality.intrinsic_quality(embeddings[1 - scored_half], labels, k=k, singletons="include")
    rows = half == scored_half
    out[rows] = report.per_sample_consistency[rows]
  out[report.singleton] = np.nan
  return out
