"""Out-of-core k-NN streamed from a memory-mapped file equals the in-memory path, and resumes."""
import os

import numpy as np
import pytest

import facequal_jax as fq
from facequal_jax.knn import streaming
from reference import brute_force_knn, lattice_rows


@pytest.fixture(scope="module")
def memmapped(tmp_path_factory):
  rows, _ = lattice_rows(np.random.default_rng(7), centres=30, per_row_moves=3, num_rows=2500)
  path = tmp_path_factory.mktemp("stream") / "rows.npy"
  np.save(path, rows)
  return np.load(path, mmap_mode="r"), rows


@pytest.mark.parametrize("num_devices", (1, 8))
@pytest.mark.parametrize("precision", ("float32", "bfloat16"))
def test_streamed_equals_brute_force_and_in_memory(memmapped, num_devices, precision):
  mapped, rows = memmapped
  want_indices, want_scores = brute_force_knn(rows, 10, query_ids=np.arange(len(rows)))
  got = fq.streaming_knn(mapped, 10, mesh=fq.make_mesh(num_devices), precision=precision, pass_rows=700,
                         block_rows=600, block=128)
  np.testing.assert_array_equal(got.indices, want_indices)
  np.testing.assert_array_equal(got.scores, want_scores.astype(np.float32))
  in_memory = fq.knn(rows, 10, mesh=fq.make_mesh(num_devices), precision=precision, block=128)
  np.testing.assert_array_equal(got.indices, in_memory.indices)


def test_query_subset(memmapped):
  mapped, rows = memmapped
  query_rows = np.arange(5, 2500, 7)
  want_indices, _ = brute_force_knn(rows, 5, queries=rows[query_rows], query_ids=query_rows)
  got = fq.streaming_knn(mapped, 5, query_rows=query_rows, pass_rows=300, block_rows=1000, block=128)
  np.testing.assert_array_equal(got.indices, want_indices)


def test_resume_redoes_only_missing_passes(memmapped, tmp_path):
  mapped, _ = memmapped
  settings = dict(pass_rows=800, block_rows=900, block=128, checkpoint_dir=str(tmp_path))
  first = fq.streaming_knn(mapped, 10, **settings)
  passes = sorted(name for name in os.listdir(tmp_path) if name.startswith("pass_"))
  assert len(passes) >= 3
  # A preemption after pass 1: later passes never got written; pass 0 is marked
  # so that reusing it (rather than recomputing) is visible.
  for name in passes[2:]:
    os.remove(tmp_path / name)
  marked = dict(np.load(tmp_path / passes[0]))
  marked["indices"] = marked["indices"].copy()
  marked["indices"][0, 0] = -7
  np.savez(tmp_path / passes[0], **marked)
  resumed = fq.streaming_knn(mapped, 10, **settings)
  assert resumed.indices[0, 0] == -7
  np.testing.assert_array_equal(resumed.indices[1:], first.indices[1:])
  assert sorted(name for name in os.listdir(tmp_path) if name.startswith("pass_")) == passes


def test_checkpoint_of_other_settings_is_refused(memmapped, tmp_path):
  mapped, _ = memmapped
  fq.streaming_knn(mapped, 5, pass_rows=2500, block_rows=2500, block=256, checkpoint_dir=str(tmp_path))
  with pytest.raises(ValueError, match="holds a k-NN run with other data or settings"):
    fq.streaming_knn(mapped, 6, pass_rows=2500, block_rows=2500, block=256, checkpoint_dir=str(tmp_path))
  assert os.path.exists(tmp_path / streaming.MANIFEST)
