"""Exact cosine k-nearest neighbours, tiled and sharded over a ring of devices.

Layout: the database (N × d, unit rows) is sharded by rows over the 1-D mesh.
Each device answers its own query rows. It scores them against the database
shard it holds, one (query tile × database tile) block at a time, keeps the k
best per tile and merges them into a running top-k; then it passes its database
shard to the previous device (`ppermute`) and receives the next one. After one
trip round the ring every query has seen every database row, yet no device ever
held more than one shard, and no N × N (or even N-row) score array exists.

Selection is exact with ties broken by lower row index (see `selection.py`),
and never happens across the sharded axis: each device selects locally. The
precision modes and the bf16 certificate are described in `candidates.py`.

Per shard, candidates come from tiled XLA dots and selections (`visit_tiles`)
or from the fused Pallas kernel (`fused.py`). Queries are answered in chunks of
rows per device, one jitted call per chunk, so long searches log progress
(rows/s, ETA). For self search, `symmetric.py` halves the work.
"""
import functools
from typing import Optional

import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, PartitionSpec

from facequal_jax import sharding
from facequal_jax.knn import fused
from facequal_jax.knn.candidates import (Neighbors, empty_state, finalize, max_bf16_residual, merge_candidates,
                                         rescore, visit_tiles)
from facequal_jax.knn.settings import SearchSettings
from facequal_jax.knn.tiling import DeviceRows, place_unit_rows
from facequal_jax.progress import Progress

# Padding query rows exclude this index, which no database row has.
_NO_SELF = -1


def _fused_candidates(q_chunk, qid_chunk, shard, first, *, keep, query_tile, num_database, interpret):
  """Candidates of a whole shard from the fused Pallas kernel, rescored in float32 tile by tile."""
  largest_divisor = lambda rows, sizes: next(size for size in sizes if rows % size == 0)
  dim = shard.shape[1]
  # The kernel multiplies in bf16: handing it a bf16 copy halves the bytes every program reads.
  # Shape measured fastest on an H200 (benchmarks/fused_tiles.py): 128 × 256 blocks, d in slices of 64, 8 warps.
  keys, indices = fused.select(q_chunk, qid_chunk, shard.astype(jnp.bfloat16), first, keep=keep,
                               num_rows=num_database, query_block=largest_divisor(q_chunk.shape[0], (128, 64, 16)),
                               database_block=largest_divisor(shard.shape[0], (256, 64, 16)),
                               dim_block=64 if dim % 64 == 0 else 0, num_warps=8, interpret=interpret)

  def rescore_tile(i, exact):
    q = lax.dynamic_slice_in_dim(q_chunk, i * query_tile, query_tile)
    tile_keys = lax.dynamic_slice_in_dim(keys, i * query_tile, query_tile)
    tile_indices = lax.dynamic_slice_in_dim(indices, i * query_tile, query_tile)
    scores = rescore(q, shard, tile_indices - first, tile_keys > -jnp.inf)
    return lax.dynamic_update_slice_in_dim(exact, scores, i * query_tile, axis=0)

  exact = lax.fori_loop(0, q_chunk.shape[0] // query_tile, rescore_tile, jnp.zeros_like(keys))
  return keys, indices, exact


def _chunk_search(queries, query_ids, database, chunk_start, database_residual, *, k, keep, query_tile,
                  database_tile, chunk_rows, num_database, num_devices, precision, kernel):
  """Per-device body (inside shard_map) answering `chunk_rows` local query rows.

  Args:
    queries: float32 [Sq, d] this device's unit query rows.
    query_ids: int32 [Sq] database index each query must not return (-1: none).
    database: float32 [S, d] this device's unit database rows.
    chunk_start: int32 [1], first local query row of this chunk.
    database_residual: float32 [1], max ‖x − bf16(x)‖ over all database rows.
    k: neighbours returned; keep: candidates kept while searching (k, or
      k + margin in bf16 mode).
    kernel: "xla" (tiled dot + selection), "pallas" (the fused kernel), or
      "pallas_interpret" (the fused kernel in interpret mode, for CPU tests).

  Returns:
    (indices int32 [C, k], scores float32 [C, k], certified bool [C]).
  """
  start = chunk_start[0]
  q_chunk = lax.dynamic_slice_in_dim(queries, start, chunk_rows)
  qid_chunk = lax.dynamic_slice_in_dim(query_ids, start, chunk_rows)
  rows_per_shard = database.shape[0]
  me = lax.axis_index(sharding.ROWS)
  bf16 = precision == "bfloat16"

  def visit_shard(state, shard, source):
    """Merges the candidates of one database shard into the running state."""
    first = (source * rows_per_shard).astype(jnp.int32)
    if kernel != "xla":
      found = _fused_candidates(q_chunk, qid_chunk, shard, first, keep=keep, query_tile=query_tile,
                                num_database=num_database, interpret=kernel == "pallas_interpret")
      return merge_candidates(state, found, keep)
    return visit_tiles(q_chunk, qid_chunk, state, shard, first, query_tile=query_tile, database_tile=database_tile,
                       keep=keep, num_database=num_database, precision=precision)

  state = visit_shard(empty_state(chunk_rows, keep, bf16), database, me)
  if num_devices > 1:
    # Device p receives the shard of p + 1, so at step t it holds shard p + t.
    ring = [(p, (p - 1) % num_devices) for p in range(num_devices)]

    def ring_step(t, carry):
      state, shard = carry
      shard = lax.ppermute(shard, sharding.ROWS, ring)
      return visit_shard(state, shard, (me + t) % num_devices), shard

    state, _ = lax.fori_loop(1, num_devices, ring_step, (state, database))
  return finalize(state, q_chunk, k, database_residual[0])


@functools.lru_cache(maxsize=64)
def _search_fn(mesh: Mesh, k: int, keep: int, query_tile: int, database_tile: int, chunk_rows: int,
               num_database: int, precision: str, kernel: str):
  """The jitted, sharded chunk search for one static configuration."""
  row, replicated = PartitionSpec(sharding.ROWS), PartitionSpec()
  body = functools.partial(
      _chunk_search, k=k, keep=keep, query_tile=query_tile, database_tile=database_tile,
      chunk_rows=chunk_rows, num_database=num_database, num_devices=sharding.mesh_size(mesh),
      precision=precision, kernel=kernel)
  return sharding.per_device(body, mesh, (row, row, row, replicated, replicated), (row, row, row))


def search(database: DeviceRows, queries: DeviceRows, query_ids: Optional[np.ndarray], k: int, *,
           mesh: Mesh, settings: SearchSettings) -> Neighbors:
  """Exact k-NN of placed query rows against placed database rows.

  Args:
    database: unit database rows on `mesh`; its tile must hold >= the number of
      candidates kept (`settings.candidates_kept(k)`).
    queries: unit query rows on `mesh` (may be `database` itself).
    query_ids: int [Nq], the database row each query must not return (its own
      index), or None to exclude nothing.
    k: neighbours per query.
    mesh: the 1-D mesh both are placed on.
    settings: precision, margin and kernel (`settings.symmetric` does not
      apply here: this is the ring path).

  Returns:
    Neighbors with indices int32 [Nq, k] and scores float32 [Nq, k].
  """
  keep = settings.candidates_kept(k)
  kernel = settings.kernel_for(database.host.shape[1])
  if keep > database.tiling.tile:
    raise ValueError(f"database tile of {database.tiling.tile} rows cannot hold {keep} candidates; "
                     f"place it with min_tile >= {keep}")
  num_devices, tiling = sharding.mesh_size(mesh), queries.tiling
  num_padded = num_devices * tiling.rows_per_device
  ids = np.full(queries.num_rows, _NO_SELF, np.int32) if query_ids is None else np.asarray(query_ids, np.int32)
  ids_array = sharding.put_rows(lambda start, stop: ids[start:stop], queries.num_rows, num_padded, (),
                                np.int32, mesh, fill=_NO_SELF)
  residual = float(max_bf16_residual(database.array)) if settings.bf16 else 0.0
  residual_array = sharding.replicated_scalar(residual, mesh, np.float32)
  search_chunk = _search_fn(mesh, k, keep, tiling.tile, database.tiling.tile, tiling.chunk_rows,
                            database.num_rows, settings.precision, kernel)

  indices = np.empty((num_padded, k), np.int32)
  scores = np.empty((num_padded, k), np.float32)
  certified = np.empty((num_padded,), bool)
  progress = Progress("k-NN queries", total=queries.num_rows)
  rows = tiling.chunk_rows

  def launch(chunk):
    start = sharding.replicated_scalar(chunk * rows, mesh, np.int32)
    return search_chunk(queries.array, ids_array, database.array, start, residual_array)

  pending = launch(0)
  for chunk in range(tiling.num_chunks):
    # Dispatch the next chunk before waiting on this one, so devices stay busy.
    result, pending = pending, (launch(chunk + 1) if chunk + 1 < tiling.num_chunks else None)
    host_result = [sharding.to_host(a) for a in result]
    for device in range(num_devices):
      dest = device * tiling.rows_per_device + chunk * rows
      for out, got in zip((indices, scores, certified), host_result):
        out[dest:dest + rows] = got[device * rows:(device + 1) * rows]
    progress.advance(min(num_devices * rows, queries.num_rows - progress.done))

  indices, scores, certified = indices[:queries.num_rows], scores[:queries.num_rows], certified[:queries.num_rows]
  return recompute_uncertified(database, queries.host, query_ids, indices, scores, certified, k, mesh=mesh,
                               settings=settings)


def recompute_uncertified(database: DeviceRows, query_host: np.ndarray, query_ids: Optional[np.ndarray],
                          indices: np.ndarray, scores: np.ndarray, certified: np.ndarray, k: int, *,
                          mesh: Mesh, settings: SearchSettings) -> Neighbors:
  """Recomputes in float32 the rows whose bf16 candidates were not certified.

  Args:
    database: the placed database rows.
    settings: the search's settings (the recomputation runs them in float32 on the XLA path).
    query_host: [Nq, d] host query rows; query_ids: int [Nq] or None (see `search`).
    indices, scores: int32 / float32 [Nq, k] results, updated in place.
    certified: bool [Nq].
  """
  rows = np.flatnonzero(~certified)
  if len(rows):
    redo_queries = place_unit_rows(query_host[rows], mesh, block=database.tiling.tile, chunk_tiles=1)
    redo_ids = None if query_ids is None else np.asarray(query_ids)[rows]
    redo = search(database, redo_queries, redo_ids, k, mesh=mesh, settings=settings.float32_recompute())
    indices[rows], scores[rows] = redo.indices, redo.scores
  return Neighbors(indices, scores, num_recomputed=len(rows))
