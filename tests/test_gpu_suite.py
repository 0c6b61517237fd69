"""The GPU suite's CPU mode: every part runs at tiny sizes and its checks hold, so the suite is ready for a GPU."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_suite_runs_every_part_and_its_checks_hold(tmp_path):
  out = tmp_path / "suite.md"
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  subprocess.run([sys.executable, "benchmarks/gpu_suite.py", "--mode=cpu", f"--out={out}"], cwd=ROOT, env=env,
                 check=True, capture_output=True, text=True, timeout=900)
  text = out.read_text()
  parts = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ") and "---" not in line]
  assert parts[1:6] == ["face network, float32", "face network, bfloat16", ".rec read + decode + warp",
                        "fq.knn float32, d = 128", "fq.knn float32, d = 512"]
  assert {"command: listing", "command: embedding", "command: search", "command: diagnostics"} <= set(parts)
  assert {"ONNX iResNet, float32", "ONNX iResNet, bfloat16"} <= set(parts)  # the test extra installs onnx
  assert text.count("256/256 rows exact vs float64") == 2  # an independent float64 brute force agrees
  assert float(re.search(r"cosine to float32: min ([0-9.]+)", text).group(1)) > 0.999
  assert "WebFace42M" in text and re.search(r"- face network, bfloat16: 42,000,000 at [0-9,]+/s = [0-9.]+ h", text)
