"""`load_encoder`: the pretrained face network, or a pretrained MIM checkpoint, as an `Encoder`."""
import os
from typing import Optional

from jax.sharding import Mesh

from facequal_jax.encoders.base import Encoder

# Pretrained MIM encoders that ship with the package, by name (see the README's encoder table).
BUNDLED_ENCODERS = {"paco_fr": os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets",
                                            "paco_fr_tiny.msgpack")}


def checkpoint_path(name_or_path: str) -> str:
  """The file of a bundled encoder's name (BUNDLED_ENCODERS), or the path itself."""
  return BUNDLED_ENCODERS.get(name_or_path, name_or_path)


def load_encoder(path: Optional[str] = None, mesh: Optional[Mesh] = None) -> Encoder:
  """A pretrained face encoder.

  Args:
    path: None for the pretrained face-recognition network (dlib's face ResNet
      in Flax; needs the optional extra `faces`), an `encoder.msgpack`
      written by `train/pretrain.py` (a masked-image-modelling encoder), or
      "paco_fr", the bundled PaCo-FR encoder.
    mesh: 1-D mesh each batch is split over (default: all local devices).

  Returns:
    An `Encoder`: uint8 faces [B, H, W, C] of any size, C ∈ {1, 3, 4} → unit
    float32 [B, D] numpy embeddings (D = 128 for the face network).

  Raises:
    FaceNetworkUnavailable: path None and the extra is not installed.
  """
  # pylint: disable=import-outside-toplevel  (each needs flax; only the one asked for is imported)
  if path is None:
    from facequal_jax.encoders.face_resnet import load_face_network
    return load_face_network(mesh)
  from facequal_jax.encoders.mim import load_mim_encoder
  return load_mim_encoder(checkpoint_path(path), mesh)
