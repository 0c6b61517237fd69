"""Fused similarity + running top-k (Pallas): the score tile never leaves the chip.

One program answers `query_block` query rows. It walks the database in tiles
of `database_block` rows; for each tile it computes the bf16 × bf16 → float32
scores in registers and merges them into a running top-K kept on chip, where K
is the number of candidates rounded up to a power of two. The merge is a
threshold test: only entries above the row's current K-th best can enter, and
each entering entry replaces the worst slot, so a tile with nothing above any
row's threshold costs one comparison per score and no merge work at all.
Database tiles are visited in increasing row order, so an entry equal to the
current worst (which has a lower index) never enters: ties stay with the lower
index. The kernel returns the unsorted top-K; `select` sorts it.

The candidates are bf16 scores; `ring.search` rescores them in float32
and certifies the result (see there), as for the XLA path. On GPU this runs
through Triton; on CPU it runs in Pallas interpret mode (tests).
"""
import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pltriton

from facequal_jax.knn import selection


def _kernel(q_ref, ids_ref, x_ref, first_ref, keys_ref, index_ref, *, database_block: int, dim_block: int,
            num_rows: int, slots: int):
  """One program: q_ref [Bq, d], ids_ref [Bq, 1], x_ref [S, d], first_ref [1, 1] → keys_ref, index_ref [Bq, slots]."""
  first_row = first_ref[0, 0]
  query_ids = ids_ref[...]
  rows, dim = q_ref.shape
  slot = lax.broadcasted_iota(jnp.int32, (rows, slots), 1)
  column = lax.broadcasted_iota(jnp.int32, (rows, database_block), 1)

  def tile_scores(j):
    """float32 [Bq, Bd] scores of database tile j, accumulated over `dim_block`-wide slices of d."""
    def accumulate(c, scores):
      q = q_ref[:, pl.ds(c * dim_block, dim_block)].astype(jnp.bfloat16)
      x = x_ref[pl.ds(j * database_block, database_block), pl.ds(c * dim_block, dim_block)].astype(jnp.bfloat16)
      return scores + lax.dot_general(q, x, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32)
    return lax.fori_loop(0, dim // dim_block, accumulate, jnp.zeros((rows, database_block), jnp.float32))

  def tile(j, state):
    keys, index = state
    scores = tile_scores(j)
    global_column = first_row + j * database_block + column
    excluded = (global_column == query_ids) | (global_column >= num_rows)
    scores = jnp.where(excluded, -jnp.inf, scores)

    def has_entry(carry):
      scores, keys, index = carry
      low, _ = selection.last_in_order(keys, index)
      return jnp.max(jnp.where(scores > low, 1, 0)) > 0

    def enter_best(carry):
      scores, keys, index = carry
      low, target = selection.last_in_order(keys, index)
      best = jnp.max(scores, axis=1, keepdims=True)
      position = jnp.min(jnp.where(scores == best, column, database_block), axis=1, keepdims=True)
      enters = best > low
      replace = enters & (slot == target)
      keys = jnp.where(replace, best, keys)
      index = jnp.where(replace, first_row + j * database_block + position, index)
      scores = jnp.where(enters & (column == position), -jnp.inf, scores)
      return scores, keys, index

    _, keys, index = lax.while_loop(has_entry, enter_best, (scores, keys, index))
    return keys, index

  empty = (jnp.full((rows, slots), -jnp.inf, jnp.float32), jnp.full((rows, slots), selection.EMPTY_INDEX, jnp.int32))
  keys, index = lax.fori_loop(0, x_ref.shape[0] // database_block, tile, empty)
  keys_ref[...] = keys
  index_ref[...] = index


@functools.partial(jax.jit, static_argnames=("keep", "num_rows", "query_block", "database_block", "dim_block",
                                             "num_warps", "num_stages", "interpret"))
def select(queries: jax.Array, query_ids: jax.Array, database: jax.Array, first_row: jax.Array, *, keep: int,
           num_rows: int, query_block: int = 64, database_block: int = 64, dim_block: int = 0,
           num_warps: int = 4, num_stages: int = 3, interpret: bool = False):
  """Top-`keep` bf16 candidates of each query among consecutive database rows.

  Args:
    queries: float32 [Q, d] unit rows, Q a multiple of `query_block`.
    query_ids: int32 [Q] row each query must not return (-1: none).
    database: float32 or bf16 [S, d] unit rows first_row … first_row + S − 1, S a
      multiple of `database_block`; rows >= num_rows are padding.
    first_row: int32 scalar.
    keep: candidates per query.
    num_rows: real database rows overall.
    query_block, database_block: rows of one program's query block and of the
      database tiles it walks.
    dim_block: columns multiplied per step (a divisor of d; 0: all of d). Small
      slices let Triton pipeline the loads instead of staging a whole
      [database_block, d] tile in shared memory.
    num_warps, num_stages: Triton launch parameters (GPU only).

  Returns:
    (keys float32 [Q, keep], indices int32 [Q, keep]) ordered by key
    descending, index ascending; -inf / EMPTY_INDEX where fewer exist.
  """
  slots = pl.next_power_of_2(keep)
  rows, dim = queries.shape
  dim_block = dim_block or dim
  if dim % dim_block:
    raise ValueError(f"dim_block {dim_block} does not divide d = {dim}")
  kernel = functools.partial(_kernel, database_block=database_block, dim_block=dim_block, num_rows=num_rows,
                             slots=slots)
  keys, index = pl.pallas_call(
      kernel,
      out_shape=(jax.ShapeDtypeStruct((rows, slots), jnp.float32), jax.ShapeDtypeStruct((rows, slots), jnp.int32)),
      grid=(rows // query_block,),
      in_specs=[pl.BlockSpec((query_block, dim), lambda i: (i, 0)),
                pl.BlockSpec((query_block, 1), lambda i: (i, 0)),
                pl.BlockSpec(database.shape, lambda i: (0, 0)),
                pl.BlockSpec((1, 1), lambda i: (0, 0))],
      out_specs=(pl.BlockSpec((query_block, slots), lambda i: (i, 0)),
                 pl.BlockSpec((query_block, slots), lambda i: (i, 0))),
      interpret=interpret,
      compiler_params=None if interpret else pltriton.CompilerParams(num_warps=num_warps, num_stages=num_stages),
  )(queries, query_ids.reshape(-1, 1), database, jnp.reshape(first_row, (1, 1)).astype(jnp.int32))
  keys, index = selection.sort_rows(keys, index)
  return keys[:, :keep], index[:, :keep]
