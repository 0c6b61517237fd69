"""Face-image quality: a label-free score per face in [0, 1] — 1 for a clear, frontal, evenly lit face, near 0 for
one too poor to learn from (blurred, tiny, occluded, dark, or no face at all).

  quality = σ(EVIDENCE_SLOPE · evidence) · max(stability, 0) ^ STABILITY_POWER · min(1, light / LIGHT_FULL)

- `evidence`: the margin of dlib's frontal-face detector (HOG features, a linear SVM) for the best face it finds
  in the aligned face, seen in dlib's chip geometry (`face_terms`): how much the image looks like a face to a
  detector that is independent of the encoder. Where dlib is not installed the term is 1.
- `stability`: the cosine between the encoder's embeddings of the face and of its mirror image — the embedding's
  robustness to a perturbation that keeps identity, in the spirit of SER-FIQ (which perturbs by dropout).
- `light`: the mean grey level (0–255) of the darker half (left or right) of the face region: a face half in
  shadow.

The terms and their constants were chosen by error-versus-reject curves on LFW-dev verification pairs and by
separating degraded copies from their originals (`benchmarks/face_quality.py`, docs/face_quality.md), against
single terms and simple baselines (pixel contrast, sharpness, detected or not).
"""
import math

import numpy as np
from PIL import Image

from facequal_jax.data import align as align_lib

FIELDS = ("quality", "evidence", "stability", "light")  # a face's score and its terms, as stored
EVIDENCE_SLOPE = 3.0
STABILITY_POWER = 10
LIGHT_FULL = 60.0
HISTOGRAM_EDGES = np.linspace(0.0, 1.0, 21)  # report.json's and the page's bins
NO_FACE_EVIDENCE = -2.5  # the evidence where the detector finds nothing, even at a margin of −2
# The face region of a 150 × 150 chip (rows, columns): between the brows and the chin, cheek to cheek.
_FACE_ROWS, _LEFT, _RIGHT = slice(30, 130), slice(25, 75), slice(75, 125)


def face_terms(face: np.ndarray, template: str, detect: bool = True) -> tuple:
  """(evidence, light) of one aligned face: uint8 [size, size, C] in `template`'s geometry ("chip" or "arcface").

  `evidence` is NaN without `detect` (dlib not installed).
  """
  image = Image.fromarray(face[..., 0] if face.shape[-1] == 1 else face).convert("RGB")
  chip = (align_lib.arcface_to_chip(image) if template == "arcface"
          else image.resize((align_lib.CHIP_SIZE,) * 2, Image.BILINEAR))
  rgb = np.asarray(chip)
  grey = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
  light = min(grey[_FACE_ROWS, _LEFT].mean(), grey[_FACE_ROWS, _RIGHT].mean())
  evidence = align_lib.detection_margin(rgb, NO_FACE_EVIDENCE) if detect else math.nan
  return evidence, float(light)


def unscored(count: int) -> np.ndarray:
  """float32 [count, 4]: the rows of faces that were not scored (every field NaN)."""
  return np.full((count, len(FIELDS)), np.nan, np.float32)


def stability(embeddings: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
  """float32 [n]: the cosine between each face's embedding and its mirror image's (both [n, D])."""
  a, b = np.asarray(embeddings, np.float64), np.asarray(mirrored, np.float64)
  norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
  return (np.einsum("nd,nd->n", a, b) / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def quality(evidence: np.ndarray, stable: np.ndarray, light: np.ndarray) -> np.ndarray:
  """float32 [n] in [0, 1] from the three terms (float [n] each; NaN evidence: that term is 1)."""
  evidence = np.asarray(evidence, np.float64)
  detector = np.where(np.isnan(evidence), 1.0, 1.0 / (1.0 + np.exp(-EVIDENCE_SLOPE * np.nan_to_num(evidence))))
  robust = np.clip(np.asarray(stable, np.float64), 0.0, 1.0) ** STABILITY_POWER
  lit = np.clip(np.asarray(light, np.float64) / LIGHT_FULL, 0.0, 1.0)
  return (detector * robust * lit).astype(np.float32)


def summary(scores: np.ndarray, threshold: float) -> dict:
  """report.json's `face_quality`: how the scored faces (float [n], NaN: not scored) spread over [0, 1]."""
  scored = np.asarray(scores, np.float64)
  scored = scored[~np.isnan(scored)]
  if not len(scored):
    return {"num_scored": 0}
  return {"num_scored": len(scored), "mean": float(scored.mean()),
          "percentiles": {str(p): float(np.percentile(scored, p)) for p in (1, 5, 25, 50, 75, 95)},
          "threshold": threshold, "num_low": int((scored < threshold).sum()),
          "histogram": {"edges": HISTOGRAM_EDGES.round(2).tolist(),
                        "counts": np.histogram(scored, HISTOGRAM_EDGES)[0].tolist()}}
