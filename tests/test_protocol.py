"""The smoke IQ validation protocol on the real LFW-dev faces, end to end, and its resume."""
import csv
import json
import os
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

from facequal_jax.research.configs import protocol_lfw
from facequal_jax.research import experiment as protocol
from facequal_jax.research import protocols
from scipy import stats
import shared_data

LFW = shared_data.path("lfw_dev")
pytestmark = shared_data.needs("lfw_dev")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
  config = protocol_lfw.get_config("smoke")
  config.data.images = LFW
  config.num_devices = 2  # data-parallel still; eight fake devices would split the same two cores eight ways
  workdir = str(tmp_path_factory.mktemp("protocol"))
  return config, workdir, protocol.run(config, workdir)


def test_variants_hold_what_they_claim(smoke_run):
  _, workdir, rows = smoke_run
  assert [(row["variant"], row["seed"]) for row in rows] == [
      ("clean_50", 0), ("clean_100", 0), ("noise_20", 0), ("clean_50", 1), ("clean_100", 1), ("noise_20", 1)]
  by_name = {row["variant"]: row for row in rows if row["seed"] == 0}
  # lfw_dev's data card: 94 identities have >= 10 images, 2,516 images in all.
  assert (by_name["clean_100"]["images"], by_name["clean_100"]["identities"]) == (2516, 94)
  assert by_name["clean_50"]["identities"] == 47
  assert by_name["noise_20"]["images"] == 2516 and by_name["noise_20"]["label_noise"] == 0.2
  # Label noise lowers neighbour consistency with the same images (fixed encoder: same embeddings).
  assert by_name["noise_20"]["fixed_consistency"] < by_name["clean_100"]["fixed_consistency"]
  fixed_rank = "fixed_effective_rank_normalized"
  assert by_name["noise_20"][fixed_rank] == by_name["clean_100"][fixed_rank]  # labels do not move it
  seeds = [row for row in rows if row["variant"] == "clean_100"]
  assert seeds[0]["accuracy"] != seeds[1]["accuracy"]  # the seed reaches the proxy
  assert seeds[0]["fixed_iq"] == seeds[1]["fixed_iq"]  # and not the fixed encoder
  for row in rows:
    assert 0.5 <= row["accuracy"] <= 1.0 and 0.0 <= row["iq"] <= 1.0
    assert row["num_pairs"] == 1000  # 500 genuine + 500 impostor held-out pairs
    assert 0.0 <= row["crossfit_consistency"] <= 1.0 and 0.0 <= row["subset_iq"] <= 1.0
    # The cross-fitted IQ takes r̃ from the fixed-size subset protocol.
    assert row["crossfit_iq"] == pytest.approx(0.2 * row["crossfit_consistency"]
                                               + 0.8 * row["subset_effective_rank_normalized"])
  # The subsets are the same for both seeds: the fixed encoder's subset metrics agree, and labels alone move them.
  assert seeds[0]["fixed_subset_iq"] == seeds[1]["fixed_subset_iq"]
  assert by_name["noise_20"]["fixed_subset_consistency"] < by_name["clean_100"]["fixed_subset_consistency"]
  # Each run trained its two half proxies, for half the steps.
  for half in ("half_0", "half_1"):
    logged = [json.loads(line) for line in open(os.path.join(workdir, "variants", "noise_20", "seed_1", half,
                                                             "metrics.jsonl"))]
    assert logged[-1]["step"] == 10


def test_outputs_are_complete_and_recompute(smoke_run):
  config, workdir, rows = smoke_run
  with open(os.path.join(workdir, "protocol.csv")) as f:
    table = list(csv.DictReader(f))
  assert [(row["variant"], int(row["seed"])) for row in table] == [(row["variant"], row["seed"]) for row in rows]
  with open(os.path.join(workdir, "protocol.json")) as f:
    written = json.load(f)
  names = ["clean_50", "clean_100", "noise_20"]
  mean = lambda field: np.array([np.mean([r[field] for r in rows if r["variant"] == n]) for n in names])
  accuracy, iq = mean("accuracy"), mean("iq")
  # Pearson of the variant means from its definition; Spearman inside its bootstrap interval.
  want = np.sum((iq - iq.mean()) * (accuracy - accuracy.mean())) / np.sqrt(
      np.sum((iq - iq.mean()) ** 2) * np.sum((accuracy - accuracy.mean()) ** 2))
  iq_row = written["correlations"]["iq"]
  assert iq_row["pearson"] == pytest.approx(want, abs=1e-9)
  assert iq_row["low"] <= iq_row["estimate"] <= iq_row["high"]
  # The α curve's ends are Spearman of r̃ alone (α = 0) and of Consis alone (α = 1).
  curve = written["alpha_curves"]["proxy, whole set"]
  assert written["alphas"][0] == 0.0 and written["alphas"][-1] == 1.0
  assert curve[0] == pytest.approx(written["correlations"]["effective_rank_normalized"]["estimate"])
  assert curve[-1] == pytest.approx(written["correlations"]["consistency"]["estimate"])
  # Accuracy std over seeds with n − 1.
  summary = {s["variant"]: s for s in written["summary"]}
  pair = [r["accuracy"] for r in rows if r["variant"] == "clean_50"]
  assert summary["clean_50"]["accuracy_std"] == pytest.approx(abs(pair[0] - pair[1]) / np.sqrt(2))
  # The ceiling: Spearman of seed 0's accuracies against seed 1's (three variants, worked from the rows).
  by_seed = [[r["accuracy"] for r in rows if r["seed"] == s] for s in (0, 1)]
  assert written["ceiling"]["estimate"] == pytest.approx(stats.spearmanr(*by_seed).statistic)
  # The pre-registered primary metric comes first and is marked so.
  assert written["primary"] == "subset_iq" and next(iter(written["correlations"])) == "subset_iq"
  svg = ElementTree.parse(os.path.join(workdir, "protocol.svg")).getroot()
  circles = svg.findall("{http://www.w3.org/2000/svg}circle")
  assert len(circles) == 3 * len(protocols.active(config)) * len(names) - 1 * len(names)  # crossfit: no r̃
  # The probe spectrum was logged at every logged step (10, 20) of every run: one line per run.
  training = ElementTree.parse(os.path.join(workdir, "protocol_training.svg")).getroot()
  lines = training.findall(".//{http://www.w3.org/2000/svg}polyline")
  assert len(lines) == len(rows) and all(len(line.get("points").split()) == 2 for line in lines)
  with open(os.path.join(workdir, "protocol.md")) as f:
    text = f.read()
  assert "| IQ (proxy, fixed-size subset) | **primary** |" in text and "The ground truth's ceiling" in text
  assert "protocol_alpha.svg" in text and "protocol_training.svg" in text


def test_a_finished_run_resumes_without_training(smoke_run):
  config, workdir, rows = smoke_run
  metrics = os.path.join(workdir, "variants", "clean_50", "seed_0", "metrics.jsonl")
  before = os.path.getmtime(metrics)
  os.remove(os.path.join(workdir, "protocol.md"))
  again = protocol.run(config, workdir)
  assert again == rows
  assert os.path.getmtime(metrics) == before
  assert os.path.exists(os.path.join(workdir, "protocol.md"))


def test_cap_variant_keeps_at_most_k_images_of_every_identity():
  labels = np.repeat(np.arange(6), [1, 2, 3, 5, 8, 4])
  config = protocol_lfw.get_config("smoke")
  config.variants.update(clean_percents=(), noise_percents=(), caps=(2,))
  (cap,) = protocol.build_variants(labels, None, config)
  assert cap.name == "cap_2" and cap.noise == 0.0
  np.testing.assert_array_equal(cap.labels, labels[cap.positions])
  np.testing.assert_array_equal(np.bincount(cap.labels, minlength=6), [1, 2, 2, 2, 2, 2])
  assert len(np.unique(cap.positions)) == len(cap.positions)


def test_lowres_variant_keeps_every_face_and_label_and_shrinks_the_chosen_share():
  labels = np.repeat(np.arange(5), 4)
  config = protocol_lfw.get_config("smoke")
  config.variants.update(clean_percents=(), noise_percents=(), lowres_percents=(25,))
  (lowres,) = protocol.build_variants(labels, None, config)
  assert lowres.name == "lowres_25" and lowres.degraded.sum() == 5
  np.testing.assert_array_equal(lowres.labels, labels)
  faces = np.random.default_rng(0).integers(0, 256, (20, 16, 16, 3)).astype(np.uint8)
  shown = protocol.variant_faces(lowres, faces, factor=4)
  changed = np.any(shown != faces, axis=(1, 2, 3))
  np.testing.assert_array_equal(changed, lowres.degraded)  # exactly the chosen faces, and the pool untouched
  assert faces.sum() == np.random.default_rng(0).integers(0, 256, (20, 16, 16, 3)).astype(np.uint8).sum()
