"""The bootstrap interval of a rank correlation and IQ's α curve, against exact enumeration and hand-worked values."""
import itertools

import numpy as np
import pytest
from scipy import stats

from facequal_jax.research import statistics


def _exact_quantiles(draws, level=0.95):
  """The (1 − level)/2 and (1 + level)/2 quantiles of an enumerated, equally likely bootstrap distribution."""
  values = np.sort([d for d in draws if np.isfinite(d)])
  return np.quantile(values, [(1 - level) / 2, (1 + level) / 2])


def _spearman(x, y):
  if np.ptp(x) == 0 or np.ptp(y) == 0:
    return np.nan
  return stats.spearmanr(x, y).statistic


def test_bootstrap_interval_of_one_run_per_group_matches_the_enumerated_bootstrap():
  # Five variants, one run each: every resample is one of 5^5 equally likely tuples of variants.
  x = np.array([0.1, 0.4, 0.35, 0.8, 0.9])
  y = np.array([0.2, 0.5, 0.6, 0.55, 0.9])
  exact = [_spearman(x[list(t)], y[list(t)]) for t in itertools.product(range(5), repeat=5)]
  want_low, want_high = _exact_quantiles(exact)
  got = statistics.bootstrap_interval(x, y, groups=np.arange(5), resamples=20000, seed=3)
  # ranks (1, 3, 2, 4, 5) and (1, 2, 4, 3, 5): ρ = 1 − 6·(0 + 1 + 4 + 1 + 0)/(5·24) = 0.7
  assert got["estimate"] == pytest.approx(0.7)
  # A Monte-Carlo quantile of a discrete distribution lands on the exact one's atom, or beside it.
  atoms = np.unique(np.round([d for d in exact if np.isfinite(d)], 12))
  assert abs(np.searchsorted(atoms, round(got["low"], 12)) - np.searchsorted(atoms, round(want_low, 12))) <= 1
  assert abs(np.searchsorted(atoms, round(got["high"], 12)) - np.searchsorted(atoms, round(want_high, 12))) <= 1
  assert got["high"] == pytest.approx(1.0)
  # Resamples of one distinct variant have no correlation: 5 of 3125 tuples.
  assert got["defined"] == pytest.approx(1 - 5 / 5 ** 5, abs=3e-3)


def test_bootstrap_resamples_runs_within_each_variant():
  # Three variants of two seeds: the statistic is the mean of the drawn runs' x over the drawn variants, so
  # the enumerated distribution (3^3 variant draws × 2^2 seed draws per drawn variant) is worked out exactly.
  x = np.array([0.0, 1.0, 10.0, 12.0, 20.0, 26.0])
  y = np.zeros(6)
  groups = np.array([0, 0, 1, 1, 2, 2])
  mean_of_x = lambda xs, ys: float(np.mean(xs))
  seed_means = {g: [x[groups == g][list(s)].mean() for s in itertools.product(range(2), repeat=2)]
                for g in range(3)}
  exact = [np.mean(means) for t in itertools.product(range(3), repeat=3)
           for means in itertools.product(*(seed_means[g] for g in t))]
  want_low, want_high = _exact_quantiles(exact)
  got = statistics.bootstrap_interval(x, y, groups, statistic=mean_of_x, resamples=20000, seed=0)
  assert got["estimate"] == pytest.approx((0.5 + 11 + 23) / 3)
  assert got["low"] == pytest.approx(want_low, abs=0.4) and got["high"] == pytest.approx(want_high, abs=0.4)
  # Without the second stage (seed means fixed) the interval would be this, narrower:
  first_stage_only = [np.mean([x[groups == g].mean() for g in t]) for t in itertools.product(range(3), repeat=3)]
  assert got["low"] < _exact_quantiles(first_stage_only)[0] - 0.5


def test_alpha_curve_by_hand():
  consistency = [0.9, 0.5, 0.1]
  effective_rank = [0.2, 0.6, 0.4]
  accuracy = [0.8, 0.7, 0.6]
  curve = statistics.alpha_curve(consistency, effective_rank, accuracy, [0.0, 0.5, 1.0])
  # α = 0: r̃ ranks (1, 3, 2) against accuracy (3, 2, 1): ρ = 1 − 6·(4 + 1 + 1)/(3·8) = −0.5.
  # α = 0.5: IQ (0.55, 0.55, 0.25) ranks (2.5, 2.5, 1): Pearson of ranks with (3, 2, 1) = 0.866…
  # α = 1: Consis ranks as accuracy: 1.
  assert curve == pytest.approx([-0.5, np.sqrt(3) / 2, 1.0])


def test_repeat_agreement_is_the_seed_against_seed_spearman_and_its_ceiling_by_hand():
  # Five variants measured twice (two seeds): ranks (1, 2, 3, 4, 5) and (1, 3, 2, 4, 5).
  first = np.array([0.70, 0.75, 0.80, 0.85, 0.90])
  second = np.array([0.72, 0.80, 0.78, 0.86, 0.91])
  got = statistics.repeat_agreement(first, second, resamples=20000, seed=1)
  assert got["estimate"] == pytest.approx(1 - 6 * 2 / (5 * 24))  # 0.9
  # The mean of two such measurements has reliability 2·0.9 / 1.9 (Spearman–Brown): ceiling √0.947 = 0.973.
  assert got["ceiling"] == pytest.approx(np.sqrt(2 * 0.9 / 1.9))
  assert statistics.spearman_brown(0.5, 3) == pytest.approx(1.5 / 2.0)
  exact = [_spearman(first[list(t)], second[list(t)]) for t in itertools.product(range(5), repeat=5)]
  atoms = np.unique(np.round([d for d in exact if np.isfinite(d)], 12))
  for side, want in zip(("low", "high"), _exact_quantiles(exact)):
    assert abs(np.searchsorted(atoms, round(got[side], 12)) - np.searchsorted(atoms, round(want, 12))) <= 1
  assert got["ceiling_high"] == pytest.approx(1.0) and got["ceiling_low"] <= got["ceiling"]
  # Two measurements that disagree completely leave nothing to rank with: ceiling 0.
  assert statistics.repeat_agreement(first, first[::-1], resamples=50)["ceiling"] == 0.0
