"""report.html opened in headless Chromium: plots and tables render, scripts run, no console errors.

Needs Debian's `chromium` (`.ci/run` installs it and sets FACEQUAL_REQUIRE_BROWSER=1,
so CI fails rather than skips when it is missing).
"""
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from configs import iq
from facequal_jax.jobs import run

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
if not BROWSER and not os.environ.get("FACEQUAL_REQUIRE_BROWSER"):
  pytest.skip("headless Chromium is not installed (apt-get install chromium)", allow_module_level=True)

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
  """The bundled faces with 10 % of their labels flipped: every section has content."""
  assert BROWSER, "FACEQUAL_REQUIRE_BROWSER is set but chromium is not installed"
  workdir = tmp_path_factory.mktemp("report")
  config = iq.get_config()
  config.data.label_noise = 0.1
  config.mesh.num_devices = 2  # sharded still; the faces embed faster than split eight ways over two cores
  report, findings = run.run(config, str(workdir))
  return workdir / run.HTML, report, findings


def _browser(*args):
  done = subprocess.run([BROWSER, *FLAGS, *args], capture_output=True, text=True, timeout=120, check=True)
  return done.stdout, done.stderr


def test_page_renders_with_scripts_and_without_errors(page):
  path, report, findings = page
  dom, log = _browser("--dump-dom", path.as_uri())
  body = re.search(r"<body[^>]*>", dom).group(0)
  assert 'data-ready="1"' in body and 'data-errors="0"' in body  # the script ran to its end, nothing threw
  console = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line]
  assert not console, console
  assert dom.count('class="bar"') == report.k + 1  # c_i takes the values 0, 1/k, …, 1
  assert 'class="spectrum"' in dom and 'class="effective-rank"' in dom
  identities = dom[dom.index('id="identities"'):]
  assert identities.count("<tr>") == 1 + report.num_identities
  assert dom.count('class="thumb') >= (1 + report.k) * min(20, len(findings["suspected_mislabeled"]))
  shown = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', dom, re.S).group(1)
                     .replace("&quot;", '"'))
  assert shown["iq"] == pytest.approx(report.iq)


def test_screenshot_shows_the_plots(page, tmp_path):
  path, _, _ = page
  shot = tmp_path / "shot.png"
  _browser(f"--screenshot={shot}", "--window-size=1200,1400", path.as_uri())
  pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
  assert pixels.shape[:2] == (1400, 1200)
  bars = np.all(np.abs(pixels - np.array([31, 119, 180])) < 8, axis=-1)  # the histogram's bar colour
  assert bars.mean() > 0.005, bars.mean()
  assert (pixels.sum(axis=-1) < 600).mean() > 0.05  # text, plots and thumbnails, not a blank page


def test_the_checks_catch_a_broken_script(page, tmp_path):
  path, _, _ = page
  broken = tmp_path / "broken.html"
  ready = "document.body.dataset.ready"
  broken.write_text(path.read_text().replace(ready, "undefinedFunction();\n" + ready))
  dom, log = _browser("--dump-dom", broken.as_uri())
  body = re.search(r"<body[^>]*>", dom).group(0)
  assert 'data-ready="1"' not in body and 'data-errors="1"' in body
  assert any("Uncaught" in line for line in log.splitlines())
