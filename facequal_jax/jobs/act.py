"""The IQ job's cleaning outputs: identities shared with another data set, and the decisions file."""
import copy
import dataclasses
import os
import shutil
from typing import Optional, Tuple

import ml_collections
import numpy as np

from facequal_jax.cleaning import decisions as decisions_lib
from facequal_jax.cleaning.overlap import OverlapThresholds, find_overlap
from facequal_jax.data import kinds
from facequal_jax.encoders import registry as encoders
from facequal_jax.jobs import inputs
from facequal_jax.metrics.centroids import first_rows
from facequal_jax.metrics.diagnostics import Thresholds
from facequal_jax.metrics.findings import Findings, identity_namer
from facequal_jax.metrics.quality import IQReport
from facequal_jax.progress import Stages

OVERLAP_DIR, DECISIONS = "overlap_with", "decisions.csv"
EXAMPLES = 4  # images of each identity of a shared pair, on the page


def thresholds(config: ml_collections.ConfigDict) -> OverlapThresholds:
  return OverlapThresholds(**{key: value for key, value in config.overlap.to_dict().items() if key != "source"})


def policy(config: ml_collections.ConfigDict) -> decisions_lib.Policy:
  fields = config.decisions.to_dict()
  return decisions_lib.Policy(**dict(fields, accept=tuple(fields["accept"])))


def load_other(config: ml_collections.ConfigDict, workdir: str, stages: Stages) -> inputs.LabelledEmbeddings:
  """The data set `overlap.source`, embedded as this one is (into WORKDIR/overlap_with/)."""
  other = copy.deepcopy(config)
  kinds.point_at(other.data, config.overlap.source)
  other.extract.dir = ""
  other_workdir = os.path.join(workdir, OVERLAP_DIR)
  os.makedirs(other_workdir, exist_ok=True)
  fitted = os.path.join(workdir, inputs.ENCODER_FILE)
  if os.path.exists(fitted):  # eigenfaces fitted on this set: the other set must be projected on the same ones
    shutil.copyfile(fitted, os.path.join(other_workdir, inputs.ENCODER_FILE))
  return inputs.load(other, other_workdir, stages)


def overlap(config: ml_collections.ConfigDict, workdir: str, data: inputs.LabelledEmbeddings, mesh, settings,
            stages: Stages) -> Tuple[Optional[dict], Optional[inputs.LabelledEmbeddings]]:
  """report.json's `overlap` section (None without `overlap.source`) and the other data set.

  The section: the other set, the thresholds, `num_shared`, and `pairs`: every
  candidate pair (`find_overlap`) with identity names, the other set's names
  and files of example images (`examples`: rows of this set, `other_examples`:
  rows of the other).
  """
  if not config.overlap.source:
    return None, None
  rule = thresholds(config)
  other = load_other(config, workdir, stages)
  with stages("overlap", f"looking for identities shared with {config.overlap.source}"):
    pairs = find_overlap(data.embeddings, data.labels, other.embeddings, other.labels, rule, mesh=mesh,
                         settings=settings)
  name, other_name = identity_namer(data.identity_names), identity_namer(other.identity_names)
  examples, other_examples = first_rows(data.labels, EXAMPLES), first_rows(other.labels, EXAMPLES)
  for pair in pairs:
    pair.update(identity_name=name(pair["identity"]), other_identity_name=other_name(pair["other_identity"]),
                examples=examples(pair["identity"]), other_examples=other_examples(pair["other_identity"]))
    if other.name_of:
      pair["other_files"] = [other.name_of(row) for row in pair["other_examples"]]
  section = {"source": os.path.abspath(config.overlap.source), "thresholds": dataclasses.asdict(rule),
             "num_shared": sum(pair["shared"] for pair in pairs), "pairs": pairs}
  return section, other


def write_decisions(config: ml_collections.ConfigDict, workdir: str, data: inputs.LabelledEmbeddings,
                    report: IQReport, findings: Findings) -> list:
  """Proposes decisions from the findings (and the overlap) and writes WORKDIR/decisions.csv; returns them."""
  rule = policy(config)
  sizes = dict(zip(*np.unique(data.labels, return_counts=True)))
  consistency = np.zeros(len(data.labels))  # by input row; rows outside an evaluated subset: 0
  consistency[np.asarray(report.sample_rows)] = report.per_sample_consistency
  flat = np.zeros(len(data.labels), bool) if data.pixel_std is None else (
      Thresholds(**config.diagnostics.to_dict()).near_uniform(data.pixel_std))
  no_face = np.zeros(len(data.labels), bool) if data.face_found is None else ~np.asarray(data.face_found)
  low_quality = np.zeros(len(data.labels), bool) if data.quality is None else (
      data.quality[:, 0] < config.diagnostics.low_quality)

  def weak_evidence(row: int) -> str:
    return ("no face was found in its image (embedded from the centred crop)" if no_face[row]
            else "its face is near-uniform" if flat[row]
            else f"its face is of low quality ({data.quality[row, 0]:.2f})" if low_quality[row] else "")

  encoder = data.description.get("encoder", {}).get("name", "")
  doubt = (f"the encoder {encoder} does not separate identities well enough to act on alone"
           if encoder in encoders.ENCODERS and not encoders.ENCODERS[encoder].decides else "")
  names = decisions_lib.Naming(data.sample_id_of, lambda row: float(consistency[row]),
                               identity_namer(data.identity_names), lambda label: int(sizes.get(label, 0)),
                               weak_evidence, doubt)
  proposed = decisions_lib.propose(findings, rule, names, findings.shared_pairs())
  decisions_lib.write(os.path.join(workdir, DECISIONS), proposed, data.source_path,
                      data.description.get("num_flipped", 0), rule)
  return proposed
