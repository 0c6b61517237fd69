"""Carrying out a decisions file on its source (`carry_out`): the cleaned copy, then `apply_summary.json`."""
import os
import time
from typing import Callable, List, Optional

from facequal_jax import files
from facequal_jax.cleaning import decisions as decisions_lib
from facequal_jax.cleaning import outputs
from facequal_jax.cleaning.plan import resolve
from facequal_jax.data import kinds
from facequal_jax.errors import DataError, UsageError

SUMMARY = "apply_summary.json"


def carry_out(decisions_path: str, out_dir: str, source_path: str = "",
              after_chunk: Optional[Callable[[int], None]] = None, chunk_records: int = 10000) -> dict:
  """Applies the accepted rows of `decisions_path` to the source and writes the cleaned copy into `out_dir`.

  Args:
    decisions_path: a decisions file (`decisions.csv` of a report, edited or not).
    out_dir: where the cleaned copy and `apply_summary.json` go (created; never the source's place).
    source_path: the source; default the one the file names (`# source:`).
    after_chunk: called after each `chunk_records` records of a pack are safely written (a test hook).

  Returns:
    The summary (also in OUT/apply_summary.json, written last): the plan's
    counts, the source, the decisions file and the files written.
  """
  read = decisions_lib.read(decisions_path)
  if read.flipped_on_purpose:
    raise DataError(f"{decisions_path} was made from a run that flipped {read.flipped_on_purpose} labels on purpose "
                    "(data.label_noise): its decisions describe labels the source does not have")
  source_path = source_path or read.source
  if not source_path:
    raise UsageError(f"{decisions_path} names no source: give --source")
  start = time.perf_counter()
  source = kinds.open_path(source_path, "--source")
  path = outputs.output_path(source, source_path, out_dir)
  plan = resolve(read.decisions, outputs.sample_names(source), outputs.identity_names(source), decisions_path)
  os.makedirs(out_dir, exist_ok=True)
  written: List[str] = outputs.write(source, plan, path, after_chunk, chunk_records)
  summary = dict(plan.summary, source=os.path.abspath(source_path), decisions=os.path.abspath(decisions_path),
                 outputs=[os.path.abspath(p) for p in written], seconds=round(time.perf_counter() - start, 3))
  files.write_json(os.path.join(out_dir, SUMMARY), summary)
  return summary


def summary_lines(summary: dict) -> List[str]:
  """What the apply command prints."""
  s = summary
  return [f"kept {s['samples_after']:,} of {s['samples_before']:,} samples and {s['identities_after']:,} of "
          f"{s['identities_before']:,} identities",
          f"dropped {s['dropped_samples']:,} samples by name and {s['dropped_with_their_identity']:,} with their "
          f"{s['identities_dropped']:,} dropped identities; relabelled {s['relabelled_samples']:,}; merged "
          f"{s['merged_identities']:,} identities ({s['samples_merged']:,} samples)",
          f"{s['decisions_applied']:,} decisions applied, {s['left_for_review']:,} left for review (apply = no)",
          "wrote " + ", ".join(s["outputs"])]
