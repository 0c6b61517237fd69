"""`knn`: the public exact k-NN call; checks input, places rows, picks the path."""
from typing import Optional

import numpy as np
from jax.sharding import Mesh

from facequal_jax import checks, sharding
from facequal_jax.knn import ring
from facequal_jax.knn.candidates import Neighbors
from facequal_jax.knn.settings import SearchSettings
from facequal_jax.knn.symmetric import symmetric_search
from facequal_jax.knn.tiling import DeviceRows, place_unit_rows


def place(embeddings: np.ndarray, mesh: Mesh, settings: SearchSettings, k: int) -> DeviceRows:
  """Checked host rows [N, d] as unit database rows on `mesh`, tiled to hold the candidates of k."""
  return place_unit_rows(embeddings, mesh, block=settings.block, chunk_tiles=settings.chunk_tiles,
                         min_tile=settings.candidates_kept(k))


def self_search(database: DeviceRows, k: int, *, mesh: Mesh, settings: SearchSettings) -> Neighbors:
  """k-NN of every placed row among the others (own index excluded).

  The symmetric path is XLA; with the fused Pallas kernel (`kernel` "pallas",
  or "auto" on GPU in bf16) the ring path runs instead.
  """
  if settings.symmetric and settings.kernel_for(database.host.shape[1]) == "xla":
    return symmetric_search(database, k, mesh=mesh, settings=settings)
  return ring.search(database, database, np.arange(database.num_rows), k, mesh=mesh, settings=settings)


def _checked_query_rows(query_rows, num_rows: int) -> np.ndarray:
  query_rows = np.asarray(query_rows)
  if query_rows.ndim != 1 or not np.issubdtype(query_rows.dtype, np.integer):
    raise ValueError(f"query_rows must be a 1-D integer array, got {query_rows.dtype} {query_rows.shape}")
  out_of_range = np.flatnonzero((query_rows < 0) | (query_rows >= num_rows))
  if len(out_of_range):
    raise ValueError(f"query_rows entries {out_of_range[:10].tolist()} are outside [0, {num_rows})")
  return query_rows


def knn(embeddings, k: int = 10, *, queries=None, query_rows=None, exclude_self: bool = True,
        mesh: Optional[Mesh] = None, settings: Optional[SearchSettings] = None, precision: Optional[str] = None,
        margin: Optional[int] = None, block: Optional[int] = None, chunk_tiles: Optional[int] = None,
        symmetric: Optional[bool] = None, kernel: Optional[str] = None) -> Neighbors:
  """Exact cosine k-nearest neighbours.

  Args:
    embeddings: [N, d] database rows, any float dtype (normalised here).
    k: neighbours per query.
    queries: optional [Nq, d] query rows that are not database rows.
    query_rows: optional int [Nq] database rows to use as queries (a subset
      searched against the whole set). Default: every row is a query.
    exclude_self: a query that is database row i never returns i (ignored for
      `queries`, which are not database rows).
    mesh: 1-D mesh from `facequal_jax.make_mesh`; default all devices.
    settings: how the search runs (`SearchSettings`); default its defaults.
    precision, margin, block, chunk_tiles, symmetric, kernel: override single
      fields of `settings` (see `SearchSettings`); invalid values raise a
      ValueError that lists the valid ones.

  Returns:
    Neighbors: indices int32 [Nq, k] best first, ties by lower index; scores
    float32 [Nq, k] descending.
  """
  settings = SearchSettings.merged(settings, precision=precision, margin=margin, block=block,
                                   chunk_tiles=chunk_tiles, symmetric=symmetric, kernel=kernel)
  if queries is not None and query_rows is not None:
    raise ValueError("give queries or query_rows, not both")
  embeddings = checks.check_embeddings(embeddings)
  num_rows = embeddings.shape[0]
  checks.check_k(k, num_rows - 1 if queries is None and exclude_self else num_rows)
  mesh = mesh or sharding.make_mesh()
  database = place(embeddings, mesh, settings, k)
  placed_queries = lambda rows: place_unit_rows(rows, mesh, block=settings.block, chunk_tiles=settings.chunk_tiles)
  if queries is not None:
    queries = checks.check_embeddings(queries, name="queries")
    if queries.shape[1] != embeddings.shape[1]:
      raise ValueError(f"queries have {queries.shape[1]} columns, embeddings {embeddings.shape[1]}")
    return ring.search(database, placed_queries(queries), None, k, mesh=mesh, settings=settings)
  if query_rows is None:
    if exclude_self:
      return self_search(database, k, mesh=mesh, settings=settings)
    return ring.search(database, database, None, k, mesh=mesh, settings=settings)
  query_rows = _checked_query_rows(query_rows, num_rows)
  return ring.search(database, placed_queries(embeddings[query_rows]), query_rows if exclude_self else None, k,
                     mesh=mesh, settings=settings)
