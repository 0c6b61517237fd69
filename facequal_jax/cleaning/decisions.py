"""Decisions: what to do about the findings, as a file people review and edit (`decisions.csv`).

The file is CSV with a documented header (lines starting with `#`, ignored on
reading except `# source:` and `# labels_flipped_on_purpose:`):

  apply,kind,item,action,reason,score
  yes,sample,Ann_Smith/Ann_Smith_0002.jpg,drop,"suspected mislabelled: …",0.4120
  no,identity,Noer_Muis,merge:Noer_Moeis,"may be one person with Noer_Moeis: …",0.9712

- apply: `yes` rows are carried out by `python -m facequal_jax.apply`; `no`
  rows are proposals left for review (change them to `yes` to accept).
- kind / item: `sample` and the sample's name within its source (a path under
  the image folder, a path of the `.lst`, a `.rec` key, an `.npz` row), or
  `identity` and the identity's name (folder name, `.rec` label, `names` entry).
- action: `drop`; `relabel:<identity>` (a sample joins that identity, a new
  name makes a new one); `merge:<identity>` (every sample of an identity joins
  that identity).

`propose` turns the diagnostics (and an overlap search) into decisions under a
`Policy`; `write` and `read` keep the file. One decision per item.
"""
import csv
import dataclasses
import io
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from facequal_jax import files
from facequal_jax.errors import DataError, UsageError
from facequal_jax.metrics import findings as finding_kinds

COLUMNS = ("apply", "kind", "item", "action", "reason", "score")
KINDS = ("sample", "identity")
# what a policy can turn into decisions: the finding kinds it acts on, and identities shared with another set
FINDINGS = tuple(kind.decision for kind in finding_kinds.KINDS if kind.decision) + ("overlap",)
SUSPECT_ACTIONS = ("drop", "relabel", "none")

_HELP = """\
# facequal_jax decisions: one row per sample or identity to change; `python -m facequal_jax.apply
#   --decisions=THIS_FILE --out=DIR` carries out the rows whose `apply` is yes and never touches the source.
# apply: yes = carry it out, no = a proposal for review (write yes to accept it).
# kind, item: `sample` and its name in the source (path under the folder, .lst path, .rec key, .npz row), or
#   `identity` and its name (folder name, .rec label, .npz name).
# action: drop | relabel:<identity> (samples) | merge:<identity> (identities: all its samples join that one).
# When decisions meet: a sample's own drop or relabel wins over its identity's drop or merge; merges chain.
# reason, score: why it was proposed and the finding's score (suspects: the suspicion score of
#   metrics/suspicion.py; duplicates, merges and overlaps: cosine). Rows proposed from every finding (findings.csv,
#   however many); the policy below says which were accepted (apply = yes).
"""


@dataclasses.dataclass(frozen=True)
class Decision:
  """One row of the file; `line` is its line in the file it was read from (0 when made here), `rows` the input
  rows of the report that show it (the sample, or example images of the identity; not in the file)."""
  apply: bool
  kind: str
  item: str
  action: str
  reason: str = ""
  score: Optional[float] = None
  line: int = 0
  rows: Tuple[int, ...] = ()

  @property
  def target(self) -> str:
    """The identity of a `relabel:` / `merge:` action ("" for `drop`)."""
    return self.action.partition(":")[2]

  @property
  def verb(self) -> str:
    return self.action.partition(":")[0]


@dataclasses.dataclass(frozen=True)
class Policy:
  """Which findings become decisions, and which of those are accepted.

  Attributes:
    suspects: suspected mislabelled samples are dropped ("drop"), given the
      identity whose centroid they sit nearest ("relabel"), or left alone ("none").
    suspect_min_score: suspects whose suspicion score (`metrics/suspicion.py`)
      is at least this are accepted; the others are written for review.
    duplicates: "drop_one" drops one copy of each cross-identity near-duplicate
      pair (one image under two identities): the one whose neighbours side less
      with its label (lower c_i; the later row on a tie). A pair with a copy
      already decided (a suspect) is left to that decision. Or "none".
    merge_min_similarity: merge candidates whose centroids are at least this
      close are proposed (the smaller identity joins the larger); > 1: none.
    overlap: "drop" drops this set's identities found in the other data set
      (`overlap.source`), or "none".
    low_quality: "drop" proposes dropping each low-quality face (`diagnostics.low_quality`), or "none"; left
      for review unless `accept` names "low_quality".
    accept: the findings whose decisions are written with apply=yes; the others
      are written with apply=no, for review. () = review everything.
  """
  suspects: str = "drop"
  suspect_min_score: float = 0.35
  duplicates: str = "drop_one"
  merge_min_similarity: float = 0.95
  overlap: str = "drop"
  low_quality: str = "drop"
  accept: Tuple[str, ...] = ("suspects", "duplicates", "overlap")

  def __post_init__(self):
    for name, valid in (("suspects", SUSPECT_ACTIONS), ("duplicates", ("drop_one", "none")),
                        ("overlap", ("drop", "none")), ("low_quality", ("drop", "none"))):
      if getattr(self, name) not in valid:
        raise UsageError(f"decisions.{name} must be one of {', '.join(map(repr, valid))}, got {getattr(self, name)!r}")
    for name in ("suspect_min_score", "merge_min_similarity"):
      if not isinstance(getattr(self, name), (int, float)) or isinstance(getattr(self, name), bool):
        raise UsageError(f"decisions.{name} must be a number, got {getattr(self, name)!r}")
    unknown = set(self.accept) - set(FINDINGS)
    if unknown:
      raise UsageError(f"decisions.accept takes {', '.join(map(repr, FINDINGS))}, got {sorted(unknown)}")


@dataclasses.dataclass(frozen=True)
class Naming:
  """What `propose` reads of the data: input row → the sample's name within its source and its c_i; label →
  identity name and number of samples; input row → why its image is weak evidence ("" when it is not: no
  face was found in it, or it is near-uniform); why the encoder's findings cannot be acted on alone ("")."""
  sample_id: Callable[[int], str]
  consistency: Callable[[int], float]
  identity_name: Callable[[int], str]
  identity_size: Callable[[int], int]
  weak_evidence: Callable[[int], str] = lambda row: ""
  encoder_doubt: str = ""


def _held_back(accepted: bool, reason: str, doubts: Sequence[str]) -> Tuple[bool, str]:
  """A proposal whose evidence is weak is never accepted: it is left for review, saying why."""
  doubts = [doubt for doubt in doubts if doubt]
  if not doubts:
    return accepted, reason
  return False, f"{reason}; for review only: {'; '.join(doubts)}"


def propose(findings: finding_kinds.Findings, policy: Policy, names: Naming,
            overlap: Sequence[dict] = ()) -> List[Decision]:
  """Decisions for the findings of one report, in the order suspects, duplicates, overlaps, merges, low-quality
  faces.

  Args:
    findings: a run's `Findings` (samples are input rows).
    policy: what to propose and accept.
    names: sample and identity names, c_i and identity sizes.
    overlap: the shared identities found against another data set (`overlap.find_overlap`'s pairs).

  Returns:
    One decision per item: an item met again keeps its first decision.
  """
  made: Dict[Tuple[str, str], Decision] = {}
  identity = names.identity_name

  def add(accepted: bool, kind: str, item: str, action: str, reason: str, score: float, rows: Sequence[int]) -> None:
    made.setdefault((kind, item), Decision(accepted, kind, item, action, reason, round(score, 4),
                                           rows=tuple(int(row) for row in rows)))

  if policy.suspects != "none":
    for found in findings["suspected_mislabeled"]:
      suggested = identity(found["suggested_label"])
      action = "drop" if policy.suspects == "drop" else f"relabel:{suggested}"
      unseparated = "" if found.get("separable", True) else (
          f"the encoder barely tells {identity(found['label'])} from {suggested} (their centroids are as close as "
          f"{identity(found['label'])}'s own faces are to theirs)")
      accepted, reason = _held_back(
          "suspects" in policy.accept and found["score"] >= policy.suspect_min_score,
          f"suspected mislabelled: labelled {identity(found['label'])}, nearer {suggested} (cosine "
          f"{found['other_similarity']:.2f} to its centroid, {found['own_similarity']:.2f} to the rest of "
          f"{identity(found['label'])}; c_i {found['consistency']:.2f})",
          [names.weak_evidence(found["sample"]), unseparated, names.encoder_doubt])
      add(accepted, "sample", names.sample_id(found["sample"]), action, reason, found["score"], [found["sample"]])
  if policy.duplicates == "drop_one":
    for found in findings["near_duplicates"]:
      copies = [(found["sample_a"], found["label_a"]), (found["sample_b"], found["label_b"])]
      if any(("sample", names.sample_id(row)) in made for row, _ in copies):
        continue
      (kept, kept_label), (row, label) = sorted(copies, key=lambda copy: (-names.consistency(copy[0]), copy[0]))
      unchecked = "" if "photo_similarity" in found else "not checked to be one photograph (no images)"
      accepted, reason = _held_back(
          "duplicates" in policy.accept,
          f"near-duplicate of {names.sample_id(kept)} ({identity(kept_label)}), labelled {identity(label)}: its "
          f"neighbours side less with its label (c_i {names.consistency(row):.2f} vs "
          f"{names.consistency(kept):.2f})", [unchecked, names.weak_evidence(row), names.weak_evidence(kept)])
      add(accepted, "sample", names.sample_id(row), "drop", reason, found["similarity"], [row, kept])
  if policy.overlap == "drop":
    for pair in overlap:
      add("overlap" in policy.accept, "identity", identity(pair["identity"]), "drop",
          f"the same person as {pair['other_identity_name']} in the other data set: centroid cosine "
          f"{pair['centroid_similarity']:.3f}, {pair['image_share']:.0%} of their images nearest each other",
          pair["centroid_similarity"], pair.get("examples", ()))
  for found in findings["merge_candidates"]:
    if found["centroid_similarity"] >= policy.merge_min_similarity:
      small, large = sorted((found["identity_a"], found["identity_b"]),
                            key=lambda label: (names.identity_size(label), -label))
      examples = found["examples_a"] if small == found["identity_a"] else found["examples_b"]
      add("merges" in policy.accept, "identity", identity(small), f"merge:{identity(large)}",
          f"may be one person with {identity(large)}: centroid cosine {found['centroid_similarity']:.3f}, "
          f"{found['mutual_links']} mutual nearest-neighbour links", found["centroid_similarity"], examples)
  if policy.low_quality == "drop":
    for found in findings["low_quality"]:
      evidence = "" if found["evidence"] is None else f"detector evidence {found['evidence']:.2f}, "
      add("low_quality" in policy.accept, "sample", names.sample_id(found["sample"]), "drop",
          f"low-quality face: quality {found['quality']:.3f} ({evidence}mirror cosine {found['stability']:.3f}, "
          f"darker half {found['light']:.0f})", found["quality"], [found["sample"]])
  return list(made.values())


def write(path: str, decisions: Sequence[Decision], source: str, flipped_on_purpose: int = 0,
          policy: Optional[Policy] = None) -> None:
  """Writes the decisions file atomically.

  Args:
    source: the data they are about, as `--source` of the apply command takes it.
    flipped_on_purpose: labels the run flipped (`data.label_noise`): such a
      file describes labels the source does not have, and apply refuses it.
    policy: recorded in the header.
  """
  text = io.StringIO()
  text.write(_HELP)
  if policy is not None:
    text.write(f"# policy: {dataclasses.asdict(policy)}\n")
  text.write(f"# source: {source}\n")
  if flipped_on_purpose:
    text.write(f"# labels_flipped_on_purpose: {flipped_on_purpose}\n")
  writer = csv.writer(text, lineterminator="\n")
  writer.writerow(COLUMNS)
  for decision in decisions:
    writer.writerow(["yes" if decision.apply else "no", decision.kind, decision.item, decision.action,
                     decision.reason, "" if decision.score is None else f"{decision.score:.4f}"])
  files.write_bytes(path, text.getvalue().encode())


@dataclasses.dataclass(frozen=True)
class DecisionsFile:
  """A decisions file as read: its rows, the source it names and the labels its run flipped on purpose."""
  decisions: List[Decision]
  source: str
  flipped_on_purpose: int


def _parsed(path: str, line: int, row: Dict[str, str]) -> Decision:
  where = f"{path}: line {line}"
  apply, kind, item, action = (row[c].strip() for c in ("apply", "kind", "item", "action"))
  if apply not in ("yes", "no"):
    raise DataError(f"{where}: apply must be yes or no, got {apply!r}")
  if kind not in KINDS:
    raise DataError(f"{where}: kind must be sample or identity, got {kind!r}")
  if not item:
    raise DataError(f"{where}: item is empty (the {kind}'s name)")
  verb, _, target = action.partition(":")
  valid = {"sample": ("drop", "relabel"), "identity": ("drop", "merge")}[kind]
  if verb not in valid or (verb == "drop") != (not target):
    raise DataError(f"{where}: the action of {'a sample' if kind == 'sample' else 'an identity'} must be drop or "
                    f"{valid[1]}:<identity>, got {action!r}")
  try:
    score = float(row["score"]) if row.get("score", "").strip() else None
  except ValueError:
    raise DataError(f"{where}: score must be a number or empty, got {row['score']!r}") from None
  return Decision(apply == "yes", kind, item, action, row.get("reason") or "", score, line)


def read(path: str) -> DecisionsFile:
  """Reads and checks a decisions file (CSV: a quoted field may hold commas, quotes and line breaks; `#` lines
  before the header are its notes, and a row whose first field starts with `#` is a comment); a bad row is a
  DataError naming the file, line and field."""
  try:
    with open(path, encoding="utf-8", newline="") as f:
      lines = f.readlines()  # split at \n, \r and \r\n only: other line separators are a name's own characters
  except FileNotFoundError:
    raise DataError(f"decisions file {path!r} does not exist") from None
  source, flipped, notes = "", 0, 0
  while notes < len(lines) and (lines[notes].startswith("#") or not lines[notes].strip()):
    if lines[notes].startswith("# source:"):
      source = lines[notes].partition(":")[2].strip()
    elif lines[notes].startswith("# labels_flipped_on_purpose:"):
      flipped = int(lines[notes].partition(":")[2])
    notes += 1
  rows = csv.reader(lines[notes:])
  header = next(rows, None)
  if header is None:
    raise DataError(f"{path}: no header row ({','.join(COLUMNS)})")
  missing = [c for c in COLUMNS[:4] if c not in header]
  if missing:
    raise DataError(f"{path}: line {notes + 1}: the header lacks {', '.join(missing)} (it needs "
                    f"{','.join(COLUMNS)})")
  decisions, start = [], notes + rows.line_num + 1
  for cells in rows:
    number, start = start, notes + rows.line_num + 1  # the row's first line; the next row's
    if not any(cell.strip() for cell in cells) or cells[0].startswith("#"):
      continue
    if len(cells) != len(header):
      raise DataError(f"{path}: line {number}: {len(cells)} fields, but the header has {len(header)}")
    decisions.append(_parsed(path, number, dict(zip(header, cells))))
  return DecisionsFile(decisions, source, flipped)
