r"""The whole job's rates on one machine, in one table: the suite to run first on a GPU (at most 8 minutes).

Parts, each timed after a run that compiles it:
  face network   faces/s of the built-in network on 150 × 150 chips, float32 and bfloat16, and how far the two
                 descriptors agree (the smallest cosine between them);
  ONNX network   faces/s of an ONNX face network run as JAX (insightface's iResNet-50 shape, random weights),
                 float32 and bfloat16, beside onnxruntime when it is here (where `onnx` is installed);
  .rec pipeline  images/s of reading a pack, decoding the JPEGs and warping them onto the chip (ArcFace
                 alignment), with one decoding thread per core, and per core;
  fq.knn         the exact self k-NN (k = 10) of random unit rows, d = 128 and 512, end to end, beside PyTorch's
                 `mm` + `topk` in 4,096-query blocks in this process (when PyTorch is here), and its exactness
                 against float64 on a sample of rows;
  streaming      `fq.streaming_knn` of rows held in host memory;
  command        the IQ command on the pack (every stage's seconds from its report.json).
Last, the projection for WebFace42M (42 M faces, 2 M identities) on this machine, stage by stage, from the
measured rates (the search scaled as N²).

  python benchmarks/gpu_suite.py --out=results/gpu_suite.md     # on a GPU: the sizes of the issue
  python benchmarks/gpu_suite.py --mode=cpu                      # tiny sizes, minutes on a CPU (a test runs it)

`--pack` names a `.rec` pack to read (e.g. one from `benchmarks/make_pack.py`); without it a small one is
made from LFW-dev (or the bundled ORL faces) in a temporary folder.
"""
import dataclasses
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import made_faces  # pylint: disable=wrong-import-position

import facequal_jax as fq  # pylint: disable=wrong-import-position
from facequal_jax.data import orl, recordio  # pylint: disable=wrong-import-position
from facequal_jax.data.pipeline import decode_batches  # pylint: disable=wrong-import-position
from facequal_jax.data.preprocess import FacePreprocess  # pylint: disable=wrong-import-position
from facequal_jax.data.sources import ImageFolderSource, RecordIOSource  # pylint: disable=wrong-import-position
from facequal_jax.encoders import face_resnet  # pylint: disable=wrong-import-position

_MODE = flags.DEFINE_enum("mode", None, ["gpu", "cpu"], "Sizes: the GPU's, or tiny ones (default: gpu when an "
                          "accelerator is here).")
_PACK = flags.DEFINE_string("pack", "", "A .rec pack to read and score; default: a small one made here.")
_FACES = flags.DEFINE_string("faces", "../shared/data/lfw_dev", "Where a made pack's faces come from.")
_OUT = flags.DEFINE_string("out", "", "Also write the table (dated, with the commit) to this Markdown file.")

SIZES = {  # part → size, per mode
    "gpu": {"chips": 4096, "batch": 512, "onnx_faces": 1024, "decode": 20000, "knn": 1 << 20, "sample": 2048,
            "streaming": 10_000_000, "pack": 20000},
    "cpu": {"chips": 64, "batch": 32, "onnx_faces": 16, "decode": 256, "knn": 4096, "sample": 256,
            "streaming": 20000, "pack": 160},
}
WEBFACE = {"images": 42_000_000, "identities": 2_000_000}


@dataclasses.dataclass
class Row:
  """One line of the table: what ran, on how much (`size` in words, `count` items), its time and rate."""
  part: str
  size: str
  count: int
  seconds: float
  rate: float
  unit: str
  note: str = ""


def best_seconds(function, runs: int = 2) -> float:
  """The best wall time of `runs` calls, after one call that compiles."""
  function()
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    function()
    times.append(time.perf_counter() - start)
  return min(times)


def face_network_rows(size: dict) -> list:
  chips = np.random.default_rng(0).integers(0, 256, (size["chips"], 150, 150, 3), np.uint8)
  networks = {name: face_resnet.load_face_network(dtype=dtype) for name, dtype in (("float32", jnp.float32),
                                                                                      ("bfloat16", jnp.bfloat16))}
  rows, out = [], {}
  for name, network in networks.items():
    embed = lambda network=network: np.concatenate([network(chips[i:i + size["batch"]])
                                                    for i in range(0, len(chips), size["batch"])])
    seconds = best_seconds(embed)
    out[name] = embed()
    rows.append(Row(f"face network, {name}", f"{len(chips):,} chips", len(chips), seconds,
                    len(chips) / seconds, "faces/s"))
  agreement = np.einsum("nd,nd->n", out["float32"], out["bfloat16"])
  rows[-1].note = f"cosine to float32: min {agreement.min():.5f}, mean {agreement.mean():.6f}"
  return rows


def onnx_rows(size: dict, mode: str, folder: str) -> list:
  """An ONNX network's rates (iResNet-50 on a GPU, a small iResNet on a CPU): nothing where `onnx` is missing."""
  try:
    import onnx_models  # pylint: disable=import-outside-toplevel  (needs onnx)
    from facequal_jax.encoders.onnx_encoder import OnnxEncoder  # pylint: disable=import-outside-toplevel
  except ImportError:
    return []
  path = os.path.join(folder, "iresnet.onnx")
  with open(path, "wb") as f:
    f.write(onnx_models.iresnet(widths=(64, 128, 256, 512), blocks=(3, 4, 14, 3), dim=512) if mode == "gpu"
            else onnx_models.iresnet())
  faces = np.random.default_rng(1).integers(0, 256, (size["onnx_faces"], 112, 112, 3), np.uint8)
  runs, rows, out = {"float32": OnnxEncoder(path), "bfloat16": OnnxEncoder(path, dtype="bfloat16")}, [], {}
  try:
    import onnxruntime  # pylint: disable=import-outside-toplevel  (the peer)
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                 if p in onnxruntime.get_available_providers()]
    session = onnxruntime.InferenceSession(path, providers=providers)
    runs[f"onnxruntime {session.get_providers()[0]}"] = lambda x: session.run(None, {
        session.get_inputs()[0].name: ((x.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2)})[0]
  except ImportError:
    pass
  for name, run in runs.items():
    embed = lambda run=run: np.concatenate([run(faces[i:i + 256]) for i in range(0, len(faces), 256)])
    seconds = best_seconds(embed)
    embeddings = embed()
    out[name] = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    agreement = np.einsum("nd,nd->n", out[name], out["float32"])
    rows.append(Row(f"ONNX iResNet, {name}", f"{len(faces):,} faces", len(faces), seconds, len(faces) / seconds,
                    "faces/s", "" if name == "float32" else f"cosine to float32: min {agreement.min():.5f}"))
  return rows


def pack_for(size: dict, folder: str) -> str:
  """The pack to read: --pack, or `size["pack"]` faces made from --faces into `folder`."""
  if _PACK.value:
    return _PACK.value
  path = os.path.join(folder, "suite.rec")
  photos = made_faces.central_regions(ImageFolderSource(_FACES.value) if os.path.isdir(_FACES.value)
                                     else orl.orl_source())
  per_identity = 8
  samples = ((number // per_identity, made_faces.made_face(photos[(number // per_identity) % len(photos)],
                                                          np.random.default_rng(number)))
             for number in range(size["pack"]))
  recordio.write_face_pack(path, samples, count=size["pack"])
  return path


def decode_rows(pack: str, size: dict) -> list:
  source = RecordIOSource(pack)
  rows = range(min(size["decode"], len(source)))
  face = FacePreprocess(150, 0, "rgb", "arcface")
  cores = os.cpu_count()
  seconds = best_seconds(lambda: sum(len(batch.rows) for batch in decode_batches(source, rows, face, 256, cores)),
                         runs=1)
  rate = len(rows) / seconds
  return [Row(".rec read + decode + warp", f"{len(rows):,} images, {cores} threads", len(rows), seconds, rate,
              "images/s", f"{rate / cores:,.0f} images/s per core")]


def exact_on_sample(rows: np.ndarray, found: np.ndarray, sample: int) -> str:
  """How many of `sample` rows' neighbours equal a float64 brute force (ties by lower index)."""
  picked = np.random.default_rng(1).choice(len(rows), sample, replace=False)
  unit = rows.astype(np.float64)
  scores = unit[picked] @ unit.T
  scores[np.arange(sample), picked] = -np.inf
  k = found.shape[1]
  want = np.argsort(-scores, axis=1, kind="stable")[:, :k]
  return f"{int((want == found[picked]).all(axis=1).sum()):,}/{sample:,} rows exact vs float64"


def torch_seconds(rows: np.ndarray, k: int):
  """PyTorch's mm + topk in 4,096-query blocks (bf16 on a GPU, float32 on a CPU), or None without PyTorch."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  device = "cuda" if torch.cuda.is_available() else "cpu"
  dtype = torch.bfloat16 if device == "cuda" else torch.float32

  def search():
    database = torch.from_numpy(rows).to(device).to(dtype)
    for start in range(0, len(rows), 4096):
      scores = database[start:start + 4096] @ database.T
      scores[torch.arange(scores.shape[0]), torch.arange(start, start + scores.shape[0])] = -float("inf")
      torch.topk(scores, k, dim=1)
    if device == "cuda":
      torch.cuda.synchronize()

  return best_seconds(search, runs=1)


def knn_rows(size: dict, mode: str) -> list:
  out = []
  precision = "bfloat16" if mode == "gpu" else "float32"
  for dim in (128, 512):
    rows = np.random.default_rng(dim).standard_normal((size["knn"], dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    found = {}
    seconds = best_seconds(lambda: found.update(result=fq.knn(rows, 10, precision=precision)), runs=1)
    pairs = size["knn"] ** 2 * dim * 2 / seconds / 1e12
    note = exact_on_sample(rows, np.asarray(found["result"].indices), size["sample"])
    out.append(Row(f"fq.knn {precision}, d = {dim}", f"N = {size['knn']:,}, k = 10", size["knn"], seconds, pairs,
                   "TFLOP/s", note))
    peer = torch_seconds(rows, 10)
    if peer is not None:
      out.append(Row(f"PyTorch mm + topk, d = {dim}", f"N = {size['knn']:,}, k = 10", size["knn"], peer,
                     size["knn"] ** 2 * dim * 2 / peer / 1e12, "TFLOP/s", f"fq.knn {peer / seconds:.2f} × as fast"))
  return out


def streaming_rows(size: dict, mode: str) -> list:
  rows = np.empty((size["streaming"], 128), np.float32)
  rng = np.random.default_rng(3)
  for start in range(0, len(rows), 1 << 20):
    rows[start:start + (1 << 20)] = rng.standard_normal((len(rows[start:start + (1 << 20)]), 128), np.float32)
  precision = "bfloat16" if mode == "gpu" else "float32"
  start = time.perf_counter()
  fq.streaming_knn(rows, 10, precision=precision)
  seconds = time.perf_counter() - start  # one run: it compiles once per block shape, a small share here
  return [Row(f"fq.streaming_knn {precision}, from host", f"N = {len(rows):,}, d = 128", len(rows), seconds,
              len(rows) ** 2 * 128 * 2 / seconds / 1e12, "TFLOP/s", "compiling included")]


def command_rows(pack: str, folder: str) -> list:
  workdir = os.path.join(folder, "command")
  subprocess.run([sys.executable, "-m", "facequal_jax", f"--workdir={workdir}", f"--config.data.rec={pack}"],
                 check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  with open(os.path.join(workdir, "report.json")) as f:
    report = json.load(f)
  stages = report["stage_seconds"]
  count = report["num_samples"]
  return [Row(f"command: {name}", f"{count:,} faces", count, seconds, count / seconds, "faces/s")
          for name, seconds in stages.items()]


def projection(rows: list) -> list:
  """WebFace42M on this machine, stage by stage, from the measured rates (search ∝ N², the rest ∝ N)."""
  images, lines = WEBFACE["images"], []
  for row in rows:
    if row.part in (".rec read + decode + warp", "face network, bfloat16"):
      lines.append(f"- {row.part}: {images:,} at {row.rate:,.0f}/s = {images / row.rate / 3600:.1f} h")
    elif row.part.startswith(("fq.knn", "fq.streaming_knn", "command: diagnostics", "command: report")):
      power = 1 if row.part.startswith("command") else 2
      grows = "N²" if power == 2 else "N"
      lines.append(f"- {row.part}: {row.seconds:.1f} s at {row.count:,} → "
                   f"{row.seconds * (images / row.count) ** power / 3600:.1f} h at 42 M (∝ {grows})")
  return lines


def table(rows: list) -> str:
  lines = ["| part | size | seconds | rate | unit | note |", "| --- | --- | --- | --- | --- | --- |"]
  lines += [f"| {row.part} | {row.size} | {row.seconds:.3f} | {row.rate:,.3g} | {row.unit} | {row.note} |"
            for row in rows]
  return "\n".join(lines)


def main(argv):
  del argv
  mode = _MODE.value or ("cpu" if jax.default_backend() == "cpu" else "gpu")
  size = SIZES[mode]
  with tempfile.TemporaryDirectory() as folder:
    pack = pack_for(size, folder)
    rows = face_network_rows(size) + decode_rows(pack, size) + knn_rows(size, mode) + streaming_rows(size, mode)
    rows += onnx_rows(size, mode, folder)
    rows += command_rows(pack, folder)
  commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
  device = jax.devices()[0]
  text = (f"# Suite of {datetime.date.today().isoformat()}, commit {commit or '?'}: "
          f"{device.device_kind} × {jax.device_count()} ({jax.default_backend()}), {os.cpu_count()} cores, "
          f"mode {mode}\n\n{table(rows)}\n\nWebFace42M on this machine, from these rates:\n\n"
          + "\n".join(projection(rows)) + "\n")
  print(text)
  if _OUT.value:
    with open(_OUT.value, "w") as f:
      f.write(text)


if __name__ == "__main__":
  app.run(main)
