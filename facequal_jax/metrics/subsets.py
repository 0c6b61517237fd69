"""Stratified identity subsets: the ~10⁴-sample evaluation sets of DESIGN §2."""
import numpy as np


def stratified_identity_subset(labels: np.ndarray, size: int, images_per_identity: int, min_images: int = 2,
                               seed: int = 0, max_identities: int = 0) -> np.ndarray:
  """Rows of a subset built identity by identity.

  Identities with at least `min_images` samples are visited in a seeded random
  order; each contributes a random `min(count, images_per_identity)` of its
  samples, until `size` rows are reached (the last identity is cut to fit, but
  never below `min_images`) or `max_identities` identities are taken. Taking whole groups keeps most samples' k
  same-identity neighbours inside the subset.

  Args:
    labels: int [N] identities.
    size: target number of rows (> 0).
    images_per_identity: cap of samples per identity (> 0).
    min_images: identities with fewer samples are not sampled.
    seed: random seed.
    max_identities: at most this many identities (0: no limit); with `size` at least
      max_identities × images_per_identity, every data set gets the same number of identities
      and of images per identity, where its identities have that many.

  Returns:
    int64 [<= size] sorted row indices.
  """
  if size <= 0 or images_per_identity <= 0 or min_images < 1:
    raise ValueError(f"need size > 0, images_per_identity > 0, min_images >= 1; got {size}, "
                     f"{images_per_identity}, {min_images}")
  labels = np.asarray(labels)
  rng = np.random.default_rng(seed)
  identities, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
  order = np.argsort(inverse, kind="stable")
  starts = np.r_[0, np.cumsum(counts)[:-1]]
  eligible = np.flatnonzero(counts >= min_images)
  if not len(eligible):
    raise ValueError(f"no identity has >= {min_images} samples")
  chosen, total = [], 0
  for identity in rng.permutation(eligible):
    take = min(counts[identity], images_per_identity, size - total)
    if take < min_images:
      break
    members = order[starts[identity]:starts[identity] + counts[identity]]
    chosen.append(rng.choice(members, size=take, replace=False))
    total += take
    if total >= size or len(chosen) == max_identities:
      break
  return np.sort(np.concatenate(chosen)).astype(np.int64)
