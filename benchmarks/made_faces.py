"""Face images made from the faces at hand: 112 × 112 JPEGs near the ArcFace template's framing, each with
its own crop, lighting and compression (for packs at any scale: `make_pack.py`, `gpu_suite.py`)."""
import io

import numpy as np
from PIL import Image

from facequal_jax.data.preprocess import decode

REGION = 176  # side of the central region kept of each photo (the face and some margin)


def central_regions(source) -> np.ndarray:
  """uint8 [P, REGION, REGION, 3]: the centre of every photo of a source (encoded bytes or arrays), resized
  when it is smaller."""
  regions = np.empty((len(source), REGION, REGION, 3), np.uint8)
  for i in range(len(source)):
    image = decode(source.read(i)).convert("RGB")
    if min(image.size) < REGION:
      image = image.resize((REGION, REGION))
    left, top = (image.size[0] - REGION) // 2, (image.size[1] - REGION) // 2
    regions[i] = np.asarray(image.crop((left, top, left + REGION, top + REGION)))
  return regions


def made_face(photo: np.ndarray, rng: np.random.Generator) -> bytes:
  """One 112 × 112 JPEG of the face in `photo` [REGION, REGION, 3]: jittered crop, lighting, quality."""
  side = int(rng.integers(136, 157))  # eyes about a third of the width apart, as in the ArcFace template
  left, top = (int(rng.integers(-5, 6)) + (REGION - side) // 2 for _ in range(2))
  face = np.asarray(Image.fromarray(photo).crop((left, top, left + side, top + side)).resize((112, 112),
                                                                                             Image.BILINEAR))
  gain, gamma = rng.uniform(0.6, 1.4), rng.uniform(0.8, 1.25)
  lit = np.take((255.0 * np.clip(np.arange(256) / 255.0 * gain, 0.0, 1.0) ** gamma).astype(np.uint8), face)
  if rng.random() < 0.2:  # one side in shadow
    lit = (lit * np.linspace(rng.uniform(0.2, 0.6), 1.0, 112)[None, ::rng.choice((-1, 1)), None]).astype(np.uint8)
  out = io.BytesIO()
  Image.fromarray(lit).save(out, format="JPEG", quality=int(rng.integers(75, 96)))
  return out.getvalue()
