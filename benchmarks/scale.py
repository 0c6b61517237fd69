r"""The IQ command at scale: stage seconds, peak memory and the decisions' quality on synthetic sets.

For each size, a face-like synthetic set (`synthetic.py`: 128-d, long-tailed identities, 5 % of the labels
flipped, 0.1 % planted copies under another identity) is written as an .npz and the command runs on it in a
child process, as a user runs it, then the apply step on its decisions. Printed per size: each stage's seconds
(report.json's `stage_seconds`, and the apply process's), the larger peak resident memory of the two
processes, and the sample rows of `decisions.csv` — all of them, and those accepted (apply = yes) — against
the planted wrong labels: precision, and recall of the flips and of every wrong label, counted from the file. Last,
each stage's growth exponent between the smallest and the largest size (seconds ∝ N^exponent).

  python benchmarks/scale.py --sizes=10000,100000,1000000 --root=/tmp/scale

A rerun with `--root` pointing at the same folder reuses each size's k-NN search (the command keeps it in
WORKDIR/search/): its search stage then only reads it back, the other stages run afresh.
"""
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import synthetic  # pylint: disable=wrong-import-position

from facequal_jax.cleaning import decisions  # pylint: disable=wrong-import-position

_SIZES = flags.DEFINE_list("sizes", ["10000", "100000"], "Row counts.")
_ROOT = flags.DEFINE_string("root", "/tmp/facequal_scale", "Where the sets and the workdirs go.")
_FLIPS = flags.DEFINE_float("flip_share", 0.05, "Share of the labels flipped.")
_ARGS = flags.DEFINE_list("command_args", [], "More flags for the command (e.g. --config.knn.block=4096).")


def run_child(command: list, log_path: str):
  """Runs `command` with its output in `log_path`; returns (seconds, peak resident memory in bytes)."""
  with open(log_path, "w") as log:
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(child.pid, 0)
  if status:
    raise SystemExit(f"{' '.join(command)} failed (status {status}); see {log_path}")
  return time.perf_counter() - start, usage.ru_maxrss * 1024


def decided_quality(workdir: str, truth) -> dict:
  """The sample rows of decisions.csv against the planted wrong labels (rows are .npz rows): all of them, and
  those accepted (apply = yes) — precision, and recall of the flips and of every wrong label."""
  decided = [row for row in decisions.read(os.path.join(workdir, "decisions.csv")).decisions if row.kind == "sample"]
  wrong, flipped = truth["labels"] != truth["true_labels"], truth["flipped"]
  out = {}
  for name, rows in (("file", decided), ("accepted", [row for row in decided if row.apply])):
    rows = np.asarray([int(row.item) for row in rows], np.int64)
    out[name] = {"rows": len(rows), "precision": float(wrong[rows].mean()) if len(rows) else 1.0,
                 "flips": float(flipped[rows].sum() / flipped.sum()), "wrong": float(wrong[rows].sum() / wrong.sum())}
  return out


def main(argv):
  del argv
  os.makedirs(_ROOT.value, exist_ok=True)
  results = []
  for size in map(int, _SIZES.value):
    data = os.path.join(_ROOT.value, f"synthetic_{size}.npz")
    if not os.path.exists(data):
      synthetic.write_npz(synthetic.face_like(size, flip_share=_FLIPS.value), data)
    workdir = os.path.join(_ROOT.value, f"work_{size}")
    _, peak = run_child([sys.executable, "-m", "facequal_jax", f"--workdir={workdir}",
                         f"--config.data.embeddings={data}", *_ARGS.value], workdir + ".log")
    with open(os.path.join(workdir, "report.json")) as f:
      stages = json.load(f)["stage_seconds"]
    stages["apply"], apply_peak = run_child(
        [sys.executable, "-m", "facequal_jax.apply", f"--decisions={os.path.join(workdir, 'decisions.csv')}",
         f"--out={os.path.join(workdir, 'cleaned')}"], workdir + "_apply.log")
    peak = max(peak, apply_peak)
    with np.load(data) as truth:
      quality = decided_quality(workdir, truth)
    results.append((size, stages, peak, quality))
  names = sorted({name for _, stages, _, _ in results for name in stages}, key=list(results[-1][1]).index)
  print(f"{'rows':>10}" + "".join(f"{name:>13}" for name in names) + f"{'peak GiB':>10}"
        + "".join(f"{f'{part}: rows':>16}{'precision':>10}{'flips':>8}{'wrong':>8}" for part in ("file", "accepted")))
  for size, stages, peak, quality in results:
    print(f"{size:>10,}" + "".join(f"{stages.get(name, 0.0):>13.2f}" for name in names) + f"{peak / 2**30:>10.2f}"
          + "".join(f"{quality[part]['rows']:>16,}{quality[part]['precision']:>10.4f}{quality[part]['flips']:>8.4f}"
                    f"{quality[part]['wrong']:>8.4f}" for part in ("file", "accepted")))
  if len(results) > 1:
    (small, first, _, _), (large, last, _, _) = results[0], results[-1]
    growth = {name: math.log(max(last.get(name, 0), 1e-3) / max(first.get(name, 0), 1e-3)) / math.log(large / small)
              for name in names}
    print(f"growth exponent {small:,} → {large:,} rows: "
          + ", ".join(f"{name} {value:.2f}" for name, value in growth.items()))


if __name__ == "__main__":
  app.run(main)
