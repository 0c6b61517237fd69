"""A pretrained masked-image-modelling face encoder (`train/pretrain.py`) as an `Encoder`."""
import hashlib
import json
from typing import Optional

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh

from facequal_jax import sharding
from facequal_jax.encoders.base import Encoder, to_model_input
from facequal_jax.models.vit import PatchEncoder

def load_mim_encoder(path: str, mesh: Optional[Mesh] = None) -> "MimEncoder":
  """The encoder of a checkpoint as `encode(images) → embeddings`.

  Args:
    path: an `encoder.msgpack` written by `train/pretrain.py`.
    mesh: 1-D mesh the batch is split over (default: all local devices).

  Returns:
    A `MimEncoder`: uint8 [B, H, W, C] aligned face crops of any size,
    C ∈ {1, 3, 4} (grey is repeated to RGB, alpha dropped, resized inside) →
    L2-normalised float32 [B, D] numpy embeddings.
  """
  with open(path, "rb") as f:
    data = f.read()
  payload = flax.serialization.msgpack_restore(data)
  config = ml_collections.ConfigDict(json.loads(payload["model_config"]))
  model = PatchEncoder(config)
  params = {name: jax.tree.map(jnp.asarray, payload["params"][name]) for name in ("embed_patch", "encoder")}
  mesh = mesh or sharding.make_mesh()

  @jax.jit
  def apply(images):
    x = to_model_input(images, config.image_size, config.channels)
    return model.apply({"params": params}, x)

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
