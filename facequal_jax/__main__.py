r"""Command line: `python -m facequal_jax --workdir=DIR [--config=iq] [--config.FIELD=VALUE …]`.

With no data given, the built-in default scores the bundled ORL faces, then the
same faces with `demo_noise_rates` of their labels flipped, to show what noise
does. `--print_config` lists every field with its value and meaning;
`--compare=A,B,…` scores several data sets (.npz of embeddings, image folders,
.lst lists, .rec packs) with one config and ranks them by IQ;
`--overlap_with=OTHER` also lists the identities this data set shares with
OTHER (and proposes dropping them in WORKDIR/decisions.csv).

Results go to stdout; stage and progress lines, warnings and errors (one line,
exit status 2 for usage errors, 1 for data errors) to stderr; every log line to
DIR/log.txt. Ctrl-C stops at once; rerun the same command to resume.

Multi-process: give every process the same --coordinator_address and
--num_processes and its own --process_id (or --distributed on TPU pods and
clusters where JAX finds these itself).
"""
import os

import jax
from absl import flags
from ml_collections import config_flags

from facequal_jax import config_files, console
from facequal_jax.errors import UsageError
from facequal_jax.jobs import command, preflight
from facequal_jax.progress import Stages

console.prepare_argv(default_config="iq")
_CONFIG = config_flags.DEFINE_config_file("config", None, "A packaged config (iq) or a config file, PATH[:ARG]; "
                                          "default: iq.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for report.html and the other outputs (created if missing).")
_PRINT_CONFIG = flags.DEFINE_bool("print_config", False, "Print every config field, its value and meaning; exit.")
_COMPARE = flags.DEFINE_list("compare", [], "Several data sets (.npz, image folder, .lst, .rec) scored with the "
                             "config, ranked by IQ.")
_OVERLAP_WITH = flags.DEFINE_string("overlap_with", "", "Another data set (image folder, .lst, .rec or .npz of "
                                    "embeddings by the same encoder): list the identities both hold.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process runs).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (multi-process runs).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (multi-process runs).")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() with auto-detection.")
_STAGES = Stages()


def _interrupted() -> str:
  during = f" during {_STAGES.current}" if _STAGES.current else ""
  return f"interrupted{during}: finished work is kept; rerun the same command to resume"


def main(argv):
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments {' '.join(argv[1:])}: flags take the form --name=value")
  config = _CONFIG.value
  if _PRINT_CONFIG.value:
    fields = config_files.describe(config_flags.get_config_filename(flags.FLAGS["config"]), config)
    print(config_files.as_text(fields))
    return
  workdir = _WORKDIR.value
  preflight.check_workdir(workdir)
  if _COORDINATOR.value:
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  elif _DISTRIBUTED.value:
    jax.distributed.initialize()
  process = jax.process_index()
  console.log_to_file(os.path.join(workdir, console.LOG_FILE if process == 0 else f"log.process{process}.txt"))
  command.iq_command(config, workdir, compare=_COMPARE.value, overlap_with=_OVERLAP_WITH.value, stages=_STAGES)


if __name__ == "__main__":
  console.run(main, _interrupted)
