"""Face preprocessing: centre crop, channels, and five-point alignment."""
import numpy as np
import pytest
from PIL import Image

from facequal_jax.data.preprocess import ARCFACE_TEMPLATE_112, FacePreprocess, similarity_transform


def test_centre_crop_takes_the_middle_square():
  image = np.zeros((100, 60, 3), np.uint8)
  image[20:80, :, 0] = 255  # the centred 60 × 60 square is red
  out = FacePreprocess(size=30, channels="rgb")(Image.fromarray(image))
  assert out.shape == (30, 30, 3) and out[..., 0].min() == 255 and out[..., 1].max() == 0
  grey = FacePreprocess(size=10, crop=20, channels="grey")(Image.fromarray(image))
  assert grey.shape == (10, 10, 1)


def test_similarity_transform_recovers_a_known_one():
  angle, scale, shift = 0.3, 1.7, np.array([5.0, -2.0])
  rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
  source = np.random.default_rng(0).normal(size=(5, 2)) * 20
  target = source @ (scale * rotation).T + shift
  np.testing.assert_allclose(similarity_transform(source, target),
                             np.hstack([scale * rotation, shift[:, None]]), atol=1e-9)


@pytest.mark.parametrize("size", [112, 64])
def test_alignment_moves_landmarks_onto_the_template(size):
  # Five bright dots at rotated, scaled, shifted template positions in a large image.
  angle, scale, shift = -0.2, 1.8, np.array([60.0, 35.0])
  rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
  landmarks = ARCFACE_TEMPLATE_112 @ (scale * rotation).T + shift
  canvas = np.zeros((320, 320), np.uint8)
  for x, y in landmarks:
    canvas[int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3] = 255
  out = FacePreprocess(size=size, channels="grey")(Image.fromarray(canvas), landmarks=landmarks)[..., 0]
  for x, y in ARCFACE_TEMPLATE_112 * size / 112:
    window = out[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2]
    assert window.max() > 128, (x, y)


def test_bad_settings():
  with pytest.raises(ValueError, match="channels must be one of"):
    FacePreprocess(channels="bgr")
