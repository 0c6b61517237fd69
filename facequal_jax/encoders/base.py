"""The one interface every embedding model offers: uint8 faces → unit float32 embeddings."""
import abc

import numpy as np


class Encoder(abc.ABC):
  """A face encoder.

  Attributes:
    name: short model name (e.g. "eigenfaces").
    dim: embedding size D.
  """
  name: str = ""
  dim: int = 0

  @abc.abstractmethod
  def fingerprint(self) -> str:
    """Identifies the model and its weights (extraction refuses to resume with another one)."""

  @abc.abstractmethod
  def __call__(self, images: np.ndarray) -> np.ndarray:
    """uint8 faces [B, H, W, C] → float32 [B, dim] embeddings of unit L2 norm."""


def unit(embeddings: np.ndarray) -> np.ndarray:
  """float [B, D] → float32 rows of unit L2 norm (all-zero rows stay zero)."""
  embeddings = np.asarray(embeddings, np.float32)
  norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
  return embeddings / np.where(norms > 0, norms, 1.0)
