"""The built-in default data set: the ORL faces, bundled.

The ORL (AT&T) Database of Faces, Olivetti Research Laboratory, 1992–94: 40
identities × 10 grey images of 112 × 92 pixels. It ships inside the package as
one lossless PNG (`assets/orl_faces.png`, the 400 images stacked vertically,
identity by identity, images 1…10 in order).
"""
import os

import numpy as np
from PIL import Image

from facequal_jax.data.sources import ArraySource

ORL_ASSET = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "orl_faces.png")
ORL_IDENTITIES, ORL_IMAGES_PER_IDENTITY, ORL_SHAPE = 40, 10, (112, 92)


def pack_orl(source_dir: str, out_path: str = ORL_ASSET) -> None:
  """Packs the original ORL layout (`sN/M.pgm`) into the bundled PNG."""
  faces = [np.asarray(Image.open(os.path.join(source_dir, f"s{s}", f"{m}.pgm")))
           for s in range(1, ORL_IDENTITIES + 1) for m in range(1, ORL_IMAGES_PER_IDENTITY + 1)]
  if any(face.shape != ORL_SHAPE for face in faces):
    raise ValueError(f"ORL images in {source_dir} must all be {ORL_SHAPE}")
  Image.fromarray(np.concatenate(faces, axis=0)).save(out_path, format="PNG", optimize=True)


def load_orl():
  """The bundled ORL faces.

  Returns:
    (images uint8 [400, 112, 92], labels int64 [400] with identity sN → N − 1).
  """
  stacked = np.asarray(Image.open(ORL_ASSET))
  images = stacked.reshape(ORL_IDENTITIES * ORL_IMAGES_PER_IDENTITY, *ORL_SHAPE)
  labels = np.repeat(np.arange(ORL_IDENTITIES, dtype=np.int64), ORL_IMAGES_PER_IDENTITY)
  return images, labels


def orl_source() -> ArraySource:
  """The bundled faces as a source; sample names follow the original layout (`s1/1.pgm` …)."""
  images, labels = load_orl()
  names = [f"s{label + 1}/{i % ORL_IMAGES_PER_IDENTITY + 1}.pgm" for i, label in enumerate(labels)]
  return ArraySource(images, labels, names, [f"s{n}" for n in range(1, ORL_IDENTITIES + 1)])
