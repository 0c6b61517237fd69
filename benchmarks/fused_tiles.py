r"""Fused Pallas k-NN kernel: block shapes and candidate counts, timed on the device.

For each kernel shape and candidate count it runs `fused.select` for Q
queries against N database rows (bf16), checks the candidates against
`lax.top_k` of the same bf16 products, and projects the all-pairs time of N
queries (time × N / Q). Accelerators; `--interpret` checks the script on CPU at tiny sizes.

  python benchmarks/fused_tiles.py --n=1048576 --queries=32768 --dim=512
"""
import itertools
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from jax import lax

from facequal_jax.knn import fused

_N = flags.DEFINE_integer("n", 1 << 20, "Database rows.")
_QUERIES = flags.DEFINE_integer("queries", 1 << 15, "Query rows timed (the first rows of the database).")
_DIM = flags.DEFINE_integer("dim", 512, "Embedding dimension.")
_SHAPES = flags.DEFINE_list(
    "shapes", ["64:64:0:4:3", "64:128:0:4:3", "64:128:64:4:3", "64:128:128:4:3", "128:64:64:4:3",
               "128:128:64:4:3", "128:128:64:8:3", "64:256:64:8:3", "128:256:64:8:3", "256:128:64:8:3"],
    "query_block:database_block:dim_block:num_warps:num_stages, dim_block 0 = all of d.")
_KEEPS = flags.DEFINE_list("keeps", ["16", "42"], "Candidates per query (k + margin).")
_INTERPRET = flags.DEFINE_bool("interpret", False, "Pallas interpret mode (a CPU check of this script, tiny sizes).")


def main(argv):
  del argv
  n, q, d = _N.value, _QUERIES.value, _DIM.value
  x = jax.random.normal(jax.random.key(0), (n, d), jnp.float32)
  x = (x / jnp.linalg.norm(x, axis=1, keepdims=True)).astype(jnp.bfloat16)
  queries = x[:q].astype(jnp.float32)
  ids = jnp.arange(q, dtype=jnp.int32)
  check_rows = min(256, q)
  scores = lax.dot_general(x[:check_rows], x, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32)
  scores = scores.at[jnp.arange(check_rows), jnp.arange(check_rows)].set(-jnp.inf)
  print(f"{'shape qb:db:dim:warps:stages':>30}{'keep':>6}{'seconds':>9}{'projected s':>12}{'TFLOP/s':>9}"
        f"{'max key err':>12}{'recall':>8}")
  for shape, keep in itertools.product(_SHAPES.value, map(int, _KEEPS.value)):
    qb, db, dimb, warps, stages = map(int, shape.split(":"))
    run = lambda: fused.select(queries, ids, x, jnp.int32(0), keep=keep, num_rows=n, query_block=qb,
                               database_block=db, dim_block=dimb, num_warps=warps, num_stages=stages,
                               interpret=_INTERPRET.value)
    try:
      keys, index = jax.block_until_ready(run())
      start = time.perf_counter()
      keys, index = jax.block_until_ready(run())
      seconds = time.perf_counter() - start
    except Exception as error:  # pylint: disable=broad-except  (a shape Triton refuses is reported, not fatal)
      print(f"{shape:>30}{keep:>6}  failed: {type(error).__name__}: {str(error)[:400]}", flush=True)
      continue
    want_keys, want_index = lax.top_k(scores, keep)
    key_error = float(jnp.max(jnp.abs(keys[:check_rows] - want_keys)))
    recall = float(np.mean([len(np.intersect1d(a, b)) / keep for a, b in
                            zip(np.asarray(index[:check_rows]), np.asarray(want_index))]))
    projected = seconds * n / q
    print(f"{shape:>30}{keep:>6}{seconds:>9.3f}{projected:>12.2f}{2 * n * n * d / projected / 1e12:>9.1f}"
          f"{key_error:>12.2e}{recall:>8.4f}", flush=True)


if __name__ == "__main__":
  app.run(main)
