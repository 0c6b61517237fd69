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


def _running_counts(hits: jax.Array) -> jax.Array:
  """float32 [B, W]: how many of the first j + 1 entries of each row are hits (a product with a triangular
  matrix: XLA's cumulative sum on CPU is a reduce-window, W times the work)."""
  width = hits.shape[1]
  upper = jnp.triu(jnp.ones((width, width), jnp.float32))
  return lax.dot(hits.astype(jnp.float32), upper, precision=lax.Precision.HIGHEST,
                 preferred_element_type=jnp.float32)


def _first_hits(hits: jax.Array, k: int):
  """(positions int32 [B, k] of the first k hits of each row [B, W] in order, bool [B, k] which slots hold one)."""
  lands = hits[:, :, None] & (_running_counts(hits)[:, :, None] == jnp.arange(1, k + 1, dtype=jnp.float32))
  positions = jnp.sum(jnp.where(lands, lax.broadcasted_iota(jnp.int32, lands.shape, 1), 0), axis=1)
  return positions, jnp.any(lands, axis=1)


def _sort_pairs(values: jax.Array, positions: jax.Array):
  """A few (value, position) pairs per row [B, K], ordered value descending, position ascending, by counting."""
  ahead = ((values[:, None, :] > values[:, :, None])
           | ((values[:, None, :] == values[:, :, None]) & (positions[:, None, :] < positions[:, :, None])))
  lands = ahead.sum(axis=2)[:, :, None] == jnp.arange(values.shape[1])
  return (jnp.max(jnp.where(lands, values[:, :, None], -jnp.inf), axis=1),
          jnp.min(jnp.where(lands, positions[:, :, None], EMPTY_INDEX), axis=1))


def _grouped_maxima(scores: jax.Array, columns: bool):
  """(group maxima float32 [R, W / GROUP], gather) for the rows of `scores` [B, T] (or its columns): `gather`
  takes group numbers int32 [R, K] to their entries float32 [R, K · GROUP] and positions int32 [R, K · GROUP].
  Columns are grouped by GROUP consecutive rows, so no [T, B] transpose of the tile is made."""
  if columns:
    grouped = scores.reshape(scores.shape[0] // GROUP, GROUP, scores.shape[1])
    maxima = grouped.max(axis=1).T

    def gather(groups):
      entries = jnp.take_along_axis(grouped, groups.T[:, None, :], axis=0).transpose(2, 0, 1)
      return entries, groups

  else:
    grouped = scores.reshape(scores.shape[0], scores.shape[1] // GROUP, GROUP)
    maxima = grouped.max(axis=2)

    def gather(groups):
      return jnp.take_along_axis(grouped, groups[:, :, None], axis=1), groups

  def entries_of(groups):
    entries, groups = gather(groups)
    positions = groups[:, :, None] * GROUP + jnp.arange(GROUP, dtype=jnp.int32)
    return entries.reshape(groups.shape[0], -1), positions.reshape(groups.shape[0], -1)

  return maxima, entries_of


def _above_threshold(scores: jax.Array, threshold: jax.Array, k: int, columns: bool):
  """Top-k positions of each row (column) of `scores` among the entries that can beat `threshold` [R].

  Both stages of `_top_positions` work on small arrays here, and each takes a shortcut where the threshold
  allows it (decided for the whole tile, by a `lax.cond` on those small arrays): the groups are the ones whose
  maximum reaches the threshold, listed in order (a product with a triangular matrix) — when no row has more
  than k of them; else the k groups with the largest maxima. Of their entries, those reaching the threshold
  are listed the same way and sorted by counting — when the groups were listed and no row has more than k
  such entries; else the top k of the k · GROUP entries. Exact either way: the listed groups hold every entry
  >= threshold, and the entries below it rank after the k candidates the threshold came from.
  """
  maxima, entries_of = _grouped_maxima(scores, columns)
  reaching = maxima >= threshold[:, None]
  few_groups = jnp.max(reaching.sum(axis=1)) <= k

  def ranked_groups():
    _, groups = lax.top_k(maxima, k)
    return _sort_small(groups), jnp.ones(groups.shape, bool)

  groups, filled = lax.cond(few_groups, lambda: _first_hits(reaching, k), ranked_groups)
  entries, positions = entries_of(groups)
  entries = jnp.where(jnp.repeat(filled, GROUP, axis=1), entries, -jnp.inf)
  hits = entries >= threshold[:, None]

  def few_entries():
    found, kept = _first_hits(hits, k)
    values = jnp.where(kept, jnp.take_along_axis(entries, found, axis=1), -jnp.inf)
    return _sort_pairs(values, jnp.where(kept, jnp.take_along_axis(positions, found, axis=1), EMPTY_INDEX))

  def many_entries():  # groups in ascending order: top_k's lower-first ties keep lower positions first
    values, within = lax.top_k(entries, k)
    return values, jnp.take_along_axis(positions, within, axis=1)

  return lax.cond(few_groups & (jnp.max(hits.sum(axis=1)) <= k), few_entries, many_entries)


def select_in_tile(scores: jax.Array, first_index: jax.Array, k: int, threshold=None, columns: bool = False):
  """Top-k of each row of one score tile whose columns are consecutive rows.

  Args:
    scores: float32 [B, T]; column t is database row `first_index + t`; entries
      that must never be chosen are -inf.
    first_index: int32 scalar, the global row index of column 0.
    k: number to keep, k <= T.
    threshold: optional float32 [B] (or [T] with `columns`): the last of the k candidates each row already
      holds (-inf while it holds fewer). Entries below it cannot enter, so where every row has at most k groups
      reaching it (most tiles, once the candidates are good) the selection works on those groups alone. The
      result merges with those candidates to the same top-k either way.
    columns: select down the columns of `scores` instead (the rows of its transpose), for the symmetric search.

  Returns:
    (scores, indices): float32 [B, k] descending and int32 [B, k] global row
    indices; -inf slots carry EMPTY_INDEX.
  """
  # Lower positions come first among equal values, and positions increase with
  # the global index inside a tile, so this is the exact order.
  width = scores.shape[0] if columns else scores.shape[1]
  if threshold is None or width % GROUP or width < 4 * k * GROUP:
    values, positions = _top_positions(scores.T if columns else scores, k)
  else:
    values, positions = _above_threshold(scores, threshold, k, columns)
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
