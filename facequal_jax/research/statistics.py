"""Rank and linear correlation coefficients (numpy only): Pearson, Spearman, Kendall τ-b; their bootstrap
intervals over groups of runs; the agreement of two repeated measurements (the ceiling of any correlation with
them); IQ's correlation as a function of its weight α."""
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


def group_means(values, groups) -> np.ndarray:
  """Mean of `values` per group, in the order of the sorted distinct `groups`."""
  values, groups = np.asarray(values, np.float64), np.asarray(groups)
  return np.array([values[groups == g].mean() for g in np.unique(groups)])


def _percentile_interval(draws: np.ndarray, level: float) -> tuple:
  """The (1 − level)/2 and (1 + level)/2 quantiles of finite `draws` (NaN, NaN without any)."""
  return tuple(np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])) if len(draws) else (np.nan, np.nan)


def bootstrap_interval(x, y, groups, statistic=spearman, resamples: int = 2000, level: float = 0.95,
                       seed: int = 0) -> dict:
  """Two-stage bootstrap interval of `statistic` between group means of x and y.

  The statistic is computed over groups (e.g. dataset variants), each contributing the mean of its members'
  x and y (e.g. over training seeds). A resample draws as many groups as there are, with replacement, and
  within each drawn group as many of its members as it has, with replacement; the interval is the
  (1 − level)/2 and (1 + level)/2 quantiles of the statistic over resamples where it is defined (a resample
  whose x or y means are all equal has no rank correlation).

  Args:
    x, y: float [n] per member (run); groups: [n] group of each member.

  Returns:
    {"estimate": statistic of the observed group means, "low", "high", "defined": the fraction of resamples
    where the statistic was defined}.
  """
  x, y, groups = np.asarray(x, np.float64), np.asarray(y, np.float64), np.asarray(groups)
  members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
  rng = np.random.default_rng(seed)
  draws = []
  for _ in range(resamples):
    picked = [members[g] for g in rng.integers(0, len(members), len(members))]
    rows = [group[rng.integers(0, len(group), len(group))] for group in picked]
    draws.append(statistic([x[r].mean() for r in rows], [y[r].mean() for r in rows]))
  draws = np.asarray(draws)
  defined = draws[np.isfinite(draws)]
  low, high = _percentile_interval(defined, level)
  estimate = statistic(group_means(x, groups), group_means(y, groups))
  return {"estimate": float(estimate), "low": float(low), "high": float(high),
          "defined": len(defined) / max(resamples, 1)}


def spearman_brown(reliability: float, repeats: int) -> float:
  """The reliability of the mean of `repeats` measurements, each of `reliability` (Spearman–Brown):
  m·r / (1 + (m − 1)·r)."""
  return repeats * reliability / (1 + (repeats - 1) * reliability)


def repeat_agreement(first, second, resamples: int = 2000, level: float = 0.95, seed: int = 0,
                     repeats: int = 2) -> dict:
  """How well two independent measurements of the same groups agree: the ground truth's own ceiling.

  Args:
    first, second: float [g], one value per group (e.g. each variant's accuracy with seed 0 and with seed 1).
    repeats: how many measurements the compared means average (the seeds per variant).

  Returns:
    {"estimate": Spearman of first against second, "low", "high": its percentile interval over `resamples`
    resamples of the groups with replacement (those where it is defined), "ceiling": √ of the Spearman–Brown
    reliability of the mean of `repeats` measurements — the largest correlation any metric can expect with
    that mean (classical test theory, here applied to ranks) — and "ceiling_low", "ceiling_high" from the
    interval's ends (0 where the agreement is not positive)}.
  """
  first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
  rng = np.random.default_rng(seed)
  draws = np.array([spearman(first[rows], second[rows])
                    for rows in (rng.integers(0, len(first), len(first)) for _ in range(resamples))])
  low, high = _percentile_interval(draws[np.isfinite(draws)], level)
  estimate = spearman(first, second)
  ceiling = lambda r: (float(np.sqrt(spearman_brown(r, repeats))) if r > 0 else 0.0) if np.isfinite(r) else float("nan")
  return {"estimate": float(estimate), "low": float(low), "high": float(high), "ceiling": ceiling(estimate),
          "ceiling_low": ceiling(low), "ceiling_high": ceiling(high)}


def alpha_curve(consistency, effective_rank, accuracy, alphas, statistic=spearman) -> np.ndarray:
  """`statistic` of IQ_α = α·Consis + (1 − α)·r̃ against accuracy for each α of `alphas` (float [m]).

  An after-the-fact sensitivity curve of IQ's weight: never a way to choose the default."""
  consistency, effective_rank = np.asarray(consistency, np.float64), np.asarray(effective_rank, np.float64)
  return np.array([statistic(a * consistency + (1 - a) * effective_rank, accuracy) for a in alphas])
