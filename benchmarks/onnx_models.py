"""ONNX graphs built here with random weights, in the shape of real face-recognition exports.

`iresnet`: insightface's iResNet (BN–Conv–BN–PReLU–Conv–BN blocks with strided 1 × 1 shortcuts, a
BN–Dropout–Flatten–Gemm–BN head), opset 11. `mobilefacenet`: depthwise convolutions, PReLU, inverted
residual bottlenecks, a squeeze-and-excitation gate and the linear global depthwise (GDC) head, with the
Shape → Gather → Unsqueeze → Concat → Reshape flatten of PyTorch exports, opset 13. `every_op`: the rest of
the supported ops in one small graph. Each returns the serialized model.
"""
import numpy as np
from onnx import TensorProto, helper, numpy_helper


class _Builder:
  def __init__(self, seed: int):
    self.rng = np.random.default_rng(seed)
    self.nodes, self.initializers, self.count = [], [], 0

  def name(self, prefix: str) -> str:
    self.count += 1
    return f"{prefix}_{self.count}"

  def weight(self, shape, scale=None, positive=False, dtype=np.float32) -> str:
    scale = scale if scale is not None else 1.0 / np.sqrt(max(np.prod(shape[1:]), 1))
    value = self.rng.normal(size=shape) * scale
    value = np.abs(value) + 0.5 if positive else value
    name = self.name("w")
    self.initializers.append(numpy_helper.from_array(value.astype(dtype), name))
    return name

  def constant(self, value) -> str:
    name = self.name("c")
    self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
    return name

  def node(self, op: str, inputs, outputs=1, **attrs):
    names = [self.name(op.lower()) for _ in range(outputs)]
    self.nodes.append(helper.make_node(op, list(inputs), names, name=self.name(op), **attrs))
    return names[0] if outputs == 1 else names

  def conv(self, x, c_in, c_out, kernel, stride=1, group=1, bias=False, pad=None):
    pad = kernel // 2 if pad is None else pad
    inputs = [x, self.weight((c_out, c_in // group, kernel, kernel))] + ([self.weight((c_out,), 0.1)] if bias else [])
    return self.node("Conv", inputs, kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[pad] * 4,
                     group=group)

  def bn(self, x, channels):
    return self.node("BatchNormalization", [x, self.weight((channels,), positive=True), self.weight((channels,), 0.1),
                                            self.weight((channels,), 0.1), self.weight((channels,), positive=True)],
                     epsilon=2e-5)

  def prelu(self, x, channels):
    return self.node("PRelu", [x, self.weight((channels, 1, 1), 0.25)])

  def model(self, x_name, size, output, opset, batch="batch") -> bytes:
    graph = helper.make_graph(self.nodes, "face", [helper.make_tensor_value_info(x_name, TensorProto.FLOAT,
                                                                                 [batch, 3, size, size])],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)], self.initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def iresnet(seed: int = 0, size: int = 112, widths=(8, 16, 32), blocks=(1, 1, 1), dim: int = 32,
            batch="batch") -> bytes:
  """An iResNet; insightface's iResNet-50 is widths (64, 128, 256, 512), blocks (3, 4, 14, 3), dim 512.
  `batch`: the input's batch dimension, open (a name) or fixed (a number)."""
  b = _Builder(seed)
  x = b.prelu(b.bn(b.conv("data", 3, widths[0], 3), widths[0]), widths[0])
  channels = widths[0]
  for out, count in zip(widths, blocks):  # each stage halves the resolution in its first block
    for block in range(count):
      stride = 2 if block == 0 else 1
      y = b.bn(x, channels)
      y = b.prelu(b.bn(b.conv(y, channels, out, 3), out), out)
      y = b.bn(b.conv(y, out, out, 3, stride=stride), out)
      shortcut = b.bn(b.conv(x, channels, out, 1, stride=2, pad=0), out) if block == 0 else x
      x, channels = b.node("Add", [y, shortcut]), out
  x = b.bn(x, channels)
  x = b.node("Dropout", [x])
  x = b.node("Flatten", [x], axis=1)
  features = channels * (size // 2 ** len(widths)) ** 2
  x = b.node("Gemm", [x, b.weight((dim, features)), b.weight((dim,), 0.1)], transB=1)
  return b.model("data", size, b.bn(x, dim), 11, batch)


def mobilefacenet(seed: int = 1, size: int = 112, width: int = 8, dim: int = 32) -> bytes:
  b = _Builder(seed)
  x = b.prelu(b.bn(b.conv("input.1", 3, width, 3, stride=2), width), width)
  x = b.prelu(b.bn(b.conv(x, width, width, 3, group=width), width), width)  # depthwise
  channels = width
  for out, stride in ((width, 2), (width, 1), (2 * width, 2), (2 * width, 2)):
    hidden = 2 * channels
    y = b.prelu(b.bn(b.conv(x, channels, hidden, 1, pad=0), hidden), hidden)
    y = b.prelu(b.bn(b.conv(y, hidden, hidden, 3, stride=stride, group=hidden), hidden), hidden)
    y = b.bn(b.conv(y, hidden, out, 1, pad=0), out)
    x, channels = (b.node("Add", [x, y]) if stride == 1 and out == channels else y), out
  gate = b.node("GlobalAveragePool", [x])  # squeeze-and-excitation
  gate = b.node("Relu", [b.conv(gate, channels, channels // 2, 1, bias=True, pad=0)])
  gate = b.node("Sigmoid", [b.conv(gate, channels // 2, channels, 1, bias=True, pad=0)])
  x = b.node("Mul", [x, gate])
  x = b.prelu(b.bn(b.conv(x, channels, 4 * channels, 1, pad=0), 4 * channels), 4 * channels)
  side = size // 16
  x = b.bn(b.conv(x, 4 * channels, 4 * channels, side, group=4 * channels, pad=0), 4 * channels)  # GDC
  batch = b.node("Gather", [b.node("Shape", [x]), b.constant(np.array(0, np.int64))], axis=0)
  shape = b.node("Concat", [b.node("Unsqueeze", [batch, b.constant(np.array([0], np.int64))]),
                            b.constant(np.array([-1], np.int64))], axis=0)
  x = b.node("Reshape", [x, shape])
  x = b.node("MatMul", [x, b.weight((4 * channels, dim))])
  return b.model("input.1", size, b.bn(x, dim), 13)


def every_op(seed: int = 2) -> bytes:
  """The supported ops neither network above uses: pools, padding, clipping, arithmetic and shape ops; 32 × 32
  input (34 padded, 17 after the max pool, 9 and 5 after the average pools)."""
  size = 32
  b = _Builder(seed)
  x = b.node("Sub", ["x", b.constant(np.array(0.1, np.float32))])
  x = b.node("Div", [x, b.constant(np.array(1.5, np.float32))])
  x = b.node("Pad", [x, b.constant(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))], mode="constant")
  x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)  # 34 → 17
  x = b.node("AveragePool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])  # 17 → 9
  x = b.node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 0, 0], count_include_pad=1)
  low, high = b.node("Constant", [], value=numpy_helper.from_array(np.array(-0.5, np.float32))), \
      b.constant(np.array(0.8, np.float32))
  x = b.node("Clip", [x, low, high])
  x = b.node("Identity", [b.conv(x, 3, 6, 3, bias=True)])
  x = b.node("Transpose", [x], perm=[0, 2, 3, 1])  # NHWC
  mean = b.node("ReduceMean", [x], axes=[1, 2], keepdims=1)  # [B, 1, 1, 6]
  rows = b.node("ReduceMean", [x], axes=[1], keepdims=1)  # [B, 1, 5, 6]
  x = b.node("Concat", [b.node("Squeeze", [mean, b.constant(np.array([1, 2], np.int64))]),
                        b.node("Flatten", [b.node("Cast", [rows], to=TensorProto.FLOAT)], axis=1)], axis=1)
  x = b.node("Gemm", [x, b.weight((6 + 5 * 6, 16)), b.weight((16,), 0.1)], alpha=0.7, beta=0.5)
  return b.model("x", size, b.node("Relu", [x]), 13)
