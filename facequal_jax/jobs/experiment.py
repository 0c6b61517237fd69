"""The IQ validation experiment: dataset variants → proxy accuracy vs intrinsic metrics.

From one labelled face pool, identities with at least `min_train_images`
images form the training pool and the others give held-out verification
pairs. Each variant (a subset of the pool, possibly with altered labels) gets
its own ArcFace proxy; the experiment then asks whether IQ computed on the
variant's own training data — from that proxy, or from a fixed label-free
encoder — ranks the variants as the proxies' held-out accuracy does.

Variants (names as in the table):
  clean_P     P % of the pool's identities (seeded), all their images.
  noise_P     the whole pool with P % closed-set label flips.
  tight       per identity the half of its images closest to its centroid
              (fixed-encoder embeddings): low intra-identity variance.
  diverse     the other, farther half: high intra-identity variance.
"""
import dataclasses
import json
import os
from typing import Callable, Dict, List

import ml_collections
import numpy as np
from absl import logging

from facequal_jax import files, sharding
from facequal_jax.data import variants as variants_lib
from facequal_jax.data.pipeline import decode_labelled_folder
from facequal_jax.data.preprocess import FacePreprocess
from facequal_jax.encoders.eigenfaces import EigenfaceEncoder
from facequal_jax.encoders.loading import load_encoder
from facequal_jax.metrics import quality, statistics, verification
from facequal_jax.progress import Progress
from facequal_jax.report import plots
from facequal_jax.training import proxy


@dataclasses.dataclass(frozen=True)
class Pool:
  """Decoded faces: images uint8 [N, S, S, C], labels int64 [N], train bool [N] (else held out)."""
  images: np.ndarray
  labels: np.ndarray
  train: np.ndarray


def load_pool(data: ml_collections.ConfigDict, image_size: int, channels: int) -> Pool:
  """Decodes every image of `data.images` (the `data` section of a protocol config) to uint8
  [image_size, image_size, channels]; unreadable files are logged with their reason and left out."""
  face = FacePreprocess(image_size, data.crop, "rgb" if channels == 3 else "grey", data.align)
  images, labels, _ = decode_labelled_folder(data.images, face, data.workers, data.cache)
  counts = np.bincount(labels)
  return Pool(images, labels, counts[labels] >= data.min_train_images)


@dataclasses.dataclass(frozen=True)
class Variant:
  """name, positions int64 [n] into the training pool, labels int64 [n], label-noise rate."""
  name: str
  positions: np.ndarray
  labels: np.ndarray
  noise: float


def build_variants(labels: np.ndarray, fixed_embeddings: np.ndarray,
                   config: ml_collections.ConfigDict) -> List[Variant]:
  """The variants of `config.variants` over a training pool with `labels` [n]."""
  everything = variants_lib.View(None, np.arange(len(labels)), labels)
  identities = np.unique(labels)
  order = np.random.default_rng(config.seed).permutation(identities)
  out = []
  for percent in config.variants.clean_percents:
    kept = order[:max(2, int(round(len(identities) * percent / 100)))]
    view = variants_lib.identity_subset(everything, kept)
    out.append(Variant(f"clean_{percent}", view.rows, view.labels, 0.0))
  for percent in config.variants.noise_percents:
    view = variants_lib.flip_labels(everything, percent / 100, seed=config.seed)
    out.append(Variant(f"noise_{percent}", view.rows, view.labels, percent / 100))
  if config.variants.mixed_quality:
    tight, diverse = [], []
    for identity in identities:
      rows = np.flatnonzero(labels == identity)
      centre = fixed_embeddings[rows].mean(axis=0)
      by_distance = rows[np.argsort(np.linalg.norm(fixed_embeddings[rows] - centre, axis=1), kind="stable")]
      half = len(rows) // 2
      tight.append(by_distance[:half])
      diverse.append(by_distance[len(rows) - half:])
    for name, parts in (("tight", tight), ("diverse", diverse)):
      positions = np.sort(np.concatenate(parts))
      out.append(Variant(name, positions, labels[positions], 0.0))
  return out


def fixed_encoder(config: ml_collections.ConfigDict, pool_images: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
  """The label-free encoder: "eigenfaces" (PCA coordinates fitted on the pool's images, labels unused),
  "face_resnet" (the pretrained face network), "paco_fr" (the bundled PaCo-FR encoder) or an `encoder.msgpack`
  path from `train/pretrain.py`."""
  if config.fixed_encoder == "eigenfaces":
    return EigenfaceEncoder.fit(pool_images, config.eigenfaces_dim).project
  return load_encoder(None if config.fixed_encoder == "face_resnet" else config.fixed_encoder)


IQ_FIELDS = ("iq", "consistency", "effective_rank_normalized", "rankme")


def _iq_fields(embeddings: np.ndarray, labels: np.ndarray, config: ml_collections.ConfigDict, prefix: str) -> dict:
  report = quality.intrinsic_quality(embeddings, labels, k=config.iq.k, alpha=config.iq.alpha)
  return {prefix + name: float(getattr(report, name)) for name in IQ_FIELDS}


def run_variant(variant: Variant, pool: Pool, fixed: np.ndarray, pairs: np.ndarray, workdir: str,
                config: ml_collections.ConfigDict, mesh) -> dict:
  """Trains the variant's proxy (resuming), measures its metrics; returns the result row."""
  train_images = pool.images[pool.train][variant.positions]
  os.makedirs(workdir, exist_ok=True)
  embed = proxy.train(config.proxy, train_images, variant.labels, workdir, mesh)
  held_out = pool.images[~pool.train]
  scores = verification.evaluate(embed(held_out), pairs, folds=config.folds, seed=config.seed)
  row = {"variant": variant.name, "images": int(len(variant.positions)),
         "identities": int(len(np.unique(variant.labels))), "label_noise": variant.noise}
  row.update(_iq_fields(embed(train_images), variant.labels, config, ""))
  row.update(_iq_fields(fixed[variant.positions], variant.labels, config, "fixed_"))
  row.update(dataclasses.asdict(scores))
  return row


def run(config: ml_collections.ConfigDict, workdir: str) -> List[dict]:
  """Every variant (each resumed or skipped when its result exists), then the table, correlations and plot."""
  os.makedirs(workdir, exist_ok=True)
  mesh = sharding.make_mesh(config.num_devices)
  pool = load_pool(config.data, config.proxy.model.image_size, config.proxy.model.channels)
  train_labels = pool.labels[pool.train]
  held_out_labels = pool.labels[~pool.train]
  logging.info("pool: %d training images of %d identities; %d held-out images of %d identities",
               len(train_labels), len(np.unique(train_labels)), len(held_out_labels), len(np.unique(held_out_labels)))
  pairs = verification.held_out_pairs(held_out_labels, config.max_genuine_pairs, seed=config.seed)
  fixed = fixed_encoder(config, pool.images[pool.train])(pool.images[pool.train])
  all_variants = build_variants(train_labels, fixed, config)
  rows = []
  progress = Progress("validation experiment", total=len(all_variants), unit="variants", every_s=0.0)
  for variant in all_variants:
    result_path = os.path.join(workdir, "variants", variant.name, "result.json")
    if os.path.exists(result_path):
      with open(result_path) as f:
        rows.append(json.load(f))
      progress.advance(1, note=f"{variant.name} done earlier, read {result_path}")
      continue
    row = run_variant(variant, pool, fixed, pairs, os.path.dirname(result_path), config, mesh)
    files.write_json(result_path, row)
    rows.append(row)
    progress.advance(1, note=f"{variant.name}: IQ {row['iq']:.4f}, held-out accuracy {row['accuracy']:.4f}")
  write_outputs(rows, workdir, config)
  return rows


METRICS = {"iq": "IQ (proxy)", "consistency": "Consis (proxy)", "effective_rank_normalized": "r̃ (proxy)",
           "rankme": "RankMe (proxy)", "fixed_iq": "IQ (fixed encoder)", "fixed_consistency": "Consis (fixed)",
           "fixed_effective_rank_normalized": "r̃ (fixed)"}


def correlations(rows: List[dict]) -> Dict[str, Dict[str, float]]:
  """Spearman, Pearson and Kendall of each metric of METRICS against held-out accuracy."""
  accuracy = [row["accuracy"] for row in rows]
  return {name: {"spearman": statistics.spearman([row[name] for row in rows], accuracy),
                 "pearson": statistics.pearson([row[name] for row in rows], accuracy),
                 "kendall": statistics.kendall([row[name] for row in rows], accuracy)} for name in METRICS}


COLUMNS = ("variant", "images", "identities", "label_noise", "iq", "consistency", "effective_rank_normalized",
           "rankme", "fixed_iq", "fixed_consistency", "fixed_effective_rank_normalized", "accuracy",
           "accuracy_std", "roc_auc", "tar_at_far_1e2", "tar_at_far_1e3")


def _cell(value) -> str:
  return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_outputs(rows: List[dict], workdir: str, config: ml_collections.ConfigDict) -> None:
  """protocol.csv, protocol.json, protocol.svg (metric vs accuracy) and protocol.md in `workdir`."""
  table = correlations(rows)
  files.write_csv(os.path.join(workdir, "protocol.csv"), COLUMNS, [[row[c] for c in COLUMNS] for row in rows])
  finite = {name: {key: value if np.isfinite(value) else None for key, value in by.items()}
            for name, by in table.items()}  # JSON has no NaN (a constant metric has no correlation)
  files.write_json(os.path.join(workdir, "protocol.json"), {"rows": rows, "correlations": finite,
                                                         "config": json.loads(config.to_json())})
  panels = [{"title": f"{label}: Spearman {table[name]['spearman']:+.2f}", "x": [row[name] for row in rows],
             "y": [row["accuracy"] for row in rows], "xlabel": label, "ylabel": "held-out accuracy",
             "labels": [row["variant"] for row in rows]} for name, label in METRICS.items()]
  files.write_bytes(os.path.join(workdir, "protocol.svg"), plots.scatter_panels(panels).encode())
  lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
  lines += ["| " + " | ".join(_cell(row[c]) for c in COLUMNS) + " |" for row in rows]
  lines += ["", "| metric vs accuracy | Spearman | Pearson | Kendall |", "| --- | --- | --- | --- |"]
  lines += [f"| {label} | {table[name]['spearman']:+.3f} | {table[name]['pearson']:+.3f} | "
            f"{table[name]['kendall']:+.3f} |" for name, label in METRICS.items()]
  lines += ["", "![metric vs held-out accuracy](protocol.svg)", ""]
  files.write_bytes(os.path.join(workdir, "protocol.md"), "\n".join(lines).encode())
