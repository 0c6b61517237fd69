r"""Command line: `python -m facequal_jax --config=configs/iq.py --workdir=DIR`.

Multi-process: give every process the same --coordinator_address and
--num_processes and its own --process_id (or --distributed on TPU pods and
clusters where JAX finds these itself).
"""
import os

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from facequal_jax import run

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/iq.py.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for report.json and the other outputs.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process runs).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (multi-process runs).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (multi-process runs).")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() with auto-detection.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if _COORDINATOR.value:
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  elif _DISTRIBUTED.value:
    jax.distributed.initialize()
  report = run.run(_CONFIG.value, _WORKDIR.value)
  if jax.process_index() == 0:
    print(f"IQ {report.iq:.4f} = {report.alpha:g} · Consis {report.consistency:.4f} + {report.beta:g} · "
          f"r̃ {report.effective_rank_normalized:.4f}   (effective rank {report.effective_rank:.1f}, "
          f"RankMe {report.rankme:.1f}; {report.num_samples} samples, {report.num_identities} identities)")
    print(f"report: {os.path.join(_WORKDIR.value, run.REPORT)}")


if __name__ == "__main__":
  logging.set_verbosity(logging.INFO)
  app.run(main)
