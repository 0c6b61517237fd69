"""ONNX face networks in JAX against onnxruntime, the reference runtime, on graphs shaped like real exports."""
import numpy as np
import pytest

import facequal_jax as fq

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
from benchmarks import onnx_models  # pylint: disable=wrong-import-position  (needs onnx)
from facequal_jax.encoders import onnx_encoder, onnx_graph  # pylint: disable=wrong-import-position
from facequal_jax.errors import DataError, MissingFile, UsageError  # pylint: disable=wrong-import-position


def _write(tmp_path, name, content: bytes) -> str:
  path = tmp_path / name
  path.write_bytes(content)
  return str(path)


def _reference(content: bytes, x: np.ndarray) -> np.ndarray:
  session = onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"])
  return session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]


def _faces(count=8, size=112, seed=0):
  return np.random.default_rng(seed).integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)


def _unit(rows):
  rows = np.asarray(rows, np.float64).reshape(len(rows), -1)
  return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize("build", (onnx_models.iresnet, onnx_models.mobilefacenet), ids=("iresnet", "mobilefacenet"))
@pytest.mark.parametrize("num_devices", (1, 8))
def test_face_networks_match_onnxruntime(tmp_path, build, num_devices):
  """Batch 8 of faces through the encoder (insightface's preprocessing: RGB, (x − 127.5) / 127.5, NCHW) and
  through onnxruntime on the same tensor: unit embeddings agree within 1e-4 in every component."""
  content = build()
  encoder = onnx_encoder.OnnxEncoder(_write(tmp_path, "net.onnx", content), mesh=fq.make_mesh(num_devices))
  faces = _faces()
  want = _unit(_reference(content, ((faces.astype(np.float64) - 127.5) / 127.5).transpose(0, 3, 1, 2)))
  got = encoder(faces)
  assert got.shape == (8, 32) and encoder.dim == 32 and got.dtype == np.float32
  np.testing.assert_allclose(got, want, atol=1e-4)


def test_depthwise_convolutions_match_onnxruntime_on_the_accelerators_path_too(tmp_path, monkeypatch):
  """On a CPU depthwise convolutions run as sums of shifted products; elsewhere as XLA's grouped convolution:
  that path too, forced here, matches onnxruntime on the MobileFaceNet graph (strided and GDC depthwise)."""
  content = onnx_models.mobilefacenet()
  monkeypatch.setattr(onnx_graph.jax, "default_backend", lambda: "gpu")
  encoder = onnx_encoder.OnnxEncoder(_write(tmp_path, "net.onnx", content))
  faces = _faces(seed=5)
  want = _unit(_reference(content, ((faces.astype(np.float64) - 127.5) / 127.5).transpose(0, 3, 1, 2)))
  np.testing.assert_allclose(encoder(faces), want, atol=1e-4)


@pytest.mark.parametrize("batch", (1, 3))
def test_graphs_exported_for_a_fixed_batch_run_on_any_number_of_faces(tmp_path, batch):
  content = onnx_models.iresnet(batch=batch)
  encoder = onnx_encoder.OnnxEncoder(_write(tmp_path, "fixed.onnx", content))
  faces = _faces(count=5)
  x = (faces.astype(np.float32) - 127.5) / 127.5
  want = np.concatenate([_reference(content, np.transpose(x[i:i + 1], (0, 3, 1, 2)).repeat(batch, 0))[:1]
                         for i in range(5)])  # each face alone (the others of its run: copies of it)
  np.testing.assert_allclose(encoder(faces), _unit(want), atol=1e-4)


def test_every_supported_op_matches_onnxruntime(tmp_path):
  """Pools (ceil mode, padding counted or not), Pad, Clip, Sub, Div, Transpose, ReduceMean, Squeeze, Cast,
  Concat, Identity, Constant, Gemm with alpha and beta: the raw graph output against onnxruntime."""
  content = onnx_models.every_op()
  graph = onnx_graph.read_graph(_write(tmp_path, "ops.onnx", content))
  x = np.random.default_rng(3).normal(size=(4, 3, 32, 32)).astype(np.float32)
  np.testing.assert_allclose(np.asarray(graph.apply(graph.weights, x)), _reference(content, x), rtol=1e-5, atol=1e-5)


def test_bgr_models_get_channels_reversed_and_their_own_normalisation(tmp_path):
  content = onnx_models.iresnet(seed=4)
  preprocessing = onnx_encoder.OnnxPreprocessing(channels="bgr", mean=0.0, std=255.0)
  encoder = onnx_encoder.OnnxEncoder(_write(tmp_path, "bgr.onnx", content), preprocessing=preprocessing)
  faces = _faces(seed=1)
  want = _unit(_reference(content, (faces[..., ::-1].astype(np.float64) / 255.0).transpose(0, 3, 1, 2)))
  np.testing.assert_allclose(encoder(faces), want, atol=1e-4)
  assert encoder.fingerprint() != onnx_encoder.OnnxEncoder(_write(tmp_path, "bgr.onnx", content)).fingerprint()


def test_bfloat16_agrees_with_float32(tmp_path):
  """The bfloat16 option: each face's embedding within cosine 0.999 of float32's (a random-weight iResNet, the
  harder case: nothing in it was trained to be robust)."""
  path = _write(tmp_path, "net.onnx", onnx_models.iresnet())
  faces = _faces(16, seed=2)
  full = onnx_encoder.OnnxEncoder(path)(faces)
  half = onnx_encoder.OnnxEncoder(path, dtype="bfloat16")
  assert np.einsum("nd,nd->n", full, half(faces)).min() > 0.999
  assert half.fingerprint().endswith(":bfloat16")


def test_bad_files_and_unsupported_ops_are_named_in_one_line(tmp_path):
  with pytest.raises(MissingFile, match="nowhere.onnx"):
    onnx_graph.read_graph(str(tmp_path / "nowhere.onnx"))
  with pytest.raises(DataError, match="notes.onnx is not a readable ONNX model"):
    onnx_graph.read_graph(_write(tmp_path, "notes.onnx", b"these are not the weights you are looking for"))
  content = onnx_models.mobilefacenet()
  with pytest.raises(DataError, match="half.onnx is not a readable ONNX model"):
    onnx_graph.read_graph(_write(tmp_path, "half.onnx", content[:len(content) // 2]))
  from onnx import TensorProto, helper  # pylint: disable=import-outside-toplevel
  nodes = [helper.make_node("LRN", ["x"], ["a"], name="norm1", size=3), helper.make_node("Softplus", ["a"], ["b"],
                                                                                        name="act1"),
           helper.make_node("Relu", ["b"], ["y"], name="relu1")]
  graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
  odd = _write(tmp_path, "odd.onnx", helper.make_model(graph).SerializeToString())
  with pytest.raises(UsageError, match=r"odd.onnx: ONNX ops not supported: LRN \(node norm1\); Softplus \(node act1\)"):
    onnx_graph.read_graph(odd)


def test_the_face_network_exported_by_jax2onnx_reads_back_to_its_own_embeddings(tmp_path):
  """A real trained network: the built-in face network exported to ONNX with jax2onnx (the field's exporter
  for JAX; opset 18, channels last as the network is written) and read back gives the network's embeddings
  for ORL faces within 1e-4, as onnxruntime does on the same file."""
  import faces  # pylint: disable=import-outside-toplevel
  faces.require()
  jax2onnx = pytest.importorskip("jax2onnx")
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from facequal_jax.data import orl  # pylint: disable=import-outside-toplevel
  from facequal_jax.data.preprocess import decode  # pylint: disable=import-outside-toplevel
  from facequal_jax.encoders import face_resnet  # pylint: disable=import-outside-toplevel
  from facequal_jax.models.dlib_resnet import DlibFaceResNet  # pylint: disable=import-outside-toplevel
  params = jax.tree.map(jnp.asarray, face_resnet.load_params(face_resnet.weights_path())[0])
  network = lambda chips: DlibFaceResNet().apply({"params": params}, chips)
  chips = np.stack([np.asarray(decode(image).convert("RGB").resize((150, 150)))
                    for image in orl.load_orl()[0][::50]]).astype(np.float32)  # 8 faces of 8 people
  exported = jax2onnx.to_onnx(network, [jax.ShapeDtypeStruct(chips.shape, jnp.float32)], opset=18)
  path = _write(tmp_path, "face_network.onnx", exported.SerializeToString())
  graph = onnx_graph.read_graph(path)
  want = _unit(network(chips))
  np.testing.assert_allclose(_unit(jax.jit(graph.apply)(graph.weights, chips)), want, atol=1e-4)
  np.testing.assert_allclose(_unit(_reference(exported.SerializeToString(), chips)), want, atol=1e-4)
