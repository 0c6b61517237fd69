"""fq.knn against a float64 brute force, on 1, 2, 4 and 8 fake devices, both precisions."""
import jax.numpy as jnp
import numpy as np
import pytest

import facequal_jax as fq
from reference import brute_force_knn, clustered_gaussian, lattice_rows

DEVICES = (1, 2, 4, 8)
PRECISIONS = ("float32", "bfloat16")


def _with_duplicates(rng, rows, count):
  """Copies `count` random rows over other rows (exact duplicates)."""
  rows = rows.copy()
  source, target = rng.choice(len(rows), (2, count), replace=False)
  rows[target] = rows[source]
  return rows


@pytest.fixture(scope="module")
def lattice_data():
  """Exactly representable data: every score is a multiple of 1/16, so ties abound."""
  rng = np.random.default_rng(0)
  random_rows, _ = lattice_rows(rng, centres=5000, per_row_moves=0, num_rows=5000)
  clustered_rows, _ = lattice_rows(rng, centres=40, per_row_moves=3, num_rows=5000)
  return {"random": _with_duplicates(rng, random_rows, 200),
          "clustered": _with_duplicates(rng, clustered_rows, 200)}


@pytest.fixture(scope="module")
def lattice_reference(lattice_data):
  """The float64 brute-force top-50 of each lattice set, once: with ties broken by lower index the order is
  total, so the top k for any k <= 50 is its first k columns."""
  return {kind: brute_force_knn(rows, 50, query_ids=np.arange(len(rows))) for kind, rows in lattice_data.items()}


# bf16 on 1 and 8 devices here (bf16 is slow on CPU): the ring test below runs it on 1, 2, 3, 4 and 8 devices on
# tied lattice rows too, and the device-count test checks every count against one device.
DEVICE_PRECISIONS = [("float32", n) for n in DEVICES] + [("bfloat16", 1), ("bfloat16", 8)]


@pytest.mark.parametrize("kind", ["random", "clustered"])
@pytest.mark.parametrize("k", [1, 10, 50])
@pytest.mark.parametrize("precision,num_devices", DEVICE_PRECISIONS)
def test_exact_on_lattice_data_with_ties(lattice_data, lattice_reference, kind, k, num_devices, precision):
  rows = lattice_data[kind]
  want_indices, want_scores = (column[:, :k] for column in lattice_reference[kind])
  got = fq.knn(rows, k, mesh=fq.make_mesh(num_devices), precision=precision, block=512)
  np.testing.assert_array_equal(got.indices, want_indices)
  np.testing.assert_array_equal(got.scores, want_scores.astype(np.float32))
  assert got.indices.dtype == np.int32 and got.scores.dtype == np.float32


@pytest.fixture(scope="module")
def odd_lattice(lattice_data):
  """3,001 clustered lattice rows (an odd count) and their float64 brute-force top 10."""
  rows = lattice_data["clustered"][:3001]
  return rows, brute_force_knn(rows, 10, query_ids=np.arange(len(rows)))


@pytest.mark.parametrize("num_devices", (1, 2, 3, 4, 8))
@pytest.mark.parametrize("precision", PRECISIONS)
def test_ring_and_symmetric_paths_both_exact(odd_lattice, num_devices, precision):
  # The tests above run the default (symmetric) self search; here both paths,
  # with an odd ring (3) and even ones.
  rows, (want_indices, want_scores) = odd_lattice
  for symmetric in (False, True):
    got = fq.knn(rows, 10, mesh=fq.make_mesh(num_devices), precision=precision, block=256, symmetric=symmetric)
    np.testing.assert_array_equal(got.indices, want_indices)
    np.testing.assert_array_equal(got.scores, want_scores.astype(np.float32))


def _assert_equal_up_to_near_ties(got, want_indices, want_scores, reference_scores, tol=1e-6):
  """Indices equal except where float64 scores differ by less than float32 rounding."""
  np.testing.assert_allclose(got.scores, want_scores, atol=tol, rtol=0)
  differ = got.indices != want_indices
  if differ.any():
    rows = np.nonzero(differ)[0]
    gap = np.abs(reference_scores[rows, got.indices[differ]] - want_scores[differ])
    assert gap.max() < tol, f"non-tie mismatches in rows {np.unique(rows)[:10]}"
  assert differ.any(axis=1).mean() < 0.01


@pytest.fixture(scope="module")
def continuous_clusters():
  """5,000 Gaussian-cluster rows with duplicates, their float64 cosine matrix and brute-force top 10."""
  rng = np.random.default_rng(1)
  rows, _ = clustered_gaussian(rng, 5000, 48, clusters=100, spread=0.6)
  rows = _with_duplicates(rng, rows, 100)
  unit = rows / np.linalg.norm(rows.astype(np.float64), axis=1, keepdims=True)
  return rows, unit @ unit.T, brute_force_knn(rows, 10, query_ids=np.arange(len(rows)))


@pytest.mark.parametrize("num_devices", DEVICES)
@pytest.mark.parametrize("precision", PRECISIONS)
def test_matches_float64_on_continuous_clusters(continuous_clusters, num_devices, precision):
  rows, reference_scores, (want_indices, want_scores) = continuous_clusters
  got = fq.knn(rows, 10, mesh=fq.make_mesh(num_devices), precision=precision, block=512)
  _assert_equal_up_to_near_ties(got, want_indices, want_scores, reference_scores)


@pytest.mark.parametrize("symmetric", (True, False))
@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_device_count_gives_the_one_device_answer(precision, symmetric):
  rng = np.random.default_rng(2)
  rows, _ = clustered_gaussian(rng, 3001, 40, clusters=50, spread=0.5)
  one = fq.knn(rows, 10, mesh=fq.make_mesh(1), precision=precision, block=256, symmetric=symmetric)
  for num_devices in DEVICES[1:]:
    many = fq.knn(rows, 10, mesh=fq.make_mesh(num_devices), precision=precision, block=256,
                  symmetric=symmetric)
    np.testing.assert_array_equal(many.indices, one.indices)
    np.testing.assert_allclose(many.scores, one.scores, atol=1e-6, rtol=0)


def test_bf16_candidates_that_cannot_be_certified_are_recomputed(lattice_data, lattice_reference):
  # With scores on a 1/16 grid many rows tie at the candidate boundary, which the
  # certificate cannot rule out: those rows must be recomputed, and still exact.
  rows = lattice_data["clustered"]
  want_indices = lattice_reference["clustered"][0][:, :10]
  for symmetric in (True, False):
    got = fq.knn(rows, 10, mesh=fq.make_mesh(4), precision="bfloat16", margin=2, block=512, symmetric=symmetric)
    assert got.num_recomputed > 0
    np.testing.assert_array_equal(got.indices, want_indices)


def test_bf16_certifies_most_rows_on_continuous_data():
  rng = np.random.default_rng(3)
  rows, _ = clustered_gaussian(rng, 4000, 64, clusters=80, spread=0.6)
  got = fq.knn(rows, 10, precision="bfloat16", margin=32, block=512)
  assert got.num_recomputed < 0.05 * len(rows)


@pytest.mark.parametrize("num_devices", (1, 8))
@pytest.mark.parametrize("precision", PRECISIONS)
def test_subset_queries_against_the_whole_set(lattice_data, num_devices, precision):
  rows = lattice_data["clustered"]
  query_rows = np.random.default_rng(4).choice(len(rows), 700, replace=False)
  want_indices, want_scores = brute_force_knn(rows, 10, queries=rows[query_rows], query_ids=query_rows)
  got = fq.knn(rows, 10, query_rows=query_rows, mesh=fq.make_mesh(num_devices), precision=precision,
               block=512)
  np.testing.assert_array_equal(got.indices, want_indices)
  np.testing.assert_array_equal(got.scores, want_scores.astype(np.float32))


@pytest.mark.parametrize("num_devices", (1, 8))
def test_external_queries_exclude_nothing(lattice_data, num_devices):
  rows = lattice_data["random"]
  queries = rows[:300]  # identical to database rows 0..299: each finds itself first
  want_indices, _ = brute_force_knn(rows, 5, queries=queries)
  got = fq.knn(rows, 5, queries=queries, mesh=fq.make_mesh(num_devices), block=512)
  np.testing.assert_array_equal(got.indices, want_indices)
  np.testing.assert_array_equal(got.indices[:, 0] <= np.arange(300), True)


def test_exclude_self_false_returns_self_or_an_earlier_duplicate():
  rows = np.eye(6, dtype=np.float32)[[0, 1, 2, 0, 3, 4, 5]]
  got = fq.knn(rows, 1, exclude_self=False)
  np.testing.assert_array_equal(got.indices[:, 0], [0, 1, 2, 0, 4, 5, 6])


def test_scale_and_dtype_do_not_matter():
  rng = np.random.default_rng(5)
  rows, _ = clustered_gaussian(rng, 500, 16, clusters=20, spread=0.4)
  base = fq.knn(rows, 5)
  for variant in (rows * 1e-30, rows * 1e30, rows.astype(np.float64), rows.astype(np.float16)):
    got = fq.knn(variant, 5)
    agree = (got.indices == base.indices).mean()
    assert agree > (0.97 if variant.dtype == np.float16 else 0.999)


def _top_k_by_hand(values, indices, k):
  """Each row's best k of (value, index) pairs: value descending, then index ascending."""
  order = np.lexsort((indices, -values), axis=1)[:, :k]
  return np.take_along_axis(values, order, axis=1), np.take_along_axis(indices, order, axis=1)


@pytest.mark.parametrize("case", ("few", "some", "tied", "many"))
@pytest.mark.parametrize("columns", (False, True))
def test_selection_above_a_threshold_merges_to_the_exact_top_k(columns, case):
  """A tile's candidates, selected with the threshold of the candidates already held, merge with those to the
  top k of both together worked out by hand (ties by lower index), down each branch: at most k entries reach
  the thresholds in every row ("few"); at most 4 k ("some"); more, in rows holding little yet ("many": the
  threshold is raised from the tile itself), or tied so that raising it still leaves more ("tied")."""
  from facequal_jax.knn import selection  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(9)
  k, first = 10, 5000
  tile = np.round(rng.normal(size=(96, 1024)) * 4) / 8  # multiples of 1/8: ties everywhere
  tile[50, :] = -np.inf  # a row with nothing to choose
  held_values = -np.sort(-(1.5 + np.round(np.abs(rng.normal(size=(96, k))) * 4) / 8), axis=1)
  planted = {"some": 20, "tied": 48}.get(case, 0)
  tile[:32, 100:100 + planted] = 2.0 + np.arange(planted) // 4 / 8  # rows 0-31: entries in tied fours
  if case == "tied":
    tile[:32, 100 + planted:] = 2.0  # and the rest of those rows level with the lowest of them
  if case == "many":
    held_values[64:] -= 4.0  # low thresholds: many entries reach them
    held_values[90:] = -np.inf  # rows holding nothing yet
  held_indices = np.where(held_values > -np.inf, np.arange(k) * 7 + 4999, selection.EMPTY_INDEX)
  most = ((tile >= held_values[:, -1:]) & (tile > -np.inf)).sum(axis=1).max()
  assert {"few": most <= k, "some": k < most <= 4 * k}.get(case, most > 4 * k)
  scores = tile.T if columns else tile
  values, indices = selection.select_in_tile(jnp.asarray(scores, jnp.float32), jnp.int32(first), k,
                                             jnp.asarray(held_values[:, -1], jnp.float32), columns)
  merged = selection.merge(jnp.asarray(held_values, jnp.float32), jnp.asarray(held_indices, jnp.int32), values,
                           indices, k)
  want = _top_k_by_hand(np.c_[held_values, tile], np.c_[held_indices, first + np.tile(np.arange(1024), (96, 1))],
                        k)
  np.testing.assert_array_equal(np.asarray(merged[0]), want[0])
  real = want[0] > -np.inf
  np.testing.assert_array_equal(np.asarray(merged[1])[real], want[1][real])


@pytest.mark.parametrize("precision,num_devices", [("float32", 1), ("float32", 8), ("bfloat16", 1)])
@pytest.mark.parametrize("symmetric", (True, False))
def test_exact_with_tiles_wide_enough_for_the_threshold_path(lattice_data, lattice_reference, precision,
                                                             num_devices, symmetric):
  rows = lattice_data["clustered"]
  got = fq.knn(rows, 10, mesh=fq.make_mesh(num_devices), precision=precision, block=1024, symmetric=symmetric)
  np.testing.assert_array_equal(got.indices, lattice_reference["clustered"][0][:, :10])
  np.testing.assert_array_equal(got.scores, lattice_reference["clustered"][1][:, :10].astype(np.float32))
