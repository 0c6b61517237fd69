"""The one interface every embedding model offers: uint8 faces → unit float32 embeddings."""
import abc

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from facequal_jax import sharding

CHUNK = 256  # faces per jitted call of a network encoder (bounds device memory; each is split over the mesh)


class Encoder(abc.ABC):
  """A face encoder.

  Attributes:
    name: short model name (e.g. "eigenfaces").
    dim: embedding size D.
    template: where it expects the face in its input: "chip" (dlib's face chip) or "arcface" (the ArcFace
      template); the IQ job aligns faces to it (`FacePreprocess.template`).
    input_size: the side of the faces it was trained on (0: any); the IQ job's default face size.
  """
  name: str = ""
  dim: int = 0
  template: str = "chip"
  input_size: int = 0

  @abc.abstractmethod
  def fingerprint(self) -> str:
    """Identifies the model and its weights (extraction refuses to resume with another one)."""

  @abc.abstractmethod
  def __call__(self, images: np.ndarray) -> np.ndarray:
    """uint8 faces [B, H, W, C] → float32 [B, dim] embeddings of unit L2 norm."""

  def describe(self) -> dict:
    """What report.json says of the encoder."""
    return {"name": self.name, "fingerprint": self.fingerprint()}


def unit(embeddings: np.ndarray) -> np.ndarray:
  """float [B, D] → float32 rows of unit L2 norm (all-zero rows stay zero)."""
  embeddings = np.asarray(embeddings, np.float32)
  norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
  return embeddings / np.where(norms > 0, norms, 1.0)


def to_model_input(images: jax.Array, size: int, channels: int) -> jax.Array:
  """uint8 [B, H, W, C] (C = 1, 3 or 4) → float32 [B, size, size, channels] in [0, 255].

  Alpha is dropped, grey repeated to RGB (or RGB weighted to grey), and other
  sizes resized (bilinear, antialiased).
  """
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


def embed_in_chunks(apply, images: np.ndarray, mesh: Mesh, dim: int) -> np.ndarray:
  """Faces through a network encoder's jitted `apply` (uint8 [b, H, W, C] → unit float32 [b, dim]), CHUNK at a
  time, each split over `mesh`.

  Args:
    images: uint8 [B, H, W] or [B, H, W, C], C ∈ {1, 3, 4}.

  Returns:
    float32 [B, dim].

  Raises:
    ValueError: another shape.
  """
  images = np.asarray(images)
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
    raise ValueError(f"faces must be uint8 [B, H, W, C] with C in (1, 3, 4), got shape {images.shape}")
  if not len(images):
    return np.zeros((0, dim), np.float32)
  return np.concatenate([sharding.apply_to_batch(apply, images[i:i + CHUNK], mesh)
                         for i in range(0, len(images), CHUNK)])
