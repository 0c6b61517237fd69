"""The user's own face network from an `.onnx` file (e.g. insightface's ArcFace exports) as the encoder.

The graph becomes a JAX function (`onnx_graph.read_graph`) that runs jitted, its batch split over the mesh,
on any JAX device. Preprocessing follows insightface's recognition models by default: ArcFace-aligned faces
at the graph's input size (112 × 112), RGB, `(x − 127.5) / 127.5`, NCHW — each a field of `OnnxPreprocessing`
(and of `encoder.onnx` in the config) for models exported otherwise.
"""
import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from facequal_jax import sharding
from facequal_jax.encoders import onnx_graph
from facequal_jax.encoders.base import Encoder, embed_in_chunks, to_model_input
from facequal_jax.errors import UsageError


@dataclasses.dataclass(frozen=True)
class OnnxPreprocessing:
  """How faces become the graph's input: channel order ("rgb" or "bgr") and (x − mean) / std."""
  channels: str = "rgb"
  mean: float = 127.5
  std: float = 127.5

  def __post_init__(self):
    if self.channels not in ("rgb", "bgr"):
      raise UsageError(f"ONNX encoder channels must be 'rgb' or 'bgr', got {self.channels!r}")
    if not self.std > 0:
      raise UsageError(f"ONNX encoder std must be positive, got {self.std}")


class OnnxEncoder(Encoder):
  """uint8 faces [B, H, W, C] (C ∈ {1, 3, 4}) → unit float32 [B, D] through an ONNX graph; batches split over
  `mesh`; float32 by default, bfloat16 with `dtype`."""
  name = "onnx"

  def __init__(self, path: str, mesh: Optional[Mesh] = None, dtype=jnp.float32,
               preprocessing: OnnxPreprocessing = OnnxPreprocessing()):
    graph = onnx_graph.read_graph(path, dtype)
    shape = graph.input_shape
    if len(shape) != 4 or shape[1] not in (1, 3) or not shape[2] or shape[2] != shape[3]:
      raise UsageError(f"{path}: a face network takes NCHW images with 1 or 3 channels and a square size; "
                       f"its input is {shape}")
    self.graph, self.size, self.channels = graph, shape[2], shape[1]
    self._mesh = mesh or sharding.make_mesh()
    self._dtype = jnp.dtype(dtype).name
    self._preprocessing = preprocessing
    weights = jax.device_put(jax.tree.map(jnp.asarray, graph.weights), sharding.replicated(self._mesh))
    mean, std, bgr = preprocessing.mean, preprocessing.std, preprocessing.channels == "bgr"

    @jax.jit
    def apply(images):
      x = to_model_input(images, self.size, self.channels)
      if bgr and self.channels == 3:
        x = x[..., ::-1]
      embeddings = graph.apply(weights, jnp.transpose((x - mean) / std, (0, 3, 1, 2)))
      embeddings = embeddings.reshape(embeddings.shape[0], -1)
      return embeddings / jnp.maximum(jnp.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)

    self._apply = apply
    probe = jax.ShapeDtypeStruct((1, self.size, self.size, 3), jnp.uint8)
    self.dim = int(jax.eval_shape(apply, probe).shape[1])

  def fingerprint(self) -> str:
    p = self._preprocessing
    computed = "" if self._dtype == "float32" else f":{self._dtype}"
    return (f"{self.name}:{self.graph.name}:{self.graph.sha256[:16]}:{p.channels}:{p.mean:g}:{p.std:g}"
            f"{computed}")

  def __call__(self, images: np.ndarray) -> np.ndarray:
    return embed_in_chunks(self._apply, images, self._mesh, self.dim)
