"""The IQ job behind `python -m facequal_jax`: config in, report files out; several data sets compared."""
import copy
import os
import time
from typing import Callable, List, Optional, Sequence, Tuple

import jax
import ml_collections
import numpy as np
from absl import logging

from facequal_jax import files, sharding
from facequal_jax.data import copies, kinds
from facequal_jax.errors import UsageError
from facequal_jax.jobs import act, inputs, preflight
from facequal_jax.knn.settings import SearchSettings
from facequal_jax.metrics import diagnostics, face_quality
from facequal_jax.metrics.consistency import IdentityTable
from facequal_jax.metrics.findings import TABLE_COLUMNS, Findings, identity_namer
from facequal_jax.metrics.quality import IQReport, intrinsic_quality
from facequal_jax.progress import Stages
from facequal_jax.report import html as html_report

REPORT, HTML, IDENTITIES, PER_SAMPLE, FINDINGS = ("report.json", "report.html", "identities.csv", "per_sample.npz",
                                                  "findings.csv")
SEARCH = os.path.join("search", "neighbors.npz")  # the k-NN search, kept so that a rerun resumes past it



def write_outputs(report: IQReport, findings: Findings, workdir: str, identity_name: Callable[[int], str],
                  extra: dict, quality: np.ndarray) -> None:
  """Writes report.json (the top of each finding list), findings.csv (every finding), identities.csv (with
  identity names and mean face quality) and per_sample.npz into `workdir`, atomically.

  Args:
    quality: float [n, 4] the face quality score and its terms of each of the report's samples
      (`face_quality.FIELDS`; NaN where not scored).
  """
  summary = report.to_dict()
  summary.update(extra)
  summary.update(findings.to_dict())
  summary["face_quality"] = face_quality.summary(quality[:, 0], findings.thresholds["low_quality"])
  summary["eigenvalues"] = report.spectrum.eigenvalues.tolist()
  files.write_json(os.path.join(workdir, REPORT), summary)
  files.write_csv(os.path.join(workdir, FINDINGS), TABLE_COLUMNS, findings.table_rows())
  _, inverse = np.unique(report.labels, return_inverse=True)  # identities in the table's order
  scored = ~np.isnan(quality[:, 0])
  with np.errstate(invalid="ignore"):
    mean_quality = (np.bincount(inverse[scored], quality[scored, 0], len(report.identities.identity))
                    / np.bincount(inverse[scored], minlength=len(report.identities.identity)))
  files.write_csv(os.path.join(workdir, IDENTITIES), IdentityTable.NAMED_COLUMNS + ("mean_quality",),
                  [row + ("" if np.isnan(mean) else round(float(mean), 6),)
                   for row, mean in zip(report.identities.named_rows(identity_name), mean_quality)])
  rows = report.sample_rows
  files.write_npz(os.path.join(workdir, PER_SAMPLE), row=rows, label=report.labels,
               consistency=report.per_sample_consistency, singleton=report.singleton,
               neighbor_rows=rows[report.neighbors.indices], neighbor_scores=report.neighbors.scores,
               suspicion=findings.suspicion, quality=quality[:, 0], quality_terms=quality[:, 1:])


def search_settings(config: ml_collections.ConfigDict) -> SearchSettings:
  """The config's `knn` section as validated `SearchSettings` (a ValueError names a bad value)."""
  return SearchSettings(**config.knn.to_dict())


def run(config: ml_collections.ConfigDict, workdir: str,
        stages: Optional[Stages] = None) -> Tuple[IQReport, Findings]:
  """Computes IQ and the diagnostics as configured; process 0 writes the outputs into `workdir`.

  Everything checkable is checked first (`preflight.check`): a bad field or
  input raises a `UsageError` / `DataError` before any compute.

  Args:
    stages: announces and times the stages (a new one if None); report.json
      records their wall times under `stage_seconds`.

  Returns:
    (the report, its `Findings`: samples as input rows, with file and identity
    names, the inputs skipped and without a face, the overlap (None without
    `overlap.source`) and the decisions file (how many rows it proposes, and
    how many of them to apply)).
  """
  start, stages = time.perf_counter(), stages or Stages()
  earlier = dict(stages.seconds)  # a shared `stages` may have timed other runs already
  preflight.check(config, workdir)
  settings = search_settings(config)
  data = inputs.load(config, workdir, stages)
  mesh = sharding.make_mesh(config.mesh.num_devices)
  logging.info("IQ of %d × %d embeddings, %d labels, on %d devices (%d processes)", *data.embeddings.shape,
               len(np.unique(data.labels)), sharding.mesh_size(mesh), jax.process_count())
  with stages("search", f"searching the {config.k} nearest neighbours of {len(data.labels):,} samples, "
                        "and the spectrum"):
    report = intrinsic_quality(
        data.embeddings, data.labels, k=config.k, alpha=config.alpha, mesh=mesh, settings=settings,
        singletons=config.singletons, subset_size=config.subset.size,
        images_per_identity=config.subset.images_per_identity, min_images=config.subset.min_images,
        seed=config.subset.seed, search_cache=os.path.join(workdir, SEARCH))
  with stages("diagnostics", "looking for mislabelled samples, duplicates, merges, splits and outliers"):
    thresholds = diagnostics.Thresholds(**config.diagnostics.to_dict())
    found = diagnostics.diagnose(report, data.embeddings, thresholds, data.pixel_std, mesh, settings, data.quality)
    if data.photo_of is not None:  # a near-duplicate is one photograph: checked on the images themselves
      found.lists["near_duplicates"], found.near_duplicates_rejected = copies.confirm(
          found["near_duplicates"], data.photo_of, thresholds.copy_similarity)
    identity_name = identity_namer(data.identity_names)
    findings = found.named(data.name_of, identity_name, data.flipped, data.original_labels)
    findings.skipped, findings.no_face_found = data.skipped, data.no_face
    if data.flipped is not None:
      findings.injected_noise_recovery = findings.noise_recovery(data.flipped, report.sample_rows)
  findings.overlap, other = act.overlap(config, workdir, data, mesh, settings, stages)
  quality = (face_quality.unscored(len(report.sample_rows))
             if data.quality is None else data.quality[np.asarray(report.sample_rows)])
  if jax.process_index() == 0:
    with stages("report", "writing the decisions and the report"):
      proposed = act.write_decisions(config, workdir, data, report, findings)
      findings.decisions = {"file": os.path.join(workdir, act.DECISIONS), "proposed": len(proposed),
                            "to_apply": sum(d.apply for d in proposed)}
      html_report.write(os.path.join(workdir, HTML), report, findings, image_of=data.image_of, name_of=data.name_of,
                        identity_name=identity_name, note=describe_data(data.description, len(data.skipped)),
                        decisions=proposed, quality=quality[:, 0],
                        other_image_of=other.image_of if other else None)
    write_outputs(report, findings, workdir, identity_name,
                  {"data": data.description, "subset": config.subset.to_dict(), "num_devices": sharding.mesh_size(mesh),
                   "seconds": time.perf_counter() - start, "stage_seconds": {
                       name: seconds - earlier.get(name, 0.0) for name, seconds in stages.seconds.items()
                       if seconds > earlier.get(name, 0.0)}}, quality)
  return report, findings


def describe_data(description: dict, num_skipped: int = 0) -> str:
  """report.json's `data` section as one readable line (the page's subtitle)."""
  if "builtin" in description:
    where = f"the bundled {description['builtin']}"
  else:
    where = kinds.configured({key: description.get(key, "") for key in kinds.KEYS}).where(description)
  parts = [where]
  if "num_files" in description:
    parts.append(f"{description['num_files']:,} files")
  if "encoder" in description:
    preprocess, encoder = description.get("preprocess", {}), description["encoder"]
    template = f" to the {preprocess['template']} template" if preprocess.get("template", "chip") != "chip" else ""
    parts.append(f"embedded by {encoder.get('file', encoder['name'])} ({preprocess.get('align', '?')} alignment"
                 f"{template}, {preprocess.get('size', '?')} px {preprocess.get('channels', '')})")
  if description.get("num_flipped"):
    parts.append(f"{description['num_flipped']:,} labels flipped on purpose")
  if num_skipped:
    parts.append(f"{num_skipped:,} files skipped")
  return "; ".join(parts)


COMPARE_COLUMNS = ("name", "iq", "consistency", "effective_rank_normalized", "effective_rank", "rankme",
                   "stable_rank", "alpha_req", "estimated_noise_rate", "num_samples", "num_identities")


def entry_names(paths: Sequence[str]) -> List[str]:
  """A short, distinct name for each compared data set: its file or folder name, with as many of the folders
  above it as it takes to tell them apart (`clean_lfw_dev` for clean/lfw_dev.lst beside lfw_dev/)."""
  parts = [os.path.normpath(os.path.abspath(path)).split(os.sep) for path in paths]
  for depth in range(1, max(map(len, parts)) + 1):
    names = ["_".join(part[-depth:-1] + [os.path.splitext(part[-1])[0]]) for part in parts]
    if len(set(names)) == len(names):
      return names
  raise UsageError(f"--compare names one data set twice: {', '.join(paths)}")


def compare(entries: Sequence[Tuple[str, ml_collections.ConfigDict]], workdir: str,
            stages: Optional[Stages] = None) -> List[dict]:
  """Runs each (name, config) into `workdir/name`; writes compare.{md,csv,json}, ranked by IQ.

  Every entry is checked (`preflight.check`) before the first one runs.

  Returns:
    The rows, best IQ first, with the COMPARE_COLUMNS.
  """
  for name, config in entries:
    preflight.check(config, os.path.join(workdir, name))
  rows = []
  for name, config in entries:
    report, findings = run(config, os.path.join(workdir, name), stages)
    rows.append(dict(report.to_dict(), name=name, estimated_noise_rate=findings.estimated_noise_rate,
                     injected_noise_recovery=findings.injected_noise_recovery))
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
