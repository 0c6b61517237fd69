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

from facequal_jax import files, sharding
from facequal_jax.jobs import inputs
from facequal_jax.knn.settings import SearchSettings
from facequal_jax.metrics import diagnostics
from facequal_jax.metrics.consistency import IdentityTable
from facequal_jax.metrics.quality import IQReport, intrinsic_quality
from facequal_jax.report import html as html_report

REPORT, HTML, IDENTITIES, PER_SAMPLE = "report.json", "report.html", "identities.csv", "per_sample.npz"


def _with_file_names(findings: dict, name_of) -> dict:
  """Findings with the file (or record) name beside every sample row."""
  if not name_of:
    return findings
  out = dict(findings)
  for key in ("suspected_mislabeled", "near_duplicates", "outliers", "low_information"):
    out[key] = [dict(item, **{field.replace("sample", "file"): name_of(item[field])
                              for field in ("sample", "sample_a", "sample_b") if field in item})
                for item in findings[key]]
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
  files.write_json(os.path.join(workdir, REPORT), summary)
  files.write_csv(os.path.join(workdir, IDENTITIES), IdentityTable.COLUMNS, report.identities.rows())
  rows = report.sample_rows
  files.write_npz(os.path.join(workdir, PER_SAMPLE), row=rows, label=report.labels,
               consistency=report.per_sample_consistency, singleton=report.singleton,
               neighbor_rows=rows[report.neighbors.indices], neighbor_scores=report.neighbors.scores)


def search_settings(config: ml_collections.ConfigDict) -> SearchSettings:
  """The config's `knn` section as validated `SearchSettings` (a ValueError names a bad value)."""
  return SearchSettings(**config.knn.to_dict())


def run(config: ml_collections.ConfigDict, workdir: str) -> Tuple[IQReport, dict]:
  """Computes IQ and the diagnostics as configured; process 0 writes the outputs into `workdir`.

  Returns:
    (the report, the report.json findings: diagnostics keyed as there, samples as input rows).
  """
  start = time.perf_counter()
  settings = search_settings(config)
  data = inputs.load(config, workdir)
  mesh = sharding.make_mesh(config.mesh.num_devices)
  logging.info("IQ of %d × %d embeddings, %d labels, on %d devices (%d processes)", *data.embeddings.shape,
               len(np.unique(data.labels)), sharding.mesh_size(mesh), jax.process_count())
  report = intrinsic_quality(
      data.embeddings, data.labels, k=config.k, alpha=config.alpha, mesh=mesh, settings=settings,
      singletons=config.singletons, subset_size=config.subset.size,
      images_per_identity=config.subset.images_per_identity, min_images=config.subset.min_images,
      seed=config.subset.seed)
  found = diagnostics.diagnose(report, data.embeddings, diagnostics.Thresholds(**config.diagnostics.to_dict()),
                               data.pixel_std)
  findings = _with_file_names(found, data.name_of)
  if data.flipped is not None:
    findings["injected_noise_recovery"] = injected_noise_recovery(findings, data.flipped, report.sample_rows)
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    html_report.write(os.path.join(workdir, HTML), report, found, image_of=data.image_of, name_of=data.name_of,
                      note=json.dumps(data.description), no_face=[item["file"] for item in data.no_face])
    write_outputs(report, findings, workdir, {"data": data.description, "skipped": data.skipped,
                                              "no_face_found": data.no_face,
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
    files.write_json(os.path.join(workdir, "compare.json"), [{c: row[c] for c in COMPARE_COLUMNS} for row in rows])
    files.write_csv(os.path.join(workdir, "compare.csv"), COMPARE_COLUMNS, [[row[c] for c in COMPARE_COLUMNS]
                                                                         for row in rows])
    files.write_bytes(os.path.join(workdir, "compare.md"), comparison_table(rows).encode())
  return rows


def comparison_table(rows: Sequence[dict]) -> str:
  """Markdown table of compare rows (already ranked)."""
  lines = ["| rank | " + " | ".join(COMPARE_COLUMNS) + " |", "|" + " --- |" * (len(COMPARE_COLUMNS) + 1)]
  for rank, row in enumerate(rows, 1):
    cells = [f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in COMPARE_COLUMNS]
    lines.append(f"| {rank} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def noisy_copies(config: ml_collections.ConfigDict, rates: Sequence[float],
                 workdir: str) -> List[Tuple[str, ml_collections.ConfigDict]]:
  """The config as is ("clean") and with each label-flip rate injected ("noise_10" for 0.1, …), all reusing the
  embeddings extracted into `workdir` (flipping labels does not change them)."""
  shared = copy.deepcopy(config)
  shared.extract.dir = config.extract.dir or os.path.join(os.path.abspath(workdir), inputs.EMBEDDINGS_DIR)
  entries = [("clean", shared)]
  for rate in rates:
    noisy = copy.deepcopy(shared)
    noisy.data.label_noise = rate
    entries.append((f"noise_{round(rate * 100)}", noisy))
  return entries
