"""The fused Pallas k-NN kernel (interpret mode on CPU) against a float64 brute force."""
import jax.numpy as jnp
import numpy as np
import pytest

import facequal_jax as fq
from facequal_jax.knn import fused
from reference import brute_force_knn, clustered_gaussian, lattice_rows


@pytest.fixture(scope="module")
def tied_rows():
  """Lattice rows (scores on a 1/16 grid: ties everywhere) with exact duplicate rows."""
  rng = np.random.default_rng(3)
  rows, _ = lattice_rows(rng, centres=20, per_row_moves=3, num_rows=700)
  rows[rng.choice(700, 40, replace=False)] = rows[rng.choice(700, 40, replace=False)]
  return rows


@pytest.mark.parametrize("k", [1, 10, 100])
@pytest.mark.parametrize("dim_block", [0, 16])  # all of d at once, or accumulated over four slices
def test_kernel_candidates_are_the_exact_top_k(tied_rows, k, dim_block):
  n = 688  # rows 688 … 703 are padding (zeros, excluded by num_rows)
  unit = np.zeros((704, tied_rows.shape[1]), np.float32)
  unit[:n] = tied_rows[:n] / np.linalg.norm(tied_rows[:n], axis=1, keepdims=True)
  want_indices, want_scores = brute_force_knn(tied_rows[:n], k, query_ids=np.arange(n))
  keys, indices = fused.select(jnp.asarray(unit), jnp.arange(704, dtype=jnp.int32), jnp.asarray(unit),
                               jnp.int32(0), keep=k, num_rows=n, query_block=64, database_block=64, dim_block=dim_block,
                               interpret=True)
  np.testing.assert_array_equal(np.asarray(indices)[:n], want_indices)
  np.testing.assert_allclose(np.asarray(keys)[:n], want_scores, atol=1e-6, rtol=0)


@pytest.mark.parametrize("k", [1, 10, 100])
@pytest.mark.parametrize("num_devices", [1, 2, 8])
def test_knn_with_the_kernel_is_exact_on_ties_and_duplicates(tied_rows, k, num_devices):
  want_indices, want_scores = brute_force_knn(tied_rows, k, query_ids=np.arange(len(tied_rows)))
  got = fq.knn(tied_rows, k, mesh=fq.make_mesh(num_devices), precision="bfloat16", kernel="pallas_interpret",
               block=128)
  np.testing.assert_array_equal(got.indices, want_indices)
  np.testing.assert_allclose(got.scores, want_scores, atol=1e-6, rtol=0)


def test_kernel_on_continuous_data_equals_the_xla_path():
  rows, _ = clustered_gaussian(np.random.default_rng(4), 900, 64, clusters=30, spread=0.5)
  xla = fq.knn(rows, 10, precision="float32", symmetric=False)
  kernel = fq.knn(rows, 10, precision="bfloat16", kernel="pallas_interpret", block=128)
  np.testing.assert_array_equal(kernel.indices, xla.indices)
  np.testing.assert_allclose(kernel.scores, xla.scores, atol=1e-6, rtol=0)
  assert kernel.num_recomputed < 0.05 * len(rows)


def test_kernel_needs_bf16():
  with pytest.raises(ValueError, match="use precision='bfloat16'"):
    fq.knn(np.eye(8, dtype=np.float32), 2, kernel="pallas_interpret")
