"""Exact top-k selection with the ordering facequal_jax guarantees everywhere.

Order: score descending, then row index ascending ("ties broken by lower index").
Every selection in the k-NN kernels goes through these two functions, so the tie
rule lives in one place.
"""
import jax
import jax.numpy as jnp
from jax import lax

# Index carried by an empty slot (score -inf). Larger than any real row index, so
# empty slots sort after every real candidate of equal score.
EMPTY_INDEX = jnp.iinfo(jnp.int32).max


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
  # lax.top_k returns the lower position first among equal values, and positions
  # increase with the global index inside a tile, so this is the exact order.
  values, positions = lax.top_k(scores, k)
  indices = jnp.where(values == -jnp.inf, EMPTY_INDEX, first_index + positions.astype(jnp.int32))
  return values, indices


def merge(keys_a, indices_a, keys_b, indices_b, k: int, *payload_pairs):
  """Merges two candidate lists per row and keeps the best k.

  Args:
    keys_a, keys_b: float32 [B, Ka], [B, Kb] ranking scores.
    indices_a, indices_b: int32 [B, Ka], [B, Kb] global row indices.
    k: number to keep, k <= Ka + Kb.
    *payload_pairs: (a, b) pairs of [B, Ka] / [B, Kb] arrays carried along.

  Returns:
    (keys [B, k], indices [B, k], *payloads [B, k]) ordered by key descending,
    index ascending.
  """
  operands = [-jnp.concatenate([keys_a, keys_b], axis=1),
              jnp.concatenate([indices_a, indices_b], axis=1)]
  operands += [jnp.concatenate(pair, axis=1) for pair in payload_pairs]
  merged = lax.sort(tuple(operands), dimension=1, num_keys=2)
  return (-merged[0][:, :k],) + tuple(m[:, :k] for m in merged[1:])


def sort_rows(keys, indices, *payloads):
  """Sorts each row by key descending, index ascending; payloads follow.

  Args:
    keys: float32 [B, K]; indices: int32 [B, K]; payloads: [B, K] arrays.

  Returns:
    The same arrays, reordered.
  """
  merged = lax.sort((-keys, indices) + tuple(payloads), dimension=1, num_keys=2)
  return (-merged[0],) + tuple(merged[1:])
