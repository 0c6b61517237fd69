"""The diagnostics as report.json holds them: names beside every row and label.

`diagnose` works in input rows and integer labels; people read file names and
identity names. `named_findings` adds, without changing any ranked list:
`file` / `file_a` / `file_b` beside samples (image sources), `*_name` beside
every label (`label_name`, `suggested_label_name`, `identity_a_name`, …), and,
for suspects whose label was flipped on purpose (`data.label_noise`), their
`original_label` and `original_label_name`.
"""
from typing import Callable, Optional, Sequence

import numpy as np

# Per finding: the label fields that get a `*_name` beside them.
LABEL_FIELDS = {
    "suspected_mislabeled": ("label", "suggested_label"),
    "merge_candidates": ("identity_a", "identity_b"),
    "split_candidates": ("identity",),
    "near_duplicates": ("label_a", "label_b"),
}
SAMPLE_FINDINGS = ("suspected_mislabeled", "near_duplicates", "outliers", "low_information")


def identity_namer(names: Optional[Sequence[str]]) -> Callable[[int], str]:
  """label → its name, or the label as text when there are no names."""
  if names is None:
    return str
  return lambda label: names[int(label)] if 0 <= int(label) < len(names) else str(label)


def named_findings(findings: dict, name_of: Optional[Callable[[int], str]], identity_name: Callable[[int], str],
                   flipped: Optional[np.ndarray] = None, original_labels: Optional[np.ndarray] = None) -> dict:
  """`findings` (from `diagnose`) with file names, identity names and the original labels of flipped suspects."""
  out = dict(findings)
  for key in SAMPLE_FINDINGS:
    out[key] = [dict(item, **{field.replace("sample", "file"): name_of(item[field])
                              for field in ("sample", "sample_a", "sample_b") if field in item})
                if name_of else dict(item) for item in findings[key]]
  for key, fields in LABEL_FIELDS.items():
    items = out[key] if key in SAMPLE_FINDINGS else [dict(item) for item in findings[key]]
    for item in items:
      item.update({f"{field}_name": identity_name(item[field]) for field in fields})
    out[key] = items
  if flipped is not None and original_labels is not None:
    for item in out["suspected_mislabeled"]:
      if flipped[item["sample"]]:
        original = int(original_labels[item["sample"]])
        item.update(original_label=original, original_label_name=identity_name(original))
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


def counts(findings: dict) -> dict:
  """How many of each finding there are (what the command prints after the headline)."""
  return {key: len(findings[key]) for key in ("suspected_mislabeled", "merge_candidates", "split_candidates",
                                                "near_duplicates", "outliers", "low_information")}
