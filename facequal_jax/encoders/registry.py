"""The encoders by name, one table: what `encoder.name` and `fq.load_encoder` accept, how each is made.

A pretrained encoder is loaded (`load(mesh)`); a fitted one (its class's
`fit(images, dim)`) is fitted by the IQ job on faces of the data set it scores
and kept in the workdir (`save(path)`, `load(path)`). An encoder whose optional extra is missing
falls back to another (`fallback`). Besides the names, a path is an encoder: an
`encoder.msgpack` written by `train/pretrain.py`, or the user's own face
network as an `.onnx` file (`onnx_encoder`). A new encoder is one entry of
`ENCODERS`.
"""
import dataclasses
import os
from typing import Callable, Optional

from jax.sharding import Mesh

from facequal_jax.encoders.base import Encoder
from facequal_jax.encoders.eigenfaces import EigenfaceEncoder
from facequal_jax.errors import UsageError

ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
MSGPACK, ONNX = ".msgpack", ".onnx"


# pylint: disable=import-outside-toplevel  (each needs flax or the `faces` extra; only the one asked for is imported)
def _face_network(mesh: Optional[Mesh]) -> Encoder:
  from facequal_jax.encoders.face_resnet import load_face_network
  return load_face_network(mesh)


def _face_network_available() -> bool:
  from facequal_jax.encoders import face_resnet
  try:
    face_resnet.weights_path()
  except face_resnet.FaceNetworkUnavailable:
    return False
  return True


def _mim(path: str) -> Callable[[Optional[Mesh]], Encoder]:
  def load(mesh: Optional[Mesh]) -> Encoder:
    from facequal_jax.encoders.mim import load_mim_encoder
    return load_mim_encoder(path, mesh)
  return load


def _onnx(path: str, options: dict) -> Callable[[Optional[Mesh]], Encoder]:
  def load(mesh: Optional[Mesh]) -> Encoder:
    from facequal_jax.encoders.onnx_encoder import OnnxEncoder, OnnxPreprocessing
    settings = dict(options)
    dtype = settings.pop("dtype", "float32")
    return OnnxEncoder(path, mesh, dtype, OnnxPreprocessing(**settings))
  return load


# pylint: enable=import-outside-toplevel


@dataclasses.dataclass(frozen=True)
class EncoderEntry:
  """One encoder.

  Attributes:
    name: what `encoder.name` says.
    description: one line for the docs and errors.
    load: mesh → the pretrained encoder (None for a fitted one).
    fitted: the class of a fitted encoder (None for a pretrained one): `fit(uint8 faces [n, H, W, C], dim)`,
      `save(path)`, `load(path)`.
    checkpoint: the file it is read from, where that is one (a fine-tuning start point).
    available: whether it can be made here (its optional extra is installed).
    fallback: the encoder used instead when it is not available.
    decides: whether a suspicion it raises can carry a decision alone (False: every suspect it yields is left
      for review — eigenfaces misread even clean ORL, Consis 0.58).
  """
  name: str
  description: str
  load: Optional[Callable[[Optional[Mesh]], Encoder]] = None
  fitted: Optional[type] = None
  checkpoint: str = ""
  available: Callable[[], bool] = lambda: True
  fallback: str = ""
  decides: bool = True


_PACO_FR = os.path.join(ASSETS, "paco_fr_tiny.msgpack")
ENCODERS = {entry.name: entry for entry in (
    EncoderEntry("face_resnet", "the pretrained face network (dlib's face ResNet in Flax; the `faces` extra)",
                 load=_face_network, available=_face_network_available, fallback="eigenfaces"),
    EncoderEntry("eigenfaces", "principal components of the data set's own faces (no extra needed)",
                 fitted=EigenfaceEncoder, decides=False),
    EncoderEntry("paco_fr", "the bundled PaCo-FR encoder (masked image modelling with a patch codebook)",
                 load=_mim(_PACO_FR), checkpoint=_PACO_FR),
)}
DEFAULT = "face_resnet"


def entry(name: str, onnx: Optional[dict] = None) -> EncoderEntry:
  """The entry of `name`, of an `encoder.msgpack` path, or of an `.onnx` path (read with `onnx`: the fields of
  `OnnxPreprocessing` and `dtype`; insightface's conventions where left out).

  Raises:
    UsageError: none of these; the message lists the names.
  """
  if name in ENCODERS:
    return ENCODERS[name]
  if name.endswith(MSGPACK):
    return EncoderEntry(name, f"the MIM encoder {name}", load=_mim(name), checkpoint=name)
  if name.endswith(ONNX):
    return EncoderEntry(name, f"the ONNX face network {name}", load=_onnx(name, onnx or {}))
  raise UsageError(f"--config.encoder.name must be one of {', '.join(map(repr, ENCODERS))}, the path of an "
                   f"encoder{MSGPACK} or of a face network{ONNX}, got {name!r}")


def checkpoint_path(name_or_path: str) -> str:
  """The checkpoint file of an encoder's name, or the path itself."""
  return ENCODERS[name_or_path].checkpoint if name_or_path in ENCODERS else name_or_path


def load_encoder(path: Optional[str] = None, mesh: Optional[Mesh] = None) -> Encoder:
  """A pretrained face encoder.

  Args:
    path: None for the pretrained face-recognition network (dlib's face ResNet
      in Flax; needs the optional extra `faces`), the name of a pretrained
      entry of `ENCODERS` ("paco_fr", the bundled PaCo-FR encoder), or an
      `encoder.msgpack` written by `train/pretrain.py` (a masked-image-modelling encoder).
    mesh: 1-D mesh each batch is split over (default: all local devices).

  Returns:
    An `Encoder`: uint8 faces [B, H, W, C] of any size, C ∈ {1, 3, 4} → unit
    float32 [B, D] numpy embeddings (D = 128 for the face network); its
    `template` and `input_size` say how faces should be aligned.

  Raises:
    FaceNetworkUnavailable: path None and the extra is not installed.
    UsageError: a name that is not a pretrained encoder.
  """
  found = entry(path or DEFAULT)
  if found.load is None:
    raise UsageError(f"{found.name} is fitted on a data set, not loaded: the IQ job fits it (encoder.name)")
  return found.load(mesh)
