r"""The overlap finder on real faces: LFW-dev cut into two data sets that share known identities.

Of the identities with >= `min_images` images, `shared` of them (seeded) are in both sets, their images dealt
alternately between the two, the second set's labels renamed; every other identity goes whole to one set or the
other. Prints precision and recall of `find_overlap` (default thresholds) on the odd-numbered identities, the
even-numbered ones and all, and the reported pairs the cut did not make. The embeddings come from the IQ job:

  python -m facequal_jax --workdir=W --config.data.images=../shared/data/lfw_dev
  python benchmarks/overlap_lfw.py --embeddings=W/embeddings/embeddings.npz --images=../shared/data/lfw_dev
"""
import numpy as np
from absl import app, flags

import facequal_jax as fq
from facequal_jax.data.sources import ImageFolderSource

_EMBEDDINGS = flags.DEFINE_string("embeddings", None, "WORKDIR/embeddings/embeddings.npz of the IQ job on the folder.")
_IMAGES = flags.DEFINE_string("images", "../shared/data/lfw_dev", "The image folder (for the identities' names).")
_MIN_IMAGES = flags.DEFINE_integer("min_images", 4, "Identities with at least this many images can be shared.")
_SHARED = flags.DEFINE_float("shared", 0.4, "Share of those identities in both sets.")
flags.mark_flag_as_required("embeddings")


def split(labels: np.ndarray, identities: np.ndarray, rng: np.random.Generator):
  """(rows of A, rows of B, the shared identities) for the identities given."""
  counts = np.bincount(labels, minlength=labels.max() + 1)
  can_share = identities[counts[identities] >= _MIN_IMAGES.value]
  shared = rng.choice(can_share, size=int(len(can_share) * _SHARED.value), replace=False)
  rest = rng.permutation(np.setdiff1d(identities, shared))
  a, b = [], []
  for identity in shared:
    rows = rng.permutation(np.flatnonzero(labels == identity))
    a += list(rows[::2])
    b += list(rows[1::2])
  for target, group in ((a, rest[:len(rest) // 2]), (b, rest[len(rest) // 2:])):
    for identity in group:
      target += list(np.flatnonzero(labels == identity))
  return np.array(a), np.array(b), shared


def main(argv):
  del argv
  with np.load(_EMBEDDINGS.value) as stored:
    embeddings, labels = stored["embeddings"], stored["labels"]
  names = ImageFolderSource(_IMAGES.value).identity_names
  offset = labels.max() + 1  # B's labels: the same person under another label
  everyone = np.unique(labels)
  print(f"{'identities':<14}{'per set':>16}{'shared':>8}{'reported':>10}{'precision':>11}{'recall':>8}")
  for name, parity in (("odd-numbered", 1), ("even-numbered", 0), ("all", None)):
    identities = everyone if parity is None else everyone[everyone % 2 == parity]
    a, b, shared = split(labels, identities, np.random.default_rng(2 if parity is None else parity))
    pairs = [p for p in fq.find_overlap(embeddings[a], labels[a], embeddings[b], labels[b] + offset) if p["shared"]]
    correct = [p["other_identity"] == p["identity"] + offset for p in pairs]
    sizes = f"{len(np.unique(labels[a])):,} / {len(np.unique(labels[b])):,}"
    print(f"{name:<14}{sizes:>16}{len(shared):>8}{len(pairs):>10}{np.mean(correct):>11.3f}"
          f"{sum(correct) / len(shared):>8.3f}")
    for pair, right in zip(pairs, correct):
      if not right:
        print(f"    not made by the cut: {names[pair['identity']]} ({pair['images']}) ~ "
              f"{names[pair['other_identity'] - offset]} ({pair['other_images']}), centred cosine "
              f"{pair['centroid_similarity']:.3f}, margin {pair['margin']:.3f}")


if __name__ == "__main__":
  app.run(main)
