"""Independent float64 numpy references and test data generators."""
import numpy as np


def unit_rows64(x):
  x = np.asarray(x, np.float64)
  return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force_knn(database, k, queries=None, query_ids=None):
  """Float64 cosine k-NN: score descending, ties by lower index; query_ids excluded."""
  db = unit_rows64(database)
  q = db if queries is None else unit_rows64(queries)
  scores = q @ db.T
  if query_ids is not None:
    scores[np.arange(len(q)), query_ids] = -np.inf
  order = np.lexsort((np.broadcast_to(np.arange(db.shape[0]), scores.shape), -scores), axis=1)[:, :k]
  return order, np.take_along_axis(scores, order, axis=1)


def lattice_rows(rng, centres, per_row_moves, num_rows, dim=64, nonzeros=16):
  """Rows with exactly `nonzeros` entries of ±1 (so unit rows are ±1/4 and every
  dot product is an exact multiple of 1/16 in float32 and bf16).

  Rows are drawn around `centres` lattice centres by moving `per_row_moves`
  nonzeros each; returns (rows float32 [N, dim], centre of each row [N]).
  """
  def random_pattern():
    row = np.zeros(dim, np.float32)
    row[rng.choice(dim, nonzeros, replace=False)] = rng.choice([-1.0, 1.0], nonzeros)
    return row

  centre_rows = np.stack([random_pattern() for _ in range(centres)])
  owner = rng.integers(0, centres, num_rows)
  rows = centre_rows[owner].copy()
  for row in rows:
    for _ in range(per_row_moves):
      on, off = rng.choice(np.flatnonzero(row)), rng.choice(np.flatnonzero(row == 0))
      row[off], row[on] = rng.choice([-1.0, 1.0]), 0.0
  return rows, owner


def clustered_gaussian(rng, num_rows, dim, clusters, spread):
  centres = rng.normal(size=(clusters, dim))
  owner = rng.integers(0, clusters, num_rows)
  return (centres[owner] + spread * rng.normal(size=(num_rows, dim))).astype(np.float32), owner


def iq_by_numpy(embeddings, labels, k: int = 10, alpha: float = 0.2) -> float:
  """IQ from the definitions (DESIGN §2) in float64: brute-force k-NN consistency and the centred spectrum's
  normalised entropy (no singleton identities assumed)."""
  labels = np.asarray(labels)
  indices, _ = brute_force_knn(embeddings, k, query_ids=np.arange(len(labels)))
  consistency = np.mean(labels[indices] == labels[:, None])
  unit = unit_rows64(embeddings)
  unit -= unit.mean(axis=0)
  eigenvalues = np.clip(np.linalg.eigvalsh(unit.T @ unit / len(unit)), 0, None)
  p = eigenvalues[eigenvalues > 0] / eigenvalues.sum()
  rank_cap = min(unit.shape)
  return alpha * consistency + (1 - alpha) * (-(p * np.log(p)).sum() / np.log(rank_cap))
