"""The global half of IQ: the eigenvalue spectrum of the embeddings and its ranks.

The covariance is accumulated on the devices: each device sums its own rows
(tile by tile, float32 at HIGHEST precision) and the partial sums meet in a
`psum`; the d × d result is eigen-decomposed on the host in float64.
"""
import dataclasses
import functools
from typing import Optional

import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, PartitionSpec

from facequal_jax import checks, sharding
from facequal_jax.knn.tiling import DeviceRows, place_unit_rows

# RankMe's smoothing constant (Garrido et al., 2023).
RANKME_EPS = 1e-7
# Eigenvalues below this fraction of the largest are left out of the α-ReQ fit.
ALPHA_REQ_FLOOR = 1e-12


@dataclasses.dataclass(frozen=True)
class Spectrum:
  """Spectrum of n unit-normalised d-dimensional embeddings.

  Attributes:
    eigenvalues: float64 [d], centred covariance ẼᵀẼ/n, descending, >= 0.
    singular_values: float64 [min(n, d)], of the uncentred unit rows Ê,
      descending.
    num_samples: n.
    effective_rank: exp(H) with H the entropy of eigenvalues / their sum.
    effective_rank_normalized: H / log(min(n, d)), in [0, 1].
    rankme: RankMe, entropy effective rank of the singular values with
      p_k = σ_k / Σσ + 1e-7.
    stable_rank: Σλ / λ_max of the centred covariance.
    alpha_req: α-ReQ, minus the slope of log λ_i against log i (least squares
      over eigenvalues above 1e-12 · λ_1).
  """
  eigenvalues: np.ndarray
  singular_values: np.ndarray
  num_samples: int
  effective_rank: float
  effective_rank_normalized: float
  rankme: float
  stable_rank: float
  alpha_req: float


def _entropy(weights: np.ndarray) -> float:
  """Entropy of weights / sum (0 · log 0 = 0); 0 for all-zero weights."""
  total = weights.sum()
  if total <= 0:
    return 0.0
  p = weights[weights > 0] / total
  return float(-(p * np.log(p)).sum())


def rankme(singular_values: np.ndarray) -> float:
  """RankMe: exp(−Σ p log p) with p_k = σ_k / Σσ + 1e-7."""
  p = singular_values / singular_values.sum() + RANKME_EPS
  return float(np.exp(-(p * np.log(p)).sum()))


def alpha_req(eigenvalues: np.ndarray) -> float:
  """α-ReQ power-law decay coefficient of descending eigenvalues (NaN if < 2 usable)."""
  usable = eigenvalues[eigenvalues > ALPHA_REQ_FLOOR * eigenvalues[0]] if eigenvalues[0] > 0 else eigenvalues[:0]
  if len(usable) < 2:
    return float("nan")
  ranks = np.arange(1, len(usable) + 1)
  slope = np.polyfit(np.log(ranks), np.log(usable), 1)[0]
  return float(-slope)


def from_moments(mean: np.ndarray, covariance: np.ndarray, num_samples: int) -> Spectrum:
  """Spectrum from the mean [d] and centred covariance [d, d] of unit rows."""
  dim = covariance.shape[0]
  rank_cap = min(num_samples, dim)
  if rank_cap < 2:
    raise ValueError(f"the normalised effective rank needs min(n, d) >= 2, got n={num_samples}, d={dim}")
  covariance = np.asarray(covariance, np.float64)
  covariance = (covariance + covariance.T) / 2
  eigenvalues = np.clip(np.linalg.eigvalsh(covariance)[::-1], 0.0, None)
  mean = np.asarray(mean, np.float64)
  second_moment = covariance + np.outer(mean, mean)
  singular_values = np.sqrt(np.clip(np.linalg.eigvalsh(second_moment)[::-1][:rank_cap], 0.0, None) * num_samples)
  entropy = _entropy(eigenvalues)
  return Spectrum(
      eigenvalues=eigenvalues,
      singular_values=singular_values,
      num_samples=num_samples,
      effective_rank=float(np.exp(entropy)),
      effective_rank_normalized=entropy / float(np.log(rank_cap)),
      rankme=rankme(singular_values),
      stable_rank=float(eigenvalues.sum() / eigenvalues[0]) if eigenvalues[0] > 0 else 0.0,
      alpha_req=alpha_req(eigenvalues),
  )


def _moments_body(rows, *, num_rows, tile):
  """Per-device body: mean [d] and centred covariance [d, d] of all rows, via psum."""
  local_rows, dim = rows.shape
  first_row = lax.axis_index(sharding.ROWS) * local_rows
  num_tiles = local_rows // tile

  def tile_at(i):
    return lax.dynamic_slice_in_dim(rows, i * tile, tile)

  total = lax.fori_loop(0, num_tiles, lambda i, acc: acc + jnp.sum(tile_at(i), axis=0),
                        jnp.zeros((dim,), jnp.float32))
  mean = lax.psum(total, sharding.ROWS) / num_rows

  def add_tile(i, acc):
    index = first_row + i * tile + jnp.arange(tile)
    centred = jnp.where((index < num_rows)[:, None], tile_at(i) - mean, 0.0)
    return acc + jnp.dot(centred.T, centred, precision=lax.Precision.HIGHEST)

  scatter = lax.fori_loop(0, num_tiles, add_tile, jnp.zeros((dim, dim), jnp.float32))
  return mean, lax.psum(scatter, sharding.ROWS) / num_rows


@functools.lru_cache(maxsize=16)
def _moments_fn(mesh: Mesh, num_rows: int, tile: int):
  body = functools.partial(_moments_body, num_rows=num_rows, tile=tile)
  return sharding.per_device(body, mesh, PartitionSpec(sharding.ROWS), (PartitionSpec(), PartitionSpec()))


def spectrum_of(rows: DeviceRows, mesh: Mesh) -> Spectrum:
  """Spectrum of rows already placed on `mesh`."""
  mean, covariance = _moments_fn(mesh, rows.num_rows, rows.tiling.tile)(rows.array)
  return from_moments(np.asarray(mean, np.float64), np.asarray(covariance, np.float64), rows.num_rows)


def spectrum(embeddings, *, mesh: Optional[Mesh] = None, block: int = 2048) -> Spectrum:
  """Spectrum of embeddings [N, d] (any float dtype; rows are L2-normalised first).

  Args:
    embeddings: [N, d] array.
    mesh: 1-D mesh (default: all devices).
    block: rows per accumulation tile.
  """
  embeddings = checks.check_embeddings(embeddings)
  mesh = mesh or sharding.make_mesh()
  return spectrum_of(place_unit_rows(embeddings, mesh, block=block, chunk_tiles=1), mesh)
