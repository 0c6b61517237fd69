"""What `python -m facequal_jax` does once its flags are read, callable from a notebook as it is from the shell.

One data set: IQ, the diagnostics and the decisions (`run.run`), its results
block; for the built-in default also the same faces with `demo_noise_rates`
of their labels flipped. Several (`compare`): each scored with the one config
and ranked by IQ. Results are written to `out` by process 0 only.
"""
import copy
import dataclasses
import os
import sys
from typing import List, Optional, Sequence, TextIO

import jax
import ml_collections

from facequal_jax.data import kinds
from facequal_jax.jobs import run, summary
from facequal_jax.metrics.findings import Findings
from facequal_jax.metrics.quality import IQReport
from facequal_jax.progress import LOGGER as PROGRESS_LOG, Stages


@dataclasses.dataclass
class Outcome:
  """What the command computed: one data set's report and findings (None in compare mode), and the ranked
  rows of a comparison or of the noise demo (empty without one)."""
  report: Optional[IQReport] = None
  findings: Optional[Findings] = None
  ranked: List[dict] = dataclasses.field(default_factory=list)


def iq_command(config: ml_collections.ConfigDict, workdir: str, *, compare: Sequence[str] = (),
               overlap_with: str = "", stages: Optional[Stages] = None, out: TextIO = sys.stdout) -> Outcome:
  """Scores the configured data set (or each of `compare`, paths of any kind) into `workdir`, printing the
  results block on `out`.

  Args:
    overlap_with: another data set whose shared identities are listed (`overlap.source`).
    stages: announces and times the stages (a new one if None).
  """
  stages = stages or Stages()
  config = copy.deepcopy(config)
  if overlap_with:
    config.overlap.source = overlap_with
  show = (lambda lines: print("\n".join(lines), file=out, flush=True)) if jax.process_index() == 0 else (
      lambda lines: None)
  if compare:
    entries = []
    for name, path in zip(run.entry_names(compare), compare):
      entry = copy.deepcopy(config)
      kinds.point_at(entry.data, path)
      entries.append((name, entry))
    rows = run.compare(entries, workdir, stages)
    show(summary.comparison_lines(rows, workdir))
    return Outcome(ranked=rows)
  demo = kinds.configured(config.data) is None and config.demo_noise_rates
  report, findings = run.run(config, workdir, stages)
  show(summary.result_lines(report, findings, workdir))
  if not demo:
    return Outcome(report, findings)
  compared = os.path.join(workdir, "compare")
  PROGRESS_LOG.info("scoring the same faces again with %s of their labels flipped …",
                    " and ".join(f"{rate:.0%}" for rate in config.demo_noise_rates))
  stages.announce = False
  rows = run.compare(run.noisy_copies(config, config.demo_noise_rates, workdir), compared, stages)
  show(["", "The same faces with labels flipped on purpose:"] + summary.comparison_lines(rows, compared))
  return Outcome(report, findings, rows)
