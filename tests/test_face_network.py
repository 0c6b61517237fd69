"""The face network as the job's encoder: odd images, alignment paths, the weights cache, and the fallback
without the optional extra."""
import io
import json
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import faces

faces.require()

import facequal_jax as fq  # pylint: disable=wrong-import-position
from facequal_jax.data import align, extract, orl, variants  # pylint: disable=wrong-import-position
from facequal_jax.data.preprocess import FacePreprocess  # pylint: disable=wrong-import-position
from facequal_jax.data.sources import ArraySource, ImageFolderSource  # pylint: disable=wrong-import-position
from facequal_jax.encoders import face_resnet  # pylint: disable=wrong-import-position
import shared_data  # pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def network():
  """The network without a path, as users get it (on one device: the 8 fake CPU devices would only split the
  same two cores eight ways)."""
  return fq.load_encoder(mesh=fq.make_mesh(1))


def _odd_images(root):
  rng = np.random.default_rng(0)
  (root / "odd").mkdir()
  Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / "odd" / "tiny_8x8.png")
  Image.fromarray(np.full((100, 100), 128, np.uint8), mode="L").save(root / "odd" / "grey.png")
  rgba = np.concatenate([rng.integers(0, 256, (120, 120, 3), dtype=np.uint8), np.full((120, 120, 1), 200, np.uint8)],
                        axis=2)
  Image.fromarray(rgba, mode="RGBA").save(root / "odd" / "rgba.png")
  gradient = np.tile(np.linspace(0, 255, 200, dtype=np.uint8)[None, :, None], (200, 1, 3))
  Image.fromarray(gradient).save(root / "odd" / "not_a_face.png")
  (root / "odd" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")


def test_odd_images_give_an_embedding_or_a_reported_skip(tmp_path, network):
  _odd_images(tmp_path)
  view = variants.full_view(ImageFolderSource(str(tmp_path)))
  face = FacePreprocess(150, 0, "rgb", "detect")
  result = extract.extract_embeddings(view, network, network.fingerprint(), str(tmp_path / "out"), face=face,
                                      batch_size=4, workers=2)
  names = lambda entries: sorted(os.path.basename(where) for where in entries)
  assert names(where for _, where, _ in result.skipped) == ["broken.jpg"]
  embedded = names(view.source.describe(int(row)) for row in result.source_rows)
  assert embedded == ["grey.png", "not_a_face.png", "rgba.png", "tiny_8x8.png"]
  assert names(where for _, where in result.no_face) == embedded  # none holds a face: centred crops, reported
  assert result.embeddings.shape == (4, 128) and np.all(np.isfinite(result.embeddings))
  np.testing.assert_allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-5)
  assert result.pixel_std[embedded.index("grey.png")] == 0.0


def test_any_size_and_channel_count(network):
  rng = np.random.default_rng(1)
  chip = rng.integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
  rgba = np.concatenate([chip, np.full((2, 150, 150, 1), 255, np.uint8)], axis=3)
  np.testing.assert_allclose(network(rgba), network(chip), atol=1e-6)  # alpha is dropped
  grey = chip[..., :1]
  np.testing.assert_allclose(network(grey), network(np.repeat(grey, 3, axis=3)), atol=1e-6)
  assert network(rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)).shape == (3, 128)
  with pytest.raises(ValueError, match="faces must be uint8"):
    network(np.zeros((2, 150, 150, 2), np.uint8))


@shared_data.needs("orl_faces")
def test_tight_crops_are_found_with_added_context():
  """ORL faces fill their frame: padding by a third finds the faces the detector misses as they are."""
  source = ImageFolderSource(shared_data.path("orl_faces"))
  found = [align.detect_chip(np.asarray(Image.open(source.describe(i)).convert("RGB"))) is not None
           for i in range(0, len(source), 4)]
  assert np.mean(found) >= 0.97


def test_arcface_path_maps_the_template_onto_the_chip():
  """A synthetic face aligned to the ArcFace template: the fixed warp puts its eye centres where dlib's chip
  puts eyes (between the template's eye corners)."""
  image = np.zeros((112, 112, 3), np.uint8)
  for x, y in ((38.2946, 51.6963), (73.5318, 51.5014)):
    image[round(y) - 1:round(y) + 2, round(x) - 1:round(x) + 2] = 255
  chip = np.asarray(align.arcface_to_chip(Image.fromarray(image)))
  ys, xs = np.nonzero(chip[..., 0] > 100)
  left, right = xs < 75, xs >= 75
  corners = (align.CHIP_PADDING + np.array([[0.1205750620789, 0.3340850613712], [0.6460604764104, 0.8595674595992]])) \
      / (2 * align.CHIP_PADDING + 1) * align.CHIP_SIZE
  assert corners[0, 0] < xs[left].mean() < corners[0, 1] and corners[1, 0] < xs[right].mean() < corners[1, 1]
  eye_row = (align.CHIP_PADDING + 0.22) / (2 * align.CHIP_PADDING + 1) * align.CHIP_SIZE
  assert abs(ys.mean() - eye_row) < 6


def test_cache_is_written_once_and_rebuilt_when_damaged(tmp_path):
  dat = face_resnet.weights_path()
  params, digest = face_resnet.load_params(dat, str(tmp_path))
  cached = [name for name in os.listdir(tmp_path) if name.endswith(".msgpack")]
  assert len(cached) == 1 and digest[:16] in cached[0]
  again, _ = face_resnet.load_params(dat, str(tmp_path))
  path = tmp_path / cached[0]
  path.write_bytes(b"damaged")
  rebuilt, _ = face_resnet.load_params(dat, str(tmp_path))
  for tree in (again, rebuilt):
    for a, b in zip(_leaves(tree), _leaves(params)):
      np.testing.assert_array_equal(a, b)
  assert path.stat().st_size > 20_000_000


def _leaves(tree):
  import jax  # pylint: disable=import-outside-toplevel
  return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]


def test_without_the_extra_the_job_says_so_and_uses_eigenfaces(tmp_path):
  hidden = tmp_path / "hidden"
  for name in ("dlib", "face_recognition_models"):
    (hidden / name).mkdir(parents=True)
    (hidden / name / "__init__.py").write_text(f"raise ImportError('{name} hidden for this test')\n")
  env = dict(os.environ, PYTHONPATH=f"{hidden}{os.pathsep}{ROOT}", JAX_PLATFORMS="cpu")
  command = [sys.executable, "-m", "facequal_jax", "--config=configs/iq.py", f"--workdir={tmp_path / 'out'}",
             "--config.demo_noise_rates=()"]
  process = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
  assert process.returncode == 0, process.stderr
  notes = [line for line in process.stderr.splitlines() if "optional extra" in line]
  assert len(notes) == 1, notes
  assert notes[0].endswith('need the optional extra (pip install "facequal_jax[faces]"): embedding with eigenfaces '
                           'on centred crops instead')
  report = json.loads((tmp_path / "out" / "report.json").read_text())
  assert report["data"]["encoder"]["name"] == "eigenfaces" and report["data"]["preprocess"]["align"] == "centre"


@shared_data.needs("lfw_dev")
def test_arcface_aligned_faces_identify_like_detected_ones(network):
  """LFW faces aligned to the ArcFace 112 × 112 template (as insightface packs hold them, from landmarks of dlib's
  68-point model), warped to the chip, identify within 0.02 of the detected and aligned path (1-NN)."""
  dlib = faces.dlib()
  from benchmarks.arcface_chip import landmarks  # pylint: disable=import-outside-toplevel
  from facequal_jax.research import verification  # pylint: disable=import-outside-toplevel
  detector = dlib.get_frontal_face_detector()
  five = dlib.shape_predictor(faces.model_file("shape_predictor_5_face_landmarks.dat"))
  sixty_eight = dlib.shape_predictor(faces.model_file("shape_predictor_68_face_landmarks.dat"))
  source = ImageFolderSource(shared_data.path("lfw_dev"))
  counts = np.bincount(source.labels)
  rows = np.concatenate([np.flatnonzero(source.labels == label)[:10] for label in np.flatnonzero(counts >= 10)[:20]])
  detect, arcface = FacePreprocess(150, 0, "rgb", "detect"), FacePreprocess(150, 0, "rgb", "arcface")
  detected, warped, labels = [], [], []
  for row in rows:
    image = Image.open(source.describe(int(row))).convert("RGB")
    found = landmarks(np.asarray(image), detector, five, sixty_eight)
    if found is None:
      continue
    packed = Image.fromarray(FacePreprocess(112, 0, "rgb", template="arcface")(image, found[1]))  # as a .rec holds
    detected.append(detect(image))
    warped.append(arcface(packed))
    labels.append(source.labels[row])
  assert len(labels) >= 190
  by_detection, _ = verification.identification_and_roc_auc(network(np.stack(detected)), np.asarray(labels))
  by_template, _ = verification.identification_and_roc_auc(network(np.stack(warped)), np.asarray(labels))
  print(f"1-NN on {len(labels)} faces: detected {by_detection:.4f}, ArcFace-aligned {by_template:.4f}")
  assert by_detection >= 0.95 and abs(by_template - by_detection) <= 0.02


def test_near_black_faces_are_low_information_not_duplicates(network, tmp_path):
  """Faces darkened to almost black (pixel values 0–3) look alike to any encoder: they are reported as
  low-information, and no two of them as near-duplicates of each other."""
  images, labels = orl.load_orl()
  dark = np.arange(0, 400, 20)  # one image of each of 20 identities
  images = images.copy()
  images[dark] = (images[dark] * (3.0 / 255)).astype(np.uint8)
  source = ArraySource(images, labels, [f"face_{i}" for i in range(400)], [f"s{n}" for n in range(40)])
  result = extract.extract_embeddings(variants.full_view(source), network, network.fingerprint(),
                                      str(tmp_path), face=FacePreprocess(150, 0, "rgb", "centre"))
  report = fq.intrinsic_quality(result.embeddings, result.labels)
  found = fq.diagnose(report, result.embeddings, pixel_std=result.pixel_std)
  assert sorted(item["sample"] for item in found["low_information"]) == dark.tolist()
  assert not any(pair["sample_a"] in dark and pair["sample_b"] in dark for pair in found["near_duplicates"])
  without = fq.diagnose(report, result.embeddings)  # what happens without the pixel statistics
  assert sum(pair["sample_a"] in dark and pair["sample_b"] in dark for pair in without["near_duplicates"]) > 0


@shared_data.needs("orl_faces")
def test_bfloat16_descriptors_agree_with_float32_and_rank_the_same(network):
  """The same ORL chips through the bfloat16 network: every descriptor within cosine 0.999 of float32's, faces
  identified by their nearest neighbour the same but for at most one (a near tie); and another fingerprint
  (its embeddings are other numbers)."""
  source = ImageFolderSource(shared_data.path("orl_faces"))
  rows = range(0, len(source), 4)
  chips = np.stack([np.asarray(Image.open(io.BytesIO(source.read(i))).convert("RGB").resize((150, 150)))
                    for i in rows])
  half = face_resnet.load_face_network(fq.make_mesh(1), dtype=jnp.bfloat16)
  full, low = network(chips), half(chips)
  assert low.dtype == np.float32 and np.einsum("nd,nd->n", full, low).min() > 0.999
  labels = source.labels[list(rows)]
  right = lambda e: labels[np.argmax(e @ e.T - 2 * np.eye(len(e)), axis=1)] == labels
  assert abs(int(right(low).sum()) - int(right(full).sum())) <= 1 and (right(low) != right(full)).sum() <= 1
  assert half.fingerprint() == network.fingerprint() + ":bfloat16"
