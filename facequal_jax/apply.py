r"""Carries out a decisions file: `python -m facequal_jax.apply --decisions=WORKDIR/decisions.csv --out=DIR`.

Writes a cleaned copy of the source the file names (or `--source`) into DIR in
the source's own form — an im2rec `.lst` of the kept images for an image folder
or list, a new `.rec` + `.idx` for an insightface pack, an `.npz` for
embeddings — and DIR/apply_summary.json; the source is never written to. Only
rows with `apply` = yes are carried out. A killed run resumes when rerun.
Score the result with `python -m facequal_jax --compare=SOURCE,DIR/NAME …`.
"""
from absl import flags

from facequal_jax import console
from facequal_jax.cleaning import carry_out
from facequal_jax.errors import UsageError

_DECISIONS = flags.DEFINE_string("decisions", None, "The decisions file (WORKDIR/decisions.csv of a report).")
_SOURCE = flags.DEFINE_string("source", "", "The data set to clean; default the one the decisions file names.")
_OUT = flags.DEFINE_string("out", None, "Folder for the cleaned copy and apply_summary.json (created).")


def main(argv):
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments {' '.join(argv[1:])}: flags take the form --name=value")
  for flag in (_DECISIONS, _OUT):
    if not flag.value:
      raise UsageError(f"--{flag.name} is required")
  summary = carry_out.carry_out(_DECISIONS.value, _OUT.value, _SOURCE.value)
  print("\n".join(carry_out.summary_lines(summary)))


if __name__ == "__main__":
  console.run(main, lambda: "interrupted: rerun the same command to resume")
