"""The IQ job behind `python -m facequal_jax`: config in, report files out."""
import os
import time

import jax
import ml_collections
import numpy as np
from absl import logging

from facequal_jax import datasets, demo, io, sharding
from facequal_jax.consistency import IdentityTable
from facequal_jax.quality import IQReport, intrinsic_quality

REPORT, IDENTITIES, PER_SAMPLE = "report.json", "identities.csv", "per_sample.npz"


def load_data(config: ml_collections.ConfigDict, workdir: str):
  """Embeddings [N, d], labels [N], where they came from, and the files skipped."""
  if datasets.has_image_source(config.data):
    if config.data.embeddings:
      raise ValueError("give data.embeddings or an image source, not both")
    if jax.process_count() > 1:
      raise ValueError("image sources are embedded by one process: extract first, then run IQ "
                       "multi-process on WORKDIR/embeddings/embeddings.npz")
    return datasets.embed(config, workdir)
  if config.data.embeddings:
    embeddings, labels = io.load_embeddings_npz(config.data.embeddings)
    return embeddings, labels, {"embeddings": os.path.abspath(config.data.embeddings)}, []
  images, labels = demo.load_orl()
  embeddings = demo.eigenface_embeddings(images, config.data.demo_dim)
  return embeddings, labels, {"builtin": "ORL faces (Olivetti Research Laboratory), eigenfaces",
                              "dim": config.data.demo_dim}, []


def write_outputs(report: IQReport, workdir: str, extra: dict) -> None:
  """Writes report.json, identities.csv and per_sample.npz into `workdir`, each atomically."""
  summary = report.to_dict()
  summary.update(extra)
  summary["eigenvalues"] = report.spectrum.eigenvalues.tolist()
  io.write_json(os.path.join(workdir, REPORT), summary)
  io.write_csv(os.path.join(workdir, IDENTITIES), IdentityTable.COLUMNS, report.identities.rows())
  rows = report.sample_rows
  io.write_npz(os.path.join(workdir, PER_SAMPLE), row=rows, label=report.labels,
               consistency=report.per_sample_consistency, singleton=report.singleton,
               neighbor_rows=rows[report.neighbors.indices], neighbor_scores=report.neighbors.scores)


def run(config: ml_collections.ConfigDict, workdir: str) -> IQReport:
  """Computes IQ as configured; process 0 writes the outputs into `workdir`."""
  start = time.perf_counter()
  embeddings, labels, source, skipped = load_data(config, workdir)
  mesh = sharding.make_mesh(config.mesh.num_devices)
  logging.info("IQ of %d × %d embeddings, %d labels, on %d devices (%d processes)", *embeddings.shape,
               len(np.unique(labels)), sharding.mesh_size(mesh), jax.process_count())
  report = intrinsic_quality(
      embeddings, labels, k=config.k, alpha=config.alpha, mesh=mesh, precision=config.knn.precision,
      singletons=config.singletons, subset_size=config.subset.size,
      images_per_identity=config.subset.images_per_identity, min_images=config.subset.min_images,
      seed=config.subset.seed, margin=config.knn.margin, block=config.knn.block,
      chunk_tiles=config.knn.chunk_tiles, symmetric=config.knn.symmetric, kernel=config.knn.kernel)
  if jax.process_index() == 0:
    write_outputs(report, workdir, {"data": source, "skipped": skipped, "subset": config.subset.to_dict(),
                                    "num_devices": sharding.mesh_size(mesh),
                                    "seconds": time.perf_counter() - start})
  return report
