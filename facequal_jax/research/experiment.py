"""The IQ validation experiment: dataset variants → proxy accuracy vs intrinsic metrics.

From one labelled face pool, identities with at least `min_train_images`
images form the training pool and the others give held-out verification
pairs. Each variant (a subset of the pool, possibly with altered labels) gets
its own ArcFace proxies, one per seed of `config.seeds`; the experiment then
asks whether IQ computed on the variant's own training data — from that proxy,
or from a fixed label-free encoder — ranks the variants as the proxies'
held-out accuracy does (outputs: `experiment_outputs.py`).

Variants (names as in the table):
  clean_P     P % of the pool's identities (seeded), all their images.
  noise_P     the whole pool with P % closed-set label flips.
  tight       per identity the half of its images closest to its centroid
              (fixed-encoder embeddings): low intra-identity variance.
  diverse     the other, farther half: high intra-identity variance.
  cap_K       every identity, at most K of its images (seeded): few views per identity.
  lowres_P    the whole pool with P % of its faces (seeded) at low resolution: shrunk `variants.lowres_factor`
              times on each side and enlarged back, for the proxy and the fixed encoder alike.

Each variant's metrics are measured under the protocols of `protocols.py` (the whole set, a fixed-size
subset, cross-fitted proxies) and the experiment states how far its ground truth can rank at all: the
agreement of the seeds' accuracies (`experiment_outputs`).
"""
import dataclasses
import os
import time
from typing import List, Optional

import ml_collections
import numpy as np
from absl import logging

from facequal_jax import sharding
from facequal_jax.data import variants as variants_lib
from facequal_jax.data.align import CHIP_SIZE
from facequal_jax.research.faces import decode_labelled_folder, lower_resolution
from facequal_jax.data.preprocess import FacePreprocess
from facequal_jax.encoders.eigenfaces import EigenfaceEncoder
from facequal_jax.encoders.registry import load_encoder
from facequal_jax.research import crossfit, experiment_outputs, protocols, runs, verification
from facequal_jax.research.training import proxy


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
  """name, positions int64 [n] into the training pool, labels int64 [n], label-noise rate, and `degraded`
  bool [n] (faces shown at low resolution) or None."""
  name: str
  positions: np.ndarray
  labels: np.ndarray
  noise: float
  degraded: Optional[np.ndarray] = None


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
  for cap in config.variants.get("caps", ()):
    view = variants_lib.cap_images_per_identity(everything, cap, seed=config.seed)
    out.append(Variant(f"cap_{cap}", view.rows, view.labels, 0.0))
  for percent in config.variants.get("lowres_percents", ()):
    chosen = np.random.default_rng(config.seed).permutation(len(labels))[:int(round(len(labels) * percent / 100))]
    degraded = np.zeros(len(labels), bool)
    degraded[chosen] = True
    out.append(Variant(f"lowres_{percent}", everything.rows, labels, 0.0, degraded))
  return out


def variant_faces(variant: Variant, pool_faces: np.ndarray, factor: int) -> np.ndarray:
  """The variant's faces from `pool_faces` uint8 [n_train, S, S, C] (the training pool's), its degraded
  ones shrunk `factor` times (a copy; the pool stays as it is)."""
  faces = pool_faces[variant.positions]
  if variant.degraded is not None:
    faces[variant.degraded] = lower_resolution(faces[variant.degraded], factor)
  return faces


def fixed_embeddings(config: ml_collections.ConfigDict, pool: Pool, degraded: bool = False) -> dict:
  """Unit float32 [n_train, D] embeddings of the training pool from the label-free encoder `config.fixed_encoder`:
  "eigenfaces" (PCA fitted on the pool's images, labels unused), "face_resnet" (the pretrained face network,
  on the faces decoded again at its 150 × 150 chip size), "paco_fr" (the bundled PaCo-FR encoder) or an
  `encoder.msgpack` path from `train/pretrain.py`.

  Returns:
    {"plain": of the faces as they are, and with `degraded` "degraded": of every face at low resolution
    (`variants.lowres_factor`; eigenfaces keep the basis fitted on the originals)}.
  """
  images = pool.images[pool.train]
  if config.fixed_encoder == "eigenfaces":
    embed = EigenfaceEncoder.fit(images, config.eigenfaces_dim).project
  elif config.fixed_encoder == "face_resnet":
    chips = load_pool(config.data, CHIP_SIZE, 3)
    embed, images = load_encoder(None), chips.images[chips.train]
  else:
    embed = load_encoder(config.fixed_encoder)
  out = {"plain": embed(images)}
  if degraded:
    out["degraded"] = embed(lower_resolution(images, config.variants.lowres_factor))
  return out


def run_variant(variant: Variant, seed: int, pool: Pool, fixed: dict, pairs: np.ndarray, workdir: str,
                config: ml_collections.ConfigDict, mesh) -> dict:
  """Trains the variant's proxy with `seed` (resuming) — and, when cross-fitting, its two half proxies in
  workdir/half_0 and half_1 — and measures the metrics of every active protocol; returns the result row.

  Args:
    fixed: {"plain": the fixed encoder's embeddings of the training pool [n_train, D], "degraded": the same
      faces at low resolution (only for variants with degraded faces)}.
  """
  start = time.perf_counter()
  train_images = variant_faces(variant, pool.images[pool.train], config.variants.lowres_factor)
  os.makedirs(workdir, exist_ok=True)
  proxy_config = config.proxy.copy_and_resolve_references()
  proxy_config.seed = seed
  embed = proxy.train(proxy_config, train_images, variant.labels, workdir, mesh)
  held_out = pool.images[~pool.train]
  scores = verification.evaluate(embed(held_out), pairs, folds=config.folds, seed=config.seed)
  row = {"variant": variant.name, "seed": seed, "images": int(len(variant.positions)),
         "identities": int(len(np.unique(variant.labels))), "label_noise": variant.noise,
         "degraded": int(0 if variant.degraded is None else variant.degraded.sum())}
  embedded = {"proxy": embed(train_images), "fixed": fixed["plain"][variant.positions]}
  if variant.degraded is not None:
    embedded["fixed"][variant.degraded] = fixed["degraded"][variant.positions[variant.degraded]]
  subset_rows = protocols.subsets(variant.labels, config) if config.subset.draws else []
  for protocol in protocols.active(config):
    embeddings = embedded[protocol.encoder]
    if protocol.needs == "":
      row.update(protocols.metric_fields(embeddings, variant.labels, config.iq.k, config.iq.alpha,
                                         protocol.prefix))
    elif protocol.needs == "subset":
      row.update(protocols.subset_fields(embeddings, variant.labels, subset_rows, config, protocol.prefix))
    else:
      half = crossfit.halves(variant.labels, seed)
      half_config = proxy_config.copy_and_resolve_references()
      half_config.update(steps=config.crossfit.steps, probe_images=0)
      half_embeddings = np.stack([proxy.train(half_config, train_images[half == h], variant.labels[half == h],
                                              os.path.join(workdir, f"half_{h}"), mesh)(train_images)
                                  for h in (0, 1)])
      row.update(protocols.crossfit_fields(half_embeddings, variant.labels, half, subset_rows, config,
                                           row[protocol.rank_field]))
  row.update(dataclasses.asdict(scores))
  row["seconds"] = round(time.perf_counter() - start, 1)
  return row


def run(config: ml_collections.ConfigDict, workdir: str) -> List[dict]:
  """Every (variant, seed) run — each resumed, or read back when its result exists — then the outputs."""
  os.makedirs(workdir, exist_ok=True)
  mesh = sharding.make_mesh(config.num_devices)
  pool = load_pool(config.data, config.proxy.model.image_size, config.proxy.model.channels)
  train_labels = pool.labels[pool.train]
  held_out_labels = pool.labels[~pool.train]
  logging.info("pool: %d training images of %d identities; %d held-out images of %d identities",
               len(train_labels), len(np.unique(train_labels)), len(held_out_labels), len(np.unique(held_out_labels)))
  pairs = verification.held_out_pairs(held_out_labels, config.max_genuine_pairs, seed=config.seed)
  fixed = fixed_embeddings(config, pool, degraded=bool(config.variants.get("lowres_percents")))
  variants = build_variants(train_labels, fixed["plain"], config)
  # Seed by seed: a stopped experiment has whole seeds done, every variant once before any twice.
  planned = [(variant, seed) for seed in config.seeds for variant in variants]
  rows = runs.each_run(
      planned, "validation experiment",
      run_dir=lambda plan: os.path.join(workdir, "variants", plan[0].name, f"seed_{plan[1]}"),
      compute=lambda plan, run_dir: run_variant(*plan, pool, fixed, pairs, run_dir, config, mesh),
      describe=lambda plan: f"{plan[0].name} seed {plan[1]}",
      outcome=lambda row: (f"IQ {row['iq']:.4f}, r̃ {row['effective_rank_normalized']:.3f}, "
                           f"held-out accuracy {row['accuracy']:.4f}"))
  experiment_outputs.write(rows, workdir, config)
  return rows
