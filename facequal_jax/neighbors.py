"""Exact cosine k-nearest neighbours, tiled and sharded over a ring of devices.

Layout: the database (N × d, unit rows) is sharded by rows over the 1-D mesh.
Each device answers its own query rows. It scores them against the database
shard it holds, one (query tile × database tile) block at a time, keeps the k
best per tile and merges them into a running top-k; then it passes its database
shard to the previous device (`ppermute`) and receives the next one. After one
trip round the ring every query has seen every database row, yet no device ever
held more than one shard, and no N × N (or even N-row) score array exists.

Selection is exact with ties broken by lower row index (see `topk.py`), and
never happens across the sharded axis: each device selects locally.

Precision modes:
  float32:  scores are float32 dot products at HIGHEST precision.
  bfloat16: bf16 operands with float32 accumulation pick k + margin candidates
    per row, which are rescored in float32 and re-selected. A row's result is
    certified exact when its k-th rescored score beats the bf16 score of its
    last candidate by more than the worst bf16 error (a Cauchy–Schwarz bound,
    see `_bf16_error_bound`); rows that cannot be certified are recomputed in
    float32. The returned neighbours are therefore always the float32 top-k.

Per shard, candidates come from tiled XLA dots and selections (`visit_tiles`)
or from the fused Pallas kernel (`fused.py`). Queries are answered in chunks of
rows per device, one jitted call per chunk, so long searches log progress
(rows/s, ETA). For self search, `symmetric.py` halves the work.
"""
import dataclasses
import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, PartitionSpec

from facequal_jax import fused, sharding, topk
from facequal_jax.placement import DeviceRows, place_unit_rows
from facequal_jax.progress import Progress

PRECISIONS = ("float32", "bfloat16")
_FLOAT32_EPS = 2.0 ** -24
# Padding query rows exclude this index, which no database row has.
_NO_SELF = -1


@dataclasses.dataclass(frozen=True)
class Neighbors:
  """k-NN result for Nq query rows.

  Attributes:
    indices: int32 [Nq, k], database row indices, best first (ties: lower index).
    scores: float32 [Nq, k], cosine similarities, descending.
    num_recomputed: rows whose bf16 candidates could not be certified complete
      and were recomputed in float32 (always 0 in float32 mode).
  """
  indices: np.ndarray
  scores: np.ndarray
  num_recomputed: int = 0


def _bf16_residual(x: jax.Array) -> jax.Array:
  """‖x − bf16(x)‖₂ per row: [B, d] float32 → [B] float32."""
  r = x - x.astype(jnp.bfloat16).astype(jnp.float32)
  return jnp.sqrt(jnp.sum(r * r, axis=1))


@jax.jit
def max_bf16_residual(x: jax.Array) -> jax.Array:
  return jnp.max(_bf16_residual(x))


def _bf16_error_bound(query_residual: jax.Array, database_residual: jax.Array, dim: int) -> jax.Array:
  """Largest amount by which a float32 score can exceed its bf16 score.

  For unit q, x with bf16 roundings q̂, x̂: q·x − q̂·x̂ = (q − q̂)·x + q̂·(x − x̂)
  ≤ r_q + (1 + r_q)·R (Cauchy–Schwarz, R = max database residual). Each float32
  accumulation over d terms adds at most d·2⁻²⁴·‖q‖‖x‖; 4·d·2⁻²⁴ covers both
  accumulations with a factor two to spare for reduced-precision accumulators.
  """
  return query_residual + (1.0 + query_residual) * database_residual + 4.0 * dim * _FLOAT32_EPS


def tile_scores(q: jax.Array, x: jax.Array, precision: str) -> jax.Array:
  """Cosine scores of a query tile [Bq, d] against a database tile [Bd, d] → float32 [Bq, Bd]."""
  if precision == "bfloat16":
    return lax.dot_general(q.astype(jnp.bfloat16), x.astype(jnp.bfloat16), (((1,), (1,)), ((), ())),
                           preferred_element_type=jnp.float32)
  return lax.dot_general(q, x, (((1,), (1,)), ((), ())), precision=lax.Precision.HIGHEST,
                         preferred_element_type=jnp.float32)


def _rescore(q: jax.Array, x: jax.Array, positions: jax.Array, keep: jax.Array) -> jax.Array:
  """Float32 scores of chosen database rows.

  Args:
    q: float32 [Bq, d]; x: float32 [Bd, d] database tile;
    positions: int32 [Bq, K] rows of `x`; keep: bool [Bq, K], False → -inf.

  Returns:
    float32 [Bq, K].
  """
  chosen = jnp.take(x, jnp.clip(positions, 0, x.shape[0] - 1), axis=0)
  exact = jnp.einsum("bd,bkd->bk", q, chosen, precision=lax.Precision.HIGHEST,
                     preferred_element_type=jnp.float32)
  return jnp.where(keep, exact, -jnp.inf)


def candidates(scores: jax.Array, first: jax.Array, keep: int, q: jax.Array, x: jax.Array, bf16: bool):
  """The best `keep` columns of each row of a score tile, rescored in float32 in bf16 mode.

  Args:
    scores: float32 [Bq, Bd] (excluded entries -inf); column t is database row
      `first + t`.
    first: int32 scalar.
    keep: candidates per row.
    q, x: float32 unit rows of the tile's queries [Bq, d] and columns [Bd, d].
    bf16: whether `scores` came from bf16 operands (then float32 rescores ride along).

  Returns:
    (keys [Bq, keep], indices [Bq, keep]) plus, in bf16 mode, float32 rescores.
  """
  values, indices = topk.select_in_tile(scores, first, keep)
  if not bf16:
    return values, indices
  return values, indices, _rescore(q, x, indices - first, values > -jnp.inf)


def empty_state(rows: int, keep: int, bf16: bool):
  """Running top-`keep` state of `rows` rows with no candidate yet."""
  empty_scores = jnp.full((rows, keep), -jnp.inf, jnp.float32)
  state = (empty_scores, jnp.full((rows, keep), topk.EMPTY_INDEX, jnp.int32))
  return state + (empty_scores,) if bf16 else state


def empty_state_on(mesh: Mesh, rows: int, keep: int, bf16: bool):
  """`empty_state` of `rows` rows created directly as row-sharded arrays on `mesh`."""
  return jax.jit(lambda: empty_state(rows, keep, bf16), out_shardings=sharding.row_sharding(mesh))()


def merge_candidates(state, found, keep: int):
  """Merges candidate lists (same layout as `empty_state`) and keeps the best `keep`."""
  payload = ((state[2], found[2]),) if len(state) == 3 else ()
  return topk.merge(state[0], state[1], found[0], found[1], keep, *payload)


def finalize(state, rows: jax.Array, k: int, database_residual: jax.Array):
  """Final top-k of a search state.

  Args:
    state: running state of R rows (see `empty_state`).
    rows: float32 [R, d] the unit query rows (for the bf16 error bound).
    k: neighbours returned.
    database_residual: float32 scalar, max ‖x − bf16(x)‖ over database rows.

  Returns:
    (indices int32 [R, k], scores float32 [R, k], certified bool [R]).
  """
  if len(state) == 2:
    return state[1][:, :k], state[0][:, :k], jnp.ones((rows.shape[0],), bool)
  candidate_scores, indices, exact = state
  exact, indices = topk.sort_rows(exact, indices)
  last_candidate = candidate_scores[:, -1]
  bound = _bf16_error_bound(_bf16_residual(rows), database_residual, rows.shape[1])
  # Every row outside the candidates has a bf16 score <= last_candidate, so its
  # float32 score is <= last_candidate + bound. A -inf last candidate means all
  # rows were candidates.
  certified = (last_candidate == -jnp.inf) | (exact[:, k - 1] > last_candidate + bound)
  return indices[:, :k], exact[:, :k], certified


def visit_tiles(queries, query_ids, state, database, database_first, *, query_tile: int, database_tile: int,
                keep: int, num_database: int, precision: str):
  """Merges every (query tile × database tile) block of consecutive database rows into `state`.

  Args:
    queries: float32 [Q, d] unit rows; query_ids: int32 [Q] row each must not
      return (-1: none).
    state: running state of the Q queries (see `empty_state`).
    database: float32 [S, d] unit rows database_first … database_first + S − 1;
      rows >= num_database are padding.
    database_first: int32 scalar.

  Returns:
    The updated state.
  """
  bf16 = precision == "bfloat16"

  def query_tile_step(i, state):
    q = lax.dynamic_slice_in_dim(queries, i * query_tile, query_tile)
    qid = lax.dynamic_slice_in_dim(query_ids, i * query_tile, query_tile)
    tile_state = tuple(lax.dynamic_slice_in_dim(s, i * query_tile, query_tile) for s in state)

    def database_tile_step(j, tile_state):
      x = lax.dynamic_slice_in_dim(database, j * database_tile, database_tile)
      first = (database_first + j * database_tile).astype(jnp.int32)
      columns = first + jnp.arange(database_tile, dtype=jnp.int32)
      excluded = (columns[None, :] == qid[:, None]) | (columns >= num_database)[None, :]
      scores = jnp.where(excluded, -jnp.inf, tile_scores(q, x, precision))
      return merge_candidates(tile_state, candidates(scores, first, keep, q, x, bf16), keep)

    tile_state = lax.fori_loop(0, database.shape[0] // database_tile, database_tile_step, tile_state)
    return tuple(lax.dynamic_update_slice_in_dim(s, t, i * query_tile, axis=0) for s, t in zip(state, tile_state))

  return lax.fori_loop(0, queries.shape[0] // query_tile, query_tile_step, state)


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
    scores = _rescore(q, shard, tile_indices - first, tile_keys > -jnp.inf)
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


def replicated_scalar(value, mesh: Mesh, dtype) -> jax.Array:
  """A [1] array replicated on every device of `mesh` (valid in multi-process runs)."""
  replicated = jax.sharding.NamedSharding(mesh, PartitionSpec())
  host = np.asarray([value], dtype=dtype)
  return jax.make_array_from_callback((1,), replicated, lambda index: host[index])


KERNELS = ("xla", "pallas", "pallas_interpret")


def search(database: DeviceRows, queries: DeviceRows, query_ids: Optional[np.ndarray], k: int, *,
           mesh: Mesh, precision: str = "float32", margin: int = 32, kernel: str = "xla") -> Neighbors:
  """Exact k-NN of placed query rows against placed database rows.

  Args:
    database: unit database rows on `mesh`; its tile must hold >= the number of
      candidates kept (k, or k + margin in bf16 mode).
    queries: unit query rows on `mesh` (may be `database` itself).
    query_ids: int [Nq], the database row each query must not return (its own
      index), or None to exclude nothing.
    k: neighbours per query.
    mesh: the 1-D mesh both are placed on.
    precision: "float32" or "bfloat16" (see module docstring).
    margin: extra bf16 candidates per row before float32 rescoring.
    kernel: one of KERNELS; the Pallas kernel needs precision "bfloat16".

  Returns:
    Neighbors with indices int32 [Nq, k] and scores float32 [Nq, k].
  """
  if precision not in PRECISIONS:
    raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
  if kernel not in KERNELS:
    raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
  if kernel != "xla" and precision != "bfloat16":
    raise ValueError(f"the fused Pallas kernel makes bf16 candidates: use precision='bfloat16' with kernel={kernel!r}")
  keep = k if precision == "float32" else k + margin
  if keep > database.tiling.tile:
    raise ValueError(f"database tile of {database.tiling.tile} rows cannot hold {keep} candidates; "
                     f"place it with min_tile >= {keep}")
  num_devices, tiling = sharding.mesh_size(mesh), queries.tiling
  num_padded = num_devices * tiling.rows_per_device
  ids = np.full(queries.num_rows, _NO_SELF, np.int32) if query_ids is None else np.asarray(query_ids, np.int32)
  ids_array = sharding.put_rows(lambda start, stop: ids[start:stop], queries.num_rows, num_padded, (),
                                np.int32, mesh, fill=_NO_SELF)
  residual = float(max_bf16_residual(database.array)) if precision == "bfloat16" else 0.0
  residual_array = replicated_scalar(residual, mesh, np.float32)
  search_chunk = _search_fn(mesh, k, keep, tiling.tile, database.tiling.tile, tiling.chunk_rows,
                            database.num_rows, precision, kernel)

  indices = np.empty((num_padded, k), np.int32)
  scores = np.empty((num_padded, k), np.float32)
  certified = np.empty((num_padded,), bool)
  progress = Progress("k-NN queries", total=queries.num_rows)
  rows = tiling.chunk_rows

  def launch(chunk):
    start = replicated_scalar(chunk * rows, mesh, np.int32)
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
  return recompute_uncertified(database, queries.host, query_ids, indices, scores, certified, k, mesh=mesh)


def recompute_uncertified(database: DeviceRows, query_host: np.ndarray, query_ids: Optional[np.ndarray],
                          indices: np.ndarray, scores: np.ndarray, certified: np.ndarray, k: int, *,
                          mesh: Mesh) -> Neighbors:
  """Recomputes in float32 the rows whose bf16 candidates were not certified.

  Args:
    database: the placed database rows.
    query_host: [Nq, d] host query rows; query_ids: int [Nq] or None (see `search`).
    indices, scores: int32 / float32 [Nq, k] results, updated in place.
    certified: bool [Nq].
  """
  rows = np.flatnonzero(~certified)
  if len(rows):
    redo_queries = place_unit_rows(query_host[rows], mesh, block=database.tiling.tile, chunk_tiles=1)
    redo_ids = None if query_ids is None else np.asarray(query_ids)[rows]
    redo = search(database, redo_queries, redo_ids, k, mesh=mesh, precision="float32")
    indices[rows], scores[rows] = redo.indices, redo.scores
  return Neighbors(indices, scores, num_recomputed=len(rows))
