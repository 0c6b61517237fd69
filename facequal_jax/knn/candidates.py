"""Candidate lists of the exact k-NN kernels: scoring tiles, selecting, merging, certifying.

Every search path (the ring in `ring.py`, the symmetric all-pairs walk in
`symmetric.py`, the streamed search in `streaming.py`) keeps, per query row, a
running list of its best `keep` candidates (`empty_state`) and merges the
candidates of each scored tile into it (`candidates`, `merge_candidates`);
`finalize` cuts the list to k and, in bf16 mode, certifies it.

Precision modes:
  float32:  scores are float32 dot products at HIGHEST precision.
  bfloat16: bf16 operands with float32 accumulation pick k + margin candidates
    per row, which are rescored in float32 and re-selected. A row's result is
    certified exact when its k-th rescored score beats the bf16 score of its
    last candidate by more than the worst bf16 error (a Cauchy–Schwarz bound,
    see `_bf16_error_bound`); rows that cannot be certified are recomputed in
    float32 by the caller. The returned neighbours are therefore always the
    float32 top-k.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh

from facequal_jax import sharding
from facequal_jax.knn import selection

_FLOAT32_EPS = 2.0 ** -24


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


def rescore(q: jax.Array, x: jax.Array, positions: jax.Array, keep: jax.Array) -> jax.Array:
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


def candidates(scores: jax.Array, first: jax.Array, keep: int, q: jax.Array, x: jax.Array, bf16: bool,
               held=None, columns: bool = False):
  """The best `keep` columns of each row of a score tile, rescored in float32 in bf16 mode.

  Args:
    scores: float32 [Bq, Bd] (excluded entries -inf); column t is database row
      `first + t`.
    first: int32 scalar.
    keep: candidates per row.
    q, x: float32 unit rows of the tile's queries [Bq, d] and columns [Bd, d].
    bf16: whether `scores` came from bf16 operands (then float32 rescores ride along).
    held: the running state these candidates will merge into (`empty_state`'s layout), or None: its last
      candidates let most tiles skip the full selection (`selection.select_in_tile`).
    columns: the candidates of each column of `scores` (whose row t is database row `first + t`), for the
      symmetric search: then q [Bq, d] are the database rows and x [Bd, d] the queries.

  Returns:
    (keys [Bq, keep], indices [Bq, keep]) plus, in bf16 mode, float32 rescores ([Bd, keep] with `columns`).
  """
  threshold = None if held is None else held[0][:, keep - 1]
  values, indices = selection.select_in_tile(scores, first, keep, threshold, columns)
  if columns:
    q, x = x, q
  if not bf16:
    return values, indices
  return values, indices, rescore(q, x, indices - first, values > -jnp.inf)


def empty_state(rows: int, keep: int, bf16: bool):
  """Running top-`keep` state of `rows` rows with no candidate yet."""
  empty_scores = jnp.full((rows, keep), -jnp.inf, jnp.float32)
  state = (empty_scores, jnp.full((rows, keep), selection.EMPTY_INDEX, jnp.int32))
  return state + (empty_scores,) if bf16 else state


def empty_state_on(mesh: Mesh, rows: int, keep: int, bf16: bool):
  """`empty_state` of `rows` rows created directly as row-sharded arrays on `mesh`."""
  return jax.jit(lambda: empty_state(rows, keep, bf16), out_shardings=sharding.row_sharding(mesh))()


def merge_candidates(state, found, keep: int):
  """Merges candidate lists (same layout as `empty_state`) and keeps the best `keep`."""
  payload = ((state[2], found[2]),) if len(state) == 3 else ()
  return selection.merge(state[0], state[1], found[0], found[1], keep, *payload)


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
  exact, indices = selection.sort_rows(exact, indices)
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
      return merge_candidates(tile_state, candidates(scores, first, keep, q, x, bf16, tile_state), keep)

    tile_state = lax.fori_loop(0, database.shape[0] // database_tile, database_tile_step, tile_state)
    return tuple(lax.dynamic_update_slice_in_dim(s, t, i * query_tile, axis=0) for s, t in zip(state, tile_state))

  return lax.fori_loop(0, queries.shape[0] // query_tile, query_tile_step, state)

