r"""The face quality score judged as face-image quality papers judge one, beside simple baselines.

  python -m benchmarks.face_quality --cache=/tmp/fq_quality --plot=docs/face_quality_evrc.svg

1. Error-versus-reject curves (EVRC, ISO/IEC 29794-1) on LFW-dev verification pairs, embedded by the face
   network: every genuine pair of up to `--per_identity` images of each identity, and `--impostors` random
   pairs of different identities. The comparison threshold is fixed where the false match rate (FMR) is 1e-2,
   and 1e-3, on all pairs; then the pairs whose lower-quality face scores lowest are rejected, 0–40 %, and
   the false non-match rate (FNMR) of the genuine pairs kept is read. The table gives each curve's area over
   0–40 % rejected (× 1000; smaller is better: the score rejects the pairs that fail first) and the FNMR at
   0, 10 and 20 % rejected. Ties (the binary baseline) are broken at random.
2. Separating degraded copies from their originals: `--degraded` LFW-dev photos (the first of as many
   identities), each degraded six ways before detection — Gaussian blur (radius 4), down-scaling to 1/8,
   JPEG at quality 4, the lower half of the face covered (LFW's faces are centred), Gaussian noise (σ 30),
   the left half in shadow (its light × 0.1) — and the AUROC of each score telling the originals from each
   degraded set (1: every original scores higher).

Scores: the product's (`metrics/face_quality.py`), each of its three terms alone, and three baselines: pixel
contrast (the standard deviation of the aligned face's pixels), sharpness (the variance of its Laplacian
inside the face region) and whether the detector found a face. Faces are decoded and aligned as the IQ job
does it (`decode_batches`, the `detect` alignment) and cached in `--cache`.
"""
import io
import os

import numpy as np
from absl import app, flags
from PIL import Image, ImageFilter
from scipy import stats

from facequal_jax.data.pipeline import decode_batches
from facequal_jax.data.preprocess import FacePreprocess
from facequal_jax.data.sources import ArraySource, ImageFolderSource
from facequal_jax.encoders import face_resnet
from facequal_jax.metrics import face_quality
from facequal_jax.metrics.diagnostics import Thresholds
from facequal_jax.research import plots

_FACES = flags.DEFINE_string("faces", "../shared/data/lfw_dev", "LFW-dev: an image folder, one per identity.")
_CACHE = flags.DEFINE_string("cache", "/tmp/fq_quality", "Where the scored faces are kept between runs.")
_PER_IDENTITY = flags.DEFINE_integer("per_identity", 20, "Images per identity the genuine pairs are drawn from.")
_IMPOSTORS = flags.DEFINE_integer("impostors", 3_000_000, "Random pairs of different identities.")
_DEGRADED = flags.DEFINE_integer("degraded", 300, "Photos degraded six ways.")
_PLOT = flags.DEFINE_string("plot", "", "Write the EVRC plot (SVG) here.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the impostor pairs and of tie breaking.")

REJECTED = np.linspace(0.0, 0.4, 41)
FMRS = (1e-2, 1e-3)
FACE_REGION = (slice(30, 130), slice(25, 125))  # of the 150-pixel chip


def _jpeg(image: Image.Image) -> Image.Image:
  out = io.BytesIO()
  image.save(out, format="JPEG", quality=4)
  return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def _scaled(image: Image.Image, factor) -> Image.Image:
  return Image.fromarray(np.clip(np.asarray(image, np.float32) * factor, 0, 255).astype(np.uint8))


DEGRADATIONS = {
    "blur": lambda image: image.filter(ImageFilter.GaussianBlur(4)),
    "down-scaling": lambda image: image.resize((image.width // 8, image.height // 8), Image.BILINEAR).resize(
        image.size, Image.BILINEAR),
    "JPEG": _jpeg,
    "occlusion": lambda image: Image.fromarray(np.where(
        (np.arange(image.height)[:, None, None] >= 125) & (np.arange(image.height)[:, None, None] < 200)
        & (np.abs(np.arange(image.width)[None, :, None] - image.width / 2) < 70), 128, np.asarray(image)
    ).astype(np.uint8)),
    "noise": lambda image: Image.fromarray(np.clip(
        np.asarray(image, np.float32) + np.random.default_rng(0).normal(0, 30, np.asarray(image).shape), 0, 255
    ).astype(np.uint8)),
    "shadow": lambda image: _scaled(image, np.where(np.arange(image.width) < image.width // 2, 0.1, 1.0)[:, None]),
}


def score_faces(source, name: str, encoder) -> dict:
  """Every face of `source` aligned (`detect`), embedded with its mirror image, and scored; cached by `name`."""
  path = os.path.join(_CACHE.value, f"{name}.npz")
  if os.path.exists(path):
    with np.load(path) as stored:
      return dict(stored)
  face = FacePreprocess(150, 0, "rgb", "detect")
  parts = {key: [] for key in ("rows", "embeddings", "evidence", "light", "stability", "contrast", "sharpness",
                               "detected")}
  for batch in decode_batches(source, np.arange(len(source)), face, 256, 0, quality_terms=True):
    embeddings = encoder(batch.images)
    grey = batch.images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    laplacian = (4 * grey[:, 1:-1, 1:-1] - grey[:, :-2, 1:-1] - grey[:, 2:, 1:-1] - grey[:, 1:-1, :-2]
                 - grey[:, 1:-1, 2:])
    missing = {index for index, _ in batch.no_face}
    parts["rows"].append(batch.rows)
    parts["embeddings"].append(embeddings)
    parts["evidence"].append(batch.terms[:, 0])
    parts["light"].append(batch.terms[:, 1])
    parts["stability"].append(face_quality.stability(embeddings, encoder(batch.images[:, :, ::-1])))
    parts["contrast"].append(batch.images.reshape(len(batch.images), -1).std(axis=1))
    parts["sharpness"].append(laplacian[:, FACE_REGION[0], FACE_REGION[1]].var(axis=(1, 2)))
    parts["detected"].append(np.asarray([index not in missing for index in batch.indices], np.float64))
    print(f"{name}: {batch.rows[-1] + 1:,} of {len(source):,} faces", flush=True)
  scored = {key: np.concatenate(values) for key, values in parts.items()}
  os.makedirs(_CACHE.value, exist_ok=True)
  np.savez(path, **scored)
  return scored


def scores(faces: dict) -> dict:
  """Each score and baseline of the scored faces: higher is better."""
  return {"quality (ours)": face_quality.quality(faces["evidence"], faces["stability"], faces["light"]),
          "detector evidence": faces["evidence"], "mirror stability": faces["stability"],
          "darker half's light": faces["light"], "pixel contrast": faces["contrast"],
          "sharpness": faces["sharpness"], "face detected": faces["detected"]}


def pairs(labels: np.ndarray, rng: np.random.Generator):
  """(genuine pairs [G, 2]: every pair of the first `--per_identity` images of each identity, impostor pairs)."""
  genuine = []
  for label in np.unique(labels):
    rows = np.flatnonzero(labels == label)[:_PER_IDENTITY.value]
    first, second = np.triu_indices(len(rows), 1)
    genuine.append(np.stack([rows[first], rows[second]], axis=1))
  impostor = rng.integers(0, len(labels), (_IMPOSTORS.value, 2))
  return np.concatenate(genuine), impostor[labels[impostor[:, 0]] != labels[impostor[:, 1]]]


def evrc(quality: np.ndarray, genuine: np.ndarray, genuine_scores: np.ndarray, threshold: float,
         rng: np.random.Generator) -> np.ndarray:
  """FNMR [len(REJECTED)] of the genuine pairs kept once the share `REJECTED` with the lowest pair quality (the
  lower of its two faces') is rejected, at a fixed `threshold`."""
  pair_quality = np.minimum(quality[genuine[:, 0]], quality[genuine[:, 1]])
  misses = (genuine_scores < threshold)[np.lexsort((rng.random(len(pair_quality)), pair_quality))]
  return np.array([misses[int(round(share * len(misses))):].mean() for share in REJECTED])


def auroc(originals: np.ndarray, degraded: np.ndarray) -> float:
  """P(an original scores higher than a degraded copy), ties counted half."""
  ranks = stats.rankdata(np.concatenate([originals, degraded]))
  return float((ranks[:len(originals)].sum() - len(originals) * (len(originals) + 1) / 2)
               / (len(originals) * len(degraded)))


def main(argv):
  del argv
  encoder = face_resnet.load_face_network()
  folder = ImageFolderSource(_FACES.value)
  lfw = score_faces(folder, "lfw_dev", encoder)
  labels = folder.labels[lfw["rows"]]
  rng = np.random.default_rng(_SEED.value)
  genuine, impostor = pairs(labels, rng)
  unit = lfw["embeddings"] / np.linalg.norm(lfw["embeddings"], axis=1, keepdims=True)
  cosine = lambda p: np.einsum("nd,nd->n", unit[p[:, 0]], unit[p[:, 1]])
  genuine_scores, impostor_scores = cosine(genuine), cosine(impostor)
  print(f"\nLFW-dev: {len(lfw['rows']):,} faces; {len(genuine):,} genuine pairs, {len(impostor):,} impostor pairs")
  header = "".join(f" | area FMR {fmr:g} | FNMR 0 / 10 / 20 % rejected" for fmr in FMRS)
  print(f"\n| score{header} |\n| --- " + "| --- | --- " * len(FMRS) + "|")
  curves = {fmr: {} for fmr in FMRS}
  for name, quality in scores(lfw).items():
    cells = []
    for fmr in FMRS:
      curve = evrc(quality, genuine, genuine_scores, np.quantile(impostor_scores, 1 - fmr), rng)
      curves[fmr][name] = curve
      cells.append(f"{np.trapezoid(curve, REJECTED) * 1000:.2f} | "
                   f"{curve[0]:.4f} / {curve[10]:.4f} / {curve[20]:.4f}")
    print(f"| {name} | " + " | ".join(cells) + " |")
  ours, threshold = scores(lfw)["quality (ours)"], Thresholds().low_quality
  low = ours < threshold
  pair_low = np.minimum(ours[genuine[:, 0]], ours[genuine[:, 1]]) < threshold
  failing = genuine_scores < np.quantile(impostor_scores, 1 - 1e-3)
  print(f"\nbelow the low-quality threshold {threshold}: {low.sum()} faces ({low.mean():.2%}); "
        f"FNMR at FMR 1e-3 of the {pair_low.sum()} genuine pairs with such a face {failing[pair_low].mean():.3f}, "
        f"of the others {failing[~pair_low].mean():.3f}")

  photos = [folder.read(int(row)) for row in np.unique(folder.labels, return_index=True)[1][:_DEGRADED.value]]
  originals = [Image.open(io.BytesIO(photo)).convert("RGB") for photo in photos]
  versions = {"original": originals}
  versions.update({name: [degrade(image) for image in originals] for name, degrade in DEGRADATIONS.items()})
  stacked = np.stack([np.asarray(image) for images in versions.values() for image in images])
  source = ArraySource(stacked, np.zeros(len(stacked), np.int64), [str(i) for i in range(len(stacked))], ["all"])
  degraded = scores(score_faces(source, f"degraded_{_DEGRADED.value}", encoder))
  count = len(originals)
  print(f"\n{count} LFW-dev photos, AUROC of originals against degraded copies\n\n| score | "
        + " | ".join(DEGRADATIONS) + " |\n" + "| --- " * (len(DEGRADATIONS) + 1) + "|")
  for name, values in degraded.items():
    cells = [f"{auroc(values[:count], values[(n + 1) * count:(n + 2) * count]):.3f}"
             for n in range(len(DEGRADATIONS))]
    print(f"| {name} | " + " | ".join(cells) + " |")
  if _PLOT.value:
    panels = [{"title": f"EVRC on LFW-dev pairs, FMR {fmr:g}", "xlabel": "share of pairs rejected",
               "ylabel": "FNMR", "series": [{"label": name, "x": REJECTED, "y": curve}
                                            for name, curve in curves[fmr].items()]} for fmr in FMRS]
    with open(_PLOT.value, "w") as f:
      f.write(plots.line_panels(panels, columns=2, width=520))


if __name__ == "__main__":
  app.run(main)
