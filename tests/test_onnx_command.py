"""`python -m facequal_jax` with the user's own `.onnx` face network as the encoder: on an image folder, a `.lst`
and a `.rec` pack, resumed after a kill, refusing bad models in one line, and the built-in face network exported
to ONNX giving the built-in job's report."""
import hashlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
from benchmarks import onnx_models  # pylint: disable=wrong-import-position  (needs onnx)
from facequal_jax.configs import iq  # pylint: disable=wrong-import-position
from facequal_jax.data import extract, orl, recordio  # pylint: disable=wrong-import-position
from facequal_jax.encoders import onnx_encoder  # pylint: disable=wrong-import-position
from facequal_jax.errors import DataError, MissingFile, UsageError  # pylint: disable=wrong-import-position
from facequal_jax.jobs import command, preflight  # pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDENTITIES, IMAGES = 8, 6


@pytest.fixture(scope="module")
def crops():
  """uint8 [48, 112, 112, 3] ArcFace-sized crops (bundled ORL faces, 8 people × 6, made square) in label order,
  and their labels."""
  images, labels = orl.load_orl()
  chosen = np.concatenate([np.flatnonzero(labels == label)[:IMAGES] for label in range(IDENTITIES)])
  squares = [np.asarray(Image.fromarray(images[i]).convert("RGB").resize((112, 112))) for i in chosen]
  return np.stack(squares), labels[chosen]


def _png(image: np.ndarray) -> bytes:
  out = io.BytesIO()
  Image.fromarray(image).save(out, format="PNG")
  return out.getvalue()


@pytest.fixture(scope="module")
def sources(crops, tmp_path_factory):
  """The crops as an image folder, an im2rec `.lst` and an insightface `.rec` pack, all in the crops' order."""
  root = tmp_path_factory.mktemp("crops")
  images, labels = crops
  lines = []
  for n, (image, label) in enumerate(zip(images, labels)):
    relative = os.path.join(f"person{label:02d}", f"{n:02d}.png")
    os.makedirs(root / "folder" / f"person{label:02d}", exist_ok=True)
    (root / "folder" / relative).write_bytes(_png(image))
    lines.append(f"{n}\t{label}.000000\tfolder/{relative}\n")
  (root / "faces.lst").write_text("".join(lines))
  recordio.write_face_pack(str(root / "faces.rec"), [(int(label), _png(image)) for image, label in zip(images, labels)])
  return {"images": str(root / "folder"), "lst": str(root / "faces.lst"), "rec": str(root / "faces.rec")}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
  path = tmp_path_factory.mktemp("model") / "tiny_iresnet.onnx"
  path.write_bytes(onnx_models.iresnet())
  return str(path)


def _reference(model_path: str, images: np.ndarray) -> np.ndarray:
  """onnxruntime's unit embeddings of uint8 RGB faces [n, 112, 112, 3] with insightface's preprocessing."""
  session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
  x = np.transpose((images.astype(np.float32) - 127.5) / 127.5, (0, 3, 1, 2))
  rows = session.run(None, {session.get_inputs()[0].name: x})[0].astype(np.float64)
  return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _config(model_path: str, **fields):
  config = iq.get_config()
  config.encoder.name = model_path
  config.k = 5
  config.extract.chunk_rows = 16
  config.extract.workers = 2
  for name, value in fields.items():
    section, field = name.split("__")
    config[section][field] = value
  return config


def _run(config, workdir: str):
  preflight.check(config, workdir)
  return command.iq_command(config, workdir)


@pytest.mark.parametrize("kind", ("images", "lst", "rec"))
def test_an_onnx_encoder_embeds_a_folder_a_list_and_a_pack_as_onnxruntime_does(kind, sources, crops, model,
                                                                             tmp_path):
  """ArcFace crops (a `.rec` pack: as they are; a folder or list: their centred square, here the whole crop) at
  the graph's 112 × 112, RGB, (x − 127.5) / 127.5: the job's embeddings are onnxruntime's within 1e-4, and
  report.json names the model's file and its whole SHA-256."""
  config = _config(model, preprocess__align="auto" if kind == "rec" else "centre")
  if kind == "rec":
    config.data.rec = sources["rec"]
  else:
    config.data.images = sources[kind]
  outcome = _run(config, str(tmp_path))
  stored = np.load(tmp_path / "embeddings" / "embeddings.npz")
  np.testing.assert_array_equal(stored["source_rows"], np.arange(IDENTITIES * IMAGES))
  np.testing.assert_array_equal(stored["labels"], crops[1] - crops[1].min())
  np.testing.assert_allclose(stored["embeddings"], _reference(model, crops[0]), atol=1e-4)
  report = json.loads((tmp_path / "report.json").read_text())
  with open(model, "rb") as f:
    digest = hashlib.sha256(f.read()).hexdigest()
  encoder = report["data"]["encoder"]
  assert (encoder["file"], encoder["sha256"], encoder["dim"]) == ("tiny_iresnet.onnx", digest, 32)
  assert report["data"]["preprocess"]["template"] == "arcface" and report["data"]["preprocess"]["size"] == 112
  assert report["data"]["preprocess"]["align"] == ("arcface" if kind == "rec" else "centre")
  assert outcome.report.num_samples == IDENTITIES * IMAGES


class _Killed(Exception):
  """Stands for SIGKILL at a chosen point: the chunk files written so far stay, nothing else runs."""


def test_an_onnx_extraction_killed_after_a_chunk_resumes_where_it_stopped(sources, crops, model, tmp_path,
                                                                          monkeypatch):
  config = _config(model, data__rec=sources["rec"])
  extract_embeddings = extract.extract_embeddings

  def killed_after_chunk_one(*args, **kwargs):
    def after_chunk(number):
      if number == 1:
        raise _Killed
    return extract_embeddings(*args, **kwargs, after_chunk=after_chunk)

  monkeypatch.setattr(extract, "extract_embeddings", killed_after_chunk_one)
  with pytest.raises(_Killed):
    _run(config, str(tmp_path))
  monkeypatch.setattr(extract, "extract_embeddings", extract_embeddings)
  embedded = []
  call = onnx_encoder.OnnxEncoder.__call__
  monkeypatch.setattr(onnx_encoder.OnnxEncoder, "__call__", lambda self, images: embedded.append(len(images))
                      or call(self, images))
  _run(config, str(tmp_path))
  assert sum(embedded) == 2 * (IDENTITIES * IMAGES - 2 * 16)  # chunks 0 and 1 were kept (× 2: the mirror pass)
  stored = np.load(tmp_path / "embeddings" / "embeddings.npz")
  np.testing.assert_allclose(stored["embeddings"], _reference(model, crops[0]), atol=1e-4)


def test_bad_models_and_settings_are_refused_in_one_line(tmp_path, model):
  workdir = str(tmp_path / "out")
  with pytest.raises(MissingFile, match="missing.onnx"):
    _run(_config(str(tmp_path / "missing.onnx")), workdir)
  (tmp_path / "notes.onnx").write_bytes(b"these are not the weights you are looking for")
  with pytest.raises(DataError, match=r"notes.onnx is not a readable ONNX model"):
    _run(_config(str(tmp_path / "notes.onnx")), workdir)
  (tmp_path / "half.onnx").write_bytes(onnx_models.iresnet()[:5000])
  with pytest.raises(DataError, match=r"half.onnx is not a readable ONNX model"):
    _run(_config(str(tmp_path / "half.onnx")), workdir)
  for field, value, message in [("channels", "grb", r"encoder.onnx.channels must be 'rgb' or 'bgr'"),
                                ("std", 0.0, r"encoder.onnx.std must be a positive number"),
                                ("template", "dlib", r"encoder.onnx.template must be one of 'chip', 'arcface'"),
                                ("dtype", "float16", r"encoder.onnx.dtype must be one of 'float32', 'bfloat16'")]:
    config = _config(model)
    config.encoder.onnx[field] = value
    with pytest.raises(UsageError, match=message):
      _run(config, workdir)


def test_an_unsupported_op_stops_the_command_with_one_line(tmp_path):
  """The whole command (a process): the error is one line naming the op and its node, no traceback."""
  from onnx import TensorProto, helper  # pylint: disable=import-outside-toplevel
  nodes = [helper.make_node("LRN", ["x"], ["y"], name="norm1", size=3)]
  graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 8, 8])],
                            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
  (tmp_path / "lrn.onnx").write_bytes(helper.make_model(graph).SerializeToString())
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  result = subprocess.run([sys.executable, "-m", "facequal_jax", f"--workdir={tmp_path / 'out'}",
                           f"--config.encoder.name={tmp_path / 'lrn.onnx'}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode != 0
  errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
  assert len(errors) == 1 and "lrn.onnx: ONNX ops not supported: LRN (node norm1)" in errors[0], result.stderr
  assert "Traceback" not in result.stderr


def test_the_face_network_exported_to_onnx_gives_the_built_in_jobs_report(tmp_path):
  """The built-in ORL job (detected faces in dlib's chip, the built-in face network) against the same job with
  that network exported by jax2onnx (NHWC, batch left open, pixels as they are: mean 0, std 1, the chip
  template): embeddings within 1e-4, IQ equal to four decimals, the same findings."""
  import faces  # pylint: disable=import-outside-toplevel
  faces.require()
  jax2onnx = pytest.importorskip("jax2onnx")
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from facequal_jax.encoders import face_resnet  # pylint: disable=import-outside-toplevel
  from facequal_jax.models.dlib_resnet import DlibFaceResNet  # pylint: disable=import-outside-toplevel
  params = jax.tree.map(jnp.asarray, face_resnet.load_params(face_resnet.weights_path())[0])
  exported = jax2onnx.to_onnx(lambda chips: DlibFaceResNet().apply({"params": params}, chips),
                              [("B", 150, 150, 3)], opset=18)
  (tmp_path / "face_network.onnx").write_bytes(exported.SerializeToString())
  built_in = iq.get_config()
  built_in.demo_noise_rates = ()
  as_onnx = iq.get_config()
  as_onnx.demo_noise_rates = ()
  as_onnx.encoder.name = str(tmp_path / "face_network.onnx")
  as_onnx.encoder.onnx.update(template="chip", mean=0.0, std=1.0)
  reports, embeddings = {}, {}
  for name, config in (("built_in", built_in), ("onnx", as_onnx)):
    _run(config, str(tmp_path / name))
    reports[name] = json.loads((tmp_path / name / "report.json").read_text())
    embeddings[name] = np.load(tmp_path / name / "embeddings" / "embeddings.npz")["embeddings"]
  np.testing.assert_allclose(embeddings["onnx"], embeddings["built_in"], atol=1e-4)
  assert round(reports["onnx"]["iq"], 4) == round(reports["built_in"]["iq"], 4)
  assert round(reports["onnx"]["consistency"], 4) == round(reports["built_in"]["consistency"], 4)
  assert reports["onnx"]["finding_counts"] == reports["built_in"]["finding_counts"]
  assert [o["sample"] for o in reports["onnx"]["outliers"]] == [o["sample"] for o in reports["built_in"]["outliers"]]
  assert reports["onnx"]["data"]["encoder"]["file"] == "face_network.onnx"
