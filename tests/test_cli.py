"""`python -m facequal_jax` as a person uses it: installed, from anywhere; bad input; Ctrl-C.

Every bad input ends in one line on stderr naming the problem, exit status 2
(usage) or 1 (data), and no traceback; Ctrl-C ends the job at once and a rerun
resumes from the chunks it finished.
"""
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from facequal_jax.configs import iq
from facequal_jax.data import orl
from reference import iq_by_numpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _environment(devices: int = 1, **extra) -> dict:
  return dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu",
              **extra)


def _command(args, cwd, env=None, timeout=600):
  return subprocess.run([sys.executable, "-m", "facequal_jax"] + args, cwd=cwd, env=env or _environment(),
                        capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
  """The package installed non-editable (`pip install .`, no dependencies: the test venv has them)."""
  source, target = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("site")
  for name in ("pyproject.toml", "README.md"):  # a copy, so the build leaves nothing in the checkout
    shutil.copy(os.path.join(ROOT, name), source)
  shutil.copytree(os.path.join(ROOT, "facequal_jax"), source / "facequal_jax",
                  ignore=shutil.ignore_patterns("__pycache__"))
  subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                  "--target", str(target), str(source)], check=True, capture_output=True, timeout=600)
  return target


def test_installed_package_runs_the_builtin_default_from_anywhere(installed, tmp_path):
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  env = _environment(PYTHONPATH=str(installed))
  where = subprocess.run([sys.executable, "-c", "import facequal_jax.configs.iq as m; print(m.__file__)"],
                         cwd=elsewhere, env=env, capture_output=True, text=True, check=True).stdout
  assert where.startswith(str(installed))  # the installed copy, not the checkout

  done = _command([f"--workdir={tmp_path / 'orl'}"], elsewhere, env)
  assert done.returncode == 0, done.stderr
  with open(os.path.join(ROOT, "README.md")) as f:  # what the README says the command prints, whole
    shown = re.search(r"<!-- builtin-output -->\n```\n(.*?)```", f.read(), re.S).group(1)
  assert done.stdout.replace(str(tmp_path / "orl"), "/tmp/iq_orl") == shown
  lines = done.stdout.splitlines()
  assert lines[0].startswith("IQ ") and lines[1].startswith("found: 0 suspected mislabelled")
  assert f"open the report: {tmp_path / 'orl' / 'report.html'}" in lines
  assert not any(line[:1] in "IWE" and line[1:5].isdigit() for line in lines)  # no absl log lines in results
  assert "embedding 400 faces" in done.stderr and "Traceback" not in done.stderr
  report = json.loads((tmp_path / "orl" / "report.json").read_text())
  assert report["num_samples"] == 400 and report["num_identities"] == 40 and report["k"] == 10
  extracted = np.load(tmp_path / "orl" / "embeddings" / "embeddings.npz")
  np.testing.assert_array_equal(extracted["labels"], orl.load_orl()[1])
  assert report["iq"] == pytest.approx(iq_by_numpy(extracted["embeddings"], extracted["labels"]), abs=1e-5)
  assert report["data"]["encoder"]["name"] == "face_resnet" and report["data"]["preprocess"]["align"] == "detect"
  assert set(report["stage_seconds"]) >= {"embedding", "search", "diagnostics", "report"}
  # Clean ORL (10 images per identity, so Consis <= 0.9): the face network finds no label problem.
  assert report["consistency"] >= 0.85 and report["estimated_noise_rate"] <= 0.01
  assert len(report["suspected_mislabeled"]) <= 2 and report["near_duplicates"] == []
  # The noise demo: with 10 % of the labels flipped, the suspect list is the flips.
  demo = next(line for line in lines if line.split()[1:2] == ["noise_10"])
  noisy = json.loads((tmp_path / "orl" / "compare" / "noise_10" / "report.json").read_text())
  # Same-person photos filed under two labels by the flips are near in embedding, but no copies of one photograph.
  assert noisy["near_duplicates"] == [] and noisy["near_duplicates_rejected"] > 0
  precision = float(demo.split(" of the top")[0].split()[-1])
  recall = float(demo.split(" of the 40 flips")[0].split()[-1])
  assert precision >= 0.9 and recall >= 0.8, demo
  with open(tmp_path / "orl" / "identities.csv") as f:
    table = list(csv.DictReader(f))
  assert len(table) == 40 and {row["num_images"] for row in table} == {"10"}
  assert [row["name"] for row in table[:3]] == ["s1", "s2", "s3"]  # the identities' names, not just labels
  per_sample = np.load(tmp_path / "orl" / "per_sample.npz")
  assert per_sample["neighbor_rows"].shape == (400, 10)
  np.testing.assert_allclose(per_sample["consistency"].mean(), report["consistency"], atol=1e-6)

  # A packaged config by name, with an override; the faces embedded above are reused.
  done = _command(["--config=iq", f"--workdir={tmp_path / 'k5'}", "--config.k=5",
                   f"--config.extract.dir={tmp_path / 'orl' / 'embeddings'}", "--config.demo_noise_rates=()"],
                  elsewhere, env)
  assert done.returncode == 0, done.stderr
  again = json.loads((tmp_path / "k5" / "report.json").read_text())
  assert again["k"] == 5 and again["num_samples"] == 400
  assert again["iq"] == pytest.approx(iq_by_numpy(extracted["embeddings"], extracted["labels"], k=5), abs=1e-5)
  assert "embedding: " not in done.stderr  # nothing re-embedded


def test_print_config_lists_every_field_with_its_meaning(installed, tmp_path):
  done = _command(["--print_config", "--config.k=7"], tmp_path, _environment(PYTHONPATH=str(installed)))
  assert done.returncode == 0, done.stderr
  fields = dict(line.split(" = ", 1) for line in done.stdout.splitlines())
  assert fields["k"].startswith("7 ") and "neighbours per sample" in fields["k"]
  assert fields["knn.precision"].startswith("'float32'") and "bfloat16" in fields["knn.precision"]
  assert all("  # " in value for value in fields.values())  # every field says what it means
  leaves = iq.get_config().to_dict()
  count = lambda node: sum(count(value) if isinstance(value, dict) else 1 for value in node.values())
  assert len(fields) == count(leaves) == 62  # every leaf of the config, and only those


def _npz(path, embeddings, labels, **more):
  np.savez(path, embeddings=embeddings, labels=labels, **more)
  return f"--config.data.embeddings={path}"


def _bad_inputs(tmp_path):
  """(name, args, exit status, words the line must hold) for each bad input."""
  rng = np.random.default_rng(0)
  good = rng.normal(size=(30, 8)).astype(np.float32)
  labels = np.repeat(np.arange(10), 3)
  nan = good.copy()
  nan[7, 2] = np.nan
  (tmp_path / "empty" / "alice").mkdir(parents=True)
  (tmp_path / "a_file").write_text("not a folder")
  return [
      ("missing file", ["--config.data.embeddings=/no/such/emb.npz"], 1, ["/no/such/emb.npz", "no such file"]),
      ("NaN rows", [_npz(tmp_path / "nan.npz", nan, labels)], 1, ["nan.npz", "NaN", "[7]"]),
      ("label length", [_npz(tmp_path / "short.npz", good, labels[:-2])], 1, ["short.npz:labels", "28", "30"]),
      ("k > N", [_npz(tmp_path / "good.npz", good, labels), "--config.k=40"], 2, ["k=40", "30", "--config.k"]),
      ("empty folder", [f"--config.data.images={tmp_path / 'empty'}"], 1, ["holds no images", "empty"]),
      ("misspelt field", ["--config.knn.precison=bfloat16"], 2, ["--config.knn.precison", 'did you mean "precision"']),
      ("bad value", ["--config.knn.precision=bf16"], 2, ["precision", "'bfloat16'", "'bf16'"]),
      ("no config", ["--config=nope"], 2, ["--config=nope", "iq"]),
      ("no workdir", [], 2, ["--workdir is required"]),
  ]


def test_bad_input_is_one_line_with_its_exit_status(tmp_path):
  for name, args, status, words in _bad_inputs(tmp_path):
    workdir = [] if name == "no workdir" else [f"--workdir={tmp_path / 'out'}"]
    done = _command(workdir + args, tmp_path, timeout=120)
    lines = done.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert done.returncode == status and errors == lines[-1:], (name, done.stderr)
    assert all(line.endswith(" …") for line in lines[:-1]), (name, done.stderr)  # before it: only stage lines
    assert "Traceback" not in done.stderr and done.stdout == "", name
    for word in words:
      assert word in errors[0], (name, word, errors[0])
    assert not (tmp_path / "out" / "report.json").exists()


def test_a_workdir_that_is_a_file_stops_the_job_before_any_compute(tmp_path):
  faces = tmp_path / "faces" / "alice"
  faces.mkdir(parents=True)
  Image.fromarray(orl.load_orl()[0][0]).save(faces / "1.png")
  (tmp_path / "report").write_text("a file where the workdir should go")
  chunks = tmp_path / "chunks"
  done = _command([f"--workdir={tmp_path / 'report'}", f"--config.data.images={tmp_path / 'faces'}",
                   f"--config.extract.dir={chunks}"], tmp_path, timeout=120)
  assert done.returncode == 2 and done.stderr.startswith("error: --workdir=") and "is a file" in done.stderr
  assert len(done.stderr.strip().splitlines()) == 1 and not chunks.exists()  # nothing was extracted


def test_verbose_shows_the_traceback(tmp_path):
  done = _command([f"--workdir={tmp_path}", "--config.data.embeddings=/no/such/emb.npz", "--verbose"], tmp_path,
                  timeout=120)
  assert done.returncode == 1 and "Traceback" in done.stderr and "MissingFile" in done.stderr


def _orl_folder(root, identities: int):
  """The first `identities` ORL people as an image folder of PNGs."""
  images, labels = orl.load_orl()
  for index in np.flatnonzero(labels < identities):
    folder = root / f"s{labels[index] + 1}"
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(images[index]).save(folder / f"{index % 10 + 1}.png")
  return root


# Runs the command with a hook after each extraction chunk: it prints the chunk's number and, from the third
# chunk on, holds there, so the signal always arrives before the embedding stage can end.
_HOOKED = """
import runpy, sys, threading
from facequal_jax.data import extract
original = extract.extract_embeddings
def hooked(*args, **kwargs):
  def after_chunk(number):
    print(f"chunk {number} written", flush=True)
    if number >= 2:
      threading.Event().wait()
  return original(*args, after_chunk=after_chunk, **kwargs)
extract.extract_embeddings = hooked
sys.argv[0] = "facequal_jax"
runpy.run_module("facequal_jax", run_name="__main__", alter_sys=True)
"""


def test_ctrl_c_stops_the_embedding_at_once_and_a_rerun_resumes(tmp_path):
  args = [f"--workdir={tmp_path / 'out'}", f"--config.data.images={_orl_folder(tmp_path / 'faces', 8)}",
          "--config.extract.chunk_rows=8", "--config.extract.batch_size=4", "--config.extract.workers=1"]
  process = subprocess.Popen([sys.executable, "-c", _HOOKED] + args, cwd=tmp_path, env=_environment(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  assert process.stdout.readline() == "chunk 0 written\n"  # the embedding stage is under way
  sent = time.monotonic()
  process.send_signal(signal.SIGINT)
  process.wait(timeout=60)
  seconds = time.monotonic() - sent
  stderr = process.stderr.read()
  assert process.returncode == 130 and seconds < 2.0, (seconds, stderr)
  assert stderr.strip().splitlines()[-1] == ("interrupted during embedding: finished work is kept; "
                                             "rerun the same command to resume")
  chunks = sorted((tmp_path / "out" / "embeddings" / "chunks").glob("chunk_*.npz"))
  assert 1 <= len(chunks) <= 3 and not (tmp_path / "out" / "embeddings" / "embeddings.npz").exists()
  kept = {chunk.name: chunk.stat().st_mtime_ns for chunk in chunks}

  done = _command(args, tmp_path)
  assert done.returncode == 0, done.stderr
  assert f"resuming: {len(kept)} of 10 chunks already in" in done.stderr
  for name, written in kept.items():  # the finished chunks were kept, not redone
    assert (tmp_path / "out" / "embeddings" / "chunks" / name).stat().st_mtime_ns == written
  assert json.loads((tmp_path / "out" / "report.json").read_text())["num_samples"] == 80
