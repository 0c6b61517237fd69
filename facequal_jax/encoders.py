"""Embedding models: uint8 face batches [B, H, W, C] → float32 embeddings [B, D].

`EigenfaceEncoder` is the simple, documented baseline: pixels as vectors,
centred, projected on the top principal components of a fitting sample.
"""
import functools
import hashlib

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from facequal_jax import io, sharding


def encode_sharded(apply, images: np.ndarray, mesh: Mesh) -> np.ndarray:
  """Runs a jitted `apply` on a batch split over the mesh's devices.

  Args:
    apply: jitted function uint8 [B, ...] → float32 [B, D].
    images: uint8 [B, ...] host batch (padded here to a multiple of the devices).
    mesh: 1-D mesh of this process's devices.

  Returns:
    float32 [B, D] numpy array.
  """
  count, devices = len(images), sharding.mesh_size(mesh)
  padded = -(-max(count, 1) // devices) * devices
  batch = np.zeros((padded,) + images.shape[1:], images.dtype)
  batch[:count] = images
  placed = jax.device_put(batch, NamedSharding(mesh, PartitionSpec(sharding.ROWS)))
  return np.asarray(apply(placed))[:count]


@jax.jit
def _project(images, mean, components):
  pixels = images.reshape(images.shape[0], -1).astype(jnp.float32)
  return jnp.dot(pixels - mean, components.T, precision=jax.lax.Precision.HIGHEST)


class EigenfaceEncoder:
  """PCA of pixels.

  Attributes:
    mean: float32 [P] mean pixel vector (P = H · W · C).
    components: float32 [D, P] principal directions, strongest first.
    input_shape: (H, W, C) of the images it was fitted on.
  """
  name = "eigenfaces"

  def __init__(self, mean: np.ndarray, components: np.ndarray, input_shape):
    self.mean = np.asarray(mean, np.float32)
    self.components = np.asarray(components, np.float32)
    self.input_shape = tuple(int(s) for s in input_shape)

  @classmethod
  def fit(cls, images: np.ndarray, dim: int) -> "EigenfaceEncoder":
    """Fits on uint8 [n, H, W, C] (or [n, H, W]) images; keeps min(dim, n) components."""
    pixels = images.reshape(len(images), -1).astype(np.float64)
    mean = pixels.mean(axis=0)
    _, _, directions = np.linalg.svd(pixels - mean, full_matrices=False)
    return cls(mean, directions[:dim], images.shape[1:])

  @property
  def dim(self) -> int:
    return self.components.shape[0]

  def fingerprint(self) -> str:
    """Identifies the fitted model (for resuming extraction with the same one)."""
    digest = hashlib.sha256(self.mean.tobytes() + self.components.tobytes()).hexdigest()[:16]
    return f"{self.name}:{self.input_shape}:{self.dim}:{digest}"

  def save(self, path: str) -> None:
    io.write_npz(path, mean=self.mean, components=self.components, input_shape=np.asarray(self.input_shape))

  @classmethod
  def load(cls, path: str) -> "EigenfaceEncoder":
    with np.load(path, allow_pickle=False) as f:
      return cls(f["mean"], f["components"], f["input_shape"])

  def __call__(self, images: np.ndarray, mesh: Mesh = None) -> np.ndarray:
    """uint8 [B, *input_shape] → float32 [B, dim], the batch sharded over `mesh`."""
    if tuple(images.shape[1:]) != self.input_shape and images.reshape(len(images), -1).shape[1] != self.mean.size:
      raise ValueError(f"images of shape {images.shape[1:]} do not match the fitted {self.input_shape}")
    apply = functools.partial(_project, mean=jnp.asarray(self.mean), components=jnp.asarray(self.components))
    return encode_sharded(apply, images, mesh or sharding.make_mesh())
