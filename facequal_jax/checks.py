"""Checks on user input, with errors that say which rows or fields are wrong."""
import numpy as np

from facequal_jax.errors import DataError, UsageError

# Rows are checked in blocks of this many, so a huge (or memory-mapped) matrix is
# never copied whole to float32.
_CHECK_BLOCK_ROWS = 65536
_ROWS_SHOWN = 10


def _describe_rows(rows: np.ndarray) -> str:
  shown = ", ".join(str(int(r)) for r in rows[:_ROWS_SHOWN])
  more = f", … ({len(rows)} rows in all)" if len(rows) > _ROWS_SHOWN else ""
  return f"[{shown}{more}]"


def check_embeddings(embeddings, name: str = "embeddings") -> np.ndarray:
  """Checks an embedding matrix; returns it as a numpy array (not copied if it is one).

  Args:
    embeddings: array-like [N, d] of any real float dtype.
    name: what to call the array in error messages (e.g. a file and key).

  Raises:
    ValueError: not 2-D, empty, not floating point, or rows that are non-finite
      or all zero (they have no direction); the message lists the rows.
  """
  array = embeddings if isinstance(embeddings, np.ndarray) else np.asarray(embeddings)
  if array.ndim != 2:
    raise DataError(f"{name} must be 2-D [N, d], got shape {array.shape}")
  if array.shape[0] == 0 or array.shape[1] == 0:
    raise DataError(f"{name} is empty: shape {array.shape}")
  if not np.issubdtype(array.dtype, np.floating) and array.dtype.name != "bfloat16":
    raise DataError(f"{name} must have a float dtype, got {array.dtype}")
  bad_finite, bad_zero = [], []
  for start in range(0, array.shape[0], _CHECK_BLOCK_ROWS):
    block = np.asarray(array[start:start + _CHECK_BLOCK_ROWS], dtype=np.float32)
    finite = np.isfinite(block).all(axis=1)
    bad_finite.append(start + np.flatnonzero(~finite))
    zero = finite & (np.abs(block).max(axis=1) == 0)
    bad_zero.append(start + np.flatnonzero(zero))
  bad_finite, bad_zero = np.concatenate(bad_finite), np.concatenate(bad_zero)
  if len(bad_finite):
    raise DataError(f"{name} has NaN or inf in rows {_describe_rows(bad_finite)}")
  if len(bad_zero):
    raise DataError(f"{name} has all-zero rows (no direction to normalise) {_describe_rows(bad_zero)}")
  return array


def check_labels(labels, num_rows: int, name: str = "labels") -> np.ndarray:
  """Checks identity labels: 1-D, integer dtype, one per embedding row.

  Returns:
    int64 [num_rows] numpy array.
  """
  array = np.asarray(labels)
  if array.ndim != 1:
    raise DataError(f"{name} must be 1-D [N], got shape {array.shape}")
  if not np.issubdtype(array.dtype, np.integer):
    raise DataError(f"{name} must have an integer dtype, got {array.dtype}")
  if len(array) != num_rows:
    raise DataError(f"{name} has {len(array)} entries but the embeddings have {num_rows} rows")
  return array.astype(np.int64, copy=False)


SINGLETON_POLICIES = ("exclude", "include")


def check_scoring(k: int, alpha: float, singletons: str, flag: str = "") -> None:
  """Checks IQ's own arguments: k a positive integer, alpha in [0, 1], singletons a policy; `flag` goes before
  each name in the errors ("--config." for the command's fields)."""
  if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
    raise UsageError(f"{flag}k must be an integer >= 1, got {k!r}")
  if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0.0 <= alpha <= 1.0:
    raise UsageError(f"{flag}alpha must be a number in [0, 1], got {alpha!r}")
  if singletons not in SINGLETON_POLICIES:
    raise UsageError(f"{flag}singletons must be one of {', '.join(map(repr, SINGLETON_POLICIES))}, "
                     f"got {singletons!r}")


def check_k(k: int, num_candidates: int, flag: str = "", where: str = "") -> int:
  """Checks that k neighbours exist among `num_candidates` rows (`flag` as in `check_scoring`; `where` says
  where the rows come from)."""
  check_scoring(k, 0.0, SINGLETON_POLICIES[0], flag)
  if k > num_candidates:
    raise UsageError(f"k={k} is larger than the {num_candidates} candidate rows "
                     f"(N - 1 when each row's own index is excluded){where}: lower {flag}k")
  return int(k)
