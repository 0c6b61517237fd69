"""The results block the command prints on stdout: the headline, what was found, the one file to open."""
import os
from typing import List, Sequence

from facequal_jax.jobs import run
from facequal_jax.metrics.findings import KINDS, Findings
from facequal_jax.metrics.quality import IQReport
from facequal_jax.report.html import WEAK_CONSISTENCY


def _count(number: int, one: str, many: str) -> str:
  return f"{number:,} {one if number == 1 else many}"


def result_lines(report: IQReport, findings: Findings, workdir: str) -> List[str]:
  """The headline, the counts of each finding, skipped and face-less files, and the report's path."""
  lines = [f"IQ {report.iq:.4f} = {report.alpha:g} · Consis {report.consistency:.4f} + {report.beta:g} · "
           f"r̃ {report.effective_rank_normalized:.4f}   (effective rank {report.effective_rank:.1f}, "
           f"RankMe {report.rankme:.1f}; {report.num_samples} samples, {report.num_identities} identities)"]
  counts = findings.counts()
  lines.append("found: " + ", ".join(_count(counts[kind.key], kind.one, kind.many) for kind in KINDS)
               + f"; flagged share {findings.estimated_noise_rate:.3f}")
  if report.consistency < WEAK_CONSISTENCY:
    lines.append(f"note: Consis {report.consistency:.2f} is below {WEAK_CONSISTENCY}: many wrong labels, or an "
                 "encoder that cannot tell these identities apart (then the suspects are its mistakes)")
  if findings.skipped:
    lines.append(f"{_count(len(findings.skipped), 'file', 'files')} skipped (could not be read as images; "
                 "listed in the report)")
  if findings.no_face_found:
    lines.append(f"no face found in {_count(len(findings.no_face_found), 'image', 'images')} "
                 "(embedded from the centred crop; listed in the report)")
  overlap = findings.overlap
  if overlap:
    lines.append(f"shared with {overlap['source']}: {_count(overlap['num_shared'], 'identity', 'identities')}")
  decided = findings.decisions
  if decided:
    lines.append(f"decisions: {decided['proposed']:,} proposed, {decided['to_apply']:,} to apply "
                 f"({decided['file']}; review, then python -m facequal_jax.apply --decisions={decided['file']} "
                 "--out=DIR)")
  lines.append(f"open the report: {os.path.join(workdir, run.HTML)}")
  return lines


def comparison_lines(rows: Sequence[dict], workdir: str) -> List[str]:
  """The ranked comparison table, and where its files went."""
  lines = [f"{'rank':<5}{'name':<24}{'IQ':>8}{'Consis':>8}{'r̃':>8}{'RankMe':>8}{'flagged':>9}  suspects found"]
  for rank, row in enumerate(rows, 1):
    recovery = row.get("injected_noise_recovery")
    found = (f"{recovery['precision_at_100']:.2f} of the top {recovery['num_top']} are flips; "
             f"{recovery['recall']:.2f} of the {recovery['num_flipped']} flips found" if recovery else "")
    lines.append(f"{rank:<5}{row['name']:<24}{row['iq']:>8.4f}{row['consistency']:>8.4f}"
                 f"{row['effective_rank_normalized']:>8.4f}{row['rankme']:>8.1f}{row['estimated_noise_rate']:>9.3f}"
                 f"  {found}".rstrip())
  lines.append(f"comparison: {os.path.join(workdir, 'compare.md')}; each report under {workdir}/NAME/report.html")
  return lines
