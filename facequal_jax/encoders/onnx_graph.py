"""An ONNX graph as a JAX function: the ops of face-recognition exports, one function each.

`read_graph(path)` reads the file with the `onnx` package (the `onnx` extra) and returns a `Graph`: its
float weights as a pytree of arrays and `graph.apply(weights, x)`, a pure function of them and the input
that jits, shards and runs on any JAX device. Layouts stay the graph's own (NCHW); XLA chooses the device's.
Integer and scalar initializers and everything computed from shapes alone (the Shape → Gather → Concat →
Reshape chains of PyTorch exports) stay numpy values, so shapes are static under `jit`.

`OPS` is the one table of supported op types, at the opsets face-recognition models are exported with
(insightface's: 11–13; jax2onnx's: up to 18). Forms that moved from attributes to inputs — Unsqueeze's,
Squeeze's and ReduceMean's axes, Clip's bounds, Pad's pads — are read from either, and Pad's axes input is
honoured. A graph with other ops is refused before anything runs, in one line that names them and their
nodes.
"""
import dataclasses
import hashlib
import math
import os
from typing import Callable, Dict, List

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from facequal_jax.errors import DataError, MissingFile, UsageError

OPS: Dict[str, Callable] = {}


def _op(*names: str):
  def register(function):
    for name in names:
      OPS[name] = function
    return function
  return register


def _static(*values) -> bool:
  return all(isinstance(v, np.ndarray) for v in values)


def _np_or_jnp(*values):
  return np if _static(*values) else jnp


def _ints(value) -> List[int]:
  if not _static(value):
    raise UsageError("an ONNX shape or axis input is computed from the data; only constant shapes are supported")
  return [int(v) for v in np.asarray(value).reshape(-1)]


def _optional(inputs: list, position: int):
  return inputs[position] if len(inputs) > position and inputs[position] is not None else None


def _pads(attrs: dict, spatial: int, in_shape, kernel, strides, dilations) -> List[tuple]:
  """(low, high) padding per spatial axis from `pads` or `auto_pad`."""
  auto = attrs.get("auto_pad", b"NOTSET")
  auto = auto.decode() if isinstance(auto, bytes) else auto
  if auto in ("SAME_UPPER", "SAME_LOWER"):
    out = []
    for size, k, s, d in zip(in_shape, kernel, strides, dilations):
      total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
      low = total // 2 if auto == "SAME_UPPER" else total - total // 2
      out.append((low, total - low))
    return out
  if auto == "VALID":
    return [(0, 0)] * spatial
  pads = attrs.get("pads", [0] * 2 * spatial)
  return [(pads[i], pads[i + spatial]) for i in range(spatial)]


def _depthwise(x, w, strides, padding, dilations):
  """A depthwise convolution (one filter per channel) as a sum of shifted products, one per kernel tap: XLA's
  CPU grouped convolution runs several times slower than this fused elementwise sum."""
  x = jnp.pad(x, [(0, 0), (0, 0)] + list(padding))
  kh, kw = w.shape[2:]
  out_h = (x.shape[2] - (kh - 1) * dilations[0] - 1) // strides[0] + 1
  out_w = (x.shape[3] - (kw - 1) * dilations[1] - 1) // strides[1] + 1
  y = 0.0
  for i in range(kh):
    for j in range(kw):
      top, left = i * dilations[0], j * dilations[1]
      rows = slice(top, top + (out_h - 1) * strides[0] + 1, strides[0])
      columns = slice(left, left + (out_w - 1) * strides[1] + 1, strides[1])
      y = y + x[:, :, rows, columns] * w[:, 0, i, j].reshape(1, -1, 1, 1)
  return y


@_op("Conv")
def _conv(inputs, attrs, precision):
  x, w, b = inputs[0], inputs[1], _optional(inputs, 2)
  spatial = w.ndim - 2
  strides = attrs.get("strides", [1] * spatial)
  dilations = attrs.get("dilations", [1] * spatial)
  padding = _pads(attrs, spatial, x.shape[2:], w.shape[2:], strides, dilations)
  group = attrs.get("group", 1)
  if group > 1 and group == x.shape[1] == w.shape[0] and spatial == 2 and jax.default_backend() == "cpu":
    y = _depthwise(x, jnp.asarray(w, x.dtype), strides, padding, dilations)
    return [y if b is None else y + jnp.asarray(b, x.dtype).reshape(1, -1, 1, 1)]
  # channels last inside (XLA's CPU convolutions run about 15 % faster so), the graph's NC… outside
  channels_last = (0,) + tuple(range(2, spatial + 2)) + (1,)
  kernel_last = tuple(range(2, spatial + 2)) + (1, 0)
  names = {1: ("NHC", "HIO", "NHC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}[spatial]
  y = lax.conv_general_dilated(jnp.transpose(x, channels_last), jnp.transpose(jnp.asarray(w, x.dtype), kernel_last),
                               strides, padding, rhs_dilation=dilations, feature_group_count=attrs.get("group", 1),
                               dimension_numbers=names, precision=precision)
  y = jnp.transpose(y, (0, spatial + 1) + tuple(range(1, spatial + 1)))
  return [y if b is None else y + jnp.asarray(b, x.dtype).reshape((1, -1) + (1,) * spatial)]


def _per_channel(value, like):
  return jnp.asarray(value, like.dtype).reshape((1, -1) + (1,) * (like.ndim - 2))


@_op("BatchNormalization")
def _batch_norm(inputs, attrs, precision):
  del precision
  x, scale, bias, mean, var = inputs[:5]
  factor = _per_channel(scale, x) / jnp.sqrt(_per_channel(var, x) + attrs.get("epsilon", 1e-5))
  return [(x - _per_channel(mean, x)) * factor + _per_channel(bias, x)]


@_op("PRelu")
def _prelu(inputs, attrs, precision):
  del attrs, precision
  x, slope = inputs
  return [jnp.where(x < 0, x * jnp.asarray(slope, x.dtype), x)]


def _elementwise(function):
  def run(inputs, attrs, precision):
    del attrs, precision
    xp = _np_or_jnp(*inputs)
    return [function(xp, *inputs)]
  return run


OPS.update({
    "Relu": _elementwise(lambda xp, x: xp.maximum(x, 0)),
    "Sigmoid": _elementwise(lambda xp, x: 1 / (1 + xp.exp(-x))),
    "Add": _elementwise(lambda xp, a, b: a + b),
    "Sub": _elementwise(lambda xp, a, b: a - b),
    "Mul": _elementwise(lambda xp, a, b: a * b),
    "Div": _elementwise(lambda xp, a, b: a // b if _static(a, b) and a.dtype.kind in "iu" else a / b),
    "Identity": _elementwise(lambda xp, x: x),
})


@_op("Dropout")
def _dropout(inputs, attrs, precision):  # inference: the input, and (if asked for) an all-true mask
  del attrs, precision
  return [inputs[0], jnp.ones(inputs[0].shape, bool)]


@_op("Flatten")
def _flatten(inputs, attrs, precision):
  del precision
  x = inputs[0]
  axis = attrs.get("axis", 1) % max(x.ndim, 1)
  return [x.reshape(int(np.prod(x.shape[:axis])), -1)]


@_op("Reshape")
def _reshape(inputs, attrs, precision):
  del precision
  x, shape = inputs[0], _ints(inputs[1])
  if not attrs.get("allowzero", 0):
    shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
  return [x.reshape(shape)]


@_op("Gemm")
def _gemm(inputs, attrs, precision):
  a, b, c = inputs[0], inputs[1], _optional(inputs, 2)
  a = a.T if attrs.get("transA", 0) else a
  b = jnp.asarray(b, a.dtype)
  b = b.T if attrs.get("transB", 0) else b
  y = attrs.get("alpha", 1.0) * jnp.matmul(a, b, precision=precision)
  return [y if c is None else y + attrs.get("beta", 1.0) * jnp.asarray(c, a.dtype)]


@_op("MatMul")
def _matmul(inputs, attrs, precision):
  del attrs
  a, b = inputs
  return [jnp.matmul(a, jnp.asarray(b, a.dtype), precision=precision)]


@_op("GlobalAveragePool")
def _global_average(inputs, attrs, precision):
  del attrs, precision
  x = inputs[0]
  return [jnp.mean(x, axis=tuple(range(2, x.ndim)), keepdims=True)]


def _pool(x, attrs, init, reduce):
  """(window reduction, window shape, strides, padding) of a pooling node over NC… input."""
  kernel = attrs["kernel_shape"]
  spatial = len(kernel)
  strides = attrs.get("strides", [1] * spatial)
  dilations = attrs.get("dilations", [1] * spatial)
  padding = _pads(attrs, spatial, x.shape[2:], kernel, strides, dilations)
  if attrs.get("ceil_mode", 0):  # extra high padding so the last partial window counts
    padding = [(low, high + (-(size + low + high - (k - 1) * d - 1)) % s)
               for (low, high), size, k, s, d in zip(padding, x.shape[2:], kernel, strides, dilations)]
  dims, steps = (1, 1) + tuple(kernel), (1, 1) + tuple(strides)
  full = [(0, 0), (0, 0)] + list(padding)
  return lax.reduce_window(x, init, reduce, dims, steps, full, window_dilation=(1, 1) + tuple(dilations)), \
      (dims, steps, full, dilations)


@_op("MaxPool")
def _max_pool(inputs, attrs, precision):
  del precision
  return [_pool(inputs[0], attrs, -jnp.inf, lax.max)[0]]


def _window_counts(kernel: int, stride: int, dilation: int, low: int, out: int, counted: tuple) -> np.ndarray:
  """int [out]: how many taps of each of `out` windows along one axis (the input padded by `low` before it)
  fall on input positions in `counted` = [first, end)."""
  taps = np.arange(out)[:, None] * stride + np.arange(kernel)[None, :] * dilation - low
  return ((taps >= counted[0]) & (taps < counted[1])).sum(axis=1)


@_op("AveragePool")
def _average_pool(inputs, attrs, precision):
  del precision
  x = inputs[0]
  total, (_, steps, full, dilations) = _pool(x, attrs, 0.0, lax.add)
  kernel_shape = attrs["kernel_shape"]
  explicit = _pads(attrs, len(kernel_shape), x.shape[2:], kernel_shape, steps[2:], dilations)
  count = np.ones((), np.float32)  # static (numpy): the outer product of each axis's counts
  for size, kernel, stride, dilation, (low, _), (pad_low, pad_high), out in zip(
      x.shape[2:], kernel_shape, steps[2:], dilations, full[2:], explicit, total.shape[2:]):
    counted = (-pad_low, size + pad_high) if attrs.get("count_include_pad", 0) else (0, size)
    count = np.multiply.outer(count, _window_counts(kernel, stride, dilation, low, out, counted))
  return [total / count.astype(np.float32)]


@_op("Concat")
def _concat(inputs, attrs, precision):
  del precision
  return [_np_or_jnp(*inputs).concatenate(inputs, axis=attrs["axis"])]


@_op("Transpose")
def _transpose(inputs, attrs, precision):
  del precision
  x = inputs[0]
  return [_np_or_jnp(x).transpose(x, attrs.get("perm", list(range(x.ndim))[::-1]))]


@_op("Constant")
def _constant(inputs, attrs, precision):
  del inputs, precision
  from onnx import numpy_helper  # pylint: disable=import-outside-toplevel  (the `onnx` extra)
  if "value" in attrs:
    return [numpy_helper.to_array(attrs["value"])]
  for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                     ("value_ints", np.int64)):
    if key in attrs:
      return [np.asarray(attrs[key], dtype)]
  raise UsageError(f"ONNX Constant with attributes {sorted(attrs)} is not supported")


@_op("Shape")
def _shape(inputs, attrs, precision):
  del precision
  shape = np.asarray(inputs[0].shape, np.int64)
  return [shape[attrs.get("start", 0):attrs.get("end", len(shape))]]


@_op("Gather")
def _gather(inputs, attrs, precision):
  del precision
  data, indices = inputs
  axis = attrs.get("axis", 0)
  if _static(data, indices):
    return [np.take(data, indices, axis=axis)]
  return [jnp.take(data, jnp.asarray(indices) % data.shape[axis], axis=axis)]


def _axes(inputs, attrs, default=None):
  if "axes" in attrs:
    return list(attrs["axes"])
  given = _optional(inputs, 1)
  return default if given is None else _ints(given)


@_op("Unsqueeze")
def _unsqueeze(inputs, attrs, precision):
  del precision
  x = inputs[0]
  axes = sorted(a % (x.ndim + len(_axes(inputs, attrs))) for a in _axes(inputs, attrs))
  for axis in axes:
    x = _np_or_jnp(x).expand_dims(x, axis)
  return [x]


@_op("Squeeze")
def _squeeze(inputs, attrs, precision):
  del precision
  x = inputs[0]
  axes = _axes(inputs, attrs)
  axes = tuple(i for i, s in enumerate(x.shape) if s == 1) if axes is None else tuple(a % x.ndim for a in axes)
  return [_np_or_jnp(x).squeeze(x, axis=axes)]


@_op("Cast")
def _cast(inputs, attrs, precision):
  del precision
  from onnx import helper  # pylint: disable=import-outside-toplevel  (the `onnx` extra)
  dtype = helper.tensor_dtype_to_np_dtype(attrs["to"])
  x = inputs[0]
  return [x.astype(dtype) if _static(x) else x.astype(jnp.dtype(dtype))]


@_op("Clip")
def _clip(inputs, attrs, precision):
  del precision
  low = attrs.get("min", _optional(inputs, 1))
  high = attrs.get("max", _optional(inputs, 2))
  x = inputs[0]
  low = -np.inf if low is None else np.asarray(low).item()
  high = np.inf if high is None else np.asarray(high).item()
  return [jnp.clip(x, low, high)]


@_op("Pad")
def _pad(inputs, attrs, precision):
  del precision
  x = inputs[0]
  mode = attrs.get("mode", b"constant")
  mode = mode.decode() if isinstance(mode, bytes) else mode
  pads = attrs["pads"] if "pads" in attrs else _ints(inputs[1])
  value = attrs.get("value", _optional(inputs, 2))
  value = 0.0 if value is None else float(np.asarray(value).item())
  axes = _optional(inputs, 3)  # opset 18: the pads are for these axes only
  axes = list(range(x.ndim)) if axes is None else [a % x.ndim for a in _ints(axes)]
  width = [(0, 0)] * x.ndim
  for i, axis in enumerate(axes):
    width[axis] = (pads[i], pads[i + len(axes)])
  if mode == "constant":
    return [jnp.pad(x, width, constant_values=value)]
  return [jnp.pad(x, width, mode={"reflect": "reflect", "edge": "edge"}[mode])]


@_op("ReduceMean")
def _reduce_mean(inputs, attrs, precision):
  del precision
  x = inputs[0]
  axes = _axes(inputs, attrs)
  return [jnp.mean(x, axis=None if axes is None else tuple(axes), keepdims=bool(attrs.get("keepdims", 1)))]


@dataclasses.dataclass(frozen=True)
class Graph:
  """A face-recognition graph ready to run.

  Attributes:
    name: the file's base name; sha256: its hex digest.
    weights: {initializer name: float32 numpy array} — the arguments `apply` takes as weights.
    input_shape: the graph input's shape, e.g. (None, 3, 112, 112) (None where the file leaves it open).
    apply: (weights, float [B, …] input in the graph's layout) → float32 [B, D], the first graph output.
  """
  name: str
  sha256: str
  weights: Dict[str, np.ndarray]
  input_shape: tuple
  apply: Callable


def _attributes(node) -> dict:
  from onnx import helper  # pylint: disable=import-outside-toplevel  (the `onnx` extra)
  return {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}


def read_graph(path: str, dtype=jnp.float32) -> Graph:
  """Reads an `.onnx` file (a face-recognition network: one image input, the embedding as first output).

  Args:
    path: the file; dtype: float32, or bfloat16 to compute in bfloat16 (weights cast on the fly).

  Raises:
    MissingFile: no such file. DataError: not an ONNX model, or a truncated one. UsageError: ops this module
      does not convert (named with their nodes), or a graph with other than one input; `onnx` missing.
  """
  try:
    import onnx  # pylint: disable=import-outside-toplevel  (the `onnx` extra)
    from onnx import numpy_helper  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    raise UsageError(f"reading {path} needs the `onnx` package: pip install -e \".[onnx]\"") from error
  if not os.path.isfile(path):
    raise MissingFile(f"ONNX model {path} does not exist")
  with open(path, "rb") as f:
    content = f.read()
  try:
    model = onnx.load_model_from_string(content)
  except Exception as error:  # pylint: disable=broad-except  (protobuf raises its own DecodeError)
    raise DataError(f"{path} is not a readable ONNX model (truncated or another format): "
                    f"{type(error).__name__}") from error
  graph = model.graph
  if not graph.node or not graph.output:
    raise DataError(f"{path} is not a readable ONNX model (no graph nodes or outputs; truncated or another format)")
  missing = {}
  for position, node in enumerate(graph.node):
    if node.op_type not in OPS or (node.domain not in ("", "ai.onnx")):
      missing.setdefault(node.op_type, []).append(node.name or f"#{position}")
  if missing:
    listed = "; ".join(f"{op} (node{'s' if len(nodes) > 1 else ''} {', '.join(nodes[:3])}"
                       f"{', …' if len(nodes) > 3 else ''})" for op, nodes in sorted(missing.items()))
    raise UsageError(f"{path}: ONNX ops not supported: {listed}; supported: {', '.join(sorted(OPS))}")
  initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
  inputs = [i for i in graph.input if i.name not in initializers]
  if len(inputs) != 1:
    raise UsageError(f"{path}: a face network has one image input; this graph has {len(inputs)}: "
                     f"{', '.join(i.name for i in inputs)}")
  input_name, output_name = inputs[0].name, graph.output[0].name
  input_shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim)
  is_weight = lambda v: v.dtype.kind == "f" and v.ndim > 0  # float scalars (pad values, bounds) stay static
  weights = {k: np.asarray(v, np.float32) for k, v in initializers.items() if is_weight(v)}
  static = {k: v for k, v in initializers.items() if not is_weight(v)}
  nodes = [(node.op_type, list(node.input), list(node.output), _attributes(node)) for node in graph.node]
  precision = lax.Precision.HIGHEST if jnp.dtype(dtype) == jnp.float32 else lax.Precision.DEFAULT

  def apply(weights, x):
    env = dict(static)
    env.update({k: jnp.asarray(v, dtype) for k, v in weights.items()})
    env[input_name] = jnp.asarray(x, dtype)
    for op_type, names_in, names_out, attrs in nodes:
      values = [env[name] if name else None for name in names_in]
      for name, value in zip(names_out, OPS[op_type](values, attrs, precision)):
        if name:  # numpy's scalars stay numpy arrays: static
          env[name] = np.asarray(value) if isinstance(value, np.generic) else value
    return jnp.asarray(env[output_name], jnp.float32)

  return Graph(os.path.basename(path), hashlib.sha256(content).hexdigest(), weights, input_shape, apply)
