"""Decisions: proposed from findings by the policy, kept in an editable file, resolved into a plan by the rules."""
import pytest

from facequal_jax.cleaning import decisions as d
from facequal_jax.cleaning.plan import resolve
from facequal_jax.errors import DataError, UsageError

NAMES = {0: "ann", 1: "bob", 2: "cy", 3: "dee"}
SIZES = {0: 5, 1: 2, 2: 9, 3: 1}
CONSISTENCY = {3: 0.9, 9: 0.2, 5: 0.5, 6: 0.5}  # c_i of the near-duplicates' copies


def _findings():
  """Findings as report.json holds them (samples are input rows), worked out by hand."""
  return {
      "suspected_mislabeled": [
          {"sample": 7, "label": 0, "suggested_label": 2, "consistency": 0.1, "own_similarity": 0.41,
           "other_similarity": 0.83, "score": 0.62},
          {"sample": 4, "label": 1, "suggested_label": 0, "consistency": 0.4, "own_similarity": 0.6,
           "other_similarity": 0.5, "score": 0.27}],
      "near_duplicates": [{"sample_a": 2, "sample_b": 7, "label_a": 2, "label_b": 0, "similarity": 0.99,
                           "photo_similarity": 0.97},
                          {"sample_a": 3, "sample_b": 9, "label_a": 2, "label_b": 3, "similarity": 0.985,
                           "photo_similarity": 0.91},
                          {"sample_a": 5, "sample_b": 6, "label_a": 1, "label_b": 2, "similarity": 0.981,
                           "photo_similarity": 0.99}],
      "merge_candidates": [{"identity_a": 1, "identity_b": 2, "centroid_similarity": 0.97, "mutual_links": 2,
                            "examples_a": [4, 5], "examples_b": [2, 3]},
                           {"identity_a": 0, "identity_b": 3, "centroid_similarity": 0.951, "mutual_links": 1,
                            "examples_a": [0], "examples_b": [9]}],
      "low_quality": [{"sample": 8, "quality": 0.12, "evidence": -1.1, "stability": 0.95, "light": 80.0},
                      {"sample": 4, "quality": 0.15, "evidence": -0.4, "stability": 0.9, "light": 70.0}],
  }


def _propose(policy, overlap=(), findings=None, **evidence):
  names = d.Naming(lambda row: f"img{row}.jpg", CONSISTENCY.get, NAMES.get, SIZES.get, **evidence)
  return d.propose(findings or _findings(), policy, names, overlap)


def test_weak_evidence_is_left_for_review_with_its_reason():
  """A suspect whose image had no face, a copy pair with a near-uniform face, a pair never checked on pixels, a
  suspect the encoder cannot tell from its suggestion, and every suspect of an encoder not to be acted on."""
  weak = {7: "no face was found in its image", 6: "its face is near-uniform"}
  made = {x.item: x for x in _propose(d.Policy(), weak_evidence=lambda row: weak.get(row, ""))}
  assert not made["img7.jpg"].apply and made["img7.jpg"].reason.endswith("; for review only: no face was found in "
                                                                         "its image")
  assert made["img9.jpg"].apply and not made["img6.jpg"].apply  # img6's pair holds the near-uniform face
  findings = _findings()
  del findings["near_duplicates"][1]["photo_similarity"]
  findings["suspected_mislabeled"][0]["separable"] = False
  made = {x.item: x for x in _propose(d.Policy(), findings=findings)}
  assert "for review only: not checked to be one photograph" in made["img9.jpg"].reason and not made["img9.jpg"].apply
  assert "the encoder barely tells ann from cy" in made["img7.jpg"].reason and not made["img7.jpg"].apply
  made = _propose(d.Policy(), encoder_doubt="the encoder eigenfaces does not separate identities")
  assert [x.apply for x in made if x.reason.startswith("suspected")] == [False, False]


def test_default_policy_proposes_by_its_rules():
  overlap = [{"identity": 3, "other_identity_name": "Dee Other", "centroid_similarity": 0.8, "margin": 0.2,
              "image_share": 1.0, "examples": [9]}]
  made = _propose(d.Policy(), overlap)
  rows = [(x.apply, x.kind, x.item, x.action, x.score, x.rows) for x in made]
  assert rows == [
      (True, "sample", "img7.jpg", "drop", 0.62, (7,)),  # accepted from score 0.35
      (False, "sample", "img4.jpg", "drop", 0.27, (4,)),  # below it: for review
      # img7 is also a copy of the first near-duplicate pair: the pair is left to its decision. Of the second
      # pair the copy with the lower c_i goes (img9, 0.2 < 0.9), of the third the later row (a tie at 0.5).
      (True, "sample", "img9.jpg", "drop", 0.985, (9, 3)),
      (True, "sample", "img6.jpg", "drop", 0.981, (6, 5)),
      (True, "identity", "dee", "drop", 0.8, (9,)),  # found in the other data set
      (False, "identity", "bob", "merge:cy", 0.97, (4, 5)),  # merges are for review; the smaller joins the larger
      (False, "sample", "img8.jpg", "drop", 0.12, (8,))]  # low quality: for review; img4 has its decision already
  # ann / dee (0.951) would be proposed too, but dee already has its (accepted) decision
  assert "labelled ann, nearer cy (cosine 0.83 to its centroid, 0.41 to the rest of ann; c_i 0.10)" in made[0].reason


def test_policy_knobs_change_what_is_proposed():
  made = _propose(d.Policy(suspects="relabel", suspect_min_score=0.5, duplicates="none", merge_min_similarity=0.96,
                           accept=()))
  assert [(x.apply, x.item, x.action) for x in made] == [(False, "img7.jpg", "relabel:cy"),
                                                          (False, "img4.jpg", "relabel:ann"),
                                                          (False, "bob", "merge:cy"), (False, "img8.jpg", "drop")]
  assert _propose(d.Policy(suspects="none", duplicates="none", merge_min_similarity=1.5, low_quality="none")) == []
  accepted = _propose(d.Policy(suspects="none", duplicates="none", merge_min_similarity=1.5,
                               accept=("low_quality",)))
  assert [(x.apply, x.item) for x in accepted] == [(True, "img8.jpg"), (True, "img4.jpg")]
  assert "low-quality face: quality 0.120 (detector evidence -1.10, mirror cosine 0.950" in accepted[0].reason
  with pytest.raises(UsageError, match="decisions.suspects must be one of"):
    d.Policy(suspects="delete")
  with pytest.raises(UsageError, match="decisions.accept takes"):
    d.Policy(accept=("suspect",))


def test_file_round_trip_keeps_rows_and_names_lines_of_bad_ones(tmp_path):
  path = str(tmp_path / "decisions.csv")
  made = _propose(d.Policy())
  d.write(path, made, "/data/faces", policy=d.Policy())
  read = d.read(path)
  assert read.source == "/data/faces" and read.flipped_on_purpose == 0
  assert [(x.apply, x.kind, x.item, x.action, x.reason, x.score) for x in read.decisions] == \
      [(x.apply, x.kind, x.item, x.action, x.reason, x.score) for x in made]
  text = open(path).read()
  header_line = text.splitlines().index("apply,kind,item,action,reason,score") + 1
  for bad, message in [("maybe,sample,a.jpg,drop,,", "apply must be yes or no"),
                       ("yes,file,a.jpg,drop,,", "kind must be sample or identity"),
                       ("yes,sample,a.jpg,merge:ann,,", "the action of a sample must be drop or relabel"),
                       ("yes,identity,ann,relabel:bob,,", "the action of an identity must be drop or merge"),
                       ("yes,sample,a.jpg,drop,,high", "score must be a number"),
                       ("yes,sample,a.jpg,drop", "4 fields, but the header has 6")]:
    (tmp_path / "bad.csv").write_text(text + bad + "\n")
    with pytest.raises(DataError, match=f"line {header_line + len(made) + 1}: .*{message}"):
      d.read(str(tmp_path / "bad.csv"))
  d.write(path, made[:1], "/data/faces", flipped_on_purpose=12)
  assert d.read(path).flipped_on_purpose == 12


def _decision(kind, item, action, apply=True, line=0):
  return d.Decision(apply, kind, item, action, line=line)


SAMPLES = ["a/1", "a/2", "b/1", "b/2", "c/1", "c/2", "e/1"]
IDENTITIES = ["a", "a", "b", "b", "c", "c", "e"]


def test_plan_follows_the_rules():
  plan = resolve([_decision("sample", "a/2", "drop"),
                  _decision("sample", "b/1", "relabel:c"),
                  _decision("identity", "b", "drop"),  # b/1's own relabel wins over it, b/2 goes
                  _decision("identity", "a", "merge:c"),  # a → c → e: merges chain
                  _decision("identity", "c", "merge:e"),
                  _decision("sample", "e/1", "drop", apply=False)],  # for review: not carried out
                 SAMPLES, IDENTITIES)
  assert plan.keep.tolist() == [True, False, True, False, True, True, True]
  assert plan.identity == ["e", "e", "e", "b", "e", "e", "e"]
  assert plan.changed.tolist() == [True, False, True, False, True, True, False]
  assert plan.summary == {
      "samples_before": 7, "samples_after": 5, "identities_before": 4, "identities_after": 1, "dropped_samples": 1,
      "dropped_with_their_identity": 1, "relabelled_samples": 1, "merged_identities": 2, "samples_merged": 3,
      "identities_dropped": 1, "changed_labels": 4, "decisions_applied": 5, "left_for_review": 1}


@pytest.mark.parametrize("decisions, message", [
    ([_decision("sample", "z/9", "drop", line=12)], "line 12: the source has no sample 'z/9'"),
    ([_decision("identity", "zed", "drop", line=3)], "line 3: the source has no identity 'zed'"),
    ([_decision("sample", "a/1", "drop", line=4), _decision("sample", "a/1", "relabel:b", line=9)],
     r"line 9: sample 'a/1' is decided twice \('drop' on line 4, 'relabel:b' here\)"),
    ([_decision("identity", "a", "merge:b", line=5), _decision("identity", "b", "merge:a", line=6)],
     "merges form a cycle"),
    ([_decision("identity", "a", "merge:nobody", line=2)], "line 2: merge:nobody names no identity"),
    ([_decision("identity", "a", "merge:b", line=2), _decision("identity", "b", "drop", line=3)],
     "'a' is merged into 'b', which is dropped"),
    ([_decision("sample", "a/1", "relabel:b", line=7), _decision("identity", "b", "drop", line=8)],
     "line 7: relabel:b names an identity that is dropped"),
])
def test_plan_refuses_what_cannot_be_carried_out(decisions, message):
  with pytest.raises(DataError, match=message):
    resolve(decisions, SAMPLES, IDENTITIES, "decisions.csv")


def test_relabel_to_a_new_name_makes_a_new_identity():
  plan = resolve([_decision("sample", "c/2", "relabel:new person")], SAMPLES, IDENTITIES)
  assert plan.identity[5] == "new person" and plan.summary["identities_after"] == 5
