"""`knn`: the public exact k-NN call; checks input, places rows, picks the kernel."""
from typing import Optional

import jax
import numpy as np
from jax.sharding import Mesh

from facequal_jax import sharding, validation
from facequal_jax.neighbors import Neighbors, search
from facequal_jax.placement import DeviceRows, place_unit_rows
from facequal_jax.symmetric import symmetric_search


def choose_kernel(kernel: str, precision: str, dim: int) -> str:
  """Resolves kernel="auto": the fused Pallas kernel for bf16 on GPU (d a power of two
  >= 16, as Triton's dot needs), else the XLA path."""
  if kernel != "auto":
    return kernel
  fits = dim >= 16 and dim & (dim - 1) == 0
  return "pallas" if precision == "bfloat16" and jax.default_backend() == "gpu" and fits else "xla"


def self_search(database: DeviceRows, k: int, *, mesh: Mesh, precision: str = "float32", margin: int = 32,
                symmetric: bool = True, kernel: str = "auto") -> Neighbors:
  """k-NN of every placed row among the others (own index excluded).

  The symmetric path is XLA; with the fused Pallas kernel (`kernel` "pallas",
  or "auto" on GPU in bf16) the ring path runs instead.
  """
  kernel = choose_kernel(kernel, precision, database.host.shape[1])
  if symmetric and kernel == "xla":
    return symmetric_search(database, k, mesh=mesh, precision=precision, margin=margin)
  return search(database, database, np.arange(database.num_rows), k, mesh=mesh, precision=precision,
                margin=margin, kernel=kernel)


def knn(embeddings, k: int = 10, *, queries=None, query_rows=None, exclude_self: bool = True,
        mesh: Optional[Mesh] = None, precision: str = "float32", margin: int = 32, block: int = 2048,
        chunk_tiles: int = 4, symmetric: bool = True, kernel: str = "auto") -> Neighbors:
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
    precision: "float32", or "bfloat16" candidates rescored to the exact
      float32 result.
    margin: extra bf16 candidates per row (bf16 mode).
    block: rows per tile (query and database).
    chunk_tiles: query tiles per jitted call (progress granularity).
    symmetric: for a self search, score each pair of rows once for both
      (half the FLOPs; see `symmetric.py`). Same result either way.
    kernel: "auto" (the fused Pallas kernel for bf16 on GPU, else XLA), "xla",
      "pallas", or "pallas_interpret" (the kernel in interpret mode, on CPU).

  Returns:
    Neighbors: indices int32 [Nq, k] best first, ties by lower index; scores
    float32 [Nq, k] descending.
  """
  if queries is not None and query_rows is not None:
    raise ValueError("give queries or query_rows, not both")
  embeddings = validation.check_embeddings(embeddings)
  mesh = mesh or sharding.make_mesh()
  kernel = choose_kernel(kernel, precision, embeddings.shape[1])
  num_rows = embeddings.shape[0]
  validation.check_k(k, num_rows - 1 if queries is None and exclude_self else num_rows)
  keep = k if precision == "float32" else k + margin
  database = place_unit_rows(embeddings, mesh, block=block, chunk_tiles=chunk_tiles, min_tile=keep)
  if queries is not None:
    queries = validation.check_embeddings(queries, name="queries")
    if queries.shape[1] != embeddings.shape[1]:
      raise ValueError(f"queries have {queries.shape[1]} columns, embeddings {embeddings.shape[1]}")
    placed = place_unit_rows(queries, mesh, block=block, chunk_tiles=chunk_tiles)
    return search(database, placed, None, k, mesh=mesh, precision=precision, margin=margin, kernel=kernel)
  if query_rows is None:
    if exclude_self:
      return self_search(database, k, mesh=mesh, precision=precision, margin=margin, symmetric=symmetric,
                         kernel=kernel)
    return search(database, database, None, k, mesh=mesh, precision=precision, margin=margin, kernel=kernel)
  query_rows = np.asarray(query_rows)
  if query_rows.ndim != 1 or not np.issubdtype(query_rows.dtype, np.integer):
    raise ValueError(f"query_rows must be a 1-D integer array, got {query_rows.dtype} {query_rows.shape}")
  out_of_range = np.flatnonzero((query_rows < 0) | (query_rows >= num_rows))
  if len(out_of_range):
    raise ValueError(f"query_rows entries {out_of_range[:10].tolist()} are outside [0, {num_rows})")
  placed = place_unit_rows(embeddings[query_rows], mesh, block=block, chunk_tiles=chunk_tiles)
  return search(database, placed, query_rows if exclude_self else None, k, mesh=mesh,
                precision=precision, margin=margin, kernel=kernel)
