"""Out-of-core exact k-NN: embeddings larger than device memory, streamed from host.

The rows stay on the host (a numpy array or `np.load(path, mmap_mode="r")`).
Queries are answered in passes of `pass_rows` rows, sharded over the mesh; for
each pass the database streams through the devices in blocks of `block_rows`
rows (every device sees the whole block and scores its own queries against
it). A background thread reads and converts the next block while the devices
work on the current one, and the transfer of block j + 1 is issued before the
result of block j is awaited (double buffering). Device memory is O(pass_rows ·
(d + k) / devices + 2 · block_rows · d), whatever N.

With `checkpoint_dir`, each finished pass is written atomically; a preempted
run restarted with the same arguments redoes only the passes that are missing.
Results equal `knn` (same tie rule, same bf16 certification and float32
recomputation).
"""
import concurrent.futures
import functools
import hashlib
import json
import os
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import Mesh, PartitionSpec

from facequal_jax import checks, files, sharding
from facequal_jax.knn.candidates import Neighbors, empty_state_on, finalize, max_bf16_residual, visit_tiles
from facequal_jax.knn.settings import SearchSettings
from facequal_jax.knn.tiling import plan_tiling, unit_rows
from facequal_jax.progress import Progress

MANIFEST = "knn_stream.json"


def _visit_block(queries, query_ids, state, block, block_first, residual, *, query_tile, database_tile,
                 keep, num_rows, precision):
  """Per-device body: merges one replicated database block into the local queries' state.

  Args:
    queries: float32 [Sq, d] unit query rows; query_ids: int32 [Sq] (-1: none).
    state: running state of the Sq queries.
    block: float32 [Bk, d] unit database rows (replicated), rows
      block_first … block_first + Bk − 1; rows >= num_rows are padding.
    block_first: int32 [1]; residual: float32 [1] running max bf16 residual.

  Returns:
    (state, residual) updated.
  """
  state = visit_tiles(queries, query_ids, state, block, block_first[0], query_tile=query_tile,
                      database_tile=database_tile, keep=keep, num_database=num_rows, precision=precision)
  if precision == "bfloat16":
    residual = jnp.maximum(residual, max_bf16_residual(block))
  return state, residual


@functools.lru_cache(maxsize=16)
def _visit_fn(mesh: Mesh, query_tile: int, database_tile: int, keep: int, num_rows: int, precision: str):
  row, replicated = PartitionSpec(sharding.ROWS), PartitionSpec()
  body = functools.partial(_visit_block, query_tile=query_tile, database_tile=database_tile, keep=keep,
                           num_rows=num_rows, precision=precision)
  return sharding.per_device(body, mesh, (row, row, row, replicated, replicated, replicated), (row, replicated),
                             donate_argnums=(2,))


@functools.lru_cache(maxsize=16)
def _finish_fn(mesh: Mesh, k: int):
  row, replicated = PartitionSpec(sharding.ROWS), PartitionSpec()
  body = lambda queries, state, residual: finalize(state, queries, k, residual[0])
  return sharding.per_device(body, mesh, (row, row, replicated), (row, row, row))


def _manifest(embeddings: np.ndarray, query_rows: np.ndarray, settings: dict) -> dict:
  sample = np.ascontiguousarray(embeddings[:: max(1, len(embeddings) // 1024)])
  digest = hashlib.sha256(sample.tobytes() + query_rows.tobytes()).hexdigest()
  return dict(settings, shape=list(embeddings.shape), sha256_of_sample_and_queries=digest)


def _claim(checkpoint_dir: str, manifest: dict) -> None:
  """Makes `checkpoint_dir` hold passes of the run `manifest` describes; refuses one that holds another run."""
  os.makedirs(checkpoint_dir, exist_ok=True)
  path = os.path.join(checkpoint_dir, MANIFEST)
  if not os.path.exists(path):
    files.write_json(path, manifest)
    return
  with open(path) as f:
    if json.load(f) != manifest:
      raise ValueError(f"{checkpoint_dir!r} holds a k-NN run with other data or settings; use a new directory")


def streaming_knn(embeddings: np.ndarray, k: int, *, query_rows: Optional[np.ndarray] = None,
                  mesh: Optional[Mesh] = None, settings: Optional[SearchSettings] = None,
                  precision: Optional[str] = None, margin: Optional[int] = None, block: Optional[int] = None,
                  pass_rows: int = 65536, block_rows: int = 65536, checkpoint_dir: Optional[str] = None) -> Neighbors:
  """Exact self k-NN (own index excluded) of host rows streamed through the devices.

  Args:
    embeddings: [N, d] host rows, any float dtype; a memory-mapped array is read
      block by block, never whole.
    k: neighbours per query.
    query_rows: rows to answer (default: all), searched against all rows.
    mesh: 1-D mesh (default: all devices).
    settings: `SearchSettings`; precision, margin and block (rows per query /
      database tile inside a streamed block) apply. The streamed search always
      runs the XLA tiles: symmetric and chunk_tiles do not apply, and a Pallas
      kernel is refused.
    precision, margin, block: override those fields of `settings`.
    pass_rows: query rows per pass (over all devices).
    block_rows: database rows per streamed block.
    checkpoint_dir: where finished passes are kept, for resuming.

  Returns:
    Neighbors for `query_rows` (indices int32 [Nq, k], scores float32 [Nq, k]).
  """
  settings = SearchSettings.merged(settings, precision=precision, margin=margin, block=block)
  if settings.kernel not in ("auto", "xla"):
    raise ValueError(f"streaming_knn runs the XLA tiles; kernel={settings.kernel!r} does not apply")
  embeddings = checks.check_embeddings(embeddings)
  num_rows = embeddings.shape[0]
  checks.check_k(k, num_rows - 1)
  query_rows = np.arange(num_rows) if query_rows is None else np.asarray(query_rows, np.int64)
  mesh = mesh or sharding.make_mesh()
  num_devices = sharding.mesh_size(mesh)
  keep, tile = settings.candidates_kept(k), settings.block

  query_plan = plan_tiling(min(pass_rows, len(query_rows)), num_devices, tile, 1 << 30)
  block_plan = plan_tiling(min(block_rows, num_rows), 1, tile, 1 << 30, min_tile=keep)
  pass_size = query_plan.rows_per_device * num_devices
  num_passes = -(-len(query_rows) // pass_size)
  visit = _visit_fn(mesh, query_plan.tile, block_plan.tile, keep, num_rows, settings.precision)
  finish = _finish_fn(mesh, k)
  replicated = sharding.replicated(mesh)

  if checkpoint_dir:
    _claim(checkpoint_dir, _manifest(embeddings, query_rows, dict(
        k=k, precision=settings.precision, margin=settings.margin, pass_size=pass_size,
        block_rows=block_plan.rows_per_device, devices=num_devices)))

  def read_block(start):
    rows = np.zeros((block_plan.rows_per_device, embeddings.shape[1]), np.float32)
    stop = min(start + block_plan.rows_per_device, num_rows)
    rows[:stop - start] = embeddings[start:stop]
    return rows

  place_block = lambda rows: unit_rows(jax.device_put(rows, replicated))
  block_starts = range(0, num_rows, block_plan.rows_per_device)
  indices, scores = np.empty((len(query_rows), k), np.int32), np.empty((len(query_rows), k), np.float32)
  certified = np.empty((len(query_rows),), bool)
  progress = Progress("streamed k-NN queries", total=len(query_rows))
  with concurrent.futures.ThreadPoolExecutor(1) as reader:
    for number in range(num_passes):
      rows = query_rows[number * pass_size:(number + 1) * pass_size]
      path = os.path.join(checkpoint_dir, f"pass_{number:06d}.npz") if checkpoint_dir else None
      if path and os.path.exists(path):
        with np.load(path, allow_pickle=False) as done:
          part = (done["indices"], done["scores"], done["certified"])
      else:
        part = _one_pass(embeddings, rows, pass_size, mesh, visit, finish, place_block, reader, read_block,
                         block_starts, keep, settings.bf16)
        if path:
          files.write_npz(path, indices=part[0], scores=part[1], certified=part[2])
      span = slice(number * pass_size, number * pass_size + len(rows))
      indices[span], scores[span], certified[span] = part
      progress.advance(len(rows))

  uncertified = np.flatnonzero(~certified)
  if len(uncertified):
    logging.info("streamed k-NN: %d rows not certified by bf16, recomputing in float32", len(uncertified))
    redo = streaming_knn(embeddings, k, query_rows=query_rows[uncertified], mesh=mesh,
                         settings=settings.float32_recompute(), pass_rows=pass_rows, block_rows=block_rows)
    indices[uncertified], scores[uncertified] = redo.indices, redo.scores
  return Neighbors(indices, scores, num_recomputed=len(uncertified))


def _one_pass(embeddings, rows, pass_size, mesh, visit, finish, place_block, reader, read_block, block_starts,
              keep, bf16):
  """Answers query `rows` (at most `pass_size`) against every streamed block."""
  ids = np.full(pass_size, -1, np.int32)
  ids[:len(rows)] = rows
  queries_host = np.zeros((pass_size, embeddings.shape[1]), np.float32)
  queries_host[:len(rows)] = embeddings[rows]
  queries = unit_rows(sharding.put_rows(lambda a, b: queries_host[a:b], pass_size, pass_size,
                                        queries_host.shape[1:], np.float32, mesh))
  query_ids = sharding.put_rows(lambda a, b: ids[a:b], pass_size, pass_size, (), np.int32, mesh)
  state = empty_state_on(mesh, pass_size, keep, bf16)
  residual = sharding.replicated_scalar(0.0, mesh, np.float32)
  pending = reader.submit(read_block, block_starts[0])
  for position, start in enumerate(block_starts):
    block = place_block(pending.result())  # transfer of this block is issued now …
    if position + 1 < len(block_starts):
      pending = reader.submit(read_block, block_starts[position + 1])  # … while the next one is read
    first = sharding.replicated_scalar(start, mesh, np.int32)
    state, residual = visit(queries, query_ids, state, block, first, residual)
  found = finish(queries, state, residual)
  return tuple(np.array(sharding.to_host(a, len(rows))) for a in found)
