r"""The IQ command at scale: stage seconds, peak memory and the decisions' quality on synthetic sets.

For each size, a face-like synthetic set (`synthetic.py`: 128-d, long-tailed identities, 5 % of the labels
flipped, 0.1 % planted copies under another identity) is written as an .npz and the command runs on it in a
child process, as a user runs it. Printed per size: each stage's seconds (report.json's `stage_seconds`), the
child's peak resident memory, and what `decisions.csv` accepts (apply = yes) against the planted wrong
labels — precision, and recall of the flips and of every wrong label — counted from the file itself. Last,
each stage's growth exponent between the smallest and the largest size (seconds ∝ N^exponent).

  python benchmarks/scale.py --sizes=10000,100000,1000000 --root=/tmp/scale

A rerun with `--root` pointing at the same folder reuses each size's k-NN search (the command keeps it in
WORKDIR/search/): its search stage then only reads it back, the other stages run afresh.
"""
import csv
import json
import math
import os
import subprocess
import sys

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import synthetic  # pylint: disable=wrong-import-position

from facequal_jax.cleaning import decisions  # pylint: disable=wrong-import-position

_SIZES = flags.DEFINE_list("sizes", ["10000", "100000"], "Row counts.")
_ROOT = flags.DEFINE_string("root", "/tmp/facequal_scale", "Where the sets and the workdirs go.")
_FLIPS = flags.DEFINE_float("flip_share", 0.05, "Share of the labels flipped.")
_ARGS = flags.DEFINE_list("command_args", [], "More flags for the command (e.g. --config.knn.block=4096).")


def run_command(data: str, workdir: str) -> int:
  """Runs the IQ command on `data` into `workdir`; returns the child's peak resident memory in bytes."""
  command = [sys.executable, "-m", "facequal_jax", f"--workdir={workdir}", f"--config.data.embeddings={data}",
             *_ARGS.value]
  with open(os.path.join(os.path.dirname(workdir), os.path.basename(workdir) + ".log"), "w") as log:
    child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(child.pid, 0)
  if status:
    raise SystemExit(f"the command failed on {data} (status {status}); see {log.name}")
  return usage.ru_maxrss * 1024


def accepted_quality(workdir: str, truth: np.lib.npyio.NpzFile) -> dict:
  """What decisions.csv accepts, against the planted wrong labels (sample rows are .npz rows)."""
  rows = np.asarray([int(row.item) for row in decisions.read(os.path.join(workdir, "decisions.csv")).decisions
                     if row.kind == "sample" and row.apply], np.int64)
  wrong, flipped = truth["labels"] != truth["true_labels"], truth["flipped"]
  with open(os.path.join(workdir, "findings.csv"), newline="") as f:
    suspects = sum(row["kind"] == "suspected_mislabeled" for row in csv.DictReader(f))
  return {"accepted": len(rows), "suspects": suspects, "precision": float(wrong[rows].mean()) if len(rows) else 1.0,
          "flip_recall": float(flipped[rows].sum() / flipped.sum()), "wrong_recall": float(wrong[rows].sum() / wrong.sum())}


def main(argv):
  del argv
  os.makedirs(_ROOT.value, exist_ok=True)
  results = []
  for size in map(int, _SIZES.value):
    data = os.path.join(_ROOT.value, f"synthetic_{size}.npz")
    if not os.path.exists(data):
      synthetic.write_npz(synthetic.face_like(size, flip_share=_FLIPS.value), data)
    workdir = os.path.join(_ROOT.value, f"work_{size}")
    peak = run_command(data, workdir)
    with open(os.path.join(workdir, "report.json")) as f:
      stages = json.load(f)["stage_seconds"]
    with np.load(data) as truth:
      quality = accepted_quality(workdir, truth)
    results.append((size, stages, peak, quality))
  names = sorted({name for _, stages, _, _ in results for name in stages}, key=list(results[-1][1]).index)
  print(f"{'rows':>10}" + "".join(f"{name:>13}" for name in names) + f"{'peak GiB':>10}{'suspects':>10}"
        f"{'accepted':>10}{'precision':>10}{'flips':>8}{'wrong':>8}")
  for size, stages, peak, quality in results:
    print(f"{size:>10,}" + "".join(f"{stages.get(name, 0.0):>13.2f}" for name in names)
          + f"{peak / 2**30:>10.2f}{quality['suspects']:>10,}{quality['accepted']:>10,}{quality['precision']:>10.4f}"
          f"{quality['flip_recall']:>8.4f}{quality['wrong_recall']:>8.4f}")
  if len(results) > 1:
    (small, first, _, _), (large, last, _, _) = results[0], results[-1]
    growth = {name: math.log(max(last.get(name, 0), 1e-3) / max(first.get(name, 0), 1e-3)) / math.log(large / small)
              for name in names}
    print(f"growth exponent {small:,} → {large:,} rows: "
          + ", ".join(f"{name} {value:.2f}" for name, value in growth.items()))


if __name__ == "__main__":
  app.run(main)
