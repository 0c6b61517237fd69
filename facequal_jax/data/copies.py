"""Is it the same photograph? Pixel-level confirmation of near-duplicate candidates.

Two embeddings can be nearly identical for two different photographs (one person in one session, two people
under the same harsh light); a copy is one photograph resized, recompressed or slightly cropped. The test
compares the decoded images themselves, not their embeddings: both in grey at the smaller one's scale (at
most 64 × 64), high-passed (each minus its 5 × 5 box blur, so that lighting and background cancel and what is
left is the photograph's fine detail), then the normalised cross-correlation, the best over a crop of one of
them by 0–8 % of each side and a shift of one pixel (the crop and shift a copy may have undergone).

Measured on every ORL face and LFW-dev samples (`tests/test_copies.py` plants them): a copy resized to 60 %,
recompressed as JPEG at quality 40 or cropped by 4 % scores at least 0.916, one made all three ways 0.96 on
LFW-dev's 250 × 250 photos, and LFW's known copies (Carlos_Beltran_0001 / Raul_Ibanez_0001, Emmy_Rossum_0001
/ Eva_Amurri_0001) 0.95 and 0.98. Different photographs score at most 0.86 — ORL's same-session photos of one
person, as they are or cropped tight with one side in shadow, all 3,600 pairs (99.9 % below 0.83) — and 0.34
for LFW photos of one person. `COPY_SIMILARITY` = 0.9 lies between. The limit: an ORL face (92 × 112) made
all three ways at once scores from 0.86, no more than a same-session photo, and is not confirmed.
"""
import functools
from typing import Callable, List, Tuple

import numpy as np
from PIL import Image, ImageFilter

COPY_SIMILARITY = 0.9
_MAX_SIDE, _MIN_SIDE = 64, 24
_CROPS = tuple(np.arange(0.0, 0.081, 0.01))  # share of each side cut from one image
_PHOTOS_KEPT = 256  # decoded photographs kept while confirming


def _detail(image: Image.Image, crop: float, side: int) -> np.ndarray:
  """float64 [side, side]: the grey image, `crop` of each side cut away, resized, minus its 5 × 5 box blur."""
  grey = image.convert("L")
  width, height = grey.size
  cut_x, cut_y = int(round(crop * width)), int(round(crop * height))
  grey = grey.crop((cut_x, cut_y, width - cut_x, height - cut_y)).resize((side, side), Image.BOX)
  return np.asarray(grey, np.float64) - np.asarray(grey.filter(ImageFilter.BoxBlur(2)), np.float64)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
  a, b = a - a.mean(), b - b.mean()
  return float((a * b).sum() / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-9))


def photo_similarity(a: Image.Image, b: Image.Image) -> float:
  """In [−1, 1]: near 1 when `a` and `b` are one photograph (module docstring), well below for two."""
  side = int(np.clip(0.8 * min(*a.size, *b.size), _MIN_SIDE, _MAX_SIDE))
  whole_a, whole_b = _detail(a, 0.0, side), _detail(b, 0.0, side)
  best = -1.0
  for crop in _CROPS:
    pairs = ((whole_a, whole_b),) if crop == 0 else ((_detail(a, crop, side), whole_b),
                                                     (whole_a, _detail(b, crop, side)))
    for first, second in pairs:
      for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
          shifted = np.roll(second, (dy, dx), axis=(0, 1))
          best = max(best, _correlation(first[2:-2, 2:-2], shifted[2:-2, 2:-2]))
  return best


def confirm(pairs: List[dict], photo_of: Callable[[int], Image.Image],
            threshold: float = COPY_SIMILARITY) -> Tuple[List[dict], int]:
  """The near-duplicate candidate pairs (`sample_a`, `sample_b`: input rows) that are one photograph, each with
  its `photo_similarity`, in their order; and how many were two photographs. A photograph in several pairs
  is read once (the last `_PHOTOS_KEPT` read are kept)."""
  photo_of = functools.lru_cache(maxsize=_PHOTOS_KEPT)(photo_of)
  kept = []
  for pair in pairs:
    similarity = photo_similarity(photo_of(pair["sample_a"]), photo_of(pair["sample_b"]))
    if similarity >= threshold:
      kept.append(dict(pair, photo_similarity=round(similarity, 4)))
  return kept, len(pairs) - len(kept)
