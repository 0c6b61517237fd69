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


# Width of the column groups of the full two-stage selection, and the bits in each word of the hit masks.
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


def _sort_pairs(values: jax.Array, positions: jax.Array):
  """A few (value, position) pairs per row [B, K], ordered value descending, position ascending, by counting."""
  ahead = ((values[:, None, :] > values[:, :, None])
           | ((values[:, None, :] == values[:, :, None]) & (positions[:, None, :] < positions[:, :, None])))
  lands = ahead.sum(axis=2)[:, :, None] == jnp.arange(values.shape[1])
  return (jnp.max(jnp.where(lands, values[:, :, None], -jnp.inf), axis=1),
          jnp.min(jnp.where(lands, positions[:, :, None], EMPTY_INDEX), axis=1))


def _hit_words(hits: jax.Array, columns: bool) -> jax.Array:
  """The hits of each row of `hits` bool [B, T] (each column with `columns`) as bits: uint32 [R, W / GROUP],
  bit b of word w set when position GROUP · w + b is a hit. One pass over the tile; no transpose is made."""
  weights = jnp.left_shift(jnp.uint32(1), jnp.arange(GROUP, dtype=jnp.uint32))
  if columns:
    grouped = hits.reshape(hits.shape[0] // GROUP, GROUP, hits.shape[1])
    return jnp.sum(jnp.where(grouped, weights[:, None], jnp.uint32(0)), axis=1, dtype=jnp.uint32).T
  grouped = hits.reshape(hits.shape[0], hits.shape[1] // GROUP, GROUP)
  return jnp.sum(jnp.where(grouped, weights, jnp.uint32(0)), axis=2, dtype=jnp.uint32)


def _first_set_bits(words: jax.Array, count: int):
  """(positions int32 [R, count] of the first `count` set bits of each row of `words` uint32 [R, Wd] in
  ascending order, bool [R, count] which slots hold one). By counting: bits per word, their running sum (a
  product with a triangular matrix: exact in float32 for these small counts), the word each slot falls in (a
  binary search of the running sums), and the set bit of the right rank inside that word."""
  per_word = lax.population_count(words).astype(jnp.float32)
  num_words = words.shape[1]
  upper = jnp.triu(jnp.ones((num_words, num_words), jnp.float32))
  through = lax.dot(per_word, upper, precision=lax.Precision.HIGHEST, preferred_element_type=jnp.float32)
  slot = jnp.broadcast_to(jnp.arange(count, dtype=jnp.float32), (words.shape[0], count))
  word = jnp.zeros(slot.shape, jnp.int32)  # [R, count]: how many words lie wholly before the slot
  step = 1 << (num_words.bit_length() - 1)
  while step:  # a binary search of the running sums; each step kept whole (fused, XLA would redo the earlier ones)
    ahead = jnp.minimum(word + step, num_words)
    reached = jnp.take_along_axis(through, ahead - 1, axis=1, mode="promise_in_bounds") <= slot
    word = lax.optimization_barrier(jnp.where(reached, ahead, word))
    step >>= 1
  filled = slot < through[:, -1:]
  word = jnp.minimum(word, num_words - 1)
  at = lambda values: jnp.take_along_axis(values, word, axis=1, mode="promise_in_bounds")
  rank = slot - (at(through) - at(per_word))
  bits = at(words)[:, :, None]  # [R, count, 1]
  below = jnp.left_shift(jnp.uint32(1), jnp.arange(GROUP, dtype=jnp.uint32)) - jnp.uint32(1)
  is_set = (jnp.right_shift(bits, jnp.arange(GROUP, dtype=jnp.uint32)) & jnp.uint32(1)) == 1
  lands = is_set & (lax.population_count(bits & below).astype(jnp.float32) == rank[:, :, None])
  within = jnp.sum(jnp.where(lands, jnp.arange(GROUP, dtype=jnp.int32), 0), axis=2)
  return word * GROUP + within, filled


def _tile_bound(scores: jax.Array, k: int, columns: bool) -> jax.Array:
  """float32 [R]: a value the k-th best entry of each row (column) of `scores` [B, T] is sure to reach — the
  k-th largest of the maxima of 4 k disjoint runs of its entries (k distinct entries reach it)."""
  if columns:
    scores = scores.T
  rows, width = scores.shape
  run = -(-width // (4 * k))
  padded = jnp.pad(scores, ((0, 0), (0, run * 4 * k - width)), constant_values=-jnp.inf)
  return lax.top_k(jnp.max(padded.reshape(rows, 4 * k, run), axis=2), k)[0][:, -1]


def _above_threshold(scores: jax.Array, threshold: jax.Array, k: int, columns: bool):
  """Top-k (values, positions) of each row (column) of `scores` among the entries that can beat `threshold` [R].

  The entries reaching the threshold (and not -inf: excluded, never chosen) are marked as bits in one pass
  over the tile. Where no row (column) has more than k of them — most tiles, once the held candidates are
  good — they are listed in order and sorted by counting; where none has more than 4 k, the first 4 k are
  listed and their top k taken. Else (a row holding little yet) the threshold is first raised to what the
  tile's own k-th best is sure to reach (`_tile_bound`) and the same tried again, and only past that is the
  tile selected in full (`_top_positions`). Branches are chosen for the whole tile on the largest count.
  Exact every way: every entry >= threshold is listed, and the entries below it rank after k candidates
  (held or in the tile).
  """
  def marked(threshold):
    reaching = scores >= (threshold[None, :] if columns else threshold[:, None])
    words = _hit_words(reaching & (scores > -jnp.inf), columns)  # excluded entries are never chosen
    return words, jnp.max(jnp.sum(lax.population_count(words), axis=1, dtype=jnp.int32))

  def listed(words, count):
    positions, filled = _first_set_bits(words, count)
    if columns:
      values = jnp.take_along_axis(scores, positions.T, axis=0).T
    else:
      values = jnp.take_along_axis(scores, positions, axis=1)
    return jnp.where(filled, values, -jnp.inf), jnp.where(filled, positions, EMPTY_INDEX)

  def few(words):
    return _sort_pairs(*listed(words, k))

  def some(words):  # listed in ascending position: top_k's lower-first ties keep lower positions first
    values, positions = listed(words, 4 * k)
    values, chosen = lax.top_k(values, k)
    return values, jnp.take_along_axis(positions, chosen, axis=1)

  def full(_):
    values, positions = _top_positions(scores.T if columns else scores, k)
    return values, positions.astype(jnp.int32)

  def raised(_):
    words, most = marked(jnp.maximum(threshold, _tile_bound(scores, k, columns)))
    return lax.cond(most <= 4 * k, some, full, words)

  words, most = marked(threshold)
  return lax.switch(jnp.int32(most > k) + jnp.int32(most > 4 * k), (few, some, raised), words)


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
  index except EMPTY_INDEX. Each entry of b lands at its place in its own list
  plus the number of entries of a ahead of it (ties, as between empty slots:
  a first), so output slot j holds b's entry number #{b landing before j} if
  one lands at j, else a's entry j − that number: a few [B, K, Kb] comparisons
  and gathers instead of a sort.

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
  place_b = jnp.arange(keys_b.shape[1]) + (~b_ahead).sum(axis=1, dtype=jnp.int32)  # [B, Kb], increasing
  slot = jnp.arange(k, dtype=jnp.int32)[:, None]
  from_b_before = jnp.sum(place_b[:, None, :] < slot, axis=2, dtype=jnp.int32)  # [B, k]
  from_b = jnp.any(place_b[:, None, :] == slot, axis=2)
  in_b = jnp.minimum(from_b_before, keys_b.shape[1] - 1)
  in_a = jnp.clip(slot[:, 0] - from_b_before, 0, keys_a.shape[1] - 1)

  def gather(a, b):
    take = lambda values, at: jnp.take_along_axis(values, at, axis=1, mode="promise_in_bounds")
    return jnp.where(from_b, take(b, in_b), take(a, in_a))

  payloads = tuple(gather(a, b) for a, b in payload_pairs)
  return (gather(keys_a, keys_b), gather(indices_a, indices_b)) + payloads


def sort_rows(keys, indices, *payloads):
  """Sorts each row by key descending, index ascending; payloads follow.

  Args:
    keys: float32 [B, K]; indices: int32 [B, K]; payloads: [B, K] arrays.

  Returns:
    The same arrays, reordered.
  """
  merged = lax.sort((-keys, indices) + tuple(payloads), dimension=1, num_keys=2)
  return (-merged[0],) + tuple(merged[1:])
