"""Rank and linear correlation coefficients (numpy only): Pearson, Spearman, Kendall τ-b."""
import numpy as np


def average_ranks(x: np.ndarray) -> np.ndarray:
  """Average ranks (1-based), ties sharing the mean of their positions."""
  order = np.argsort(x, kind="stable")
  ranks = np.empty(len(x))
  sorted_x = x[order]
  starts = np.flatnonzero(np.concatenate([[True], sorted_x[1:] != sorted_x[:-1]]))
  ends = np.concatenate([starts[1:], [len(x)]])
  for start, end in zip(starts, ends):
    ranks[order[start:end]] = (start + end + 1) / 2.0
  return ranks


def pearson(x, y) -> float:
  """Pearson's r; NaN when either input is constant or shorter than 2."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
    return float("nan")
  return float(np.corrcoef(x, y)[0, 1])


def spearman(x, y) -> float:
  """Spearman's ρ: Pearson's r of the average ranks."""
  return pearson(average_ranks(np.asarray(x, np.float64)), average_ranks(np.asarray(y, np.float64)))


def kendall(x, y) -> float:
  """Kendall's τ-b (ties in either variable handled as in scipy.stats.kendalltau)."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  dx = np.sign(x[:, None] - x[None, :])[np.triu_indices(len(x), 1)]
  dy = np.sign(y[:, None] - y[None, :])[np.triu_indices(len(y), 1)]
  denominator = np.sqrt(np.sum(dx != 0) * np.sum(dy != 0))
  return float(np.sum(dx * dy) / denominator) if denominator else float("nan")
