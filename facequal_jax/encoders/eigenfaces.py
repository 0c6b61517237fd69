"""Eigenfaces: the dependency-free baseline encoder (PCA of pixels).

Pixels as float64 vectors, centred on the fitting sample's mean, projected on
its top principal directions. The fit goes through the n × n Gram matrix of the
centred sample (n images of P pixels, n ≪ P): accumulated over column blocks of
the pixels with progress lines, so it is fast, reports its progress and
answers Ctrl-C between blocks; the eigenvectors u_i of the Gram matrix give the
principal directions v_i = Xᵀu_i / √λ_i.
"""
import functools
import hashlib

import jax
import jax.numpy as jnp
import numpy as np

from facequal_jax import files, sharding
from facequal_jax.encoders.base import Encoder, unit
from facequal_jax.progress import Progress

# Pixel columns per block of the Gram accumulation (~0.5 s each for 2,000 images on two cores).
_FIT_COLUMNS = 2048
# Directions whose eigenvalue is below this fraction of the largest are numerically null and left out.
_NULL_EIGENVALUE = 1e-10


@jax.jit
def _project(images, mean, components):
  pixels = images.reshape(images.shape[0], -1).astype(jnp.float32)
  return jnp.dot(pixels - mean, components.T, precision=jax.lax.Precision.HIGHEST)


def _principal_directions(pixels: np.ndarray, mean: np.ndarray, dim: int) -> np.ndarray:
  """float64 [min(dim, rank), P] top principal directions of uint8 / float rows `pixels` [n, P]."""
  count, width = pixels.shape
  blocks = range(0, width, _FIT_COLUMNS)
  centred = lambda start: pixels[:, start:start + _FIT_COLUMNS].astype(np.float64) - mean[start:start + _FIT_COLUMNS]
  progress = Progress("eigenface fit", total=2 * len(blocks), unit="pixel blocks", every_s=5.0)
  gram = np.zeros((count, count))
  for start in blocks:
    block = centred(start)
    gram += block @ block.T
    progress.advance(1, note="Gram matrix")
  eigenvalues, vectors = np.linalg.eigh(gram)
  eigenvalues, vectors = eigenvalues[::-1], vectors[:, ::-1]
  keep = min(dim, int(np.sum(eigenvalues > _NULL_EIGENVALUE * max(eigenvalues[0], 1e-300))))
  weights = vectors[:, :keep] / np.sqrt(eigenvalues[:keep])
  directions = np.empty((keep, width))
  for start in blocks:
    directions[:, start:start + _FIT_COLUMNS] = weights.T @ centred(start)
    progress.advance(1, note="directions")
  return directions


class EigenfaceEncoder(Encoder):
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
    self.dim = self.components.shape[0]
    self._apply = self._mesh = None  # the projection and the mesh it runs on, made on first use

  @classmethod
  def fit(cls, images: np.ndarray, dim: int) -> "EigenfaceEncoder":
    """Fits on uint8 [n, H, W, C] (or [n, H, W]) images; keeps min(dim, rank) components."""
    pixels = images.reshape(len(images), -1)
    mean = pixels.mean(axis=0, dtype=np.float64)
    return cls(mean, _principal_directions(pixels, mean, dim), images.shape[1:])

  def fingerprint(self) -> str:
    digest = hashlib.sha256(self.mean.tobytes() + self.components.tobytes()).hexdigest()[:16]
    return f"{self.name}:unit:{self.input_shape}:{self.dim}:{digest}"

  def save(self, path: str) -> None:
    files.write_npz(path, mean=self.mean, components=self.components, input_shape=np.asarray(self.input_shape))

  @classmethod
  def load(cls, path: str) -> "EigenfaceEncoder":
    with np.load(path, allow_pickle=False) as f:
      return cls(f["mean"], f["components"], f["input_shape"])

  def project(self, images: np.ndarray) -> np.ndarray:
    """uint8 [B, *input_shape] → float32 [B, dim] PCA coordinates, the batch sharded over all devices."""
    if images.reshape(len(images), -1).shape[1] != self.mean.size:
      raise ValueError(f"images of shape {images.shape[1:]} do not match the fitted {self.input_shape}")
    if self._apply is None:
      self._apply = functools.partial(_project, mean=jnp.asarray(self.mean), components=jnp.asarray(self.components))
      self._mesh = sharding.make_mesh()
    return sharding.apply_to_batch(self._apply, images, self._mesh)

  def __call__(self, images: np.ndarray) -> np.ndarray:
    """uint8 [B, *input_shape] → float32 [B, dim] unit embeddings (the PCA coordinates normalised)."""
    return unit(self.project(images))
