"""DlibFaceResNet with weights from dlib_weights.read_network against dlib itself, and what the reader refuses."""
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import faces
import shared_data
from facequal_jax.encoders.dlib_weights import DlibFormatError, DlibReader, read_network
from facequal_jax.models.dlib_resnet import DlibFaceResNet

PARITY_CHIPS = 100


def _model_path() -> str:
  return faces.model_file("dlib_face_recognition_resnet_model_v1.dat")


def _lfw_chips(count: int) -> np.ndarray:
  """uint8 [count, 150, 150, 3]: the centre of the first image of the first `count` lfw_dev identities."""
  root = shared_data.path("lfw_dev")
  names = sorted(n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n, f"{n}_0001.jpg")))[:count]
  assert len(names) == count
  chips = [np.asarray(Image.open(os.path.join(root, n, f"{n}_0001.jpg")).convert("RGB"))[50:200, 50:200]
           for n in names]
  return np.stack(chips)


@shared_data.needs("lfw_dev")
def test_descriptors_match_dlib():
  dlib = faces.dlib()
  path = _model_path()
  chips = _lfw_chips(PARITY_CHIPS)
  reference = np.array([np.array(d) for d in dlib.face_recognition_model_v1(path).compute_face_descriptor(list(chips))],
                       np.float32)
  apply = jax.jit(DlibFaceResNet().apply)
  params = read_network(path)
  ours = np.asarray(apply({"params": params}, chips))
  assert ours.shape == (PARITY_CHIPS, 128) and ours.dtype == np.float32
  difference = float(np.abs(ours - reference).max())
  print(f"max |flax - dlib| over {PARITY_CHIPS} chips × 128: {difference:.3g}")
  assert difference <= 1e-4
  # Float input in [0, 255] is the same as uint8.
  np.testing.assert_allclose(np.asarray(apply({"params": params}, chips[:2].astype(np.float32))), ours[:2], atol=1e-6)


def test_params_fit_the_module():
  params = read_network(_model_path())
  shapes = jax.eval_shape(DlibFaceResNet().init, jax.random.PRNGKey(0), jnp.zeros((1, 150, 150, 3), jnp.uint8))
  assert jax.tree.structure(params) == jax.tree.structure(shapes["params"])
  for ours, want in zip(jax.tree.leaves(params), jax.tree.leaves(shapes["params"])):
    assert ours.shape == want.shape and ours.dtype == np.float32
  assert params["stem_conv"]["kernel"].shape == (7, 7, 3, 32)
  assert params["stage4_block1_conv1"]["kernel"].shape == (3, 3, 128, 256)
  assert params["embedding"]["kernel"].shape == (256, 128)


def _refuses(path: str, expected: str):
  with pytest.raises(DlibFormatError, match=re.escape(path) + r": at byte \d+: expected " + expected) as error:
    read_network(path)
  return str(error.value)


def test_refuses_truncated_and_foreign_files(tmp_path):
  path = _model_path()
  with open(path, "rb") as f:
    data = f.read()
  truncated = tmp_path / "truncated.dat"
  truncated.write_bytes(data[:1 << 20])
  message = _refuses(str(truncated), "")
  assert "end of the file (byte 1048576)" in message

  noise = tmp_path / "noise.dat"
  noise.write_bytes(np.random.default_rng(0).bytes(4096))
  _refuses(str(noise), "")

  _refuses(faces.model_file("shape_predictor_5_face_landmarks.dat"), "loss layer 'loss_metric_2'")

  other_layer = tmp_path / "other_layer.dat"
  other_layer.write_bytes(data.replace(b"max_pool_2", b"avg_pool_2", 1))
  message = _refuses(str(other_layer), "pooling layer of layer 3 .*'max_pool_2'")
  assert f"at byte {data.index(b'max_pool_2') - 2}: " in message  # the string's length byte

  trailing = tmp_path / "trailing.dat"
  trailing.write_bytes(data + b"\0")
  _refuses(str(trailing), "the end of the file")


def test_decodes_dlib_integers_and_floats():
  # Integers: a control byte (bit 7 = sign, low nibble = byte count), then |value| little-endian.
  reader = DlibReader(bytes([0x00, 0x01, 0x96, 0x82, 0x2C, 0x01]))
  assert [reader.read_int("i") for _ in range(3)] == [0, 150, -300]
  # Floats: mantissa then exponent as integers. 0.5f = 2^23 · 2^-24 with its two zero low bytes shifted off:
  # 0x80 · 2^-8. 122.782f = 0xF59062 · 2^-17. -1.0 (double) = -2^52 · 2^-52, shifted to -16 · 2^-4.
  reader = DlibReader(bytes([0x01, 0x80, 0x81, 0x08,
                             0x03, 0x62, 0x90, 0xF5, 0x81, 0x11,
                             0x81, 0x10, 0x81, 0x04,
                             0x00, 0x02, 0x00, 0x7D]))  # exponent 32000: +inf
  assert reader.read_float("f") == 0.5
  assert reader.read_float("f") == np.float32(122.782)
  assert reader.read_float("f") == -1.0
  assert reader.read_float("f") == np.inf
  assert reader.pos == len(reader.data)
  with pytest.raises(DlibFormatError, match=r"<bytes>: at byte 0: expected i, found the end of the file \(byte 2\)"):
    DlibReader(bytes([0x02, 0x01])).read_int("i")
