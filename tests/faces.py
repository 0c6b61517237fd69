"""The optional extra `faces` in tests: its model files and dlib, or a skip with the reason — a failure where
FACEQUAL_REQUIRE_FACES is set (CI installs the extra, so its tests must run there)."""
import os

import pytest

from facequal_jax import faces_extra


def _missing(reason: str):
  if os.environ.get("FACEQUAL_REQUIRE_FACES"):
    pytest.fail(f"FACEQUAL_REQUIRE_FACES is set but {reason}")
  pytest.skip(reason, allow_module_level=True)


def model_file(name: str) -> str:
  """The path of a model file of `face_recognition_models` (skips or fails without it)."""
  try:
    return faces_extra.model_file(name)
  except faces_extra.ModelFileMissing as error:
    return _missing(str(error))


def dlib():
  """The `dlib` module (skips or fails without it)."""
  try:
    import dlib as module  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    return _missing(f"dlib is not installed ({error}): pip install -e '.[faces]'")
  return module


def require() -> None:
  """Skips (or fails) the calling test module unless dlib and the network's weights are installed."""
  dlib()
  model_file("dlib_face_recognition_resnet_model_v1.dat")
