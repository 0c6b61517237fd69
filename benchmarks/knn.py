r"""All-pairs self k-NN benchmark: facequal_jax paths side by side with plain JAX.

Every path runs in this one process on the same random unit vectors; the table
gives time, effective TFLOP/s (2·N²·d / time), peak resident memory of the
process during the path, and recall@k against facequal_jax float32 (exact).

  python benchmarks/knn.py --sizes=100000 --dim=512 --k=10
  python benchmarks/knn.py --sizes=20000,50000 --paths=fq_float32,jax_topk --json_out=/tmp/knn.json
"""
import json
import re
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from jax import lax

import facequal_jax as fq

_SIZES = flags.DEFINE_list("sizes", ["100000"], "Row counts N.")
_DIM = flags.DEFINE_integer("dim", 512, "Embedding dimension d.")
_K = flags.DEFINE_integer("k", 10, "Neighbours per row.")
_PATHS = flags.DEFINE_list("paths", ["fq_float32", "jax_topk"], "Paths to run, from PATHS.")
_BLOCK = flags.DEFINE_integer("block", 2048, "Rows per tile / query block.")
_JSON_OUT = flags.DEFINE_string("json_out", None, "Optional JSON file for the rows of the table.")


def _fq(precision):
  def run(x, k):
    result = fq.knn(x, k, precision=precision, block=_BLOCK.value)
    return result.indices
  return run


def _jax_topk(x, k):
  """Plain JAX peer: normalise, then per query block a float32 dot and lax.top_k."""
  x = jnp.asarray(x)
  x = x / jnp.linalg.norm(x, axis=1, keepdims=True)
  n, block = x.shape[0], _BLOCK.value

  @jax.jit
  def query_block(start):
    q = lax.dynamic_slice_in_dim(x, start, block)
    scores = jnp.dot(q, x.T, precision=lax.Precision.HIGHEST)
    scores = jnp.where(start + jnp.arange(block)[:, None] == jnp.arange(n)[None, :], -jnp.inf, scores)
    return lax.top_k(scores, k)[1]

  starts = list(range(0, n - block + 1, block))
  tail = n - len(starts) * block
  out = [np.asarray(query_block(s)) for s in starts]
  if tail:  # last, overlapping block; keep its new rows
    out.append(np.asarray(query_block(n - block))[block - tail:])
  return np.concatenate(out)


PATHS = {"fq_float32": _fq("float32"), "fq_bfloat16": _fq("bfloat16"), "jax_topk": _jax_topk}


class PeakMemory:
  """Peak resident set size of this process while inside the `with` block (GiB)."""

  def __enter__(self):
    try:  # Linux: writing 5 resets the VmHWM high-water mark.
      with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    except OSError:
      pass
    self.peak, self._stop = 0, threading.Event()
    self._thread = threading.Thread(target=self._sample, daemon=True)
    self._thread.start()
    return self

  @staticmethod
  def _read(field):
    with open("/proc/self/status") as f:
      return int(re.search(rf"{field}:\s+(\d+) kB", f.read()).group(1)) * 1024

  def _sample(self):
    while not self._stop.wait(0.05):
      self.peak = max(self.peak, self._read("VmRSS"))

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()
    self.peak = max(self.peak, self._read("VmHWM")) / 2 ** 30


def main(argv):
  del argv
  rows = []
  print(f"backend {jax.default_backend()}, {jax.device_count()} devices, d={_DIM.value}, k={_K.value}")
  print(f"{'path':<14}{'N':>10}{'seconds':>10}{'TFLOP/s':>10}{'peak RSS GiB':>14}{'recall':>9}")
  for n in map(int, _SIZES.value):
    x = np.random.default_rng(0).normal(size=(n, _DIM.value)).astype(np.float32)
    exact = None
    for name in _PATHS.value:
      PATHS[name](x[:4096], _K.value)  # compile and warm up on a small slice
      with PeakMemory() as memory:
        start = time.perf_counter()
        indices = PATHS[name](x, _K.value)
        seconds = time.perf_counter() - start
      if exact is None and name == "fq_float32":
        exact = indices
      recall = (float(np.mean([len(np.intersect1d(a, b)) for a, b in zip(indices, exact)]) / _K.value)
                if exact is not None else float("nan"))
      row = dict(path=name, n=n, d=_DIM.value, k=_K.value, seconds=seconds,
                 tflops=2.0 * n * n * _DIM.value / seconds / 1e12, peak_rss_gib=memory.peak, recall=recall)
      rows.append(row)
      print(f"{name:<14}{n:>10,}{seconds:>10.2f}{row['tflops']:>10.3f}{memory.peak:>14.2f}{recall:>9.4f}")
  if _JSON_OUT.value:
    with open(_JSON_OUT.value, "w") as f:
      json.dump(rows, f, indent=2)


if __name__ == "__main__":
  app.run(main)
