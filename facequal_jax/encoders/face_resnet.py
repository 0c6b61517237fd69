"""The pretrained face-recognition network as an `Encoder`: dlib's face ResNet, run in Flax.

The weights (public domain, CC0) ship in the PyPI package
`face_recognition_models` (the optional extra `faces`) as dlib's serialized
`dlib_face_recognition_resnet_model_v1.dat`. They are read without dlib
(`dlib_weights.read_network`), converted once and cached as Flax parameters in
`$FACEQUAL_CACHE` (default `~/.cache/facequal_jax`) under a name that carries
the `.dat` file's SHA-256, so a changed or missing cache file is converted
again. The network takes 150 × 150 RGB chips in dlib's face-chip geometry (see
`data/align.py`); other sizes are resized, grey repeated, alpha dropped.
"""
import hashlib
import os
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import Mesh

from facequal_jax import faces_extra, files, sharding
from facequal_jax.data.align import CHIP_SIZE
from facequal_jax.encoders.base import Encoder, embed_in_chunks, to_model_input

CACHE_ENV = "FACEQUAL_CACHE"
WEIGHTS_FILE = "dlib_face_recognition_resnet_model_v1.dat"  # in face_recognition_models/models
# Bumped when the conversion changes, so older cache files are converted again.
CONVERSION_VERSION = 1


class FaceNetworkUnavailable(ImportError):
  """The weights package is not installed; the message says how to install it."""


def weights_path() -> str:
  """The `.dat` file of the network, from the installed `face_recognition_models`."""
  try:
    return faces_extra.model_file(WEIGHTS_FILE)
  except faces_extra.ModelFileMissing as error:
    raise FaceNetworkUnavailable(f"the face network needs the optional extra: {faces_extra.INSTALL_HINT}") \
        from error


def cache_dir() -> str:
  return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "facequal_jax")


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 22), b""):
      digest.update(block)
  return digest.hexdigest()


def load_params(dat_path: str, cache: Optional[str] = None):
  """The network's Flax parameters: from the cache, or converted from `dat_path` and cached.

  Returns:
    (params pytree of float32 numpy arrays, the `.dat` file's SHA-256).
  """
  # pylint: disable=import-outside-toplevel  (flax and the reader only where the network is used)
  import flax
  from facequal_jax.encoders import dlib_weights
  digest = _sha256(dat_path)
  cached = os.path.join(cache or cache_dir(), f"dlib_face_resnet_v1-c{CONVERSION_VERSION}-{digest[:16]}.msgpack")
  if os.path.exists(cached):
    try:
      with open(cached, "rb") as f:
        return flax.serialization.msgpack_restore(f.read()), digest
    except (OSError, ValueError) as error:  # a damaged cache file is converted again
      logging.warning("face network cache %s unreadable (%s): converting again", cached, error)
  params = dlib_weights.read_network(dat_path)
  files.write_bytes(cached, flax.serialization.msgpack_serialize(params))
  logging.info("face network converted from %s and cached in %s", dat_path, cached)
  return params, digest


class FaceResNetEncoder(Encoder):
  """uint8 faces [B, H, W, C] (C ∈ {1, 3, 4}) → unit float32 [B, 128]; batches split over `mesh`."""
  name = "face_resnet"
  dim = 128
  input_size = CHIP_SIZE

  def __init__(self, params, digest: str, mesh: Optional[Mesh] = None, dtype=jnp.float32):
    from facequal_jax.models.dlib_resnet import DlibFaceResNet  # pylint: disable=import-outside-toplevel
    self._mesh = mesh or sharding.make_mesh()
    self._digest = digest
    params = jax.device_put(jax.tree.map(jnp.asarray, params), sharding.replicated(self._mesh))
    model = DlibFaceResNet(dtype=dtype)
    self._dtype = jnp.dtype(dtype).name

    @jax.jit
    def apply(images):
      embeddings = model.apply({"params": params}, to_model_input(images, CHIP_SIZE, 3))
      return embeddings / jnp.maximum(jnp.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)

    self._apply = apply

  def fingerprint(self) -> str:
    computed = "" if self._dtype == "float32" else f":{self._dtype}"  # other numbers: another fingerprint
    return f"{self.name}:dlib_face_recognition_resnet_model_v1:{self._digest[:16]}{computed}"

  def __call__(self, images: np.ndarray) -> np.ndarray:
    return embed_in_chunks(self._apply, images, self._mesh, self.dim)


def load_face_network(mesh: Optional[Mesh] = None, cache: Optional[str] = None,
                      dtype=jnp.float32) -> FaceResNetEncoder:
  """The pretrained face network, its weights located through `face_recognition_models`; `dtype`: float32 or
  bfloat16 computation (`DlibFaceResNet`)."""
  params, digest = load_params(weights_path(), cache)
  return FaceResNetEncoder(params, digest, mesh, dtype)
