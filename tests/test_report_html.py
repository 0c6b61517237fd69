"""report.html opened in headless Chromium: plots and tables render, scripts run, no console errors.

Needs Debian's `chromium` (`.ci/run` installs it and sets FACEQUAL_REQUIRE_BROWSER=1,
so CI fails rather than skips when it is missing).
"""
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from facequal_jax.cleaning import decisions
from facequal_jax.configs import iq
from facequal_jax.data import orl
from facequal_jax.jobs import run
from facequal_jax.report import html

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
if not BROWSER and not os.environ.get("FACEQUAL_REQUIRE_BROWSER"):
  pytest.skip("headless Chromium is not installed (apt-get install chromium)", allow_module_level=True)

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"]


# Names made of markup, as users' folders and files may hold them: an identity folder, a file name, and a root
# whose path contains "</script>" (the folder "x<" holding "script>…").
ROOT_NAME = "script><img src=r onerror=document.body.dataset.pwned=3>faces"
MARKUP_IDENTITY = "<img src=a onerror=document.body.dataset.pwned=1>"
QUOTED_IDENTITY = 'Tom & "Jerry" <i>'
MARKUP_FILE = "<svg onload=document.body.dataset.pwned=2>.png"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
  """ORL as an image folder with markup names and a photo filed under two identities, 10 % of the labels
  flipped: suspects beyond the first 20, a near-duplicate pair, and empty sections."""
  assert BROWSER, "FACEQUAL_REQUIRE_BROWSER is set but chromium is not installed"
  base = tmp_path_factory.mktemp("report")
  root = base / "x<" / ROOT_NAME
  images, labels = orl.load_orl()
  folders = [MARKUP_IDENTITY, QUOTED_IDENTITY] + [f"s{n}" for n in range(3, 41)]
  for index, label in enumerate(labels):
    folder = root / folders[label]
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(images[index]).save(folder / f"{index % 10 + 1}.png")
  Image.fromarray(images[0]).save(root / "s40" / MARKUP_FILE)  # the first identity's first face, under s40
  config = iq.get_config()
  config.data.images = str(root)
  config.data.label_noise = 0.1
  config.mesh.num_devices = 2  # sharded still; the faces embed faster than split eight ways over two cores
  workdir = base / "out"
  report, findings = run.run(config, str(workdir))
  return workdir / run.HTML, report, findings, sorted(folders)  # labels follow the sorted folder names


class _Dom(HTMLParser):
  """The dumped DOM: its text, the `src` of every image, and the text of each section by id."""

  def __init__(self, dom: str):
    super().__init__()
    self.text, self.image_sources, self.sections, self._section = [], [], {}, None
    self.feed(dom)

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    if tag == "img":
      self.image_sources.append(attrs.get("src", ""))
    if tag == "section":
      self._section = attrs["id"]
      self.sections[self._section] = {"text": "", "thumbs": 0}
    if tag == "img" and self._section and "thumb" in attrs.get("class", ""):
      self.sections[self._section]["thumbs"] += 1

  def handle_endtag(self, tag):
    if tag == "section":
      self._section = None

  def handle_data(self, data):
    self.text.append(data)
    if self._section:
      self.sections[self._section]["text"] += data


def _browser(*args):
  done = subprocess.run([BROWSER, *FLAGS, *args], capture_output=True, text=True, timeout=120, check=True)
  return done.stdout, done.stderr


def test_page_renders_with_scripts_and_without_errors(page):
  path, report, findings, _ = page
  dom, log = _browser("--dump-dom", path.as_uri())
  body = re.search(r"<body[^>]*>", dom).group(0)
  assert 'data-ready="1"' in body and 'data-errors="0"' in body  # the script ran to its end, nothing threw
  console = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line]
  assert not console, console
  # c_i takes the values 0, 1/k, …, 1; the face quality histogram has 20 bins of 0.05
  assert dom.count('class="bar"') == report.k + 1 + 20 and "face quality (docs/face_quality.md)" in dom
  assert 'class="spectrum"' in dom and 'class="effective-rank"' in dom
  identities = dom[dom.index('id="identities"'):]
  assert identities.count("<tr>") == 1 + report.num_identities
  assert dom.count('class="thumb') >= (1 + report.k) * min(20, len(findings["suspected_mislabeled"]))
  shown = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', dom, re.S).group(1))
  assert shown["iq"] == pytest.approx(report.iq)


def test_names_and_paths_made_of_markup_stay_text(page):
  path, _, findings, names = page
  dom, _ = _browser("--dump-dom", path.as_uri())
  body = re.search(r"<body[^>]*>", dom).group(0)
  assert 'data-ready="1"' in body and 'data-errors="0"' in body and "pwned" not in body  # none of theirs ran
  parsed = _Dom(dom)
  assert not {"a", "r"} & set(parsed.image_sources)  # no element was made from a name
  text = "".join(parsed.text)
  assert MARKUP_IDENTITY in text and QUOTED_IDENTITY in text and MARKUP_FILE in text  # shown as text
  data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', dom, re.S).group(1))
  assert f"x</{ROOT_NAME}" in data["note"]  # the root's "</script>" went through the data block intact
  assert data["note"] in text  # the readable subtitle
  suspects = findings["suspected_mislabeled"]
  assert {item["label_name"] for item in suspects} <= set(names) and all(
      item["label_name"] == names[item["label"]] for item in suspects)


def test_sections_say_how_much_they_show(page, tmp_path):
  path, report, findings, _ = page
  dom, _ = _browser("--dump-dom", path.as_uri())
  sections = _Dom(dom).sections
  total = len(findings["suspected_mislabeled"])
  assert total > 20 and f"showing 20 of {total}" in sections["suspected_mislabeled"]["text"]
  assert f"show all {total}" in sections["suspected_mislabeled"]["text"]
  assert "flipped on purpose; originally " in sections["suspected_mislabeled"]["text"]
  assert sections["low_information"]["text"].endswith("none found") and sections["skipped"]["text"].endswith(
      "none found")
  planted = {os.path.join(MARKUP_IDENTITY, "1.png"), os.path.join("s40", MARKUP_FILE)}
  assert any({os.path.relpath(pair["file_a"], pair["file_a"].rsplit(os.sep, 2)[0]),
              os.path.relpath(pair["file_b"], pair["file_b"].rsplit(os.sep, 2)[0])} == planted
             for pair in findings["near_duplicates"])  # the photo filed under two identities
  assert sections["near_duplicates"]["thumbs"] == 2 * min(len(findings["near_duplicates"]), html.PAGE_ROWS)
  assert sections["outliers"]["thumbs"] == min(len(findings["outliers"]), html.PAGE_ROWS) > 0
  assert all(name in sections["suspected_mislabeled"]["text"] for name in
             {item["label_name"] for item in findings["suspected_mislabeled"][:20]})
  # decisions.csv (default policy): drop every suspect (accepted from score 0.35 unless its face was not found or
  # the encoder does not separate its identities), and of each near-duplicate pair not holding a suspect the copy
  # with the lower c_i (the later row on a tie; accepted unless either face was not found)
  sample_id = lambda file: os.path.relpath(file, os.path.dirname(os.path.dirname(file)))
  c_i = dict(zip(report.sample_rows.tolist(), report.per_sample_consistency.tolist()))
  weak = {item["file"] for item in findings.no_face_found} | {item["file"] for item in findings["low_information"]}
  accepted = {sample_id(item["file"]): item["score"] >= 0.35 and item["separable"] and item["file"] not in weak
              for item in findings["suspected_mislabeled"]}
  for pair in findings["near_duplicates"]:
    if not {sample_id(pair["file_a"]), sample_id(pair["file_b"])} & set(accepted):
      copy = max("ab", key=lambda side: (-c_i[pair[f"sample_{side}"]], pair[f"sample_{side}"]))
      accepted[sample_id(pair[f"file_{copy}"])] = not {pair["file_a"], pair["file_b"]} & weak
  written = decisions.read(str(path.parent / "decisions.csv"))
  samples = [row for row in written.decisions if row.kind == "sample"]
  assert {row.item: row.apply for row in samples} == accepted and len(samples) == len(accepted)
  assert all(row.action == "drop" for row in samples)
  merges = [row for row in written.decisions if row.kind == "identity"]  # proposed for review only
  assert len(merges) == len(findings["merge_candidates"]) and not any(row.apply for row in merges)
  assert written.flipped_on_purpose == round(0.1 * 401)
  assert f"showing 20 of {len(written.decisions)}" in sections["decisions"]["text"]
  # a suspect shows its face, a near-duplicate both copies, a merge four faces of the identity that would join
  held = written.decisions[:html.PAGE_ROWS]
  assert sections["decisions"]["thumbs"] == sum(
      4 if row.kind == "identity" else 2 if row.reason.startswith("near-duplicate") else 1 for row in held)
  clicked = tmp_path / "clicked.html"  # "show all" reveals every row the page holds
  clicked.write_text(path.read_text().replace('document.body.dataset.ready = "1";',
                                              'document.querySelector("button.show-all").click();\n'
                                              'document.body.dataset.ready = "1";'))
  after = _Dom(_browser("--dump-dom", clicked.as_uri())[0]).sections["suspected_mislabeled"]["text"]
  assert f"showing {total} of {total}" in after and "show all" not in after


def test_screenshot_shows_the_plots(page, tmp_path):
  path, _, _, _ = page
  shot = tmp_path / "shot.png"
  _browser(f"--screenshot={shot}", "--window-size=1200,1400", path.as_uri())
  pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
  assert pixels.shape[:2] == (1400, 1200)
  bars = np.all(np.abs(pixels - np.array([31, 119, 180])) < 8, axis=-1)  # the histogram's bar colour
  assert bars.mean() > 0.005, bars.mean()
  assert (pixels.sum(axis=-1) < 600).mean() > 0.05  # text, plots and thumbnails, not a blank page


def test_the_checks_catch_a_broken_script(page, tmp_path):
  path, _, _, _ = page
  broken = tmp_path / "broken.html"
  ready = "document.body.dataset.ready"
  broken.write_text(path.read_text().replace(ready, "undefinedFunction();\n" + ready))
  dom, log = _browser("--dump-dom", broken.as_uri())
  body = re.search(r"<body[^>]*>", dom).group(0)
  assert 'data-ready="1"' not in body and 'data-errors="1"' in body
  assert any("Uncaught" in line for line in log.splitlines())
