r"""Identity overlap between two data sets at scale: `find_overlap` end to end, and its centroid search side by
side with the plain-JAX peer (block of centroids · all centroids, `lax.top_k`), in one process.

Synthetic sets: C identities each with `images_per_identity` unit embeddings around a random centre; the first
`shared` share of A's identities are also in B (other images, other labels). The table gives seconds, the
peer / facequal_jax ratio of the centroid search (both directions, k = 2, as `find_overlap` runs it), and the
precision and recall of the shared identities found.

  python benchmarks/overlap.py --identities=20000                            # the 2-core CPU
  python benchmarks/overlap.py --identities=200000,2000000 --precision=bfloat16   # one H200
"""
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from jax import lax

import facequal_jax as fq
from facequal_jax.cleaning.overlap import centred_unit
from facequal_jax.metrics.centroids import identity_centroids

_IDENTITIES = flags.DEFINE_list("identities", ["20000"], "Identities per data set.")
_IMAGES = flags.DEFINE_integer("images_per_identity", 2, "Images of every identity.")
_DIM = flags.DEFINE_integer("dim", 128, "Embedding dimension.")
_SHARED = flags.DEFINE_float("shared", 0.05, "Share of A's identities that B also holds.")
_NOISE = flags.DEFINE_float("noise", 0.6, "Spread of an identity's images around its centre (per unit centre).")
_PRECISION = flags.DEFINE_string("precision", "float32", "Search precision: float32 or bfloat16.")
_PEER_MAX = flags.DEFINE_integer("peer_max", 200_000, "Time the centroid searches (and the peer) up to this many "
                                 "identities (the peer takes about 20 s at 200,000 on one H200, and grows with the "
                                 "square).")


def _data(identities: int, rng: np.random.Generator):
  """(A embeddings, labels, B embeddings, labels, number shared): B's label i + identities is A's i for i < shared."""
  dim, per, shared = _DIM.value, _IMAGES.value, int(_SHARED.value * identities)
  centres = rng.standard_normal((2 * identities - shared, dim), dtype=np.float32)
  centres /= np.linalg.norm(centres, axis=1, keepdims=True)
  def images(ids):
    noise = rng.standard_normal((len(ids) * per, dim), dtype=np.float32) * (_NOISE.value / np.sqrt(dim))
    return np.repeat(centres[ids], per, axis=0) + noise
  b_ids = np.r_[np.arange(shared), np.arange(identities, 2 * identities - shared)]
  labels = np.repeat(np.arange(identities), per)
  return images(np.arange(identities)), labels, images(b_ids), labels + identities, shared


def _peer_search(queries: np.ndarray, database: np.ndarray, block: int = 1024):
  """Plain JAX: for each block of queries, the dot with every database row and `lax.top_k(·, 2)`."""
  database = jnp.asarray(database)
  step = jax.jit(lambda q: lax.top_k(q @ database.T, 2))
  found = [step(jnp.asarray(queries[start:start + block])) for start in range(0, len(queries), block)]
  return np.concatenate([np.asarray(i) for _, i in found]), np.concatenate([np.asarray(s) for s, _ in found])


def _timed(function, *args):
  start = time.perf_counter()
  out = function(*args)
  jax.block_until_ready(out)
  return out, time.perf_counter() - start


def main(argv):
  del argv
  rng = np.random.default_rng(0)
  settings = fq.SearchSettings(precision=_PRECISION.value)
  print(f"devices: {jax.devices()}; d = {_DIM.value}, {_IMAGES.value} images per identity, "
        f"{_SHARED.value:.0%} shared, search {_PRECISION.value}")
  print(f"{'identities':>11} {'images':>10} {'shared':>8} {'find_overlap s':>15} {'precision':>10} {'recall':>7} "
        f"{'fq centroid s':>14} {'peer s':>8} {'peer/fq':>8}")
  for identities in map(int, _IDENTITIES.value):
    a, a_labels, b, b_labels, shared = _data(identities, rng)
    pairs, total = _timed(lambda: fq.find_overlap(a, a_labels, b, b_labels, settings=settings))
    found = [p for p in pairs if p["shared"]]
    correct = sum(p["other_identity"] == p["identity"] + identities and p["identity"] < shared for p in found)
    fq_time, peer, ratio = "—", "—", "—"
    if identities <= _PEER_MAX.value:
      unit_a, unit_b = centred_unit(a, b)
      centroids = [identity_centroids(x, labels)[1].astype(np.float32) for x, labels in ((unit_a, a_labels),
                                                                                           (unit_b, b_labels))]
      search = lambda q, db: fq.knn(db, 2, queries=q, settings=settings).indices
      fq.knn(centroids[1][:4096], 2, queries=centroids[0][:4096], settings=settings)  # compile outside the timing
      _, fq_seconds = _timed(lambda: (search(centroids[0], centroids[1]), search(centroids[1], centroids[0])))
      _peer_search(centroids[0][:1024], centroids[1])
      _, peer_seconds = _timed(lambda: (_peer_search(centroids[0], centroids[1]),
                                        _peer_search(centroids[1], centroids[0])))
      fq_time, peer, ratio = f"{fq_seconds:.2f}", f"{peer_seconds:.2f}", f"{peer_seconds / fq_seconds:.2f}"
    print(f"{identities:>11,} {len(a) + len(b):>10,} {shared:>8,} {total:>15.2f} "
          f"{correct / max(len(found), 1):>10.4f} {correct / max(shared, 1):>7.4f} {fq_time:>14} "
          f"{peer:>8} {ratio:>8}", flush=True)


if __name__ == "__main__":
  app.run(main)
