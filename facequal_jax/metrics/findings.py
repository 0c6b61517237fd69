"""The findings of one IQ run: the one table of finding kinds, and `Findings`, the typed object that carries them
from the diagnostics to report.json, the console, the page and the decisions file.

Each kind is a ranked list of JSON-ready items (most suspicious first) whose
samples are input rows. `Findings.named` adds, without changing any ranked
list, a file name beside every sample field (`sample` → `file`, `sample_a` →
`file_a`), a `*_name` beside every label field, and, for suspects whose label
was flipped on purpose, their `original_label` and `original_label_name`. A new
kind is one entry of `KINDS` (and its detector in `diagnostics`).

Every list is whole here (however long): `table_rows` gives all of them for findings.csv, `to_dict` the top
`max_items` of each for report.json with how many there are in all.
"""
import dataclasses
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

PictureGroups = List[Tuple[Sequence[int], Sequence[str]]]  # (input rows, a css class for each or none)


@dataclasses.dataclass(frozen=True)
class FindingKind:
  """One kind of finding.

  Attributes:
    key: its report.json key (and the page section's id).
    one, many: what the console calls one of it and several.
    heading: the page section's heading; empty: the section's text when there is none.
    samples: the fields holding an input row; labels: the fields holding an identity label.
    columns: the page table's columns; cells: (item, view) → their HTML, where the view gives escaped
      `name(row)` and `identity(label)`, and `note(html)` (a line of HTML already escaped) under a cell.
    pictures: item → the groups of faces the page shows for it (`PictureGroups`), under `pictures_heading`.
    score: the field it is ranked by (findings.csv's `score`).
    decision: the name under which `decisions.accept` accepts what the policy proposes from it ("" = none).
  """
  key: str
  one: str
  many: str
  heading: str
  samples: Tuple[str, ...]
  labels: Tuple[str, ...]
  columns: Tuple[str, ...]
  cells: Callable[[dict, object], List[str]]
  pictures: Callable[[dict], PictureGroups]
  pictures_heading: str
  score: str
  empty: str = "none found"
  decision: str = ""


def _suspect_cells(item: dict, view) -> List[str]:
  change = f"{view.identity(item['label'])} → {view.identity(item['suggested_label'])}"
  if "original_label" in item:
    change += view.note(f"flipped on purpose; originally {view.identity(item['original_label'])}")
  return [view.name(item["sample"]), change, f"{item['score']:.3f}",
          f"{item['other_similarity']:.2f} / {item['own_similarity']:.2f}", f"{item['consistency']:.2f}"]


def _one_face(item: dict) -> PictureGroups:
  return [([item["sample"]], ())]


SUSPECTS = "suspected_mislabeled"
TABLE_COLUMNS = ("kind", "rank", "score", "row", "file", "label", "identity", "other_row", "other_file",
                 "other_label", "other_identity")  # findings.csv
KINDS = (
    FindingKind(SUSPECTS, "suspected mislabelled", "suspected mislabelled", "Suspected mislabelled samples",
                ("sample",), ("label", "suggested_label"),
                ("sample", "label → suggested", "score", "cosine to suggested / own", "c_i"),
                _suspect_cells,
                lambda item: [([item["sample"]], ()), (item["neighbors"], [
                    "own" if label == item["label"] else "foreign" for label in item["neighbor_labels"]])],
                "the sample, then its neighbours (green: its label, red: another)", "score",
                "none found: no sample sits distinctly nearer another identity than its own", decision="suspects"),
    FindingKind("near_duplicates", "near-duplicate pair", "near-duplicate pairs", "Near-duplicates across identities",
                ("sample_a", "sample_b"), ("label_a", "label_b"), ("sample a", "sample b", "identities", "cosine"),
                lambda item, view: [view.name(item["sample_a"]), view.name(item["sample_b"]),
                                    f"{view.identity(item['label_a'])} / {view.identity(item['label_b'])}",
                                    f"{item['similarity']:.4f}"],
                lambda item: [([item["sample_a"], item["sample_b"]], ())], "the two images", "similarity",
                decision="duplicates"),
    FindingKind("merge_candidates", "merge candidate", "merge candidates", "Identities that may be one person",
                (), ("identity_a", "identity_b"), ("identities", "centroid cosine", "mutual links"),
                lambda item, view: [f"{view.identity(item['identity_a'])} / {view.identity(item['identity_b'])}",
                                    f"{item['centroid_similarity']:.3f}", str(item["mutual_links"])],
                lambda item: [(item["examples_a"], ()), (item["examples_b"], ())], "images of each",
                "centroid_similarity", decision="merges"),
    FindingKind("split_candidates", "split candidate", "split candidates", "Identities that may be several people",
                (), ("identity",), ("identity", "images", "groups", "share outside the largest"),
                lambda item, view: [view.identity(item["identity"]), str(item["num_images"]),
                                    " + ".join(map(str, item["group_sizes"])), f"{item['outside_largest']:.2f}"],
                lambda item: [(group, ()) for group in item.get("group_examples", [])], "examples of each group",
                "outside_largest"),
    FindingKind("outliers", "outlier", "outliers", "Outliers", ("sample",), (),
                ("sample", "mean neighbour cosine", "robust z"),
                lambda item, view: [view.name(item["sample"]), f"{item['mean_neighbor_similarity']:.4f}",
                                    f"{item['robust_z']:.2f}"], _one_face, "image", "robust_z"),
    FindingKind("low_information", "near-uniform face", "near-uniform faces",
                "Near-uniform faces, too little to recognise", ("sample",), (), ("sample", "pixel standard deviation"),
                lambda item, view: [view.name(item["sample"]), f"{item['pixel_std']:.2f}"], _one_face, "image",
                "pixel_std"),
    FindingKind("low_quality", "low-quality face", "low-quality faces", "Low-quality faces", ("sample",), (),
                ("sample", "quality", "detector evidence", "mirror cosine", "darker half"),
                lambda item, view: [view.name(item["sample"]), f"{item['quality']:.3f}",
                                    "–" if item["evidence"] is None else f"{item['evidence']:.2f}",
                                    f"{item['stability']:.3f}", f"{item['light']:.0f}"], _one_face, "image",
                "quality", "none found: every face scores at least diagnostics.low_quality",
                decision="low_quality"),
)


def identity_namer(names: Optional[Sequence[str]]) -> Callable[[int], str]:
  """label → its name, or the label as text when there are no names."""
  if names is None:
    return str
  return lambda label: names[int(label)] if 0 <= int(label) < len(names) else str(label)


@dataclasses.dataclass
class Findings:
  """What one IQ run found.

  Attributes:
    lists: kind key → its ranked items (every kind of `KINDS`).
    estimated_noise_rate: the share of non-singleton samples on the suspect list (uncapped); thresholds: the
      detectors' knobs.
    skipped: [{"file", "reason"}] inputs left out; no_face_found: [{"file"}] images embedded from their
      centred crop (the IQ job's).
    injected_noise_recovery: how the suspects find labels flipped on purpose, or None.
    overlap: the identities shared with another data set (report.json's section), or None.
    decisions: the decisions file written (`file`, `proposed`, `to_apply`), or None.
    near_duplicates_rejected: how many near-duplicate candidates were two photographs, not one (checked on
      the images, `data/copies.py`), or None when there were no images to check them on.
    suspicion: float64 [n] every evaluated sample's suspicion score (`suspicion.py`; the report's sample
      rows, in order; NaN for singletons), or None; per_sample.npz holds it, report.json does not.

  `findings[KEY]` reads a list or a field by its report.json key.
  """
  lists: Dict[str, List[dict]]
  estimated_noise_rate: float
  thresholds: dict
  skipped: List[dict] = dataclasses.field(default_factory=list)
  no_face_found: List[dict] = dataclasses.field(default_factory=list)
  injected_noise_recovery: Optional[dict] = None
  overlap: Optional[dict] = None
  decisions: Optional[dict] = None
  near_duplicates_rejected: Optional[int] = None
  suspicion: Optional[np.ndarray] = None

  def __getitem__(self, key: str):
    return self.lists[key] if key in self.lists else getattr(self, key)

  def counts(self) -> Dict[str, int]:
    """How many of each kind there are, in the table's order."""
    return {kind.key: len(self.lists[kind.key]) for kind in KINDS}

  def shared_pairs(self) -> List[dict]:
    """The overlap's pairs judged to be one person (none without an overlap search)."""
    return [pair for pair in (self.overlap or {}).get("pairs", []) if pair["shared"]]

  def to_dict(self) -> dict:
    """report.json's findings: the top `max_items` of every list under its key, `finding_counts` (how many
    there are in all: findings.csv holds them), then the fields (the recovery only when labels were flipped on
    purpose, the decisions only once written)."""
    top = self.thresholds.get("max_items", None)
    out = {key: items[:top] for key, items in self.lists.items()}
    out.update(finding_counts=self.counts(), estimated_noise_rate=self.estimated_noise_rate,
               thresholds=self.thresholds, skipped=self.skipped, no_face_found=self.no_face_found,
               near_duplicates_rejected=self.near_duplicates_rejected)
    if self.injected_noise_recovery is not None:
      out["injected_noise_recovery"] = self.injected_noise_recovery
    out["overlap"] = self.overlap
    if self.decisions is not None:
      out["decisions"] = self.decisions
    return out

  def table_rows(self):
    """Every item of every kind as a findings.csv row (`TABLE_COLUMNS`), kind by kind, each ranked: its first
    sample and label fields as row / file / label / identity, the second (a pair's other sample, a suspect's
    suggested identity, a merge's other identity) as other_*; files and identity names where `named` added
    them."""
    for kind in KINDS:
      for rank, item in enumerate(self.lists[kind.key], 1):
        samples = [(item[field], item.get(field.replace("sample", "file"), "")) for field in kind.samples]
        labels = [(item[field], item.get(f"{field}_name", "")) for field in kind.labels]
        samples, labels = samples + [("", "")] * 2, labels + [("", "")] * 2
        yield (kind.key, rank, item[kind.score], *samples[0], *labels[0], *samples[1], *labels[1])

  def named(self, name_of: Optional[Callable[[int], str]], identity_name: Callable[[int], str],
            flipped: Optional[np.ndarray] = None, original_labels: Optional[np.ndarray] = None) -> "Findings":
    """A copy with names beside rows and labels (module docstring); this object is left as it is."""
    lists = {}
    for kind in KINDS:
      items = []
      for item in self.lists[kind.key]:
        named = dict(item, **{f"{field}_name": identity_name(item[field]) for field in kind.labels})
        if name_of:
          named.update({field.replace("sample", "file"): name_of(item[field]) for field in kind.samples})
        items.append(named)
      lists[kind.key] = items
    if flipped is not None and original_labels is not None:
      for item in lists[SUSPECTS]:
        if flipped[item["sample"]]:
          original = int(original_labels[item["sample"]])
          item.update(original_label=original, original_label_name=identity_name(original))
    return dataclasses.replace(self, lists=lists)

  def noise_recovery(self, flipped: np.ndarray, rows: np.ndarray) -> dict:
    """How well the suspects find labels flipped on purpose (bool [N] by input row; `rows` the evaluated ones):
    precision among the top (at most 100) suspects, and recall of all suspects."""
    flipped_rows = set(np.asarray(rows)[flipped[rows]].tolist())
    suspects = [item["sample"] for item in self.lists[SUSPECTS]]
    top = suspects[:100]
    return {"num_flipped": len(flipped_rows), "num_suspects": len(suspects), "num_top": len(top),
            "precision_at_100": sum(s in flipped_rows for s in top) / max(len(top), 1),
            "recall": sum(s in flipped_rows for s in suspects) / max(len(flipped_rows), 1)}
