"""The IQ job behind `python -m facequal_jax`: config in, report files out; several data sets compared."""
import copy
import json
import os
import time
from typing import List, Sequence, Tuple

import jax
import ml_collections
import numpy as np
from absl import logging

from facequal_jax import datasets, demo, diagnostics, html_report, io, sharding
from facequal_jax.consistency import IdentityTable
from facequal_jax.data import variants
from facequal_jax.quality import IQReport, intrinsic_quality

REPORT, HTML, IDENTITIES, PER_SAMPLE = "report.json", "report.html", "identities.csv", "per_sample.npz"


def _with_label_noise(data: datasets.LabelledEmbeddings, config: ml_collections.ConfigDict):
  """`data.label_noise` applied to already-embedded data (image sources apply it to their view)."""
  if not config.data.label_noise:
    return data
  view = variants.flip_labels(variants.View(None, np.arange(len(data.labels)), data.labels),
                              config.data.label_noise, config.data.noise_seed)
  description = dict(data.description, num_flipped=int(view.flipped.sum()))
  return datasets.LabelledEmbeddings(data.embeddings, view.labels, description, data.skipped, view.flipped,
                                     data.image_of, data.name_of)


def load_data(config: ml_collections.ConfigDict, workdir: str) -> datasets.LabelledEmbeddings:
  """The configured data: an image source, an .npz of embeddings, or the bundled ORL faces."""
  if datasets.has_image_source(config.data):
    if config.data.embeddings:
      raise ValueError("give data.embeddings or an image source, not both")
    if jax.process_count() > 1:
      raise ValueError("image sources are embedded by one process: extract first, then run IQ "
                       "multi-process on WORKDIR/embeddings/embeddings.npz")
    return datasets.embed(config, workdir)
  if config.data.embeddings:
    embeddings, labels = io.load_embeddings_npz(config.data.embeddings)
    data = datasets.LabelledEmbeddings(embeddings, labels, {"embeddings": os.path.abspath(config.data.embeddings)},
                                       [])
  else:
    images, labels = demo.load_orl()
    data = datasets.LabelledEmbeddings(
        demo.eigenface_embeddings(images, config.data.demo_dim), labels,
        {"builtin": "ORL faces (Olivetti Research Laboratory), eigenfaces", "dim": config.data.demo_dim}, [],
        image_of=lambda sample: images[sample], name_of=lambda sample: f"s{sample // 10 + 1}/{sample % 10 + 1}.pgm")
  return _with_label_noise(data, config)


def _name_samples(findings: dict, rows: np.ndarray, name_of) -> dict:
  """Sample positions in `findings` → input rows, with file names where known."""
  out = dict(findings)
  for key in ("suspected_mislabeled", "near_duplicates", "outliers"):
    items = []
    for item in findings[key]:
      item = dict(item)
      for field in ("sample", "sample_a", "sample_b"):
        if field in item:
          position = item[field]
          item[field] = int(rows[position])
          if name_of:
            item[field.replace("sample", "file")] = name_of(int(rows[position]))
      items.append(item)
    out[key] = items
  return out


def injected_noise_recovery(findings: dict, flipped: np.ndarray, rows: np.ndarray) -> dict:
  """How well `suspected_mislabeled` finds labels flipped on purpose: precision among the top (at most
  100) suspects, and recall of all suspects."""
  flipped_rows = set(np.asarray(rows)[flipped[rows]].tolist())
  suspects = [item["sample"] for item in findings["suspected_mislabeled"]]
  top = suspects[:100]
  return {"num_flipped": len(flipped_rows), "num_suspects": len(suspects), "num_top": len(top),
          "precision_at_100": sum(s in flipped_rows for s in top) / max(len(top), 1),
          "recall": sum(s in flipped_rows for s in suspects) / max(len(flipped_rows), 1)}


def write_outputs(report: IQReport, findings: dict, workdir: str, extra: dict) -> None:
  """Writes report.json, identities.csv and per_sample.npz into `workdir`, each atomically."""
  summary = report.to_dict()
  summary.update(extra)
  summary.update(findings)
  summary["eigenvalues"] = report.spectrum.eigenvalues.tolist()
  io.write_json(os.path.join(workdir, REPORT), summary)
  io.write_csv(os.path.join(workdir, IDENTITIES), IdentityTable.COLUMNS, report.identities.rows())
  rows = report.sample_rows
  io.write_npz(os.path.join(workdir, PER_SAMPLE), row=rows, label=report.labels,
               consistency=report.per_sample_consistency, singleton=report.singleton,
               neighbor_rows=rows[report.neighbors.indices], neighbor_scores=report.neighbors.scores)


def run(config: ml_collections.ConfigDict, workdir: str) -> Tuple[IQReport, dict]:
  """Computes IQ and the diagnostics as configured; process 0 writes the outputs into `workdir`.

  Returns:
    (the report, the report.json findings: diagnostics keyed as there).
  """
  start = time.perf_counter()
  data = load_data(config, workdir)
  mesh = sharding.make_mesh(config.mesh.num_devices)
  logging.info("IQ of %d × %d embeddings, %d labels, on %d devices (%d processes)", *data.embeddings.shape,
               len(np.unique(data.labels)), sharding.mesh_size(mesh), jax.process_count())
  report = intrinsic_quality(
      data.embeddings, data.labels, k=config.k, alpha=config.alpha, mesh=mesh, precision=config.knn.precision,
      singletons=config.singletons, subset_size=config.subset.size,
      images_per_identity=config.subset.images_per_identity, min_images=config.subset.min_images,
      seed=config.subset.seed, margin=config.knn.margin, block=config.knn.block,
      chunk_tiles=config.knn.chunk_tiles, symmetric=config.knn.symmetric, kernel=config.knn.kernel)
  rows = report.sample_rows
  thresholds = diagnostics.Thresholds(**config.diagnostics.to_dict())
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    found = html_report.write(os.path.join(workdir, HTML), report, data.embeddings, thresholds=thresholds,
                              image_of=data.image_of, name_of=data.name_of, note=json.dumps(data.description))
  else:
    found = diagnostics.of_report(report, data.embeddings, thresholds)
  findings = _name_samples(found, rows, data.name_of)
  if data.flipped is not None:
    findings["injected_noise_recovery"] = injected_noise_recovery(findings, data.flipped, rows)
  if jax.process_index() == 0:
    write_outputs(report, findings, workdir, {"data": data.description, "skipped": data.skipped,
                                              "subset": config.subset.to_dict(),
                                              "num_devices": sharding.mesh_size(mesh),
                                              "seconds": time.perf_counter() - start})
  return report, findings


COMPARE_COLUMNS = ("name", "iq", "consistency", "effective_rank_normalized", "effective_rank", "rankme",
                   "stable_rank", "alpha_req", "estimated_noise_rate", "num_samples", "num_identities")


def compare(entries: Sequence[Tuple[str, ml_collections.ConfigDict]], workdir: str) -> List[dict]:
  """Runs each (name, config) into `workdir/name`; writes compare.{md,csv,json}, ranked by IQ.

  Returns:
    The rows, best IQ first, with the COMPARE_COLUMNS.
  """
  rows = []
  for name, config in entries:
    report, findings = run(config, os.path.join(workdir, name))
    rows.append(dict(report.to_dict(), name=name, estimated_noise_rate=findings["estimated_noise_rate"],
                     injected_noise_recovery=findings.get("injected_noise_recovery")))
  rows.sort(key=lambda row: -row["iq"])
  if jax.process_index() == 0:
    io.write_json(os.path.join(workdir, "compare.json"), [{c: row[c] for c in COMPARE_COLUMNS} for row in rows])
    io.write_csv(os.path.join(workdir, "compare.csv"), COMPARE_COLUMNS, [[row[c] for c in COMPARE_COLUMNS]
                                                                         for row in rows])
    io.write_bytes(os.path.join(workdir, "compare.md"), comparison_table(rows).encode())
  return rows


def comparison_table(rows: Sequence[dict]) -> str:
  """Markdown table of compare rows (already ranked)."""
  lines = ["| rank | " + " | ".join(COMPARE_COLUMNS) + " |", "|" + " --- |" * (len(COMPARE_COLUMNS) + 1)]
  for rank, row in enumerate(rows, 1):
    cells = [f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in COMPARE_COLUMNS]
    lines.append(f"| {rank} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def noisy_copies(config: ml_collections.ConfigDict,
                 rates: Sequence[float]) -> List[Tuple[str, ml_collections.ConfigDict]]:
  """The config as is ("clean") and with each label-flip rate injected ("noise_10" for 0.1, …)."""
  entries = [("clean", config)]
  for rate in rates:
    noisy = copy.deepcopy(config)
    noisy.data.label_noise = rate
    entries.append((f"noise_{round(rate * 100)}", noisy))
  return entries
