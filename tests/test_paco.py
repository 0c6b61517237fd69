"""The MIM face encoder: masks, codebook gradients, learning, resumption, data parallelism."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

import facequal_jax as fq
from facequal_jax.research.configs import pretrain_paco
from facequal_jax import sharding
from facequal_jax.data import align
from facequal_jax.research import masking, paco
from facequal_jax.research.training import mim, views
import faces
import shared_data


def _small_config(**changes):
  config = pretrain_paco.get_config("tiny")
  config.model.update(image_size=32, patch=4, dim=32, depth=1, heads=2, decoder_dim=32, decoder_depth=1,
                      codebook_size=32)
  config.update(batch_size=8, steps=50, warmup_steps=2, incubation_steps=3, learning_rate=3e-3,
                checkpoint_every=5)
  for key, value in changes.items():
    target = config.model if key in config.model else config
    target[key] = value
  return config


IMAGES = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_region_masks_have_the_ratio_and_whole_regions(ratio):
  grid = 8
  masks = np.asarray(masking.sample_masks(jax.random.PRNGKey(1), 200, grid, ratio, "region"))
  np.testing.assert_array_equal(masks.sum(axis=1), round(ratio * grid * grid))
  regions = masking.patch_regions(grid)
  for mask in masks:
    partial = [r for r in np.unique(regions) if 0 < mask[regions == r].sum() < (regions == r).sum()]
    assert len(partial) <= 1, "only the last region reached may be cut"


def test_random_masks_are_not_region_coherent():
  grid, ratio = 8, 0.5
  masks = np.asarray(masking.sample_masks(jax.random.PRNGKey(2), 200, grid, ratio, "random"))
  np.testing.assert_array_equal(masks.sum(axis=1), 32)
  regions = masking.patch_regions(grid)
  partial = [sum(0 < m[regions == r].sum() < (regions == r).sum() for r in np.unique(regions)) for m in masks]
  assert np.mean(partial) > 3


def test_patch_regions_cover_the_named_parts():
  regions = masking.patch_regions(16)
  for r, name in enumerate(masking.REGION_NAMES):
    assert (regions == r).sum() >= 2, name


@pytest.mark.parametrize("teacher_forcing", [True, False])
def test_codebook_and_predictor_gradients_are_finite_and_nonzero(teacher_forcing):
  config = _small_config()
  model, state = mim.create_state(config)
  masks = masking.sample_masks(jax.random.PRNGKey(0), 8, 8, 0.5)

  def loss(params):
    return paco.total_loss(model.apply({"params": params}, IMAGES, masks, jnp.bool_(teacher_forcing)), config.model)

  grads = jax.jit(jax.grad(loss))(state.params)
  for name in ("codebook", "predictor", "embed_patch", "encoder"):
    norm = float(optax.tree.norm(grads[name]))
    assert np.isfinite(norm) and norm > 0, name


@pytest.mark.parametrize("use_codebook", [True, False])
def test_loss_falls_on_a_tiny_batch(use_codebook):
  config = _small_config(use_codebook=use_codebook)
  model, state = mim.create_state(config)
  mesh = sharding.make_mesh(1)
  state = jax.device_put(state, sharding.replicated(mesh))  # placed as the step returns it: compiled once
  step = mim.make_train_step(model, config, mesh)
  losses = []
  for _ in range(30):
    state, metrics = step(state, IMAGES)
    losses.append(float(metrics["reconstruction_loss"]))
  assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


@pytest.mark.parametrize("invariance_weight", [0.0, 0.1])
def test_one_and_eight_devices_give_the_same_step(invariance_weight):
  config = _small_config(invariance_weight=invariance_weight, projector_dim=16)
  model, state = mim.create_state(config)
  one = mim.make_train_step(model, config, sharding.make_mesh(1))
  eight = mim.make_train_step(model, config, sharding.make_mesh(8))
  state_one, metrics_one = one(jax.tree.map(jnp.copy, state), IMAGES)
  state_eight, metrics_eight = eight(jax.tree.map(jnp.copy, state), IMAGES)
  np.testing.assert_allclose(float(metrics_eight["loss"]), float(metrics_one["loss"]), rtol=1e-5)
  for a, b in zip(jax.tree.leaves(state_one.params), jax.tree.leaves(state_eight.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


def test_embeddings_are_unit_vectors():
  config = _small_config()
  model, state = mim.create_state(config)
  out = model.apply({"params": state.params}, IMAGES, method=paco.PacoMIM.embed)
  assert out.shape == (8, 32)
  np.testing.assert_allclose(np.linalg.norm(np.asarray(out), axis=1), 1.0, atol=1e-5)


def test_exported_encoder_loads_and_embeds_any_input(tmp_path):
  config = _small_config()
  model, state = mim.create_state(config)
  path = str(tmp_path / "encoder.msgpack")
  mim.export_encoder(state, config, path)
  encode = fq.load_encoder(path, mesh=sharding.make_mesh(8))
  want = np.asarray(model.apply({"params": state.params}, IMAGES, method=paco.PacoMIM.embed))
  np.testing.assert_allclose(encode(IMAGES), want, atol=1e-5)  # 32 × 32 RGB: no resizing
  grey = IMAGES[..., :1]
  np.testing.assert_allclose(encode(grey), encode(np.repeat(grey, 3, axis=-1)), atol=1e-6)
  for shape in [(3, 112, 92, 1), (5, 250, 250, 3), (2, 40, 40, 4)]:
    out = encode(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8))
    assert out.shape == (shape[0], 32) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_vicreg_terms_match_their_definitions():
  rng = np.random.default_rng(3)
  a, b = rng.normal(size=(6, 4)) * [0.2, 1.0, 3.0, 0.5], rng.normal(size=(6, 4))
  terms = paco.vicreg_terms(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
  mse = sum((a[i, j] - b[i, j]) ** 2 for i in range(6) for j in range(4)) / (6 * 4)

  def variance(z):
    stds = [np.sqrt(sum((z[i, j] - z[:, j].mean()) ** 2 for i in range(6)) / 6 + 1e-4) for j in range(4)]
    return sum(max(0.0, 1.0 - s) for s in stds) / 4

  def covariance(z):
    total = 0.0
    for j in range(4):
      for k in range(4):
        if j != k:
          total += (sum((z[i, j] - z[:, j].mean()) * (z[i, k] - z[:, k].mean()) for i in range(6)) / 5) ** 2
    return total / 4

  np.testing.assert_allclose(float(terms["view_mse"]), mse, rtol=1e-5)
  np.testing.assert_allclose(float(terms["view_variance"]), variance(a) + variance(b), rtol=1e-5)
  np.testing.assert_allclose(float(terms["view_covariance"]), covariance(a) + covariance(b), rtol=1e-4)


def test_views_without_jitter_are_the_image_or_its_mirror():
  out = np.asarray(views.random_views(jax.random.PRNGKey(0), IMAGES, scale=0.0, shift=0.0, colour=0.0))
  mirrored = [np.array_equal(o, x[:, ::-1]) for o, x in zip(out, IMAGES.astype(np.float32))]
  same = [np.array_equal(o, x) for o, x in zip(out, IMAGES.astype(np.float32))]
  assert all(m or s for m, s in zip(mirrored, same)) and 0 < sum(mirrored) < len(IMAGES)


def test_colour_jitter_is_an_affine_map_within_its_bounds():
  # Brightness varies down the rows only, so mirroring leaves the image as it is; no value is clipped.
  ramp = np.tile(np.linspace(60, 190, 32, dtype=np.float32)[:, None, None], (1, 32, 3))
  images = np.repeat(ramp[None].astype(np.uint8), 16, axis=0)
  out = np.asarray(views.random_views(jax.random.PRNGKey(4), images, scale=0.0, shift=0.0, colour=0.2))
  x = images[0].astype(np.float64)
  gains = []
  for o in out:
    gain, offset = np.polyfit(x.ravel(), o.ravel(), 1)
    np.testing.assert_allclose(o, gain * x + offset, atol=1e-3)
    assert 0.8 <= gain <= 1.2 and -25.5 <= offset <= 25.5
    gains.append(gain)
  assert np.std(gains) > 0.02, "every view draws its own gain"


@shared_data.needs("lfw_dev")
def test_chip_geometry_boxes_hold_the_landmarks_of_detected_chips():
  """On chips cut by `preprocess.align="detect"`, dlib's own five landmarks (found again on the chip) fall in the
  "chip" geometry's eye and nose boxes — and the eyes miss the ArcFace template's boxes, so geometry matters."""
  dlib = faces.dlib()
  detector, predictor = dlib.get_frontal_face_detector(), dlib.shape_predictor(
      faces.model_file(align.FIVE_POINT_FILE))
  root = shared_data.path("lfw_dev")
  eyes, noses = [], []
  for name in sorted(os.listdir(root))[:40]:
    path = os.path.join(root, name, sorted(os.listdir(os.path.join(root, name)))[0])
    chip = align.detect_chip(np.asarray(Image.open(path).convert("RGB")))
    found = detector(chip, 1) if chip is not None else []
    if len(found):
      points = np.array([[p.x, p.y] for p in predictor(chip, found[0]).parts()]) / align.CHIP_SIZE
      eyes.append(sorted([points[0:2].mean(0), points[2:4].mean(0)], key=lambda p: p[0]))
      noses.append(points[4])
  assert len(eyes) >= 30
  inside = lambda point, box: abs(point[0] - box[0]) <= box[2] / 2 and abs(point[1] - box[1]) <= box[3] / 2
  chip_boxes, arcface_boxes = masking.region_boxes("chip"), masking.region_boxes("arcface")
  left_eye, right_eye = np.mean(eyes, axis=0)
  assert inside(left_eye, chip_boxes[0]) and inside(right_eye, chip_boxes[1])
  assert inside(np.mean(noses, axis=0), chip_boxes[2])
  assert not inside(left_eye, arcface_boxes[0]) and not inside(right_eye, arcface_boxes[1])
  with pytest.raises(ValueError, match="face geometry"):
    masking.region_boxes("upside_down")


def test_teacher_target_is_learnt_from_the_masked_face():
  """With `teacher_weight` the masked face's mean token learns to point where the teacher's embedding does."""
  config = _small_config(teacher_weight=1.0, teacher_dim=6)
  model, state = mim.create_state(config)
  mesh = sharding.make_mesh(2)
  state = jax.device_put(state, sharding.replicated(mesh))
  step = mim.make_train_step(model, config, mesh)
  teacher = np.random.default_rng(5).normal(size=(8, 6)).astype(np.float32)
  losses = []
  for _ in range(25):
    state, metrics = step(state, IMAGES, teacher)
    losses.append(float(metrics["teacher_loss"]))
  assert losses[0] > 0.5 and np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
  with pytest.raises(ValueError, match="teacher embeddings"):
    mim.pretrain(config, IMAGES, "/nonexistent", mesh)


def test_cosine_distance_by_hand():
  predicted = jnp.array([[3.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
  target = jnp.array([[1.0, 0.0], [-2.0, -2.0], [5.0, 0.0]])
  assert float(paco.cosine_distance(predicted, target)) == pytest.approx((0.0 + 2.0 + 1.0) / 3)
