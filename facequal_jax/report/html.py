"""report.html: one self-contained page (inline SVG, PNG thumbnails and script; opens offline).

Everything that comes from users' files — identity names, file paths — is
escaped wherever it appears: HTML text and attributes via `html.escape`, and
the JSON data block with `<`, `>` and `&` written as `\\u003c` … so no name can
close the script element.
"""
import base64
import html
import io as bytes_io
import json
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np
from PIL import Image

from facequal_jax import files
from facequal_jax.metrics import face_quality
from facequal_jax.metrics.findings import KINDS, SUSPECTS, Findings, PictureGroups
from facequal_jax.metrics.quality import IQReport
from facequal_jax.progress import Progress
from facequal_jax.report import plots

WEAK_CONSISTENCY = 0.7  # below it, the flagged share says more about the encoder than about the labels

HEADLINES = (
    ("iq", "IQ", "Intrinsic Quality, α · Consis + (1 − α) · r̃: higher means a cleaner, richer training set."),
    ("consistency", "Consis", "How often a sample's k nearest neighbours carry its own identity label (local)."),
    ("effective_rank_normalized", "r̃", "Effective rank of the embedding covariance over its dimension: how "
     "evenly the embeddings use their dimensions (global)."),
    ("effective_rank", "effective rank", "exp of the entropy of the normalised eigenvalues."),
    ("rankme", "RankMe", "The same entropy rank computed on the singular values of the embeddings (a baseline)."),
    ("stable_rank", "stable rank", "Sum of the eigenvalues over the largest one (a baseline)."),
    ("alpha_req", "α-ReQ", "Decay exponent of the eigenvalue spectrum: larger means faster collapse (a baseline)."),
    ("estimated_noise_rate", "flagged share (label-noise estimate)", "Share of samples whose suspicion score "
     "reaches the suspect list's threshold (nearer another identity than their own): an estimate of the share of "
     f"wrong labels when the encoder separates identities well (Consis ≥ {WEAK_CONSISTENCY} on clean data)."),
    ("num_samples", "samples", "Samples evaluated."),
    ("num_identities", "identities", "Distinct identity labels."),
    ("num_singletons", "singletons", "Samples whose identity has one image: left out of Consis."),
)

MAX_TABLE_IDENTITIES = 2000  # rows of the per-identity table on the page
SHOWN_ROWS = 20  # rows of a finding shown at first; "show all" reveals the rest the page holds
PAGE_ROWS = 100  # rows of a finding the page holds (findings.csv has them all)

_SCRIPT = """
window.onerror = function () { document.body.dataset.errors = String(Number(document.body.dataset.errors) + 1); };
function sortTable(table, column, numeric) {
  var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  var ascending = table.dataset.sortColumn == column ? table.dataset.sortAscending != "true" : numeric ? false : true;
  rows.sort(function (a, b) {
    var x = a.cells[column].dataset.value, y = b.cells[column].dataset.value;
    var order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
    return ascending ? order : -order;
  });
  rows.forEach(function (row) { body.appendChild(row); });
  table.dataset.sortColumn = column; table.dataset.sortAscending = String(ascending);
}
document.querySelectorAll("table.sortable").forEach(function (table) {
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell, column) {
    cell.addEventListener("click", function () { sortTable(table, column, cell.dataset.numeric == "1"); });
  });
});
document.querySelectorAll("button.show-all").forEach(function (button) {
  button.addEventListener("click", function () {
    var section = button.closest("section");
    section.querySelectorAll("tr.more").forEach(function (row) { row.classList.remove("more"); });
    section.querySelector(".shown").textContent = section.dataset.total;
    button.remove();
  });
});
document.body.dataset.ready = "1";
"""

_STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 8px 0 20px; font-size: 13px; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: middle; }
section td:first-child { min-width: 8em; max-width: 240px; overflow-wrap: anywhere; }
th { background: #f3f3f3; }
table.sortable th { cursor: pointer; }
tr.more { display: none; }
.plots svg { margin-right: 16px; }
img.thumb { height: 56px; margin: 1px; border: 2px solid transparent; }
img.own { border-color: #2ca02c; } img.foreign { border-color: #d62728; }
.note { color: #666; font-size: 12px; }
.warning { background: #fff4e5; border-left: 4px solid #f0a030; padding: 6px 10px; }
.count { color: #666; font-size: 13px; font-weight: normal; }
.original { color: #9467bd; }
"""


def thumbnail(image: np.ndarray, height: int = 56) -> str:
  """uint8 [H, W] or [H, W, C] → a data: URI of a PNG `height` pixels high."""
  picture = Image.fromarray(np.asarray(image, np.uint8).squeeze())
  width = max(1, round(picture.width * height / picture.height))
  buffer = bytes_io.BytesIO()
  picture.resize((width, height)).save(buffer, format="PNG")
  return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _text(value) -> str:
  return html.escape(str(value), quote=True)


def _number(value) -> str:
  if value is None:
    return "—"
  return f"{value:.4f}" if isinstance(value, float) else _text(value)


def _json_for_script(value) -> str:
  """JSON that is safe inside <script>: no `<`, `>` or `&` can end the element or start markup."""
  return json.dumps(value).replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _section(key: str, heading: str, items: Sequence[dict], columns: Sequence[str],
             cells: Callable[[dict], List[str]], empty: str = "none found", full_list: str = "findings.csv") -> str:
  """A list's section: heading with its count, then "showing N of M" and a table, or `empty`.

  The first `SHOWN_ROWS` rows show; the page holds up to `PAGE_ROWS`, revealed by "show all"; `full_list`
  names the file that holds them all.
  """
  total = len(items)
  if not total:
    return (f'<section id="{key}" data-total="0"><h2>{heading} <span class="count">(0)</span></h2>'
            f'<p class="none">{_text(empty)}</p></section>')
  held = items[:PAGE_ROWS]
  shown = min(SHOWN_ROWS, total)
  rows = "".join(f'<tr{" class=more" if number >= SHOWN_ROWS else ""}>'
                 + "".join(f"<td>{cell}</td>" for cell in cells(item)) + "</tr>"
                 for number, item in enumerate(held))
  button = f'<button class="show-all">show all {len(held)}</button>' if len(held) > shown else ""
  beyond = (f' <span class="note">(the page holds the first {len(held)}; {full_list} lists all {total})</span>'
            if total > len(held) else "")
  return (f'<section id="{key}" data-total="{len(held)}"><h2>{heading} <span class="count">({total})</span></h2>'
          f'<p class="showing">showing <span class="shown">{shown}</span> of {total}{beyond} {button}</p>'
          f'<table><tr>{"".join(f"<th>{_text(c)}</th>" for c in columns)}</tr>{rows}</table></section>')


class _Page:
  """Cells of the sections: names, identities and thumbnails (made once per input row, before rendering)."""

  def __init__(self, image_of, name_of, identity_name, other_image_of=None):
    self.image_of, self.other_image_of = image_of, other_image_of
    self.name_of = name_of or (lambda row: f"#{row}")
    self.identity_name = identity_name or str
    self.thumbs: Dict[int, str] = {}
    self.other_thumbs: Dict[int, str] = {}

  def make_thumbnails(self, rows: Iterable[int], other_rows: Iterable[int] = ()) -> None:
    """Thumbnails of `rows` (decoded and aligned as embedded) and of `other_rows` of the overlap's other data
    set, with progress lines."""
    jobs = [(self.thumbs, self.image_of, row) for row in sorted(set(map(int, rows))) if self.image_of]
    jobs += [(self.other_thumbs, self.other_image_of, row) for row in sorted(set(map(int, other_rows)))
             if self.other_image_of]
    if not jobs:
      return
    progress = Progress("report thumbnails", total=len(jobs), unit="faces", every_s=5.0)
    for thumbs, image_of, row in jobs:
      thumbs[row] = thumbnail(image_of(row))
      progress.advance(1)

  def identity(self, label: int) -> str:
    return _text(self.identity_name(int(label)))

  def pictures(self, rows: Sequence[int], css: Sequence[str] = ()) -> str:
    """Thumbnails of input rows, each titled with its name; `css` gives each an extra class."""
    if not self.image_of:
      return ""
    css = list(css) or [""] * len(rows)
    return "".join(f'<img class="thumb {kind}" src="{self.thumbs[int(row)]}" title="{_text(self.name_of(int(row)))}" '
                   f'alt="{_text(self.name_of(int(row)))}">' for row, kind in zip(rows, css))

  def other_pictures(self, rows: Sequence[int], names: Sequence[str]) -> str:
    """Thumbnails of rows of the overlap's other data set, titled with their files."""
    return "".join(f'<img class="thumb" src="{self.other_thumbs[int(row)]}" title="{_text(name)}" alt="{_text(name)}">'
                   for row, name in zip(rows, names) if int(row) in self.other_thumbs)

  def name(self, row: int) -> str:
    return _text(self.name_of(int(row)))

  @staticmethod
  def note(text: str) -> str:
    return f'<br><span class="original">{text}</span>'

  def groups(self, groups: PictureGroups) -> str:
    """Groups of thumbnails, separated by a bar."""
    return " | ".join(self.pictures(rows, css) for rows, css in groups)


def _thumbnail_rows(findings: Findings) -> List[int]:
  """Every input row whose thumbnail the page shows."""
  rows = [row for kind in KINDS for item in findings[kind.key][:PAGE_ROWS]
          for group, _ in kind.pictures(item) for row in group]
  return rows + [row for pair in findings.shared_pairs()[:PAGE_ROWS] for row in pair["examples"]]


def _cleaning_sections(findings: Findings, decisions: Sequence, page: _Page) -> List[str]:
  """The identities shared with the overlap's other data set (when it was given), and the decisions proposed."""
  images = bool(page.image_of)
  sections = []
  overlap = findings.overlap
  if overlap:
    pairs = findings.shared_pairs()
    short = len(overlap["pairs"]) - len(pairs)
    columns = ["identity here", "identity there", "centred centroid cosine", "margin", "image share"]
    sections.append(_section(
        "overlap", f"Identities shared with {_text(overlap['source'])}", pairs,
        columns + (["images here | there"] if images else []),
        lambda pair: [page.identity(pair["identity"]), _text(pair["other_identity_name"]),
                      f"{pair['centroid_similarity']:.3f}", f"{pair['margin']:.3f}", f"{pair['image_share']:.2f}"]
        + ([page.pictures(pair["examples"]) + " | " + page.other_pictures(pair["other_examples"],
                                                                          pair.get("other_files", []))]
           if images else []),
        f"none found ({short} candidate pairs fell short of the thresholds; report.json lists them)",
        full_list="report.json"))
  sections.append(_section(
      "decisions", "Decisions proposed (decisions.csv: edit it, then python -m facequal_jax.apply)", list(decisions),
      ["apply", "kind", "item", "action", "reason", "score"] + (["images"] if images else []),
      lambda d: ["yes" if d.apply else "no (review)", d.kind, _text(d.item), _text(d.action), _text(d.reason),
                 _number(d.score)] + ([page.pictures(d.rows)] if images else []),
      "none: nothing in the findings meets the decisions policy", full_list="decisions.csv"))
  return sections


def _finding_sections(findings: Findings, page: _Page) -> List[str]:
  """The sections of the diagnostics, one per kind, each with thumbnails where the page has images."""
  images = bool(page.image_of)
  return [_section(kind.key, kind.heading, findings[kind.key],
                   list(kind.columns) + ([kind.pictures_heading] if images else []),
                   lambda item, kind=kind: kind.cells(item, page) + ([page.groups(kind.pictures(item))] if images
                                                                     else []), kind.empty)
          for kind in KINDS]


def render(report: IQReport, findings: Findings, title: str, image_of: Optional[Callable[[int], np.ndarray]] = None,
           name_of: Optional[Callable[[int], str]] = None, note: str = "",
           identity_name: Optional[Callable[[int], str]] = None, decisions: Sequence = (),
           other_image_of: Optional[Callable[[int], np.ndarray]] = None,
           quality: Optional[np.ndarray] = None) -> str:
  """The page for one IQ report and its findings (rendering only: nothing is computed here).

  Args:
    report: the IQ report; findings: its `Findings` (samples are input rows;
      a suspect with `original_label` shows it; with the files skipped and
      those where face detection found no face, embedded from their centred crop).
    image_of: optional input row → uint8 image, for thumbnails.
    name_of: optional input row → a name (file) for tables.
    note: a line under the title (where the data came from).
    identity_name: optional label → identity name (default: the label).
    decisions: the proposed `Decision`s (decisions.csv).
    other_image_of: row of the overlap's other data set → uint8 image.
    quality: float [n] the face quality score of each of the report's samples (NaN: not scored), or None.
  """
  page = _Page(image_of, name_of, identity_name, other_image_of)
  shown_decisions = list(decisions)[:PAGE_ROWS]
  page.make_thumbnails(_thumbnail_rows(findings) + [row for d in shown_decisions for row in d.rows],
                       [row for pair in findings.shared_pairs()[:PAGE_ROWS] for row in pair["other_examples"]])
  values = report.to_dict()
  values["estimated_noise_rate"] = findings.estimated_noise_rate
  headline = "".join(f"<tr><th>{_text(label)}</th><td>{_number(values[key])}</td><td class='note'>{_text(text)}</td>"
                     "</tr>" for key, label, text in HEADLINES)
  warning = ""
  if report.consistency < WEAK_CONSISTENCY:
    warning = (f'<p class="warning" id="weak">Consis is {report.consistency:.2f}, below {WEAK_CONSISTENCY}: either '
               "many labels are wrong or the encoder cannot tell these identities apart. The flagged share and "
               "the suspects mean much only with an encoder that separates the identities (score a set you know "
               "is clean with it first).</p>")
  k = report.k
  bins = (np.arange(k + 2) - 0.5) / k
  consistency_plot = plots.histogram(report.per_sample_consistency[~report.singleton], bins,
                                     "per-sample consistency c_i", f"share of the {k} neighbours with the same label",
                                     ylabel="samples")
  spectrum_plot = plots.spectrum(report.spectrum.eigenvalues, report.effective_rank, "eigenvalue spectrum (log)")
  scored = np.zeros(0) if quality is None else np.asarray(quality, np.float64)
  scored = scored[~np.isnan(scored)]
  quality_plot = plots.histogram(scored, face_quality.HISTOGRAM_EDGES, "face quality (docs/face_quality.md)",
                                 "quality: low = blurred, dark, occluded, not a face; high = clear, frontal",
                                 ylabel="faces") if len(scored) else ""
  sections = _finding_sections(findings, page) + _cleaning_sections(findings, decisions, page) + [
      _section("no_face", "Images where no face was found (embedded from their centred crop)",
               findings.no_face_found, ["file"], lambda item: [_text(item["file"])]),
      _section("skipped", "Files skipped (not embedded)", findings.skipped, ["file", "reason"],
               lambda item: [_text(item["file"]), _text(item["reason"])])]
  return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_text(title)}</title><style>{_STYLE}</style></head>
<body data-errors="0">
<h1>{_text(title)}</h1>
<p class="note" id="subtitle">{_text(note)}</p>
<h2>Headline</h2><table id="headline">{headline}</table>
{warning}
<h2>Distribution and spectrum</h2>
<div class="plots" id="plots">{consistency_plot}{spectrum_plot}{quality_plot}</div>
{"".join(sections)}
{_identity_section(report, findings, page.identity_name)}
<script type="application/json" id="data">{_json_for_script(dict(values, note=note))}</script>
<script>{_SCRIPT}</script>
</body></html>
"""


def _identity_section(report: IQReport, findings: Findings, identity_name: Callable[[int], str]) -> str:
  """The sortable per-identity table (the worst `MAX_TABLE_IDENTITIES` when there are more)."""
  suspects = {}
  for item in findings[SUSPECTS]:
    suspects[item["label"]] = suspects.get(item["label"], 0) + 1
  rows = [(identity, name, images, mean, foreign_name, share, suspects.get(identity, 0))
          for identity, name, images, mean, _, foreign_name, share in report.identities.named_rows(identity_name)]
  shown = f"all {len(rows)}"
  if len(rows) > MAX_TABLE_IDENTITIES:  # the page stays light; identities.csv has them all
    worst = np.argsort(report.identities.mean_consistency, kind="stable")[:MAX_TABLE_IDENTITIES]
    rows = [rows[i] for i in np.sort(worst)]
    shown = f"the {MAX_TABLE_IDENTITIES} of {len(report.identities.identity)} with the lowest mean c_i"
  columns = ("identity", "name", "num_images", "mean_consistency", "top_foreign", "top_foreign_share",
             "suspected_mislabeled")
  numeric = (True, False, True, True, False, True, True)
  head = "".join(f'<th data-numeric="{int(n)}">{_text(c)}</th>' for c, n in zip(columns, numeric))
  body = "".join("<tr>" + "".join(f'<td data-value="{_text(value)}">{_number(value)}</td>' for value in row) + "</tr>"
                 for row in rows)
  return (f'<h2>Per identity: {shown} (click a column to sort)</h2><div id="identities">'
          f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>')


def write(path: str, report: IQReport, findings: Findings, *, image_of: Optional[Callable[[int], np.ndarray]] = None,
          name_of: Optional[Callable[[int], str]] = None, title: str = "facequal_jax report", note: str = "",
          identity_name: Optional[Callable[[int], str]] = None, decisions: Sequence = (),
          other_image_of: Optional[Callable[[int], np.ndarray]] = None, quality: Optional[np.ndarray] = None) -> None:
  """Writes the page of `report` and its `findings` (from `diagnose`) to `path`, atomically.

  Args:
    image_of, name_of: optional input row → uint8 image / name.
    identity_name: optional label → identity name.
    decisions, other_image_of, quality: as `render` takes them.
  """
  files.write_bytes(path, render(report, findings, title, image_of, name_of, note, identity_name, decisions,
                                 other_image_of, quality).encode())
