"""Every kind of bad input gets an error that names the problem."""
import numpy as np
import pytest

import facequal_jax as fq
from facequal_jax import files

RNG = np.random.default_rng(0)
ROWS = RNG.normal(size=(50, 8)).astype(np.float32)
LABELS = np.repeat(np.arange(10), 5)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_rows_are_named(bad_value):
  rows = ROWS.copy()
  rows[[3, 17], 2] = bad_value
  for call in (lambda: fq.knn(rows, 3), lambda: fq.spectrum(rows), lambda: fq.intrinsic_quality(rows, LABELS)):
    with pytest.raises(ValueError, match=r"NaN or inf in rows \[3, 17\]"):
      call()


def test_all_zero_rows_are_named():
  rows = ROWS.copy()
  rows[[0, 41]] = 0
  with pytest.raises(ValueError, match=r"all-zero rows .*\[0, 41\]"):
    fq.intrinsic_quality(rows, LABELS)


def test_many_bad_rows_are_summarised():
  rows = ROWS.copy()
  rows[:30] = np.nan
  with pytest.raises(ValueError, match=r"\[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, … \(30 rows in all\)\]"):
    fq.knn(rows, 3)


def test_labels_of_the_wrong_length():
  with pytest.raises(ValueError, match="labels has 49 entries but the embeddings have 50 rows"):
    fq.intrinsic_quality(ROWS, LABELS[:-1])


@pytest.mark.parametrize("labels, dtype", [(LABELS.astype(np.float64), "float64"), (LABELS.astype(str), "<U")])
def test_labels_of_a_non_integer_dtype(labels, dtype):
  with pytest.raises(ValueError, match=f"labels must have an integer dtype, got {dtype}"):
    fq.intrinsic_quality(ROWS, labels)


def test_k_larger_than_rows_minus_one():
  with pytest.raises(ValueError, match=r"k=50 is larger than the 49 candidate rows"):
    fq.knn(ROWS, 50)
  with pytest.raises(ValueError, match=r"k=50 is larger than the 49 candidate rows"):
    fq.intrinsic_quality(ROWS, LABELS, k=50)
  assert fq.knn(ROWS, 50, exclude_self=False).indices.shape == (50, 50)


@pytest.mark.parametrize("rows", [np.zeros((0, 8), np.float32), np.zeros((5, 0), np.float32)])
def test_empty_input(rows):
  with pytest.raises(ValueError, match="embeddings is empty"):
    fq.knn(rows, 1)


def test_wrong_rank_and_dtype():
  with pytest.raises(ValueError, match=r"must be 2-D \[N, d\], got shape \(50,\)"):
    fq.knn(ROWS[:, 0], 1)
  with pytest.raises(ValueError, match="must have a float dtype, got int64"):
    fq.knn(np.ones((5, 3), np.int64), 1)


def test_only_singletons():
  with pytest.raises(ValueError, match="every identity has a single sample"):
    fq.intrinsic_quality(ROWS, np.arange(50))


def test_missing_file(tmp_path):
  path = str(tmp_path / "nope.npz")
  with pytest.raises(FileNotFoundError, match=f"embeddings file '{path}' does not exist"):
    files.load_embeddings_npz(path)


def test_unreadable_file(tmp_path):
  path = tmp_path / "garbage.npz"
  path.write_bytes(b"this is not an npz archive")
  with pytest.raises(ValueError, match="garbage.npz' is not a readable .npz file"):
    files.load_embeddings_npz(str(path))


def test_truncated_file(tmp_path):
  path = tmp_path / "cut.npz"
  np.savez(path, embeddings=ROWS, labels=LABELS)
  path.write_bytes(path.read_bytes()[:300])
  with pytest.raises(ValueError, match="cut.npz"):
    files.load_embeddings_npz(str(path))


@pytest.mark.parametrize("missing", ["embeddings", "labels"])
def test_npz_without_an_expected_array(tmp_path, missing):
  arrays = {"embeddings": ROWS, "labels": LABELS}
  del arrays[missing]
  path = tmp_path / "partial.npz"
  np.savez(path, feats=ROWS, **arrays)
  with pytest.raises(ValueError, match=f"has no array '{missing}'"):
    files.load_embeddings_npz(str(path))


def test_pickled_arrays_are_refused(tmp_path):
  path = tmp_path / "pickled.npz"
  np.savez(path, embeddings=ROWS, labels=np.array([object()] * 50))
  with pytest.raises(ValueError, match="array 'labels' cannot be read.*allow_pickle"):
    files.load_embeddings_npz(str(path))


def test_a_single_npy_array_is_not_an_npz(tmp_path):
  path = tmp_path / "rows.npy"
  np.save(path, ROWS)
  with pytest.raises(ValueError, match="is a single .npy array"):
    files.load_embeddings_npz(str(path))


def test_bad_arrays_inside_an_npz_name_the_file_and_key(tmp_path):
  path = tmp_path / "bad.npz"
  rows = ROWS.copy()
  rows[7] = np.nan
  np.savez(path, embeddings=rows, labels=LABELS)
  with pytest.raises(ValueError, match=r"bad.npz:embeddings has NaN or inf in rows \[7\]"):
    files.load_embeddings_npz(str(path))
  np.savez(path, embeddings=ROWS, labels=LABELS[:10])
  with pytest.raises(ValueError, match=r"bad.npz:labels has 10 entries"):
    files.load_embeddings_npz(str(path))
