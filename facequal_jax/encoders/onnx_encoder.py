"""The user's own face network from an `.onnx` file (e.g. insightface's ArcFace exports) as the encoder.

The graph becomes a JAX function (`onnx_graph.read_graph`) that runs jitted, its batch split over the mesh,
on any JAX device. Preprocessing follows insightface's recognition models by default: faces aligned to the
ArcFace template at the graph's input size (112 × 112), RGB, `(x − 127.5) / 127.5` — each a field of
`OnnxPreprocessing` (and of `encoder.onnx` in the config) for models exported otherwise. The layout (NCHW,
insightface's and PyTorch's, or NHWC, JAX's and TensorFlow's) is read from the input's shape; a graph exported
for a fixed batch (e.g. 1) runs on groups of that many faces.
"""
import dataclasses
import os
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from facequal_jax import sharding
from facequal_jax.data.align import TEMPLATES
from facequal_jax.encoders import onnx_graph
from facequal_jax.encoders.base import Encoder, embed_in_chunks, to_model_input
from facequal_jax.errors import UsageError

DTYPES = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class OnnxPreprocessing:
  """How faces become the graph's input.

  Attributes:
    channels: "rgb" or "bgr" order of the input's colour channels.
    mean, std: the input is (x − mean) / std of pixels x in 0–255.
    template: where the network expects the face: "arcface" (insightface's template) or "chip" (dlib's face
      chip, as the built-in face network).
  """
  channels: str = "rgb"
  mean: float = 127.5
  std: float = 127.5
  template: str = "arcface"

  def __post_init__(self):
    if self.channels not in ("rgb", "bgr"):
      raise UsageError(f"--config.encoder.onnx.channels must be 'rgb' or 'bgr', got {self.channels!r}")
    if not isinstance(self.std, (int, float)) or not self.std > 0:
      raise UsageError(f"--config.encoder.onnx.std must be a positive number, got {self.std!r}")
    if not isinstance(self.mean, (int, float)):
      raise UsageError(f"--config.encoder.onnx.mean must be a number, got {self.mean!r}")
    if self.template not in TEMPLATES:
      raise UsageError(f"--config.encoder.onnx.template must be one of {', '.join(map(repr, TEMPLATES))}, "
                       f"got {self.template!r}")


def image_layout(path: str, shape: tuple) -> str:
  """"NCHW" or "NHWC" for a face network's input `shape` (square, 1 or 3 channels).

  Raises:
    UsageError: neither.
  """
  if len(shape) == 4 and shape[1] in (1, 3) and shape[2] and shape[2] == shape[3]:
    return "NCHW"
  if len(shape) == 4 and shape[3] in (1, 3) and shape[1] and shape[1] == shape[2]:
    return "NHWC"
  raise UsageError(f"{path}: a face network takes square images with 1 or 3 channels, NCHW or NHWC; "
                   f"its input is {shape}")


class OnnxEncoder(Encoder):
  """uint8 faces [B, H, W, C] (C ∈ {1, 3, 4}) → unit float32 [B, D] through an ONNX graph; batches split over
  `mesh`; float32 by default, bfloat16 with `dtype`."""
  name = "onnx"

  def __init__(self, path: str, mesh: Optional[Mesh] = None, dtype=jnp.float32,
               preprocessing: OnnxPreprocessing = OnnxPreprocessing()):
    if jnp.dtype(dtype).name not in DTYPES:
      raise UsageError(f"--config.encoder.onnx.dtype must be one of {', '.join(DTYPES)}, "
                       f"got {jnp.dtype(dtype).name!r}")
    graph = onnx_graph.read_graph(path, dtype)
    layout = image_layout(path, graph.input_shape)
    channels_at = layout.index("C")
    self.graph, self.path, self.layout = graph, path, layout
    self.input_size, self.channels = graph.input_shape[2], graph.input_shape[channels_at]
    self.template = preprocessing.template
    self._mesh = mesh or sharding.make_mesh()
    self._dtype = jnp.dtype(dtype).name
    self._preprocessing = preprocessing
    weights = jax.device_put(jax.tree.map(jnp.asarray, graph.weights), sharding.replicated(self._mesh))
    mean, std, bgr = preprocessing.mean, preprocessing.std, preprocessing.channels == "bgr"
    fixed_batch = graph.input_shape[0]

    def network(x):  # float [b, size, size, channels] → float32 [b, D]
      if layout == "NCHW":
        x = jnp.transpose(x, (0, 3, 1, 2))
      if not fixed_batch:
        return graph.apply(weights, x)
      count, groups = x.shape[0], -(-x.shape[0] // fixed_batch)
      x = jnp.pad(x, [(0, groups * fixed_batch - count)] + [(0, 0)] * 3)
      grouped = jax.vmap(lambda group: graph.apply(weights, group))(x.reshape((groups, fixed_batch) + x.shape[1:]))
      return grouped.reshape((groups * fixed_batch,) + grouped.shape[2:])[:count]

    @jax.jit
    def apply(images):
      x = to_model_input(images, self.input_size, self.channels)
      if bgr and self.channels == 3:
        x = x[..., ::-1]
      embeddings = network((x - mean) / std)
      embeddings = embeddings.reshape(embeddings.shape[0], -1)
      return embeddings / jnp.maximum(jnp.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)

    self._apply = apply
    probe = jax.ShapeDtypeStruct((1, self.input_size, self.input_size, 3), jnp.uint8)
    self.dim = int(jax.eval_shape(apply, probe).shape[1])

  def fingerprint(self) -> str:
    p = self._preprocessing
    computed = "" if self._dtype == "float32" else f":{self._dtype}"
    return (f"{self.name}:{self.graph.name}:{self.graph.sha256[:16]}:{p.channels}:{p.mean:g}:{p.std:g}"
            f"{computed}")

  def describe(self) -> dict:
    return dict(super().describe(), file=os.path.basename(self.path), sha256=self.graph.sha256,
                input=f"{self.layout} {self.input_size} × {self.input_size} × {self.channels}", dim=self.dim,
                dtype=self._dtype, **dataclasses.asdict(self._preprocessing))

  def __call__(self, images: np.ndarray) -> np.ndarray:
    return embed_in_chunks(self._apply, images, self._mesh, self.dim)
