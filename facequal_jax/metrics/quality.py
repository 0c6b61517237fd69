"""Intrinsic Quality: IQ = α · Consis + β · r̃ (β = 1 − α), and the report around it."""
import dataclasses
import hashlib
import json
import math
import os
from typing import Optional

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh

from facequal_jax import checks, files, sharding
from facequal_jax.errors import DataError
from facequal_jax.knn.candidates import Neighbors
from facequal_jax.knn.search import place, self_search
from facequal_jax.knn.settings import SearchSettings
from facequal_jax.metrics import consistency as consistency_lib
from facequal_jax.metrics import spectrum as spectrum_lib
from facequal_jax.metrics.subsets import stratified_identity_subset



@dataclasses.dataclass(frozen=True)
class IQReport:
  """Everything `intrinsic_quality` measured.

  Headline attributes (all in report.json): iq, consistency,
  effective_rank_normalized, effective_rank, rankme, stable_rank, alpha_req,
  num_samples, num_identities, num_singletons, k, alpha, beta.

  Per-sample attributes (n = num_samples, in the order of `sample_rows`):
    sample_rows: int64 [n] rows of the input that were evaluated.
    labels: int64 [n] their identities.
    per_sample_consistency: float32 [n] c_i.
    singleton: bool [n] True where the identity has one sample (left out of
      Consis under the "exclude" policy).
    neighbors: k-NN result, indices into the evaluated samples (0 … n − 1).
  And `identities` (per-identity table) and `spectrum` (full eigenvalues).
  """
  iq: float
  consistency: float
  effective_rank_normalized: float
  effective_rank: float
  rankme: float
  stable_rank: float
  alpha_req: float
  num_samples: int
  num_identities: int
  num_singletons: int
  k: int
  alpha: float
  beta: float
  singletons: str
  precision: str
  sample_rows: np.ndarray
  labels: np.ndarray
  per_sample_consistency: np.ndarray
  singleton: np.ndarray
  neighbors: Neighbors
  identities: consistency_lib.IdentityTable
  spectrum: spectrum_lib.Spectrum

  HEADLINE = ("iq", "consistency", "effective_rank_normalized", "effective_rank", "rankme", "stable_rank",
              "alpha_req", "num_samples", "num_identities", "num_singletons", "k", "alpha", "beta",
              "singletons", "precision")

  def to_dict(self) -> dict:
    """The headline numbers as plain Python values (NaN becomes None)."""
    out = {}
    for key in self.HEADLINE:
      value = getattr(self, key)
      out[key] = None if isinstance(value, float) and math.isnan(value) else value
    out["num_recomputed_rows"] = self.neighbors.num_recomputed
    return out

  def to_json(self, indent: Optional[int] = 2) -> str:
    return json.dumps(self.to_dict(), indent=indent)


def _search_key(embeddings: np.ndarray, k: int, precision: str) -> str:
  """What a stored search answers: the evaluated rows' bytes, k and the precision (the other settings change
  how the exact answer is found, not the answer)."""
  digest = hashlib.sha256(np.ascontiguousarray(embeddings, np.float32).data)
  digest.update(f"k={k};precision={precision};shape={embeddings.shape}".encode())
  return digest.hexdigest()


def _searched(placed, embeddings: np.ndarray, k: int, mesh, settings: SearchSettings,
              search_cache: Optional[str]) -> Neighbors:
  """The self k-NN of the rows, read from `search_cache` (an .npz path) when it holds this very search, else
  computed and, on process 0, stored there atomically."""
  if not search_cache:
    return self_search(placed, k, mesh=mesh, settings=settings)
  key = _search_key(embeddings, k, settings.precision)
  if os.path.exists(search_cache):
    with np.load(search_cache) as stored:
      if str(stored["key"]) == key:
        logging.info("k-NN search: reusing %s (the same rows, k and precision)", search_cache)
        return Neighbors(stored["indices"], stored["scores"], int(stored["num_recomputed"]))
  neighbors = self_search(placed, k, mesh=mesh, settings=settings)
  if jax.process_index() == 0:
    os.makedirs(os.path.dirname(os.path.abspath(search_cache)), exist_ok=True)
    files.write_npz(search_cache, key=np.asarray(key), indices=neighbors.indices, scores=neighbors.scores,
                    num_recomputed=np.asarray(neighbors.num_recomputed))
  return neighbors


def intrinsic_quality(embeddings, labels, *, k: int = 10, alpha: float = 0.2, mesh: Optional[Mesh] = None,
                      settings: Optional[SearchSettings] = None, singletons: str = "exclude", subset_size: int = 0,
                      images_per_identity: int = 0, min_images: int = 2, seed: int = 0,
                      precision: Optional[str] = None, margin: Optional[int] = None, block: Optional[int] = None,
                      chunk_tiles: Optional[int] = None, symmetric: Optional[bool] = None,
                      kernel: Optional[str] = None, search_cache: Optional[str] = None) -> IQReport:
  """Intrinsic Quality of a labelled embedding set.

  Args:
    embeddings: [N, d] any float dtype (rows are L2-normalised).
    labels: integer [N] identity of each row.
    k: neighbours per sample for consistency.
    alpha: weight of Consis; r̃ gets β = 1 − α.
    mesh: 1-D mesh (default: all devices).
    settings: how the k-NN search runs (`SearchSettings`; exact either way).
    singletons: "exclude" leaves samples whose identity has a single image out
      of Consis (their c_i is 0 whatever the embedding); "include" keeps them.
      They always stay in the neighbour database and the spectrum.
    subset_size: 0 evaluates every row; otherwise a stratified identity subset
      of about this many rows (see `stratified_identity_subset`).
    images_per_identity, min_images, seed: subset options (0 images per
      identity means k + 1).
    precision, margin, block, chunk_tiles, symmetric, kernel: override single
      fields of `settings`; invalid values raise a ValueError listing the valid ones.
    search_cache: an .npz path: the k-NN search is stored there once done and reused by a later call on the
      same rows with the same k and precision (the command's WORKDIR/search/neighbors.npz: a job stopped
      after its search resumes past it).

  Returns:
    IQReport.
  """
  settings = SearchSettings.merged(settings, precision=precision, margin=margin, block=block,
                                   chunk_tiles=chunk_tiles, symmetric=symmetric, kernel=kernel)
  checks.check_scoring(k, alpha, singletons)
  embeddings = checks.check_embeddings(embeddings)
  labels = checks.check_labels(labels, embeddings.shape[0])
  if subset_size:
    rows = stratified_identity_subset(labels, subset_size, images_per_identity or k + 1, min_images, seed)
    embeddings, labels = embeddings[rows], labels[rows]
  else:
    rows = np.arange(embeddings.shape[0])
  checks.check_k(k, embeddings.shape[0] - 1)
  mesh = mesh or sharding.make_mesh()

  placed = place(embeddings, mesh, settings, k)
  neighbors = _searched(placed, embeddings, k, mesh, settings, search_cache)
  spectrum = spectrum_lib.spectrum_of(placed, mesh)

  per_sample = consistency_lib.neighbor_consistency(neighbors.indices, labels)
  _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
  singleton = counts[inverse] == 1
  scored = ~singleton if singletons == "exclude" else np.ones_like(singleton)
  if not scored.any():
    raise DataError("every identity has a single sample: neighbour consistency needs identities with "
                     ">= 2 samples (or singletons='include')")
  consistency = float(per_sample[scored].mean(dtype=np.float64))
  return IQReport(
      iq=alpha * consistency + (1.0 - alpha) * spectrum.effective_rank_normalized,
      consistency=consistency,
      effective_rank_normalized=spectrum.effective_rank_normalized,
      effective_rank=spectrum.effective_rank,
      rankme=spectrum.rankme,
      stable_rank=spectrum.stable_rank,
      alpha_req=spectrum.alpha_req,
      num_samples=len(rows),
      num_identities=len(counts),
      num_singletons=int(singleton.sum()),
      k=k, alpha=alpha, beta=1.0 - alpha, singletons=singletons, precision=settings.precision,
      sample_rows=rows, labels=labels, per_sample_consistency=per_sample, singleton=singleton,
      neighbors=neighbors,
      identities=consistency_lib.identity_table(neighbors.indices, labels, per_sample),
      spectrum=spectrum,
  )
