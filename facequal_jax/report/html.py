"""report.html: one self-contained page (inline SVG, PNG thumbnails and script; opens offline)."""
import base64
import html
import io as bytes_io
import json
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image

from facequal_jax import files
from facequal_jax.metrics.quality import IQReport
from facequal_jax.report import plots

HEADLINES = (
    ("iq", "IQ", "Intrinsic Quality, α · Consis + (1 − α) · r̃: higher means a cleaner, richer training set."),
    ("consistency", "Consis", "How often a sample's k nearest neighbours carry its own identity label (local)."),
    ("effective_rank_normalized", "r̃", "Effective rank of the embedding covariance over its dimension: how "
     "evenly the embeddings use their dimensions (global)."),
    ("effective_rank", "effective rank", "exp of the entropy of the normalised eigenvalues."),
    ("rankme", "RankMe", "The same entropy rank computed on the singular values of the embeddings (a baseline)."),
    ("stable_rank", "stable rank", "Sum of the eigenvalues over the largest one (a baseline)."),
    ("alpha_req", "α-ReQ", "Decay exponent of the eigenvalue spectrum: larger means faster collapse (a baseline)."),
    ("estimated_noise_rate", "estimated label noise", "Share of samples whose neighbours side with one other "
     "identity more than with their own: an estimate of the fraction of wrong labels."),
    ("num_samples", "samples", "Samples evaluated."),
    ("num_identities", "identities", "Distinct identity labels."),
    ("num_singletons", "singletons", "Samples whose identity has one image: left out of Consis."),
)

MAX_TABLE_IDENTITIES = 2000  # rows of the per-identity table on the page

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
document.body.dataset.ready = "1";
"""

_STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 8px 0 20px; font-size: 13px; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: middle; }
th { background: #f3f3f3; }
table.sortable th { cursor: pointer; }
.plots svg { margin-right: 16px; }
img.thumb { height: 56px; margin: 1px; border: 2px solid transparent; }
img.own { border-color: #2ca02c; } img.foreign { border-color: #d62728; }
.note { color: #666; font-size: 12px; }
"""


def thumbnail(image: np.ndarray, height: int = 56) -> str:
  """uint8 [H, W] or [H, W, C] → a data: URI of a PNG `height` pixels high."""
  picture = Image.fromarray(np.asarray(image, np.uint8).squeeze())
  width = max(1, round(picture.width * height / picture.height))
  buffer = bytes_io.BytesIO()
  picture.resize((width, height)).save(buffer, format="PNG")
  return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _table(columns: Sequence[str], rows: Sequence[Sequence], numeric: Sequence[bool], css: str = "") -> str:
  head = "".join(f'<th data-numeric="{int(n)}">{html.escape(c)}</th>' for c, n in zip(columns, numeric))
  body = []
  for row in rows:
    cells = []
    for value in row:
      shown = f"{value:.4f}" if isinstance(value, float) else str(value)
      cells.append(f'<td data-value="{html.escape(str(value), quote=True)}">{html.escape(shown)}</td>')
    body.append("<tr>" + "".join(cells) + "</tr>")
  return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _pictures(rows: Sequence[int], image_of, name_of, css: Sequence[str] = ()) -> str:
  """Thumbnails of input rows, each titled with its name; `css` gives each an extra class."""
  css = list(css) or [""] * len(rows)
  return "".join(f'<img class="thumb {kind}" src="{thumbnail(image_of(int(row)))}" '
                 f'title="{html.escape(name_of(int(row)), quote=True)}">' for row, kind in zip(rows, css))


def _suspects_section(findings: dict, image_of, name_of) -> str:
  items = findings["suspected_mislabeled"][:20]
  if not items:
    return "<p>No sample looks mislabelled.</p>"
  lines = ["<table><tr><th>sample</th><th>label → suggested</th><th>c_i</th><th>foreign share</th>"
           + ("<th>the sample, then its neighbours (green: its label, red: another)</th>" if image_of else "")
           + "</tr>"]
  for item in items:
    cells = (f"<td>{html.escape(name_of(item['sample']))}</td><td>{item['label']} → {item['suggested_label']}</td>"
             f"<td>{item['consistency']:.2f}</td><td>{item['foreign_share']:.2f}</td>")
    if image_of:
      kinds = ["own" if label == item["label"] else "foreign" for label in item["neighbor_labels"]]
      pictures = _pictures([item["sample"]], image_of, name_of) + _pictures(item["neighbors"], image_of, name_of, kinds)
      cells += f"<td>{pictures}</td>"
    lines.append(f"<tr>{cells}</tr>")
  return "".join(lines) + "</table>"


def _merge_section(findings: dict, image_of, name_of) -> str:
  items = findings["merge_candidates"][:10]
  if not items:
    return "<p>No identity pair is linked by mutual nearest neighbours.</p>"
  lines = ["<table><tr><th>identities</th><th>centroid cosine</th><th>mutual links</th>"
           + ("<th>images of each, side by side</th>" if image_of else "") + "</tr>"]
  for item in items:
    cells = (f"<td>{item['identity_a']} / {item['identity_b']}</td><td>{item['centroid_similarity']:.3f}</td>"
             f"<td>{item['mutual_links']}</td>")
    if image_of:
      cells += (f"<td>{_pictures(item['examples_a'], image_of, name_of)}&nbsp;|&nbsp;"
                f"{_pictures(item['examples_b'], image_of, name_of)}</td>")
    lines.append(f"<tr>{cells}</tr>")
  return "".join(lines) + "</table>"


def render(report: IQReport, findings: dict, title: str, image_of: Optional[Callable[[int], np.ndarray]] = None,
           name_of: Optional[Callable[[int], str]] = None, note: str = "", no_face: Sequence[str] = ()) -> str:
  """The page for one IQ report and its findings (rendering only: nothing is computed here).

  Args:
    report: the IQ report; findings: `diagnostics.diagnose` output (samples
      are input rows).
    image_of: optional input row → uint8 image, for thumbnails.
    name_of: optional input row → a name (file) for tables.
    note: a line under the title (where the data came from).
    no_face: files where face detection found no face (embedded from their centred crop).
  """
  name_of = name_of or (lambda row: f"#{row}")
  values = report.to_dict()
  values["estimated_noise_rate"] = findings["estimated_noise_rate"]
  headline = "".join(
      f"<tr><th>{html.escape(label)}</th><td>{_shown(values[key])}</td><td class='note'>{html.escape(text)}</td></tr>"
      for key, label, text in HEADLINES)
  k = report.k
  bins = (np.arange(k + 2) - 0.5) / k
  consistency_plot = plots.histogram(report.per_sample_consistency[~report.singleton], bins,
                                     "per-sample consistency c_i", f"share of the {k} neighbours with the same label")
  spectrum_plot = plots.spectrum(report.spectrum.eigenvalues, report.effective_rank, "eigenvalue spectrum (log)")
  suspects = {}
  for item in findings["suspected_mislabeled"]:
    suspects[item["label"]] = suspects.get(item["label"], 0) + 1
  identity_rows = [row + (suspects.get(int(row[0]), 0),) for row in report.identities.rows()]
  shown_identities = f"all {len(identity_rows)}"
  if len(identity_rows) > MAX_TABLE_IDENTITIES:  # the page stays light; identities.csv has them all
    worst = np.argsort(report.identities.mean_consistency, kind="stable")[:MAX_TABLE_IDENTITIES]
    identity_rows = [identity_rows[i] for i in np.sort(worst)]
    shown_identities = f"the {MAX_TABLE_IDENTITIES} of {len(report.identities.identity)} with the lowest mean c_i"
  identity_table = _table(report.identities.COLUMNS + ("suspected_mislabeled",), identity_rows,
                          (True,) * (len(report.identities.COLUMNS) + 1), css="sortable")
  duplicates = _table(("sample a", "sample b", "labels", "cosine"),
                      [(name_of(d["sample_a"]), name_of(d["sample_b"]), f"{d['label_a']} / {d['label_b']}",
                        d["similarity"]) for d in findings["near_duplicates"][:50]], (False, False, False, True))
  outliers = _table(("sample", "mean neighbour cosine", "robust z"),
                    [(name_of(o["sample"]), o["mean_neighbor_similarity"], o["robust_z"])
                     for o in findings["outliers"][:50]], (False, True, True))
  low_information = _table(("sample", "pixel standard deviation"),
                           [(name_of(item["sample"]), item["pixel_std"])
                            for item in findings["low_information"][:50]], (False, True))
  splits = _table(("identity", "images", "groups", "share outside the largest"),
                  [(s["identity"], s["num_images"], " + ".join(map(str, s["group_sizes"])), s["outside_largest"])
                   for s in findings["split_candidates"][:50]], (True, True, False, True))
  return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_STYLE}</style></head>
<body data-errors="0">
<h1>{html.escape(title)}</h1>
<p class="note">{html.escape(note)}</p>
<h2>Headline</h2><table id="headline">{headline}</table>
<h2>Distribution and spectrum</h2>
<div class="plots" id="plots">{consistency_plot}{spectrum_plot}</div>
<h2>Suspected mislabelled samples ({len(findings["suspected_mislabeled"])})</h2>
{_suspects_section(findings, image_of, name_of)}
<h2>Identities that may be one person ({len(findings["merge_candidates"])})</h2>
{_merge_section(findings, image_of, name_of)}
<h2>Near-duplicates across identities ({len(findings["near_duplicates"])})</h2>{duplicates}
<h2>Identities that may be several people ({len(findings["split_candidates"])})</h2>{splits}
<h2>Outliers ({len(findings["outliers"])})</h2>{outliers}
<h2>Near-uniform faces, too little to recognise ({len(findings["low_information"])})</h2>{low_information}
<h2>Images where no face was found ({len(no_face)}): embedded from their centred crop</h2>
{_table(("file",), [(name,) for name in no_face], (False,)) if no_face else "<p>None.</p>"}
<h2>Per identity: {shown_identities} (click a column to sort)</h2>
<div id="identities">{identity_table}</div>
<script type="application/json" id="data">{html.escape(json.dumps(values))}</script>
<script>{_SCRIPT}</script>
</body></html>
"""


def _shown(value) -> str:
  if value is None:
    return "—"
  return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))


def write(path: str, report: IQReport, findings: dict, *, image_of: Optional[Callable[[int], np.ndarray]] = None,
          name_of: Optional[Callable[[int], str]] = None, title: str = "facequal_jax report", note: str = "",
          no_face: Sequence[str] = ()) -> None:
  """Writes the page of `report` and its `findings` (from `diagnose`) to `path`, atomically.

  Args:
    image_of, name_of: optional input row → uint8 image / name.
    no_face: files where face detection found no face.
  """
  files.write_bytes(path, render(report, findings, title, image_of, name_of, note, no_face).encode())
