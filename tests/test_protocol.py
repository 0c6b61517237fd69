"""The smoke IQ validation protocol on the real LFW-dev faces, end to end, and its resume."""
import csv
import json
import os
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

from facequal_jax.configs import protocol_lfw
from facequal_jax.jobs import experiment as protocol
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
  by_name = {row["variant"]: row for row in rows}
  assert list(by_name) == ["clean_50", "clean_100", "noise_20"]
  # lfw_dev's data card: 94 identities have >= 10 images, 2,516 images in all.
  assert (by_name["clean_100"]["images"], by_name["clean_100"]["identities"]) == (2516, 94)
  assert by_name["clean_50"]["identities"] == 47
  assert by_name["noise_20"]["images"] == 2516 and by_name["noise_20"]["label_noise"] == 0.2
  # Label noise lowers neighbour consistency with the same images (fixed encoder: same embeddings).
  assert by_name["noise_20"]["fixed_consistency"] < by_name["clean_100"]["fixed_consistency"]
  fixed_rank = "fixed_effective_rank_normalized"
  assert by_name["noise_20"][fixed_rank] == by_name["clean_100"][fixed_rank]  # labels do not move it
  for row in rows:
    assert 0.5 <= row["accuracy"] <= 1.0 and 0.0 <= row["iq"] <= 1.0
    assert row["num_pairs"] == 1000  # 500 genuine + 500 impostor held-out pairs


def test_outputs_are_complete_and_correlations_recompute(smoke_run):
  _, workdir, rows = smoke_run
  with open(os.path.join(workdir, "protocol.csv")) as f:
    table = list(csv.DictReader(f))
  assert [row["variant"] for row in table] == [row["variant"] for row in rows]
  with open(os.path.join(workdir, "protocol.json")) as f:
    correlations = json.load(f)["correlations"]
  accuracy = np.array([row["accuracy"] for row in rows])
  iq = np.array([row["iq"] for row in rows])
  # Pearson from its definition.
  want = np.sum((iq - iq.mean()) * (accuracy - accuracy.mean())) / np.sqrt(
      np.sum((iq - iq.mean()) ** 2) * np.sum((accuracy - accuracy.mean()) ** 2))
  assert correlations["iq"]["pearson"] == pytest.approx(want, abs=1e-9)
  svg = ElementTree.parse(os.path.join(workdir, "protocol.svg")).getroot()
  circles = svg.findall("{http://www.w3.org/2000/svg}circle")
  assert len(circles) == len(protocol.METRICS) * len(rows)
  with open(os.path.join(workdir, "protocol.md")) as f:
    text = f.read()
  assert "| IQ (proxy) |" in text and "protocol.svg" in text


def test_a_finished_run_resumes_without_training(smoke_run):
  config, workdir, rows = smoke_run
  metrics = os.path.join(workdir, "variants", "clean_50", "metrics.jsonl")
  before = os.path.getmtime(metrics)
  os.remove(os.path.join(workdir, "protocol.md"))
  again = protocol.run(config, workdir)
  assert again == rows
  assert os.path.getmtime(metrics) == before
  assert os.path.exists(os.path.join(workdir, "protocol.md"))
