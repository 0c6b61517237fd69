"""From encoded bytes to face tensors: decode, align or centre-crop, resize.

Output: uint8 [size, size, C], C = 1 ("grey") or 3 ("rgb").

`align` says how a face is found (see `align.py`): "detect" (dlib's detector
and five-point landmarks; the centred crop where no face is found, reported),
"arcface" (images already aligned to the ArcFace template), or "centre": a
centred square of `crop` source pixels (0: the largest centred square) resized
to `size` × `size` (bilinear). LFW's deep-funneled 250 × 250 images hold the
face in a centred square of about 110–130 pixels. `template` says where an
aligned face lies in the output: "chip" (dlib's face chip, the face network's)
or "arcface" (the ArcFace template, insightface's networks').

With five landmarks (left eye, right eye, nose tip, left and right mouth
corners, in source pixels): the least-squares similarity transform (Umeyama)
that maps them onto the ArcFace template points (in the chip: where
`ARCFACE_TO_CHIP` puts them), scaled to `size`, warps the image — the standard
alignment of face-recognition training sets.
"""
import dataclasses
import io
from typing import Optional

import numpy as np
from PIL import Image

from facequal_jax.data import align as align_lib

# ArcFace five-point template for 112 × 112 crops.
ARCFACE_TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                                 [41.5493, 92.3655], [70.7299, 92.2041]])
CHANNEL_MODES = {"grey": "L", "rgb": "RGB"}


class DecodeError(ValueError):
  """An image that cannot be decoded; the message says why."""


def decode(data) -> Image.Image:
  """Encoded bytes (any PIL format) or a uint8 array [H, W] / [H, W, C] → a loaded PIL image."""
  if isinstance(data, np.ndarray):
    return Image.fromarray(data[..., 0] if data.ndim == 3 and data.shape[2] == 1 else data)
  if not data:
    raise DecodeError("empty file (0 bytes)")
  try:
    image = Image.open(io.BytesIO(data))
    image.load()
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
    raise DecodeError(f"cannot decode image: {error}") from error
  return image


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
  """Least-squares similarity (rotation, uniform scale, shift) mapping source → target points.

  Args:
    source, target: float [P, 2] point sets (x, y).

  Returns:
    float64 [2, 3] matrix A with target ≈ A @ [x, y, 1].
  """
  source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
  mean_s, mean_t = source.mean(0), target.mean(0)
  s, t = source - mean_s, target - mean_t
  covariance = t.T @ s / len(source)
  u, d, vt = np.linalg.svd(covariance)
  sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])
  rotation = u @ sign @ vt
  scale = np.trace(np.diag(d) @ sign) / s.var(0).sum()
  shift = mean_t - scale * rotation @ mean_s
  return np.hstack([scale * rotation, shift[:, None]])


@dataclasses.dataclass(frozen=True)
class FacePreprocess:
  """Decoded image → uint8 [size, size, C] face tensor (see module docstring)."""
  size: int = 112
  crop: int = 0
  channels: str = "rgb"
  align: str = "centre"
  template: str = "chip"

  def __post_init__(self):
    if self.channels not in CHANNEL_MODES:
      raise ValueError(f"channels must be one of {sorted(CHANNEL_MODES)}, got {self.channels!r}")
    if self.align not in align_lib.ALIGN_MODES:
      raise ValueError(f"align must be one of {', '.join(map(repr, align_lib.ALIGN_MODES))}, got {self.align!r}")
    if self.template not in align_lib.TEMPLATES:
      raise ValueError(f"template must be one of {', '.join(map(repr, align_lib.TEMPLATES))}, "
                       f"got {self.template!r}")
    if self.size <= 0 or self.crop < 0:
      raise ValueError(f"size must be > 0 and crop >= 0, got size={self.size}, crop={self.crop}")

  @property
  def shape(self):
    return (self.size, self.size, 1 if self.channels == "grey" else 3)

  def __call__(self, image: Image.Image, landmarks: Optional[np.ndarray] = None) -> np.ndarray:
    return self.apply(image, landmarks).image

  def apply(self, image: Image.Image, landmarks: Optional[np.ndarray] = None) -> align_lib.Aligned:
    """The face tensor of `image` (given five landmarks: aligned by them), and whether detection found a face
    (always True unless `align` is "detect")."""
    mode = CHANNEL_MODES[self.channels]
    arcface = self.template == "arcface"
    if landmarks is not None:
      return align_lib.Aligned(self._shaped(self._align(image.convert(mode), np.asarray(landmarks, np.float64))))
    if self.align == "arcface":
      aligned = image.convert(mode)
      aligned = (aligned.resize((self.size, self.size), Image.BILINEAR) if arcface
                 else align_lib.arcface_to_chip(aligned, self.size))
      return align_lib.Aligned(self._shaped(aligned))
    if self.align == "detect":
      rgb = np.asarray(image.convert("RGB"))
      chip = align_lib.detect_arcface(rgb, self.size) if arcface else align_lib.detect_chip(rgb, self.size)
      if chip is not None:
        return align_lib.Aligned(self._shaped(Image.fromarray(chip).convert(mode)))
    width, height = image.size
    side = min(self.crop or min(width, height), width, height)
    left, top = (width - side) // 2, (height - side) // 2
    centred = image.convert(mode).crop((left, top, left + side, top + side)).resize((self.size, self.size),
                                                                                     Image.BILINEAR)
    return align_lib.Aligned(self._shaped(centred), found=self.align != "detect")

  def _shaped(self, image: Image.Image) -> np.ndarray:
    return np.asarray(image, np.uint8).reshape(self.shape)

  def template_points(self) -> np.ndarray:
    """float [5, 2]: where the five ArcFace landmarks lie in this output (pixels)."""
    if self.template == "arcface":
      return ARCFACE_TEMPLATE_112 * self.size / 112.0
    return np.hstack([ARCFACE_TEMPLATE_112, np.ones((5, 1))]) @ align_lib.ARCFACE_TO_CHIP.T * self.size / \
        align_lib.CHIP_SIZE

  def _align(self, image: Image.Image, landmarks: np.ndarray) -> Image.Image:
    forward = similarity_transform(landmarks.reshape(5, 2), self.template_points())
    return align_lib.warp(image, forward, self.size)
