"""Face preprocessing: centre crop, channels, five-point alignment, and the two templates."""
import glob

import numpy as np
import pytest
from PIL import Image

import shared_data
from facequal_jax.data import align
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


# Where the ArcFace landmarks lie in dlib's 150-pixel chip, worked from ARCFACE_TO_CHIP by hand for the left
# eye: 1.511716 · 38.2946 − 0.01482588 · 51.6963 − 9.627348 = 47.5, 0.01482588 · 38.2946 + 1.511716 · 51.6963
# − 33.54427 = 45.2; the others likewise.
CHIP_POINTS_150 = np.array([[47.5, 45.2], [100.8, 45.4], [74.0, 75.7], [51.8, 106.7], [95.9, 106.9]])


@pytest.mark.parametrize("size, template, want", [(112, "arcface", ARCFACE_TEMPLATE_112),
                                                  (64, "arcface", ARCFACE_TEMPLATE_112 * 64 / 112),
                                                  (150, "chip", CHIP_POINTS_150)])
def test_alignment_moves_landmarks_onto_the_template(size, template, want):
  # Five bright dots at rotated, scaled, shifted template positions in a large image.
  angle, scale, shift = -0.2, 1.8, np.array([60.0, 35.0])
  rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
  landmarks = ARCFACE_TEMPLATE_112 @ (scale * rotation).T + shift
  canvas = np.zeros((320, 320), np.uint8)
  for x, y in landmarks:
    canvas[int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3] = 255
  out = FacePreprocess(size=size, channels="grey", template=template)(Image.fromarray(canvas),
                                                                       landmarks=landmarks)[..., 0]
  for x, y in want:
    window = out[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2]
    assert window.max() > 128, (x, y)


def test_arcface_aligned_crops_are_resized_for_the_arcface_template_and_warped_for_the_chip():
  face = np.random.default_rng(0).integers(0, 256, (224, 224, 3), np.uint8)
  resized = FacePreprocess(size=112, align="arcface", template="arcface")(Image.fromarray(face))
  np.testing.assert_array_equal(resized, np.asarray(Image.fromarray(face).resize((112, 112), Image.BILINEAR)))
  chip = FacePreprocess(size=150, align="arcface", template="chip")(Image.fromarray(face))
  assert chip.shape == (150, 150, 3) and chip[140:].max() == 0  # below the ArcFace crop's chin: nothing


@shared_data.needs("lfw_dev")
def test_detected_faces_in_the_arcface_template_are_dlibs_chip_in_the_other_frame():
  """A detected face cut to the ArcFace template, mapped back by ARCFACE_TO_CHIP, is dlib's own chip of the
  photo (up to two resamplings: a mean difference of ≈ 1.5 grey levels; a 3-pixel shift gives > 2 × that)."""
  import faces  # pylint: disable=import-outside-toplevel
  faces.dlib()
  for path in sorted(glob.glob(shared_data.path("lfw_dev") + "/*/*.jpg"))[:24:6]:
    rgb = np.asarray(Image.open(path).convert("RGB"))
    arcface = FacePreprocess(size=112, align="detect", template="arcface")(Image.fromarray(rgb))
    chip = align.detect_chip(rgb).astype(np.float64)
    back = np.asarray(align.arcface_to_chip(Image.fromarray(arcface)), np.float64)
    inside = (slice(10, 130), slice(10, 140))  # the ArcFace frame covers the chip above its bottom rows
    difference = np.abs(back[inside] - chip[inside]).mean()
    shifted = np.abs(np.roll(back, 3, axis=1)[inside] - chip[inside]).mean()
    assert difference < 2.5 and shifted > 2 * difference, (path, difference, shifted)


def test_bad_settings():
  with pytest.raises(ValueError, match="channels must be one of"):
    FacePreprocess(channels="bgr")
  with pytest.raises(ValueError, match="template must be one of 'chip', 'arcface'"):
    FacePreprocess(template="insightface")
