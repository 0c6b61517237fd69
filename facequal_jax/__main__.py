r"""Command line: `python -m facequal_jax --config=configs/iq.py --workdir=DIR`.

`--compare=a.npz,b.npz,…` scores several embedding files with one config and
ranks them by IQ. The built-in default (no data given) also scores the bundled
faces with `demo_noise_rates` of their labels flipped, to show what noise does.

Multi-process: give every process the same --coordinator_address and
--num_processes and its own --process_id (or --distributed on TPU pods and
clusters where JAX finds these itself).
"""
import copy
import os

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from facequal_jax.jobs import inputs, run

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/iq.py.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for report.json and the other outputs.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process runs).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (multi-process runs).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (multi-process runs).")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() with auto-detection.")
_COMPARE = flags.DEFINE_list("compare", [], "Several .npz embedding files scored with the config, ranked by IQ.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if _COORDINATOR.value:
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  elif _DISTRIBUTED.value:
    jax.distributed.initialize()
  config, workdir = _CONFIG.value, _WORKDIR.value
  if _COMPARE.value:
    entries = []
    for path in _COMPARE.value:
      entry = copy.deepcopy(config)
      entry.data.embeddings = path
      entries.append((os.path.splitext(os.path.basename(path))[0], entry))
    _print_comparison(run.compare(entries, workdir), workdir)
    return
  report, _ = run.run(config, workdir)
  if jax.process_index() != 0:
    return
  print(f"IQ {report.iq:.4f} = {report.alpha:g} · Consis {report.consistency:.4f} + {report.beta:g} · "
        f"r̃ {report.effective_rank_normalized:.4f}   (effective rank {report.effective_rank:.1f}, "
        f"RankMe {report.rankme:.1f}; {report.num_samples} samples, {report.num_identities} identities)")
  print(f"report: {os.path.join(workdir, run.REPORT)}")
  print(f"open in a browser: {os.path.join(workdir, run.HTML)}")
  builtin = not (config.data.embeddings or inputs.has_image_source(config.data))
  if builtin and config.demo_noise_rates:
    print("\nThe same faces with labels flipped on purpose:")
    compared = os.path.join(workdir, "compare")
    _print_comparison(run.compare(run.noisy_copies(config, config.demo_noise_rates, workdir), compared), compared)


def _print_comparison(rows, workdir: str) -> None:
  print(f"{'rank':<5}{'name':<24}{'IQ':>8}{'Consis':>8}{'r̃':>8}{'RankMe':>8}{'est. noise':>11}  suspects found")
  for rank, row in enumerate(rows, 1):
    recovery = row.get("injected_noise_recovery")
    found = (f"{recovery['precision_at_100']:.2f} of the top {recovery['num_top']} are flips; "
             f"{recovery['recall']:.2f} of the {recovery['num_flipped']} flips found" if recovery else "")
    print(f"{rank:<5}{row['name']:<24}{row['iq']:>8.4f}{row['consistency']:>8.4f}"
          f"{row['effective_rank_normalized']:>8.4f}{row['rankme']:>8.1f}{row['estimated_noise_rate']:>11.3f}  {found}")
  print(f"comparison: {os.path.join(workdir, 'compare.md')}; each report under {workdir}/NAME/report.html")


if __name__ == "__main__":
  logging.set_verbosity(logging.INFO)
  app.run(main)
