"""fq.spectrum against hand-worked cases and a float64 numpy reference."""
import math

import numpy as np
import pytest

import facequal_jax as fq
from facequal_jax.metrics import spectrum as spectral
from reference import clustered_gaussian, unit_rows64


def test_equal_variance_along_four_orthogonal_directions():
  # Rows ±e1 … ±e4: mean 0, covariance diag(1/4, 1/4, 1/4, 1/4).
  rows = np.concatenate([np.eye(4), -np.eye(4)]).astype(np.float32)
  got = fq.spectrum(rows)
  np.testing.assert_allclose(got.eigenvalues, [0.25] * 4, atol=1e-7)
  assert got.effective_rank == pytest.approx(4.0, abs=1e-5)
  assert got.effective_rank_normalized == pytest.approx(1.0, abs=1e-5)  # Q = min(8, 4) = 4
  assert got.stable_rank == pytest.approx(4.0, abs=1e-5)
  assert got.alpha_req == pytest.approx(0.0, abs=1e-5)
  # Uncentred ÊᵀÊ = 2·I: four equal singular values √2, p = 1/4 + 1e-7.
  np.testing.assert_allclose(got.singular_values, [math.sqrt(2)] * 4, rtol=1e-6)
  p = 0.25 + 1e-7
  assert got.rankme == pytest.approx(math.exp(-4 * p * math.log(p)), abs=1e-5)


def test_two_directions_in_eight_dimensions():
  # Rows ±e1, ±e2 with d = 8: covariance diag(1/2, 1/2, 0, …); H = log 2, Q = min(4, 8) = 4.
  rows = np.zeros((4, 8), np.float32)
  rows[[0, 1, 2, 3], [0, 0, 1, 1]] = [1, -1, 1, -1]
  got = fq.spectrum(rows)
  assert got.effective_rank == pytest.approx(2.0, abs=1e-5)
  assert got.effective_rank_normalized == pytest.approx(0.5, abs=1e-5)
  assert got.stable_rank == pytest.approx(2.0, abs=1e-5)
  assert len(got.singular_values) == 4


def test_identical_rows_have_no_spread():
  got = fq.spectrum(np.tile([[3.0, 4.0, 0.0]], (5, 1)).astype(np.float32))
  assert got.effective_rank_normalized == 0.0 and got.effective_rank == 1.0


def _numpy_reference(rows):
  unit = unit_rows64(rows)
  centred = unit - unit.mean(axis=0)
  eigenvalues = np.clip(np.linalg.eigvalsh(centred.T @ centred / len(unit))[::-1], 0, None)
  p = eigenvalues / eigenvalues.sum()
  p = p[p > 0]
  entropy = -(p * np.log(p)).sum()
  singular = np.linalg.svd(unit, compute_uv=False)
  q = singular / singular.sum() + 1e-7
  usable = eigenvalues[eigenvalues > 1e-12 * eigenvalues[0]]
  slope = np.polyfit(np.log(np.arange(1, len(usable) + 1)), np.log(usable), 1)[0]
  return {"eigenvalues": eigenvalues, "effective_rank": math.exp(entropy),
          "effective_rank_normalized": entropy / math.log(min(unit.shape)),
          "rankme": math.exp(-(q * np.log(q)).sum()), "stable_rank": eigenvalues.sum() / eigenvalues[0],
          "alpha_req": -slope}


@pytest.mark.parametrize("num_devices", (1, 2, 4, 8))
def test_matches_numpy_float64(num_devices):
  rng = np.random.default_rng(0)
  rows, _ = clustered_gaussian(rng, 3001, 32, clusters=30, spread=0.8)
  rows = rows * np.linspace(0.2, 2.0, 32, dtype=np.float32) + 0.3  # anisotropic, off-centre
  want = _numpy_reference(rows)
  got = fq.spectrum(rows, mesh=fq.make_mesh(num_devices), block=256)
  np.testing.assert_allclose(got.eigenvalues, want["eigenvalues"], atol=1e-7)
  for key in ("effective_rank", "effective_rank_normalized", "rankme", "stable_rank", "alpha_req"):
    assert getattr(got, key) == pytest.approx(want[key], rel=1e-5), key


def test_fewer_samples_than_dimensions_caps_the_rank_at_n():
  rng = np.random.default_rng(1)
  rows = rng.normal(size=(10, 64)).astype(np.float32)
  want = _numpy_reference(rows)
  got = fq.spectrum(rows)
  assert len(got.singular_values) == 10
  assert got.effective_rank_normalized == pytest.approx(want["effective_rank_normalized"], rel=1e-5)
  assert got.rankme == pytest.approx(want["rankme"], rel=1e-5)


def test_rankme_helper_by_hand():
  # σ = (3, 1): p = (0.75, 0.25) + 1e-7.
  p = np.array([0.75, 0.25]) + 1e-7
  assert spectral.rankme(np.array([3.0, 1.0])) == pytest.approx(math.exp(-(p * np.log(p)).sum()), abs=1e-12)


def test_alpha_req_recovers_a_power_law():
  assert spectral.alpha_req(np.arange(1, 101, dtype=float) ** -1.5) == pytest.approx(1.5, abs=1e-9)
