r"""An ONNX face network in JAX beside onnxruntime: faces/s on the same model and faces, in one process.

  python benchmarks/onnx_encoder.py                                  # iResNet-50 shape, random weights
  python benchmarks/onnx_encoder.py --model=/path/to/w600k_r50.onnx --faces=256

The model is a file, or one made on the spot with random weights (`benchmarks/onnx_models.py`):
"iresnet50" (insightface's iResNet-50: 43.6 M parameters, 112 × 112 input, 512-d) or "mobilefacenet".
Each path embeds the same uint8 faces (warm-up first: compiling and the runtime's own set-up), the paths
taking turns `--repeats` times; the table gives the median faces/s and how far each path's unit embeddings
are from onnxruntime's (largest component difference, least cosine). On a GPU, onnxruntime runs with the
CUDA provider when its GPU build is installed, else on the CPU (the table says which); where onnxruntime is
not installed at all, the float32 JAX path is the reference and the table says so.
"""
import os
import tempfile
import time

import jax
import numpy as np
from absl import app, flags

from benchmarks import onnx_models
from facequal_jax.encoders.onnx_encoder import OnnxEncoder

_MODEL = flags.DEFINE_string("model", "iresnet50", "An .onnx file, or 'iresnet50' / 'mobilefacenet' made here.")
_FACES = flags.DEFINE_integer("faces", 128, "Faces embedded per timed run.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs per path, in turns.")

MADE = {"iresnet50": lambda: onnx_models.iresnet(widths=(64, 128, 256, 512), blocks=(3, 4, 14, 3), dim=512),
        "mobilefacenet": lambda: onnx_models.mobilefacenet(width=64, dim=512)}


def _onnxruntime(path: str):
  """(uint8 faces → unit embeddings by onnxruntime, its provider), or None where it is not installed."""
  try:
    import onnxruntime  # pylint: disable=import-outside-toplevel  (the peer)
  except ImportError:
    return None
  available = onnxruntime.get_available_providers()
  providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
  session = onnxruntime.InferenceSession(path, providers=providers)
  name = session.get_inputs()[0].name

  def run(faces):
    x = ((faces.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2)
    out = np.concatenate([session.run(None, {name: x[i:i + 32]})[0] for i in range(0, len(x), 32)])
    return out / np.linalg.norm(out, axis=1, keepdims=True)

  return run, session.get_providers()[0]


def main(argv):
  del argv
  with tempfile.TemporaryDirectory() as folder:
    path = _MODEL.value
    if path in MADE:
      path = os.path.join(folder, f"{_MODEL.value}.onnx")
      with open(path, "wb") as f:
        f.write(MADE[_MODEL.value]())
    float32, bfloat16 = OnnxEncoder(path), OnnxEncoder(path, dtype="bfloat16")
    size = float32.input_size
    faces = np.random.default_rng(0).integers(0, 256, (_FACES.value, size, size, 3), np.uint8)
    peer = _onnxruntime(path)
    paths = {f"onnxruntime ({peer[1]})": peer[0]} if peer else {}
    paths.update({f"facequal_jax float32 ({jax.default_backend()})": float32,
                  f"facequal_jax bfloat16 ({jax.default_backend()})": bfloat16})
    out = {name: run(faces) for name, run in paths.items()}  # warm-up, and the embeddings compared
    seconds = {name: [] for name in paths}
    for _ in range(_REPEATS.value):
      for name, run in paths.items():
        start = time.perf_counter()
        run(faces)
        seconds[name].append(time.perf_counter() - start)
  truth = out[next(iter(paths))]
  print(f"model {_MODEL.value}, {size} × {size} input, {float32.dim}-d; {_FACES.value} faces, "
        f"{jax.device_count()} {jax.default_backend()} device(s), {os.cpu_count()} cores"
        f"{'' if peer else '; onnxruntime not installed: compared with float32'}")
  print(f"{'path':<40}{'faces/s':>10}{'vs the first':>16}{'max |diff|':>12}{'min cosine':>12}")
  base = _FACES.value / np.median(seconds[next(iter(paths))])
  for name in paths:
    rate = _FACES.value / np.median(seconds[name])
    print(f"{name:<40}{rate:>10.1f}{rate / base:>15.2f}×{np.abs(out[name] - truth).max():>12.2e}"
          f"{np.einsum('nd,nd->n', out[name], truth).min():>12.6f}")


if __name__ == "__main__":
  app.run(main)
