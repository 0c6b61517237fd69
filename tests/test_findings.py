"""The typed findings: names beside rows and labels, counts, report.json's keys; the page's script-safe JSON."""
import json

import numpy as np

from facequal_jax.metrics import findings
from facequal_jax.report import html


def _found():
  return findings.Findings({"suspected_mislabeled": [{"sample": 4, "label": 1, "suggested_label": 0},
                                                     {"sample": 2, "label": 0, "suggested_label": 1}],
                            "merge_candidates": [{"identity_a": 0, "identity_b": 2}],
                            "split_candidates": [{"identity": 2}],
                            "near_duplicates": [{"sample_a": 1, "sample_b": 4, "label_a": 0, "label_b": 1}],
                            "outliers": [{"sample": 3}], "low_information": [],
                            "low_quality": [{"sample": 0, "quality": 0.1}]}, 0.4, {})


def test_names_and_original_labels_are_added_beside_the_rows_and_labels():
  flipped = np.array([False, False, False, False, True])
  original = np.array([0, 0, 0, 1, 0])  # row 4 was identity 0 before its label was flipped to 1
  named = _found().named(lambda row: f"file{row}.png", findings.identity_namer(["ann", "bob", "cy"]), flipped,
                         original)
  first, second = named["suspected_mislabeled"]
  assert (first["file"], first["label_name"], first["suggested_label_name"]) == ("file4.png", "bob", "ann")
  assert (first["original_label"], first["original_label_name"]) == (0, "ann")
  assert "original_label" not in second  # row 2 was not flipped
  assert (named["merge_candidates"][0]["identity_a_name"], named["merge_candidates"][0]["identity_b_name"]) == (
      "ann", "cy")
  assert named["split_candidates"][0]["identity_name"] == "cy"
  duplicate = named["near_duplicates"][0]
  assert (duplicate["file_a"], duplicate["file_b"], duplicate["label_a_name"], duplicate["label_b_name"]) == (
      "file1.png", "file4.png", "ann", "bob")
  assert named["outliers"][0]["file"] == "file3.png" and named["low_quality"][0]["file"] == "file0.png"
  assert "label_name" not in _found()["suspected_mislabeled"][0]  # the input is left as it was


def test_without_names_labels_are_their_own_names():
  named = _found().named(None, findings.identity_namer(None))
  assert named["suspected_mislabeled"][0]["label_name"] == "1" and "file" not in named["outliers"][0]
  assert named.counts() == {"suspected_mislabeled": 2, "near_duplicates": 1, "merge_candidates": 1,
                            "split_candidates": 1, "outliers": 1, "low_information": 0, "low_quality": 1}
  assert list(named.to_dict())[:7] == [kind.key for kind in findings.KINDS]
  assert named["estimated_noise_rate"] == 0.4 and named.to_dict()["overlap"] is None
  assert "decisions" not in named.to_dict() and "injected_noise_recovery" not in named.to_dict()


def test_json_in_a_script_block_cannot_close_it():
  value = {"note": "x</script><script>alert(1)</script> & <!--"}
  text = html._json_for_script(value)  # pylint: disable=protected-access
  assert "<" not in text and ">" not in text and "&" not in text
  assert json.loads(text) == value
