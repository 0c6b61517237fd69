"""Which patches of an aligned face to corrupt: facial-region masking, or random patches.

Faces are aligned (the ArcFace template, or the face network's chip geometry), so
facial parts sit at known places.
The patch grid (G × G patches) is split into regions around the canonical five
landmarks — left eye, right eye, nose, mouth — and the rest of the face, cut
into 2 × 2-patch blocks. Region masking ranks whole regions in a random order
(each sample its own) and corrupts the first ones until exactly
round(ratio · G²) patches are masked; the last region it reaches is cut along
its own patch order, so masks stay spatially coherent. Random masking, the
ablation, corrupts the same number of i.i.d. random patches.
"""
import jax
import jax.numpy as jnp
import numpy as np

from facequal_jax.data.align import ARCFACE_TO_CHIP, CHIP_SIZE
from facequal_jax.data.preprocess import ARCFACE_TEMPLATE_112

REGION_NAMES = ("left_eye", "right_eye", "nose", "mouth")
MASKINGS = ("region", "random")
# Where an aligned face's parts sit: "arcface" (the ArcFace 112 × 112 template) or "chip" (the face
# network's chip geometry, `preprocess.align="detect"`: the same template through `ARCFACE_TO_CHIP`).
GEOMETRIES = ("arcface", "chip")


def region_boxes(geometry: str = "arcface") -> np.ndarray:
  """float64 [4, 4] boxes (centre x, centre y, width, height) around the eyes, the nose tip and the mouth
  (between its corners), in units of the image side, for a face aligned in `geometry`."""
  if geometry not in GEOMETRIES:
    raise ValueError(f"face geometry must be one of {GEOMETRIES}, got {geometry!r}")
  points, scale = ARCFACE_TEMPLATE_112 / 112.0, 1.0
  if geometry == "chip":
    points = (ARCFACE_TO_CHIP[:, :2] @ ARCFACE_TEMPLATE_112.T + ARCFACE_TO_CHIP[:, 2:]).T / CHIP_SIZE
    scale = np.hypot(*ARCFACE_TO_CHIP[:, 0]) * 112.0 / CHIP_SIZE  # the template's side in chip units
  sizes = scale * np.array([[0.28, 0.18], [0.28, 0.18], [0.22, 0.22], [0.42, 0.18]])
  centres = np.vstack([points[:3], (points[3] + points[4]) / 2])
  return np.hstack([centres, sizes])


def patch_regions(grid: int, geometry: str = "arcface") -> np.ndarray:
  """Region of every patch of a grid × grid layout, row-major: int32 [grid²].

  0 … 3 are REGION_NAMES (a patch whose centre lies in a box; the first box
  wins); the rest of the face gets one id per 2 × 2 block, from 4 on.
  """
  centres = (np.arange(grid) + 0.5) / grid
  x, y = np.meshgrid(centres, centres)
  x, y = x.ravel(), y.ravel()
  region = np.full(grid * grid, -1, np.int32)
  for r, (cx, cy, w, h) in enumerate(region_boxes(geometry)):
    inside = (np.abs(x - cx) <= w / 2) & (np.abs(y - cy) <= h / 2) & (region < 0)
    region[inside] = r
  blocks = (np.arange(grid)[:, None] // 2 * ((grid + 1) // 2) + np.arange(grid)[None, :] // 2).ravel()
  region[region < 0] = len(REGION_NAMES) + blocks[region < 0]
  return region


def region_centres(grid: int, geometry: str = "arcface") -> np.ndarray:
  """Canonical (x, y) centre of each named region in patch units: float32 [4, 2]."""
  return (region_boxes(geometry)[:, :2] * grid - 0.5).astype(np.float32)


def sample_masks(key: jax.Array, batch: int, grid: int, ratio: float, kind: str = "region",
                 geometry: str = "arcface") -> jax.Array:
  """Boolean masks [batch, grid²], True = corrupted; exactly round(ratio · grid²) per row.

  Args:
    key: PRNG key.
    batch: number of masks.
    grid: patches per side.
    ratio: fraction of patches to corrupt, in (0, 1).
    kind: "region" (facial-region masking) or "random" (i.i.d. patches).
    geometry: how the faces are aligned (GEOMETRIES).
  """
  if kind not in MASKINGS:
    raise ValueError(f"masking must be one of {MASKINGS}, got {kind!r}")
  if not 0.0 < ratio < 1.0:
    raise ValueError(f"mask ratio must be in (0, 1), got {ratio}")
  patches = grid * grid
  count = int(round(ratio * patches))
  region_key, order_key = jax.random.split(key)
  if kind == "random":
    priority = jax.random.uniform(order_key, (batch, patches))
  else:
    regions_np = patch_regions(grid, geometry)
    regions, num_regions = jnp.asarray(regions_np), int(regions_np.max()) + 1
    # A random integer rank per region, then a random order inside the region
    # (within < 1, so a region's patches all come before the next region's).
    rank = jnp.argsort(jax.random.uniform(region_key, (batch, num_regions)), axis=1).argsort(axis=1)
    within = jax.random.uniform(order_key, (batch, patches))
    priority = jnp.take_along_axis(rank, jnp.broadcast_to(regions, (batch, patches)), axis=1) + within
  # The `count` smallest priorities are masked.
  threshold = jnp.sort(priority, axis=1)[:, count - 1:count]
  return priority <= threshold
