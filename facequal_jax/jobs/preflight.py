"""Everything about an IQ config that can be checked before any compute starts.

`check(config, workdir)` raises a `UsageError` (a flag or field that cannot
work) or a `DataError` / `MissingFile` (an input that is missing or unreadable)
whose one-line message names the field or file and the fix; it creates the
workdir. Checks that need the data itself (NaN rows, label length, k against
the number of rows) run right after it is read, still before any search.
"""
import functools
import importlib.util
import os
import tempfile

import ml_collections

from facequal_jax import checks, sharding
from facequal_jax.data import align as align_lib
from facequal_jax.data import kinds
from facequal_jax.data.preprocess import CHANNEL_MODES
from facequal_jax.encoders import registry as encoders
from facequal_jax.encoders.onnx_encoder import DTYPES, OnnxPreprocessing
from facequal_jax.errors import MissingFile, UsageError
from facequal_jax.jobs import act
from facequal_jax.knn.settings import SearchSettings
from facequal_jax.metrics.diagnostics import Thresholds


def check_workdir(workdir: str, flag: str = "--workdir") -> None:
  """Creates `workdir` if needed and checks that files can be written there."""
  if not workdir:
    raise UsageError(f"{flag} is required: the folder for report.html and the other outputs (created if missing)")
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UsageError(f"{flag}={workdir} is a file, not a folder: give a folder (it is created if missing)")
  try:
    os.makedirs(workdir, exist_ok=True)
    with tempfile.TemporaryFile(dir=workdir):
      pass
  except OSError as error:
    raise UsageError(f"{flag}={workdir} cannot be written to ({error.strerror}): give a folder you can write")


def _integer(config: ml_collections.ConfigDict, field: str, minimum: int) -> None:
  value = functools.reduce(getattr, field.split("."), config)
  if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
    raise UsageError(f"--config.{field} must be an integer >= {minimum}, got {value!r}")


def _choice(value, field: str, valid) -> None:
  if value not in valid:
    raise UsageError(f"--config.{field} must be one of {', '.join(map(repr, valid))}, got {value!r}")


def check_onnx(encoder: ml_collections.ConfigDict) -> None:
  """The `encoder.onnx` fields, and that the `onnx` package is there to read the model."""
  settings = encoder.onnx.to_dict()
  _choice(settings.pop("dtype"), "encoder.onnx.dtype", DTYPES)
  OnnxPreprocessing(**settings)
  if importlib.util.find_spec("onnx") is None:
    raise UsageError(f"--config.encoder.name={encoder.name}: reading an .onnx model needs the `onnx` package: "
                     'pip install "facequal_jax[onnx]"')


def check_fields(config: ml_collections.ConfigDict) -> None:
  """Every field's type and range, and that the inputs it names exist and can be read."""
  SearchSettings(**config.knn.to_dict())
  Thresholds(**config.diagnostics.to_dict())
  act.thresholds(config)
  act.policy(config)
  checks.check_scoring(config.k, config.alpha, config.singletons, "--config.")
  for field in ("subset.size", "subset.images_per_identity", "subset.min_images", "subset.seed",
                "data.max_images_per_identity", "data.noise_seed", "extract.workers", "preprocess.crop",
                "mesh.num_devices", "encoder.dim", "encoder.fit_images", "preprocess.size"):
    _integer(config, field, 0)
  for field in ("extract.batch_size", "extract.chunk_rows"):
    _integer(config, field, 1)
  _choice(config.preprocess.align, "preprocess.align", ("auto",) + align_lib.ALIGN_MODES)
  _choice(config.preprocess.channels, "preprocess.channels", tuple(sorted(CHANNEL_MODES)))
  for field, rate in [("data.label_noise", config.data.label_noise)] + [
      ("demo_noise_rates", rate) for rate in config.demo_noise_rates]:
    if not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
      raise UsageError(f"--config.{field} must be a share in [0, 1), got {rate!r}")
  if encoders.entry(config.encoder.name).name not in encoders.ENCODERS:
    kinds.readable(config.encoder.name, "--config.encoder.name")
  if config.encoder.name.endswith(encoders.ONNX):
    check_onnx(config.encoder)
  kind = kinds.configured(config.data)
  if kind is not None:
    kind.check_readable(config.data)
  if config.overlap.source and not os.path.exists(config.overlap.source):
    raise MissingFile(f"--config.overlap.source={config.overlap.source}: no such file or folder")
  if config.extract.dir and os.path.exists(config.extract.dir) and not os.path.isdir(config.extract.dir):
    raise UsageError(f"--config.extract.dir={config.extract.dir} is a file, not a folder")
  sharding.make_mesh(config.mesh.num_devices)  # as many devices as there are


def check(config: ml_collections.ConfigDict, workdir: str) -> None:
  """`check_fields`, then `check_workdir` (so a bad field creates no folder)."""
  check_fields(config)
  check_workdir(workdir)
