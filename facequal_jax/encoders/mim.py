"""`load_encoder`: a pretrained masked-image-modelling face encoder as an `Encoder`."""
import hashlib
import json
import os
from typing import Optional

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh

from facequal_jax import sharding
from facequal_jax.encoders.base import Encoder
from facequal_jax.models import paco

BUNDLED_ENCODER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets",
                               "paco_tiny.msgpack")


def _to_model_input(images: jax.Array, size: int, channels: int) -> jax.Array:
  """uint8 [B, H, W, C] (C = 1, 3 or 4) → float32 [B, size, size, channels] in [0, 255], bilinear."""
  x = images.astype(jnp.float32)
  if x.shape[-1] == 4:
    x = x[..., :3]
  if x.shape[-1] == 1 and channels == 3:
    x = jnp.repeat(x, 3, axis=-1)
  elif x.shape[-1] == 3 and channels == 1:
    x = jnp.sum(x * jnp.array([0.299, 0.587, 0.114]), axis=-1, keepdims=True)
  if x.shape[1:3] != (size, size):
    x = jax.image.resize(x, (x.shape[0], size, size, x.shape[-1]), "bilinear", antialias=True)
  return jnp.clip(x, 0.0, 255.0)


def load_encoder(path: Optional[str] = None, mesh: Optional[Mesh] = None) -> "MimEncoder":
  """The pretrained encoder as `encode(images) → embeddings`.

  Args:
    path: an `encoder.msgpack` written by `train/pretrain.py`; None = the
      bundled tiny checkpoint, where the package ships one.
    mesh: 1-D mesh the batch is split over (default: all local devices).

  Returns:
    A `MimEncoder`: uint8 [B, H, W, C] aligned face crops of any size,
    C ∈ {1, 3, 4} (grey is repeated to RGB, alpha dropped, resized inside) →
    L2-normalised float32 [B, D] numpy embeddings.
  """
  if path is None and not os.path.exists(BUNDLED_ENCODER):
    raise FileNotFoundError("this release bundles no pretrained encoder (see the README's encoder section): "
                            "pass the path of an encoder.msgpack written by train/pretrain.py")
  path = path or BUNDLED_ENCODER
  with open(path, "rb") as f:
    data = f.read()
  payload = flax.serialization.msgpack_restore(data)
  config = ml_collections.ConfigDict(json.loads(payload["model_config"]))
  model = paco.PacoMIM(config)
  params = jax.tree.map(jnp.asarray, payload["params"])
  mesh = mesh or sharding.make_mesh()

  @jax.jit
  def apply(images):
    x = _to_model_input(images, config.image_size, config.channels)
    return model.apply({"params": params}, x, method=paco.PacoMIM.embed)

  fingerprint = f"mim:{config.dim}:step{int(payload['step'])}:{hashlib.sha256(data).hexdigest()[:16]}"
  return MimEncoder(apply, mesh, config.dim, int(payload["step"]), fingerprint)


class MimEncoder(Encoder):
  """uint8 [B, H, W, C] → float32 [B, dim] unit embeddings; the batch split over `mesh`.

  Attributes: dim (embedding size), step (training steps of the checkpoint).
  """
  name = "mim"

  def __init__(self, apply, mesh: Mesh, dim: int, step: int, fingerprint: str):
    self._apply, self._mesh, self.dim, self.step, self._fingerprint = apply, mesh, dim, step, fingerprint

  def fingerprint(self) -> str:
    return self._fingerprint

  def __call__(self, images) -> np.ndarray:
    return sharding.apply_to_batch(self._apply, np.asarray(images), self._mesh)
