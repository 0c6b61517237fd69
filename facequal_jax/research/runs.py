"""The research jobs' resumable outer loop: one result.json per finished run, read back on the next start."""
import json
import os
from typing import Callable, List, Sequence, TypeVar

from facequal_jax import files
from facequal_jax.progress import Progress

RESULT = "result.json"
Planned = TypeVar("Planned")


def each_run(planned: Sequence[Planned], title: str, run_dir: Callable[[Planned], str],
             compute: Callable[[Planned, str], dict], describe: Callable[[Planned], str],
             outcome: Callable[[dict], str] = lambda row: "done") -> List[dict]:
  """The row of every planned run, in order: read from RUN_DIR/result.json when that run finished earlier, else
  `compute(planned, run_dir)` (which resumes from its own checkpoints there) and written to it atomically.

  Args:
    planned: what identifies each run (a tuple, a variant and seed, …).
    title: the progress line's name ("validation experiment").
    run_dir: the run's own folder.
    describe / outcome: the progress note's run name / its result once computed.
  """
  rows = []
  progress = Progress(title, total=len(planned), unit="runs", every_s=0.0)
  for plan in planned:
    directory = run_dir(plan)
    path = os.path.join(directory, RESULT)
    if os.path.exists(path):
      with open(path) as f:
        rows.append(json.load(f))
      progress.advance(1, note=f"{describe(plan)} done earlier, read {path}")
      continue
    row = compute(plan, directory)
    files.write_json(path, row)
    rows.append(row)
    progress.advance(1, note=f"{describe(plan)}: {outcome(row)}")
  return rows
