"""The face quality score: its formula by hand, the same on 1 and 8 devices, lower for degraded ORL faces than for
their originals, a near-uniform face at the bottom, and the IQ job's outputs that carry it."""
import csv
import io
import json
import math

import numpy as np
import pytest
from PIL import Image, ImageFilter

import faces
from facequal_jax import sharding
from facequal_jax.configs import iq
from facequal_jax.data import extract, orl, variants
from facequal_jax.data.preprocess import FacePreprocess
from facequal_jax.data.sources import ArraySource
from facequal_jax.jobs import run
from facequal_jax.metrics import face_quality


def test_the_score_by_hand():
  # σ(3 · 0) = 0.5; 1^10 = 1; 60 / 60 = 1 → 0.5. σ(3 · 1) = 0.952574; 0.9^10 = 0.348678; 30 / 60 = 0.5.
  got = face_quality.quality(np.array([0.0, 1.0, math.nan, 2.0]), np.array([1.0, 0.9, 0.9, -0.2]),
                             np.array([60.0, 30.0, 200.0, 100.0]))
  np.testing.assert_allclose(got, [0.5, 0.952574 * 0.348678 * 0.5, 0.348678, 0.0], rtol=1e-5)
  # cosines of [3, 4] with [4, 3] (24 / 25) and of [1, 0] with [-1, 0]
  np.testing.assert_allclose(face_quality.stability(np.array([[3.0, 4.0], [1.0, 0.0]]),
                                                    np.array([[4.0, 3.0], [-1.0, 0.0]])), [0.96, -1.0], rtol=1e-6)


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
  out = io.BytesIO()
  image.save(out, format="JPEG", quality=quality)
  return Image.open(io.BytesIO(out.getvalue())).convert("L")


def _darken_one_side(image: Image.Image) -> Image.Image:
  pixels = np.asarray(image, np.float32)
  shadow = np.where(np.arange(pixels.shape[1]) < pixels.shape[1] // 2, 0.1, 1.0)  # the left half's light × 0.1
  return Image.fromarray((pixels * shadow).astype(np.uint8))


def _occlude_lower_half(image: Image.Image) -> Image.Image:
  pixels = np.asarray(image).copy()
  pixels[pixels.shape[0] // 2:] = 128
  return Image.fromarray(pixels)


def _noisy(image: Image.Image) -> Image.Image:
  pixels = np.asarray(image, np.float32) + np.random.default_rng(0).normal(0.0, 30.0, np.asarray(image).shape)
  return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


DEGRADATIONS = {
    "blur": lambda image: image.filter(ImageFilter.GaussianBlur(3)),
    "down-scaling": lambda image: image.resize((12, 14), Image.BILINEAR).resize(image.size, Image.BILINEAR),
    "heavy JPEG": lambda image: _jpeg(image, 3),
    "lower half occluded": _occlude_lower_half,
    "noise": _noisy,
    "one side dark": _darken_one_side,
}


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
  """The first face of each ORL identity, each degraded copy of it, a flat grey and a near-black image, scored by
  the extraction (detected, aligned, the face network on 8 devices)."""
  faces.require()
  images, labels = orl.load_orl()
  firsts = [Image.fromarray(images[i]) for i in np.flatnonzero(np.diff(labels, prepend=-1))]
  versions = [firsts] + [[degrade(face) for face in firsts] for degrade in DEGRADATIONS.values()]
  flat = [np.full((112, 92), 128, np.uint8), np.full((112, 92), 3, np.uint8)]
  stacked = np.stack([np.asarray(face) for group in versions for face in group] + flat)
  source = ArraySource(stacked, np.arange(len(stacked)) % 40, [str(i) for i in range(len(stacked))],
                       [str(n) for n in range(40)])
  from facequal_jax.encoders import face_resnet  # pylint: disable=import-outside-toplevel
  encoder = face_resnet.load_face_network(sharding.make_mesh(8))
  result = extract.extract_embeddings(variants.full_view(source), encoder, encoder.fingerprint(),
                                      str(tmp_path_factory.mktemp("quality")),
                                      face=FacePreprocess(150, 0, "rgb", "detect"), workers=2)
  return result.quality[:, 0], len(firsts), source


def test_the_score_lies_in_0_1_and_degraded_faces_score_lower_than_their_originals(scored):
  quality, count, _ = scored
  assert np.all((quality >= 0) & (quality <= 1)) and not np.isnan(quality).any()
  original = quality[:count]
  shares = {name: float(np.mean(quality[(n + 1) * count:(n + 2) * count] < original))
            for n, name in enumerate(DEGRADATIONS)}
  print("share of the 40 ORL faces scoring lower once degraded:", shares)
  assert all(share >= 0.75 for share in shares.values()), shares
  assert np.mean(list(shares.values())) >= 0.85, shares


def test_near_uniform_faces_score_at_the_bottom(scored):
  quality, _, _ = scored
  assert quality[-2:].max() < 0.01 and quality[-2:].max() <= np.sort(quality)[2]


def test_the_score_is_the_same_on_1_and_8_devices(scored, tmp_path):
  quality, count, source = scored
  from facequal_jax.encoders import face_resnet  # pylint: disable=import-outside-toplevel
  encoder = face_resnet.load_face_network(sharding.make_mesh(1))
  view = variants.View(source, np.arange(count), source.labels[:count])
  one = extract.extract_embeddings(view, encoder, encoder.fingerprint(), str(tmp_path),
                                   face=FacePreprocess(150, 0, "rgb", "detect"), workers=2)
  np.testing.assert_allclose(one.quality[:, 0], quality[:count], atol=1e-5)


def test_the_job_reports_quality_in_every_output(tmp_path):
  """ORL faces as a folder, one down-scaled beyond use and one in the dark: report.json's summary, per_sample.npz,
  identities.csv's mean per identity (worked from per_sample.npz) and review-only decisions agree."""
  faces.require()
  images, labels = orl.load_orl()
  keep = labels < 8
  for index in np.flatnonzero(keep):
    image = Image.fromarray(images[index])
    if index == 3:
      image = image.resize((8, 10), Image.BILINEAR).resize(image.size, Image.BILINEAR)
    if index == 14:
      image = Image.fromarray((np.asarray(image) * 0.08).astype(np.uint8))
    folder = tmp_path / "faces" / f"person{labels[index]}"
    folder.mkdir(parents=True, exist_ok=True)
    image.save(folder / f"{index}.png")
  config = iq.get_config()
  config.data.images = str(tmp_path / "faces")
  config.k = 5
  report, findings = run.run(config, str(tmp_path / "out"))
  per_sample = np.load(tmp_path / "out" / "per_sample.npz")
  quality = per_sample["quality"]
  assert per_sample["quality_terms"].shape == (80, 3) and np.all((quality >= 0) & (quality <= 1))
  summary = json.loads((tmp_path / "out" / "report.json").read_text())["face_quality"]
  assert summary["num_scored"] == 80 and summary["mean"] == pytest.approx(quality.mean(), rel=1e-6)
  assert summary["histogram"]["counts"] == np.histogram(quality, np.linspace(0, 1, 21))[0].tolist()
  with open(tmp_path / "out" / "identities.csv") as f:
    means = {int(row["identity"]): float(row["mean_quality"]) for row in csv.DictReader(f)}
  for label in range(8):
    assert means[label] == pytest.approx(quality[per_sample["label"] == label].mean(), abs=1e-6)
  low = {item["file"].split("faces/")[-1] for item in findings["low_quality"]}
  assert {"person0/3.png", "person1/14.png"} <= low, low
  with open(tmp_path / "out" / "decisions.csv") as f:
    rows = [row for row in csv.reader(line for line in f if not line.startswith("#"))][1:]
  dropped = {row[2]: row[0] for row in rows if row[4].startswith("low-quality face")}
  assert set(dropped) == low and set(dropped.values()) == {"no"}  # for review only
  assert report.num_samples == 80
  again = iq.get_config()  # the extraction's .npz carries the scores to a run on embeddings
  again.data.embeddings = str(tmp_path / "out" / "embeddings" / "embeddings.npz")
  again.k = 5
  run.run(again, str(tmp_path / "again"))
  assert json.loads((tmp_path / "again" / "report.json").read_text())["face_quality"] == summary


def test_the_extraction_scores_each_face_with_its_mirror_image_or_not_at_all(tmp_path):
  """With a linear encoder the mirror term is worked out by hand; `quality=False` leaves every score NaN."""
  images = np.random.default_rng(0).integers(0, 256, (12, 16, 16, 3), np.uint8)
  projection = np.random.default_rng(1).normal(size=(16 * 16 * 3, 8))
  encode = lambda batch: (batch.reshape(len(batch), -1).astype(np.float64) @ projection).astype(np.float32)
  source = ArraySource(images, np.arange(12) % 3, [str(i) for i in range(12)], ["a", "b", "c"])
  face = FacePreprocess(16, 0, "rgb", "centre")
  scored = extract.extract_embeddings(variants.full_view(source), encode, "linear", str(tmp_path / "on"), face=face,
                                      chunk_rows=5, workers=1)
  a, b = encode(images), encode(images[:, :, ::-1])
  want = np.einsum("nd,nd->n", a, b) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
  np.testing.assert_allclose(scored.quality[:, 2], want, rtol=1e-5)
  assert np.all((scored.quality[:, 0] >= 0) & (scored.quality[:, 0] <= 1))
  unscored = extract.extract_embeddings(variants.full_view(source), encode, "linear", str(tmp_path / "off"),
                                        face=face, chunk_rows=5, workers=1, quality=False)
  assert unscored.quality.shape == (12, 4) and np.isnan(unscored.quality).all()


def test_without_a_detector_the_evidence_is_null_and_the_rest_still_decides():
  from facequal_jax.cleaning import decisions  # pylint: disable=import-outside-toplevel
  from facequal_jax.metrics import diagnostics  # pylint: disable=import-outside-toplevel
  quality = np.array([[0.1, np.nan, 0.8, 90.0], [0.9, np.nan, 0.99, 120.0]])
  listed = diagnostics.low_quality_faces(quality, diagnostics.Thresholds())
  assert listed == [{"sample": 0, "quality": 0.1, "evidence": None, "stability": 0.8, "light": 90.0}]
  json.dumps(listed, allow_nan=False)  # report.json holds no NaN
  names = decisions.Naming(lambda row: f"img{row}.jpg", lambda row: 0.5, str, lambda label: 1)
  found = {"suspected_mislabeled": [], "near_duplicates": [], "merge_candidates": [], "low_quality": listed}
  made = decisions.propose(found, decisions.Policy(), names)
  assert [(x.apply, x.item, x.reason) for x in made] == [
      (False, "img0.jpg", "low-quality face: quality 0.100 (mirror cosine 0.800, darker half 90)")]
