r"""All-pairs self k-NN benchmark: facequal_jax paths side by side with their peers.

Every path runs in this one process on the same random unit vectors. For each
(N, d, k) the table gives time, effective TFLOP/s (2·N²·d / time), that as a
fraction of the matmul ceiling measured at start (float32 at HIGHEST precision
and bf16), peak device memory (accelerators) or peak resident host memory
(CPU) during the path, and recall@k against the first exact facequal_jax path.

  python benchmarks/knn.py --sizes=50000 --dims=512 --ks=10                     # the CPU comparison
  python benchmarks/knn.py --sizes=65536,262144,1048576 --dims=128,512 --ks=10,100 \
      --paths=fq_bfloat16,fq_float32,jax_topk,torch --max_n=1048576 --json_out=/tmp/knn.json   # a GPU

Peers: plain JAX `dot` + `lax.top_k` per query block; faiss-cpu `IndexFlatIP`
(`pip install -e ".[bench]"`); PyTorch `mm` + `topk` (bf16 on GPU) when torch
is installed.
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

_SIZES = flags.DEFINE_list("sizes", ["50000"], "Row counts N.")
_DIMS = flags.DEFINE_list("dims", ["512"], "Embedding dimensions d.")
_KS = flags.DEFINE_list("ks", ["10"], "Neighbours per row.")
_MAX_N = flags.DEFINE_integer("max_n", 1 << 20, "Sizes above this are skipped.")
_PATHS = flags.DEFINE_list("paths", ["fq_float32", "fq_float32_ring", "jax_topk", "faiss"],
                           "Paths to run, from PATHS.")
_BLOCK = flags.DEFINE_integer("block", 2048, "Rows per tile / query block.")
_JSON_OUT = flags.DEFINE_string("json_out", None, "Optional JSON file for the rows of the table.")
_VERIFY_N = flags.DEFINE_integer("verify_n", 0, "If > 0: first check every exact path against a float64 brute force "
                                 "on this many clustered rows with duplicates, for each k and d.")
_VERIFY_KS = flags.DEFINE_list("verify_ks", None, "k values of the check (default: --ks).")
_REPEATS = flags.DEFINE_integer("repeats", 1, "Timed runs of each path, taken in turns (path A, path B, A, B, …) "
                                "so that a shared machine's slow spells fall on both; the table gives the median.")
_BUDGET = flags.DEFINE_float("budget_s", 0.0, "If > 0: skip a path at a size when its time at the previous size, "
                             "scaled by (N / N_prev)², exceeds this many seconds.")


def _fq(precision, symmetric=True, kernel="auto"):
  def run(x, k, scores=False):
    found = fq.knn(x, k, precision=precision, block=_BLOCK.value, symmetric=symmetric, kernel=kernel)
    return (found.indices, found.scores) if scores else found.indices
  return run


def _fq_stream(x, k):
  return fq.streaming_knn(x, k, block=_BLOCK.value).indices


def _jax_topk(x, k):
  """Plain JAX peer: normalise, then per query block a float32 dot and lax.top_k."""
  x = jnp.asarray(x)
  x = x / jnp.linalg.norm(x, axis=1, keepdims=True)
  n, block = x.shape[0], min(_BLOCK.value, x.shape[0])

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


def _faiss(x, k):
  """faiss-cpu exact inner-product index on unit rows; the row itself dropped."""
  import faiss  # pylint: disable=import-outside-toplevel  (optional peer)
  x = x / np.linalg.norm(x, axis=1, keepdims=True)
  index = faiss.IndexFlatIP(x.shape[1])
  index.add(x)
  _, found = index.search(x, k + 1)
  return np.stack([row[row != i][:k] for i, row in enumerate(found)])


def _torch(x, k):
  """PyTorch peer: per 4096-query block `mm` + `topk` (bf16 on GPU, float32 on CPU)."""
  import torch  # pylint: disable=import-outside-toplevel  (optional peer)
  device = "cuda" if torch.cuda.is_available() else "cpu"
  dtype = torch.bfloat16 if device == "cuda" else torch.float32
  data = torch.nn.functional.normalize(torch.from_numpy(x).to(device), dim=1).to(dtype)
  out = []
  for start in range(0, len(x), 4096):
    scores = data[start:start + 4096] @ data.T
    scores[torch.arange(len(scores)), torch.arange(start, start + len(scores))] = -float("inf")
    out.append(torch.topk(scores, k, dim=1).indices.cpu().numpy())
  return np.concatenate(out)


PATHS = {"fq_float32": _fq("float32"), "fq_float32_ring": _fq("float32", symmetric=False),
         "fq_bfloat16": _fq("bfloat16"), "fq_bfloat16_xla": _fq("bfloat16", kernel="xla"),
         "fq_bfloat16_pallas": _fq("bfloat16", kernel="pallas"), "fq_stream": _fq_stream, "jax_topk": _jax_topk,
         "faiss": _faiss,
         "torch": _torch}
EXACT_REFERENCES = ("fq_float32", "fq_float32_ring", "fq_bfloat16", "fq_bfloat16_xla", "fq_bfloat16_pallas",
                    "fq_stream")


def verify(n: int, d: int, k: int, paths) -> bool:
  """Each exact path vs a float64 numpy brute force on clustered rows with 5 % exact duplicates.

  A found neighbour passes when its float64 score equals the reference score at
  its rank within 1e-6 (float32 cannot order closer pairs); duplicates tie
  exactly, so their order (lower index first) is checked by the index match.
  Prints one line per path; returns whether all passed.
  """
  rng = np.random.default_rng(1)
  x = (rng.normal(size=(64, d))[rng.integers(0, 64, n)] + 0.7 * rng.normal(size=(n, d))).astype(np.float32)
  copies = rng.choice(n, 2 * (n // 40), replace=False)
  x[copies[: n // 40]] = x[copies[n // 40:]]
  unit = x / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
  reference, true_scores = [], []
  for start in range(0, n, 2048):
    scores = unit[start:start + 2048] @ unit.T
    scores[np.arange(len(scores)), np.arange(start, start + len(scores))] = -np.inf
    order = np.lexsort((np.broadcast_to(np.arange(n), scores.shape), -scores), axis=1)[:, :k]
    reference.append(order)
    true_scores.append(scores)
  reference = np.concatenate(reference)
  passed = True
  for name in (p for p in paths if p in EXACT_REFERENCES):
    try:
      indices, scores = PATHS[name](x, k, scores=True)
    except Exception as error:  # pylint: disable=broad-except  (reported, counted as a failure)
      print(f"verify {name:<20} failed: {type(error).__name__}: {str(error)[:300]}", flush=True)
      passed = False
      continue
    found_true = np.concatenate([np.take_along_axis(s, indices[i:i + 2048], axis=1)
                                 for i, s in zip(range(0, n, 2048), true_scores)])
    wanted = np.concatenate([np.take_along_axis(s, reference[i:i + 2048], axis=1)
                             for i, s in zip(range(0, n, 2048), true_scores)])
    rank_error = float(np.max(np.abs(found_true - wanted)))
    score_error = float(np.max(np.abs(scores - wanted)))
    ok = rank_error < 1e-6 and score_error < 1e-6
    passed &= ok
    print(f"verify {name:<20} N={n} d={d} k={k}: index match {np.mean(indices == reference):.6f}, "
          f"max |score at rank − exact| {rank_error:.2e}, max |returned score − exact| {score_error:.2e} "
          f"→ {'PASS' if ok else 'FAIL'}", flush=True)
  return passed


class PeakMemory:
  """Peak memory while inside the `with` block (GiB): device peak on accelerators, else host RSS."""

  def __enter__(self):
    self.device = jax.devices()[0]
    stats = self.device.memory_stats() if self.device.platform != "cpu" else None
    self.kind = "device" if stats and "peak_bytes_in_use" in stats else "host"
    try:  # Linux: writing 5 resets the VmHWM high-water mark.
      with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    except OSError:
      pass
    self.peak, self._stop = 0, threading.Event()
    self._thread = threading.Thread(target=self._sample, daemon=True)
    self._thread.start()
    return self

  def _now(self):
    if self.kind == "device":
      return self.device.memory_stats()["peak_bytes_in_use"]
    with open("/proc/self/status") as f:
      return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) * 1024

  def _sample(self):
    while not self._stop.wait(0.05):
      self.peak = max(self.peak, self._now())

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()
    if self.kind == "host":
      with open("/proc/self/status") as f:
        self.peak = max(self.peak, int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) * 1024)
    self.peak = max(self.peak, self._now()) / 2 ** 30


def matmul_ceiling():
  """Measured TFLOP/s of a large square matmul: {"float32": HIGHEST precision, "bfloat16": …}."""
  size = 8192 if jax.default_backend() != "cpu" else 2048
  out = {}
  for name, dtype, precision in (("float32", jnp.float32, lax.Precision.HIGHEST),
                                 ("bfloat16", jnp.bfloat16, lax.Precision.DEFAULT)):
    a = jnp.ones((size, size), dtype)
    f = jax.jit(lambda a: jnp.dot(a, a, precision=precision, preferred_element_type=jnp.float32))
    f(a).block_until_ready()
    start = time.perf_counter()
    for _ in range(3):
      f(a).block_until_ready()
    out[name] = 3 * 2 * size ** 3 / (time.perf_counter() - start) / 1e12
  return out


def main(argv):
  del argv
  ceiling = matmul_ceiling()
  print(f"backend {jax.default_backend()}, {jax.device_count()} devices; matmul ceiling "
        f"float32 {ceiling['float32']:.3f} TFLOP/s, bf16 {ceiling['bfloat16']:.3f} TFLOP/s")
  print(f"{'path':<20}{'N':>10}{'d':>5}{'k':>5}{'seconds':>10}{'TFLOP/s':>9}{'of ceil':>9}"
        f"{'peak GiB':>10}{'recall':>8}")
  if _VERIFY_N.value:
    for d in map(int, _DIMS.value):
      for k in map(int, _VERIFY_KS.value or _KS.value):
        verify(_VERIFY_N.value, d, k, _PATHS.value)
  rows, last_seconds = [], {}
  for n in (int(s) for s in _SIZES.value if int(s) <= _MAX_N.value):
    for d in map(int, _DIMS.value):
      x = np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)
      for k in map(int, _KS.value):
        exact, timed = None, {}
        for name in _PATHS.value:
          if (name, d, k) in last_seconds and _BUDGET.value:
            previous_n, previous_seconds = last_seconds[name, d, k]
            projected = previous_seconds * (n / previous_n) ** 2
            if projected > _BUDGET.value:
              print(f"{name:<20}{n:>10,}  skipped: projected {projected:.0f} s > budget {_BUDGET.value:.0f} s")
              continue
          try:
            PATHS[name](x, k)  # compile (shapes depend on N) and warm up the peers' libraries
            with PeakMemory() as memory:
              start = time.perf_counter()
              indices = PATHS[name](x, k)
              first_seconds = time.perf_counter() - start
          except Exception as error:  # pylint: disable=broad-except  (one broken path must not end the table)
            print(f"{name:<20}{n:>10,}  failed: {type(error).__name__}: {str(error)[:300]}", flush=True)
            continue
          timed[name] = (memory, indices, [first_seconds])
        for _ in range(_REPEATS.value - 1):
          for name, (_, _, seconds) in timed.items():
            start = time.perf_counter()
            PATHS[name](x, k)
            seconds.append(time.perf_counter() - start)
        for name, (memory, indices, all_seconds) in timed.items():
          seconds = float(np.median(all_seconds))
          if exact is None and name in EXACT_REFERENCES:
            exact = indices
          recall = (float(np.mean([len(np.intersect1d(a, b)) for a, b in zip(indices, exact)])) / k
                    if exact is not None else float("nan"))
          tflops = 2.0 * n * n * d / seconds / 1e12
          reference = ceiling["bfloat16" if "bfloat16" in name or name == "torch" else "float32"]
          row = dict(path=name, n=n, d=d, k=k, seconds=seconds, tflops=tflops, fraction_of_ceiling=tflops / reference,
                     peak_gib=memory.peak, memory_kind=memory.kind, recall=recall)
          rows.append(row)
          last_seconds[name, d, k] = (n, seconds)
          print(f"{name:<20}{n:>10,}{d:>5}{k:>5}{seconds:>10.2f}{tflops:>9.3f}{tflops / reference:>9.2f}"
                f"{memory.peak:>10.2f}{recall:>8.4f}"
                + (f"  (median of {len(all_seconds)}: {min(all_seconds):.2f}–{max(all_seconds):.2f} s)"
                   if len(all_seconds) > 1 else ""), flush=True)
  if _JSON_OUT.value:
    with open(_JSON_OUT.value, "w") as f:
      json.dump({"ceiling_tflops": ceiling, "rows": rows}, f, indent=2)


if __name__ == "__main__":
  app.run(main)
