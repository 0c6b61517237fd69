"""`python -m facequal_jax` on data: an .npz (with identity names), compare mode, two processes, image sources."""
import csv
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import facequal_jax as fq
import shared_data
from facequal_jax.cleaning import decisions
from facequal_jax.jobs import run
from reference import clustered_gaussian

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args, devices, timeout=300, **popen):
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu")
  command = [sys.executable, "-m", "facequal_jax", "--config=configs/iq.py"] + args
  return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, **popen)


def _finish(process, timeout=300):
  output, _ = process.communicate(timeout=timeout)
  assert process.returncode == 0, output
  return output


def test_npz_embeddings_on_a_subset(tmp_path):
  rows, labels = clustered_gaussian(np.random.default_rng(0), 1500, 16, clusters=100, spread=0.5)
  names = np.array([f"person <{i}>" for i in range(100)])  # the identities' names, label i at i
  np.savez(tmp_path / "emb.npz", embeddings=rows, labels=labels, names=names)
  # Another data set holding identities 0-19 (other photos: the same rows moved a little) under other labels.
  shared = labels < 20
  other = rows[shared] + 0.05 * np.random.default_rng(1).normal(size=rows[shared].shape).astype(np.float32)
  np.savez(tmp_path / "other.npz", embeddings=other, labels=labels[shared] + 1000)
  output = _finish(_run([f"--workdir={tmp_path / 'out'}", f"--config.data.embeddings={tmp_path / 'emb.npz'}",
                         "--config.subset.size=500", "--config.k=5", "--config.alpha=0.5",
                         f"--overlap_with={tmp_path / 'other.npz'}"], devices=2))
  report = json.loads((tmp_path / "out" / "report.json").read_text())
  found = [pair for pair in report["overlap"]["pairs"] if pair["shared"]]
  assert sorted((pair["identity"], pair["other_identity"]) for pair in found) == [(i, 1000 + i) for i in range(20)]
  assert f"shared with {tmp_path / 'other.npz'}: 20 identities" in output
  dropped = {row.item for row in decisions.read(str(tmp_path / "out" / "decisions.csv")).decisions
             if row.kind == "identity" and row.action == "drop" and row.apply}
  assert dropped == {f"person <{i}>" for i in range(20)}  # by name, ready for apply
  direct = fq.intrinsic_quality(rows, labels, k=5, alpha=0.5, subset_size=500)
  assert report["num_samples"] == direct.num_samples <= 500
  assert report["iq"] == pytest.approx(direct.iq, abs=1e-6) and report["alpha"] == 0.5
  with open(tmp_path / "out" / "identities.csv") as f:
    table = list(csv.DictReader(f))
  assert all(row["name"] == names[int(row["identity"])] for row in table) and len(table) == direct.num_identities
  np.savez(tmp_path / "few_names.npz", embeddings=rows, labels=labels, names=names[:50])
  process = _run([f"--workdir={tmp_path / 'bad'}", f"--config.data.embeddings={tmp_path / 'few_names.npz'}"], 1)
  output, _ = process.communicate(timeout=120)
  assert process.returncode == 1 and "'names' has 50 entries but the labels run from 0 to 99" in output


def test_compare_ranks_files_by_iq(tmp_path):
  rows, labels = clustered_gaussian(np.random.default_rng(5), 1200, 16, clusters=60, spread=0.5)
  noisy, rng = labels.copy(), np.random.default_rng(6)
  moved_rows = rng.permutation(1200)[:240]  # 20 % of the labels moved to another identity at random
  noisy[moved_rows] = (noisy[moved_rows] + rng.integers(1, 60, 240)) % 60
  np.savez(tmp_path / "clean.npz", embeddings=rows, labels=labels)
  np.savez(tmp_path / "noisy.npz", embeddings=rows, labels=noisy)
  output = _finish(_run([f"--workdir={tmp_path / 'out'}", "--config.diagnostics.max_items=25", "--compare=" + ",".join(
      str(tmp_path / name) for name in ("noisy.npz", "clean.npz"))], devices=2))
  ranked = json.loads((tmp_path / "out" / "compare.json").read_text())
  assert [row["name"] for row in ranked] == ["clean", "noisy"]
  for row, y in zip(ranked, (labels, noisy)):
    assert row["iq"] == pytest.approx(fq.intrinsic_quality(rows, y).iq, abs=1e-6)
  assert (tmp_path / "out" / "clean" / "report.html").exists() and "compare.md" in output
  # Every finding where it is acted on: 240 moved labels, far more than the 25 report.json holds.
  moved = noisy != labels
  report = json.loads((tmp_path / "out" / "noisy" / "report.json").read_text())
  with open(tmp_path / "out" / "noisy" / "findings.csv", newline="") as f:
    suspects = [int(row["row"]) for row in csv.DictReader(f) if row["kind"] == "suspected_mislabeled"]
  assert len(report["suspected_mislabeled"]) == 25 and report["finding_counts"]["suspected_mislabeled"] == len(
      suspects) > 200
  assert [item["sample"] for item in report["suspected_mislabeled"]] == suspects[:25]
  rows_decided = [row for row in decisions.read(str(tmp_path / "out" / "noisy" / "decisions.csv")).decisions
                  if row.kind == "sample"]
  assert sorted(int(row.item) for row in rows_decided) == sorted(suspects)  # every suspect has its row
  dropped = [int(row.item) for row in rows_decided if row.apply]
  assert moved[dropped].mean() >= 0.95 and moved[dropped].sum() >= 0.95 * moved.sum()


def test_compared_data_sets_get_distinct_short_names():
  assert run.entry_names(["/d/a.npz", "/d/b.npz"]) == ["a", "b"]
  assert run.entry_names(["/data/faces", "/out/clean/faces.lst", "/x/faces.rec"]) == [
      "data_faces", "clean_faces", "x_faces"]
  with pytest.raises(ValueError, match="names one data set twice"):
    run.entry_names(["/d/a.npz", "/d/a.npz"])


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_write_the_same_report_as_one(tmp_path):
  rows, labels = clustered_gaussian(np.random.default_rng(1), 3000, 32, clusters=80, spread=0.7)
  np.savez(tmp_path / "emb.npz", embeddings=rows, labels=labels)
  common = [f"--config.data.embeddings={tmp_path / 'emb.npz'}", "--config.knn.block=256"]
  _finish(_run(common + [f"--workdir={tmp_path / 'one'}"], devices=4))
  address = f"127.0.0.1:{_free_port()}"
  processes = [_run(common + [f"--workdir={tmp_path / 'two'}", f"--coordinator_address={address}",
                              "--num_processes=2", f"--process_id={i}"], devices=2) for i in range(2)]
  for process in processes:
    _finish(process)
  one = json.loads((tmp_path / "one" / "report.json").read_text())
  two = json.loads((tmp_path / "two" / "report.json").read_text())
  assert one["num_devices"] == two["num_devices"] == 4
  for key, value in one.items():
    if key in ("seconds", "stage_seconds", "eigenvalues"):
      continue
    if key == "decisions":  # each names its own workdir's file
      value, two[key] = dict(value, file=None), dict(two[key], file=None)
    if isinstance(value, float):
      assert two[key] == pytest.approx(value, rel=1e-6), key
    else:
      assert two[key] == value, key
  np.testing.assert_allclose(two["eigenvalues"], one["eigenvalues"], rtol=1e-5, atol=1e-9)
  per_one, per_two = np.load(tmp_path / "one" / "per_sample.npz"), np.load(tmp_path / "two" / "per_sample.npz")
  np.testing.assert_array_equal(per_two["neighbor_rows"], per_one["neighbor_rows"])
  np.testing.assert_array_equal(per_two["consistency"], per_one["consistency"])
  assert (tmp_path / "one" / "identities.csv").read_text() == (tmp_path / "two" / "identities.csv").read_text()


# The data path itself, fast: eigenfaces on centred crops (the face network's own checks are in test_face_network.py).
EIGENFACES = ["--config.encoder.name=eigenfaces", "--config.preprocess.align=centre"]


@shared_data.needs("lfw_dev")
def test_lfw_dev_image_folder_end_to_end(tmp_path):
  output = _finish(_run([f"--config.data.images={shared_data.path('lfw_dev')}", f"--workdir={tmp_path}",
                         "--config.preprocess.size=64", "--config.preprocess.channels=grey"] + EIGENFACES,
                        devices=1), timeout=600)
  assert "IQ " in output
  report = json.loads((tmp_path / "report.json").read_text())
  assert report["num_samples"] == 8156 and report["num_identities"] == 3599 and report["skipped"] == []
  assert report["num_singletons"] == 2538  # identities with one image, left out of Consis
  # The data card's known duplicate: one photograph filed under two people.
  pairs = [{os.path.basename(d["file_a"]), os.path.basename(d["file_b"])} for d in report["near_duplicates"]]
  assert {"Carlos_Beltran_0001.jpg", "Raul_Ibanez_0001.jpg"} in pairs
  assert (tmp_path / "embeddings" / "embeddings.npz").exists()


@shared_data.needs("orl_faces")
def test_orl_as_folder_rec_and_tfds_gives_one_report(tmp_path):
  pytest.importorskip("tensorflow_datasets", reason="the TFDS leg needs the tfds extra (pip install -e '.[tfds]')")
  from facequal_jax.data import recordio, sources  # pylint: disable=import-outside-toplevel
  orl = shared_data.path("orl_faces")
  folder = sources.ImageFolderSource(orl)
  recordio.write_face_pack(str(tmp_path / "orl.rec"), [(int(folder.labels[i]), folder.read(i))
                                                       for i in range(len(folder))])
  small = ["--config.preprocess.size=32", "--config.preprocess.channels=grey", "--config.encoder.dim=32"] + EIGENFACES
  runs = {"images": [f"--config.data.images={orl}"], "rec": [f"--config.data.rec={tmp_path / 'orl.rec'}"]}
  from facequal_jax.data import tfds_data  # pylint: disable=import-outside-toplevel
  tfds_data.prepare_image_folder(orl, str(tmp_path / "tfds"))
  runs["tfds"] = ["--config.data.tfds=face_folder", f"--config.data.tfds_dir={tmp_path / 'tfds'}"]
  reports = {}
  for name, args in runs.items():
    _finish(_run(args + small + [f"--workdir={tmp_path / name}"], devices=2))
    reports[name] = json.loads((tmp_path / name / "report.json").read_text())
  for name, report in reports.items():
    assert report["num_samples"] == 400 and report["num_identities"] == 40, (name, report["skipped"])
    assert report["iq"] == pytest.approx(reports["images"]["iq"], abs=1e-5), name
  assert [s["reason"] for s in reports["images"]["skipped"]] == ["not inside an identity folder"]
