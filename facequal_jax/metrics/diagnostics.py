"""What to clean: suspects, merges, splits, duplicates and outliers from the k-NN graph and labels.

`diagnose` computes every finding once from an `IQReport`; each list is ranked,
most suspicious first, and refers to samples by their row in the input (the
rows the report's embeddings came from). The detectors below work on the
evaluated samples' positions 0 … n − 1 (unit embeddings [n, d], labels [n],
self k-NN indices / scores [n, k], consistency c_i [n]); `diagnose` maps their
results to input rows and adds what a reader needs to check each finding (a
suspect's neighbours, example images of a merge pair).
"""
import dataclasses
from typing import Dict, List

import numpy as np

from facequal_jax.data.copies import COPY_SIMILARITY
from facequal_jax.errors import UsageError
from facequal_jax.metrics import face_quality
from facequal_jax.metrics import findings as findings_lib
from facequal_jax.metrics.centroids import first_rows, identity_centroids
from facequal_jax.metrics.suspicion import SUSPECT_SCORE, Suspicion, suspicion


@dataclasses.dataclass(frozen=True)
class Thresholds:
  """Knobs of the detectors (defaults suit unit embeddings from any encoder).

  Attributes:
    suspect_score: the suspicion score (`suspicion.py`) from which a sample is
      a suspected mislabelled one (set on LFW-dev: precision 0.97–0.98 there).
    duplicate_similarity: cosine at or above which two samples of different
      identities are near-duplicate candidates (the IQ job keeps those that
      are one photograph, `copy_similarity`).
    copy_similarity: `data.copies.photo_similarity` from which two images are
      one photograph.
    outlier_z: robust z-score (median / MAD of the mean neighbour similarity)
      below which a sample is an outlier.
    merge_links: mutual cross-identity nearest-neighbour pairs needed for a
      merge candidate.
    merge_similarity: the cosine of the two identities' centroids a merge
      candidate needs besides (as close as a typical same-person pair).
    low_information_std: a face whose pixels' standard deviation (0–255) is
      below this is near-uniform (e.g. nearly black): reported as
      `low_information`, never as a near-duplicate of another such face.
    low_quality: a face whose quality score (`face_quality`, 0–1) is below this is listed as `low_quality`.
    max_items: longest list per finding in report.json and on the page (findings.csv and decisions.csv hold
      every item, however many).
  """
  suspect_score: float = SUSPECT_SCORE
  duplicate_similarity: float = 0.95
  copy_similarity: float = COPY_SIMILARITY
  outlier_z: float = -3.5
  merge_links: int = 1
  merge_similarity: float = 0.95
  low_information_std: float = 8.0
  low_quality: float = 0.2
  max_items: int = 1000

  def near_uniform(self, pixel_std: np.ndarray) -> np.ndarray:
    """bool [n]: the faces whose pixel standard deviation is below `low_information_std`."""
    return np.asarray(pixel_std, np.float64) < self.low_information_std

  def __post_init__(self):
    ranges = {"suspect_score": (-3.0, 3.0), "duplicate_similarity": (-1.0, 1.0),
              "merge_similarity": (-1.0, 1.0), "copy_similarity": (-1.0, 1.0), "low_information_std": (0.0, 255.0),
              "low_quality": (0.0, 1.0)}
    for name, (low, high) in ranges.items():
      value = getattr(self, name)
      if not isinstance(value, (int, float)) or not low <= value <= high:
        raise UsageError(f"diagnostics.{name} must be a number in [{low:g}, {high:g}], got {value!r}")
    for name in ("merge_links", "max_items"):
      value = getattr(self, name)
      if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UsageError(f"diagnostics.{name} must be an integer >= 1, got {value!r}")


def suspected_mislabeled(labels, consistency, singleton, suspected: Suspicion, thresholds: Thresholds) -> List[dict]:
  """Samples whose suspicion score (`suspicion.py`) is at least `suspect_score`, highest first, each with the
  identity it looks like (`suggested_label`) and the score's terms."""
  out = []
  for row in np.flatnonzero((suspected.score >= thresholds.suspect_score) & ~singleton):
    out.append({"sample": int(row), "label": int(labels[row]), "suggested_label": int(suspected.suggested[row]),
                "score": float(suspected.score[row]), "consistency": float(consistency[row]),
                "own_similarity": float(suspected.own[row]), "other_similarity": float(suspected.other[row]),
                "neighbor_vote": float(suspected.vote[row]), "separable": bool(suspected.separable[row])})
  out.sort(key=lambda item: (-item["score"], item["sample"]))
  return out


def merge_candidates(embeddings, labels, indices, thresholds: Thresholds) -> List[dict]:
  """Identity pairs linked by mutual nearest neighbours across the two identities whose centroids are at cosine
  >= `merge_similarity`, ranked by that cosine."""
  identities, centroids, inverse = identity_centroids(embeddings, labels)
  nearest = indices[:, 0]
  mutual = (indices[nearest, 0] == np.arange(len(labels))) & (labels[nearest] != labels)
  links: Dict[tuple, int] = {}
  for row in np.flatnonzero(mutual):
    a, b = sorted((int(inverse[row]), int(inverse[nearest[row]])))
    links[a, b] = links.get((a, b), 0) + 1
  out = []
  for (a, b), count in links.items():
    count //= 2  # each mutual pair was seen from both ends
    similarity = float(centroids[a] @ centroids[b])
    if count >= thresholds.merge_links and similarity >= thresholds.merge_similarity:
      out.append({"identity_a": int(identities[a]), "identity_b": int(identities[b]), "mutual_links": count,
                  "centroid_similarity": similarity})
  out.sort(key=lambda item: (-item["centroid_similarity"], item["identity_a"], item["identity_b"]))
  return out


def _components(num_nodes: int, edges_a: np.ndarray, edges_b: np.ndarray) -> np.ndarray:
  """Connected components of an undirected graph: the smallest node of each node's component [num_nodes].

  Min-label propagation along the edges plus pointer jumping, all vectorised;
  the rounds grow with the graph's diameter, which is small for k-NN graphs.
  """
  component = np.arange(num_nodes)
  while True:
    previous = component.copy()
    np.minimum.at(component, edges_a, component[edges_b])
    np.minimum.at(component, edges_b, component[edges_a])
    component = component[component]
    if np.array_equal(component, previous):
      return component


def split_candidates(labels, indices, examples_per_group: int = 4) -> List[dict]:
  """Identities whose images fall apart into several groups of the same-label k-NN graph.

  Two images of an identity are joined when either lists the other among its
  k neighbours; an identity whose images form more than one component with at
  least two images each is a split candidate, ranked by the share of its
  images outside its largest component. `group_examples` holds the first
  `examples_per_group` positions of each group, largest group first.
  """
  rows, slots = np.nonzero(labels[indices] == labels[:, None])
  component = _components(len(labels), rows, indices[rows, slots])
  roots, sizes = np.unique(component, return_counts=True)
  groups = sizes >= 2
  root_of_group, group_size = roots[groups], sizes[groups]
  identity_of_group = labels[root_of_group]
  order = np.lexsort((-group_size, identity_of_group))  # by identity, largest group first
  root_of_group, identity_of_group, group_size = root_of_group[order], identity_of_group[order], group_size[order]
  starts = np.r_[0, np.flatnonzero(np.diff(identity_of_group)) + 1]
  identity_sizes = dict(zip(*np.unique(labels, return_counts=True)))
  members = np.argsort(component, kind="stable")  # positions grouped by component, in order within each
  first_member = np.searchsorted(component[members], root_of_group)
  out = []
  for start, found in zip(starts, np.split(group_size, starts[1:])):
    if len(found) < 2:
      continue
    identity = int(identity_of_group[start])
    total = int(identity_sizes[identity])
    examples = [members[first: first + min(size, examples_per_group)].tolist()
                for first, size in zip(first_member[start: start + len(found)], found)]
    out.append({"identity": identity, "num_images": total, "group_sizes": found.tolist(),
                "outside_largest": float(1 - found[0] / total), "group_examples": examples})
  out.sort(key=lambda item: (-item["outside_largest"], item["identity"]))
  return out


def near_duplicates(labels, indices, scores, low_information, thresholds: Thresholds) -> List[dict]:
  """Pairs of samples of different identities at cosine >= `duplicate_similarity`, most similar first; pairs of
  two low-information faces (bool [n]) are left out: they look alike because they show nothing."""
  both_empty = low_information[:, None] & low_information[indices]
  rows, slots = np.nonzero((scores >= thresholds.duplicate_similarity) & (labels[indices] != labels[:, None])
                           & ~both_empty)
  pairs = {}
  for row, slot in zip(rows, slots):
    a, b = sorted((int(row), int(indices[row, slot])))
    pairs[a, b] = float(scores[row, slot])
  out = [{"sample_a": a, "sample_b": b, "label_a": int(labels[a]), "label_b": int(labels[b]), "similarity": s}
         for (a, b), s in pairs.items()]
  out.sort(key=lambda item: (-item["similarity"], item["sample_a"], item["sample_b"]))
  return out


def low_information_faces(pixel_std, thresholds: Thresholds) -> List[dict]:
  """Samples whose face is near-uniform (pixel standard deviation below `low_information_std`), flattest first."""
  rows = np.flatnonzero(thresholds.near_uniform(pixel_std))
  out = [{"sample": int(row), "pixel_std": float(pixel_std[row])} for row in rows]
  out.sort(key=lambda item: (item["pixel_std"], item["sample"]))
  return out


def low_quality_faces(quality: np.ndarray, thresholds: Thresholds) -> List[dict]:
  """Samples whose face quality score is below `low_quality`, lowest first (quality: float [n, 4], the
  fields of `face_quality.FIELDS`; NaN rows were not scored)."""
  rows = np.flatnonzero(quality[:, 0] < thresholds.low_quality)
  out = [{"sample": int(row), **{name: None if np.isnan(value) else float(value)  # no detector: no evidence
                                  for name, value in zip(face_quality.FIELDS, quality[row])}} for row in rows]
  out.sort(key=lambda item: (item["quality"], item["sample"]))
  return out


def outliers(scores, thresholds: Thresholds) -> List[dict]:
  """Samples far from everything: robust z-score of their mean neighbour similarity below `outlier_z`."""
  closeness = scores.mean(axis=1)
  median = np.median(closeness)
  spread = 1.4826 * np.median(np.abs(closeness - median)) or 1e-12
  z = (closeness - median) / spread
  out = [{"sample": int(row), "mean_neighbor_similarity": float(closeness[row]), "robust_z": float(z[row])}
         for row in np.flatnonzero(z < thresholds.outlier_z)]
  out.sort(key=lambda item: (item["robust_z"], item["sample"]))
  return out


def estimated_noise_rate(singleton, suspected: Suspicion, thresholds: Thresholds) -> float:
  """Share of non-singleton samples whose suspicion score reaches `suspect_score` (the whole list, uncapped).

  An estimate of the share of wrong labels, not a guarantee: it reads low when the encoder separates
  identities poorly and high when identities overlap (look-alikes, one person under two names).
  """
  counted = ~singleton
  return float(np.mean(suspected.score[counted] >= thresholds.suspect_score)) if counted.any() else 0.0


def _in_input_rows(found: Dict[str, List[dict]], rows: np.ndarray, labels: np.ndarray, indices: np.ndarray,
                   examples: int = 4) -> Dict[str, List[dict]]:
  """Position-based findings → input rows (every sample field of its kind), with each suspect's neighbours and
  example rows of merge pairs and split groups."""
  out = {kind.key: [dict(item, **{field: int(rows[item[field]]) for field in kind.samples})
                    for item in found[kind.key]] for kind in findings_lib.KINDS}
  for item, at in zip(out[findings_lib.SUSPECTS], found[findings_lib.SUSPECTS]):
    item.update(neighbors=rows[indices[at["sample"]]].tolist(), neighbor_labels=labels[indices[at["sample"]]].tolist())
  for item in out["split_candidates"]:
    item["group_examples"] = [rows[group].tolist() for group in item["group_examples"]]
  examples_of = first_rows(labels, examples)
  for item in out["merge_candidates"]:
    item.update(examples_a=rows[examples_of(item["identity_a"])].tolist(),
                examples_b=rows[examples_of(item["identity_b"])].tolist())
  return out


def diagnose(report, embeddings, thresholds: Thresholds = Thresholds(), pixel_std=None, mesh=None,
             settings=None, quality=None) -> findings_lib.Findings:
  """All findings of an IQ report, every sample an input row.

  Args:
    report: an `IQReport` (its neighbours, labels, consistency and singletons).
    embeddings: [N, d] all the input rows the report was computed from.
    thresholds: the detectors' knobs.
    pixel_std: optional float [N] pixel standard deviation of each input
      row's face (0–255), for `low_information`.
    mesh, settings: where and how the search over identity centroids runs (default: every device, the
      default `SearchSettings`).
    quality: optional float [N, 4] each input row's face quality and its terms (`face_quality.FIELDS`), for
      `low_quality`.

  Returns:
    `Findings`: a ranked list of every kind of `findings.KINDS`, the
    estimated noise rate, the thresholds and every evaluated sample's
    suspicion score.
  """
  rows = np.asarray(report.sample_rows)
  pixel_std = np.full(len(rows), np.inf) if pixel_std is None else np.asarray(pixel_std, np.float64)[rows]
  low_information = thresholds.near_uniform(pixel_std)
  quality = face_quality.unscored(len(rows)) if quality is None else np.asarray(quality, np.float64)[rows]
  embeddings = np.asarray(np.asarray(embeddings)[rows], np.float32)
  embeddings = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
  labels, indices = np.asarray(report.labels, np.int64), np.asarray(report.neighbors.indices)
  scores = np.asarray(report.neighbors.scores, np.float64)
  consistency = np.asarray(report.per_sample_consistency, np.float64)
  singleton = np.asarray(report.singleton, bool)
  suspected = suspicion(embeddings, labels, indices, scores, mesh, settings)
  found = {
      findings_lib.SUSPECTS: suspected_mislabeled(labels, consistency, singleton, suspected, thresholds),
      "near_duplicates": near_duplicates(labels, indices, scores, low_information, thresholds),
      "merge_candidates": merge_candidates(embeddings, labels, indices, thresholds),
      "split_candidates": split_candidates(labels, indices),
      "outliers": outliers(scores, thresholds),
      "low_information": low_information_faces(pixel_std, thresholds),
      "low_quality": low_quality_faces(quality, thresholds),
  }
  return findings_lib.Findings(_in_input_rows(found, rows, labels, indices),
                               estimated_noise_rate(singleton, suspected, thresholds),
                               dataclasses.asdict(thresholds), suspicion=suspected.score)
