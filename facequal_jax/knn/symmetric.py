"""Symmetric all-pairs self k-NN: every tile pair is scored once, for both sides.

For self search the score of (i, j) equals that of (j, i), so a tile pair
(A, B) gives row candidates to A (its rows) and to B (its columns). On one
device the tiles (a, b ≥ a) of the shard are visited once — half the FLOPs.

Across a ring of P devices, shard q travels with an accumulator for its rows.
At ring step t device p holds shard p + t: its own rows take candidates from the
row side of each tile pair and the travelling accumulator from the column side.
After ⌊P/2⌋ steps every pair of shards has met once (for even P the last step
pairs p with p + P/2 from both ends, so there each side updates only its own
rows); the accumulators travel home and merge with the home state.

Work is split into items (a ring step × a range of row tiles), one jitted call
each, so progress can be logged between them.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, PartitionSpec

from facequal_jax import sharding
from facequal_jax.knn.candidates import (Neighbors, candidates, empty_state_on, finalize, max_bf16_residual,
                                         merge_candidates, tile_scores)
from facequal_jax.knn.ring import recompute_uncertified
from facequal_jax.knn.settings import SearchSettings
from facequal_jax.knn.tiling import DeviceRows
from facequal_jax.progress import Progress


def _slice(state, start, size):
  return tuple(lax.dynamic_slice_in_dim(s, start, size) for s in state)


def _update(state, part, start):
  return tuple(lax.dynamic_update_slice_in_dim(s, p, start, axis=0) for s, p in zip(state, part))


def _visit(own, travelling, home, away, step, first_tile, *, tiles_per_call, tile, keep, num_rows,
           num_devices, precision, diagonal, columns_too, seed):
  """Per-device body: row tiles [first_tile, first_tile + tiles_per_call) of the own
  shard against the travelling shard, or (`diagonal`, step 0) against the own
  shard's tiles after the same one, or (`seed`, before all else) against themselves alone.

  Args:
    own, travelling: float32 [S, d] unit rows (the same shard when `diagonal`).
    home, away: running states (see `candidates.empty_state`) of own rows and of
      the travelling shard's rows (`away` is untouched when `diagonal`).
    step, first_tile: int32 [1] ring step and first row tile of this item.
    diagonal: step 0, where column candidates belong to own rows too.
    seed: each row tile against itself (rows only): every row then enters the walk holding its best
      candidates among its own tile, whose last is the threshold that lets the first tiles it meets — on
      the column side too — skip the full selection.
    columns_too: whether column candidates are used at all (False on the last
      step of an even ring, which both ends visit).

  Returns:
    (home, away) updated.
  """
  me = lax.axis_index(sharding.ROWS)
  rows_per_shard = own.shape[0]
  own_first = me * rows_per_shard
  away_first = ((me + step[0]) % num_devices) * rows_per_shard
  bf16 = precision == "bfloat16"
  num_tiles = rows_per_shard // tile

  def pair(a, b, row_state, column_state):
    """Scores own tile a against travelling tile b; returns both sides' updated states."""
    q = lax.dynamic_slice_in_dim(own, a * tile, tile)
    x = lax.dynamic_slice_in_dim(travelling, b * tile, tile)
    row_first = (own_first + a * tile).astype(jnp.int32)
    column_first = (away_first + b * tile).astype(jnp.int32)
    row_ids = row_first + jnp.arange(tile, dtype=jnp.int32)
    column_ids = column_first + jnp.arange(tile, dtype=jnp.int32)
    excluded = ((row_ids[:, None] == column_ids[None, :]) | (row_ids >= num_rows)[:, None]
                | (column_ids >= num_rows)[None, :])
    scores = jnp.where(excluded, -jnp.inf, tile_scores(q, x, precision))
    row_state = merge_candidates(row_state, candidates(scores, column_first, keep, q, x, bf16, row_state), keep)
    if column_state is not None:
      found = candidates(scores, row_first, keep, q, x, bf16, column_state, columns=True)
      column_state = merge_candidates(column_state, found, keep)
    return row_state, column_state

  def row_tile(i, carry):
    home, away = carry
    a = first_tile[0] + i
    row_state = _slice(home, a * tile, tile)
    if seed:  # the (a, a) tile: its column candidates would repeat its row candidates
      row_state, _ = pair(a, a, row_state, None)
      return _update(home, row_state, a * tile), away

    def column_tile(b, carry):
      row_state, home, away = carry
      target = home if diagonal else away
      if columns_too:
        row_state, column_state = pair(a, b, row_state, _slice(target, b * tile, tile))
        target = _update(target, column_state, b * tile)
      else:
        row_state, _ = pair(a, b, row_state, None)
      return (row_state, target, away) if diagonal else (row_state, home, target)

    start = a + 1 if diagonal else 0
    row_state, home, away = lax.fori_loop(start, num_tiles, column_tile, (row_state, home, away))
    return _update(home, row_state, a * tile), away

  count = jnp.minimum(tiles_per_call, num_tiles - first_tile[0])
  return lax.fori_loop(0, count, row_tile, (home, away))


@functools.lru_cache(maxsize=32)
def _visit_fn(mesh: Mesh, tiles_per_call: int, tile: int, keep: int, num_rows: int, precision: str,
              diagonal: bool, columns_too: bool, seed: bool):
  row, replicated = PartitionSpec(sharding.ROWS), PartitionSpec()
  body = functools.partial(_visit, tiles_per_call=tiles_per_call, tile=tile, keep=keep, num_rows=num_rows,
                           num_devices=sharding.mesh_size(mesh), precision=precision, diagonal=diagonal,
                           columns_too=columns_too, seed=seed)
  return sharding.per_device(body, mesh, (row, row, row, row, replicated, replicated), (row, row),
                             donate_argnums=(2, 3))


@functools.lru_cache(maxsize=32)
def _shift_fn(mesh: Mesh, shift: int):
  """Moves every device's arrays to device p − shift (so p then holds those of p + shift)."""
  num_devices = sharding.mesh_size(mesh)
  ring = [(p, (p - shift) % num_devices) for p in range(num_devices)]
  row = PartitionSpec(sharding.ROWS)
  body = lambda tree: jax.tree.map(lambda a: lax.ppermute(a, sharding.ROWS, ring), tree)
  return sharding.per_device(body, mesh, (row,), row)


@functools.lru_cache(maxsize=32)
def _finish_fn(mesh: Mesh, k: int, keep: int):
  row, replicated = PartitionSpec(sharding.ROWS), PartitionSpec()

  def body(rows, home, away, residual):
    return finalize(merge_candidates(home, away, keep), rows, k, residual[0])

  return sharding.per_device(body, mesh, (row, row, row, replicated), (row, row, row))


def symmetric_search(database: DeviceRows, k: int, *, mesh: Mesh, settings: SearchSettings) -> Neighbors:
  """Self k-NN of placed rows (each row's own index excluded) with half the score FLOPs (XLA path).

  Same result as `ring.search(database, database, arange(N), k, …)`.
  """
  keep, precision = settings.candidates_kept(k), settings.precision
  tiling, num_devices = database.tiling, sharding.mesh_size(mesh)
  tile, num_tiles = tiling.tile, tiling.rows_per_device // tiling.tile
  if keep > tile:
    raise ValueError(f"tile of {tile} rows cannot hold {keep} candidates")
  bf16 = settings.bf16
  padded = num_devices * tiling.rows_per_device
  home, away = empty_state_on(mesh, padded, keep, bf16), empty_state_on(mesh, padded, keep, bf16)
  last_step = num_devices // 2
  chunks = range(0, num_tiles, tiling.chunk_tiles)
  items = [(0, first, True) for first in chunks] + [(step, first, False) for step in range(last_step + 1)
                                                    for first in chunks]
  pairs = lambda step, first, seed: sum(1 if seed else (num_tiles - a - 1) if step == 0 else num_tiles
                                        for a in range(first, min(first + tiling.chunk_tiles, num_tiles)))
  progress = Progress("k-NN tile pairs (symmetric)", total=sum(pairs(*item) for item in items), unit="tiles")
  travelling, shift = database.array, _shift_fn(mesh, 1)
  for step, first, seed in items:
    if step > 0 and first == 0:
      travelling, away = shift((travelling, away))
    columns_too = not (num_devices % 2 == 0 and step == last_step and step > 0)
    visit = _visit_fn(mesh, tiling.chunk_tiles, tile, keep, database.num_rows, precision, step == 0, columns_too,
                      seed)
    home, away = visit(database.array, travelling, home, away, sharding.replicated_scalar(step, mesh, np.int32),
                       sharding.replicated_scalar(first, mesh, np.int32))
    jax.block_until_ready(home)  # progress counts finished work (the next call takes this one's donated state)
    progress.advance(pairs(step, first, seed))
  if last_step > 0:
    away = _shift_fn(mesh, -last_step)(away)  # each accumulator goes back to its shard's home
  residual = sharding.replicated_scalar(float(max_bf16_residual(database.array)) if bf16 else 0.0, mesh, np.float32)
  indices, scores, certified = (np.array(sharding.to_host(a, database.num_rows))
                                for a in _finish_fn(mesh, k, keep)(database.array, home, away, residual))
  return recompute_uncertified(database, database.host, np.arange(database.num_rows), indices, scores, certified, k,
                               mesh=mesh, settings=settings)
