"""Exact top-k selection with the ordering facequal_jax guarantees everywhere.

Order: score descending, then row index ascending ("ties broken by lower index").
Every selection in the k-NN kernels — the XLA tiles, the merges of candidate
lists and the fused Pallas kernel's running top-k — goes through the functions
here, so the tie rule lives in one place.
"""
import jax
import jax.numpy as jnp
from jax import lax

# Index carried by an empty slot (score -inf). Larger than any real row index, so
# empty slots sort after every real candidate of equal score.
EMPTY_INDEX = jnp.iinfo(jnp.int32).max


# Width of the column groups of the two-stage selection.
GROUP = 16


def _sort_small(values: jax.Array) -> jax.Array:
  """Ascending sort of each row of a few distinct ints [B, K] by counting (cheaper than a sort here)."""
  place = (values[:, None, :] < values[:, :, None]).sum(axis=2)
  lands = place[:, :, None] == jnp.arange(values.shape[1])
  return jnp.max(jnp.where(lands, values[:, :, None], jnp.iinfo(values.dtype).min), axis=1)


def _top_positions(scores: jax.Array, k: int):
  """Exact top-k positions of each row (lower position first among equals).

  Two stages when the row is wide: the maximum of each group of GROUP columns,
  the k groups with the largest maxima (ties: lower group), then the top k of
  those k · GROUP columns. The k best entries lie in those groups: each group
  ranked before an entry's own group holds a distinct entry ranked before it.
  Visiting the chosen groups in ascending order keeps lower positions first.
  """
  rows, width = scores.shape
  if width % GROUP or width < 4 * k * GROUP:
    return lax.top_k(scores, k)
  grouped = scores.reshape(rows, width // GROUP, GROUP)
  _, groups = lax.top_k(grouped.max(axis=2), k)
  groups = _sort_small(groups)
  values, within = lax.top_k(jnp.take_along_axis(grouped, groups[:, :, None], axis=1).reshape(rows, k * GROUP), k)
  positions = jnp.take_along_axis(groups, within // GROUP, axis=1) * GROUP + within % GROUP
  return values, positions


def select_in_tile(scores: jax.Array, first_index: jax.Array, k: int):
  """Top-k of each row of one score tile whose columns are consecutive rows.

  Args:
    scores: float32 [B, T]; column t is database row `first_index + t`; entries
      that must never be chosen are -inf.
    first_index: int32 scalar, the global row index of column 0.
    k: number to keep, k <= T.

  Returns:
    (scores, indices): float32 [B, k] descending and int32 [B, k] global row
    indices; -inf slots carry EMPTY_INDEX.
  """
  # Lower positions come first among equal values, and positions increase with
  # the global index inside a tile, so this is the exact order.
  values, positions = _top_positions(scores, k)
  indices = jnp.where(values == -jnp.inf, EMPTY_INDEX, first_index + positions.astype(jnp.int32))
  return values, indices


def last_in_order(keys: jax.Array, indices: jax.Array):
  """The entry of each unsorted candidate list [B, K] that ranks last: lowest key, and among equal keys the
  highest index (the one a better candidate replaces).

  Returns:
    (its key float32 [B, 1], its slot int32 [B, 1]; the first such slot if several).
  """
  slots = lax.broadcasted_iota(jnp.int32, keys.shape, 1)
  low = jnp.min(keys, axis=1, keepdims=True)
  at_low = keys == low
  highest = jnp.max(jnp.where(at_low, indices, -1), axis=1, keepdims=True)
  return low, jnp.min(jnp.where(at_low & (indices == highest), slots, keys.shape[1]), axis=1, keepdims=True)


def _ahead(keys_a, indices_a, keys_b, indices_b):
  """bool [B, Ka, Kb]: entry j of list b comes before entry i of list a."""
  kb, ka = keys_b[:, None, :], keys_a[:, :, None]
  return (kb > ka) | ((kb == ka) & (indices_b[:, None, :] < indices_a[:, :, None]))


def merge(keys_a, indices_a, keys_b, indices_b, k: int, *payload_pairs):
  """Merges two sorted candidate lists per row and keeps the best k.

  Both lists must be ordered (key descending, index ascending) and share no
  index except EMPTY_INDEX. Each entry's place in the merged list is its place
  in its own list plus the number of entries of the other list ahead of it, so
  the merge is a few [B, Ka, Kb] comparisons instead of a sort.

  Args:
    keys_a, keys_b: float32 [B, Ka], [B, Kb] ranking scores.
    indices_a, indices_b: int32 [B, Ka], [B, Kb] global row indices.
    k: number to keep, k <= Ka + Kb.
    *payload_pairs: (a, b) pairs of float [B, Ka] / [B, Kb] arrays carried along.

  Returns:
    (keys [B, k], indices [B, k], *payloads [B, k]) ordered by key descending,
    index ascending.
  """
  b_ahead = _ahead(keys_a, indices_a, keys_b, indices_b)
  place_a = jnp.arange(keys_a.shape[1]) + b_ahead.sum(axis=2)
  place_b = jnp.arange(keys_b.shape[1]) + (~b_ahead).sum(axis=1)
  lands = jnp.concatenate([place_a, place_b], axis=1)[:, :, None] == jnp.arange(k)
  # Empty slots may share a place; they all hold (-inf, EMPTY_INDEX), so max/min pick that.

  def gather(a, b, missing, reduce):
    both = jnp.concatenate([a, b], axis=1)[:, :, None]
    return reduce(jnp.where(lands, both, missing), axis=1)

  keys = gather(keys_a, keys_b, -jnp.inf, jnp.max)
  indices = gather(indices_a, indices_b, EMPTY_INDEX, jnp.min)
  payloads = tuple(gather(a, b, -jnp.inf, jnp.max) for a, b in payload_pairs)
  return (keys, indices) + payloads


def sort_rows(keys, indices, *payloads):
  """Sorts each row by key descending, index ascending; payloads follow.

  Args:
    keys: float32 [B, K]; indices: int32 [B, K]; payloads: [B, K] arrays.

  Returns:
    The same arrays, reordered.
  """
  merged = lax.sort((-keys, indices) + tuple(payloads), dimension=1, num_keys=2)
  return (-merged[0],) + tuple(merged[1:])
