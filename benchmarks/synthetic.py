"""Synthetic labelled embeddings shaped like a face-recognition training set, for runs at any scale.

Identities are random unit directions in d dimensions (d = 128: the face network's size); each identity's
faces scatter around its direction with its own spread (cosine to the centre ≈ 0.7–0.8, as a face network's
same-person pairs), and identity sizes are long-tailed (2 images and up, `mean_images` on average). Then
labels are damaged on purpose: a share of the faces is filed under another identity drawn at random (flips),
and a few faces are copied — a near-identical embedding — under another identity (planted duplicates).
Everything is drawn from `seed`, in row chunks, so 1,000,000 × 128 rows take a few seconds and 0.5 GiB.
"""
import dataclasses

import numpy as np

CHUNK = 65536


@dataclasses.dataclass(frozen=True)
class Planted:
  """A synthetic set and what was done to it.

  Attributes:
    embeddings: float32 [N, d] unit rows.
    labels: int64 [N] the labels as filed (with the flips and copies).
    true_labels: int64 [N] whose face each row is.
    flipped: bool [N] rows filed under another identity on purpose.
    copies: int64 [P, 2] planted duplicate pairs (original row, copy row): the copy is the original's face,
      filed under another identity (so it is a wrong label too).
  """
  embeddings: np.ndarray
  labels: np.ndarray
  true_labels: np.ndarray
  flipped: np.ndarray
  copies: np.ndarray

  @property
  def wrong(self) -> np.ndarray:
    """bool [N]: every row whose label is not its face's identity (flips and copies)."""
    return self.labels != self.true_labels


def identity_sizes(rng: np.random.Generator, num_rows: int, mean_images: float) -> np.ndarray:
  """int64 [C]: long-tailed identity sizes (2 + a geometric draw) summing to exactly `num_rows`."""
  sizes = 2 + rng.geometric(1.0 / max(mean_images - 1.0, 1.0), size=int(num_rows / mean_images * 1.2) + 2) - 1
  sizes = sizes[:np.searchsorted(np.cumsum(sizes), num_rows) + 1]
  sizes[-1] -= sizes.sum() - num_rows
  if sizes[-1] < 2:  # the last identity would be a singleton or empty: give its rows to the one before
    sizes[-2] += sizes[-1]
    sizes = sizes[:-1]
  return sizes


def face_like(num_rows: int, dim: int = 128, mean_images: float = 20.0, flip_share: float = 0.05,
              copy_share: float = 0.001, seed: int = 0) -> Planted:
  """A `Planted` set of `num_rows` rows (module docstring)."""
  rng = np.random.default_rng(seed)
  sizes = identity_sizes(rng, num_rows, mean_images)
  true_labels = np.repeat(np.arange(len(sizes)), sizes)
  centres = rng.standard_normal((len(sizes), dim)).astype(np.float32)
  centres /= np.linalg.norm(centres, axis=1, keepdims=True)
  spread = rng.uniform(0.75, 1.0, len(sizes)).astype(np.float32)  # per identity: cosine to its centre 0.7-0.8
  embeddings = np.empty((num_rows, dim), np.float32)
  for start in range(0, num_rows, CHUNK):
    owner = true_labels[start:start + CHUNK]
    rows = centres[owner] + spread[owner, None] * rng.standard_normal((len(owner), dim), np.float32) / np.sqrt(dim)
    embeddings[start:start + CHUNK] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
  labels = true_labels.copy()
  moved = rng.permutation(num_rows)[:int(round((flip_share + copy_share) * num_rows))]
  flips, copy_rows = moved[:int(round(flip_share * num_rows))], moved[int(round(flip_share * num_rows)):]
  labels[flips] = (true_labels[flips] + rng.integers(1, len(sizes), len(flips))) % len(sizes)
  originals = rng.integers(0, num_rows, len(copy_rows))
  originals = np.where(np.isin(originals, moved), (originals + 1) % num_rows, originals)
  copied = embeddings[originals] + 0.01 * rng.standard_normal((len(originals), dim), np.float32) / np.sqrt(dim)
  embeddings[copy_rows] = copied / np.linalg.norm(copied, axis=1, keepdims=True)
  true_labels[copy_rows] = true_labels[originals]
  labels[copy_rows] = (true_labels[originals] + rng.integers(1, len(sizes), len(copy_rows))) % len(sizes)
  flipped = np.zeros(num_rows, bool)
  flipped[flips] = True
  return Planted(embeddings, labels, true_labels, flipped, np.stack([originals, copy_rows], axis=1))


def write_npz(planted: Planted, path: str) -> None:
  """The set as the IQ command reads it (`embeddings`, `labels`), plus the truth (`true_labels`, `flipped`,
  `copies`), uncompressed."""
  np.savez(path, embeddings=planted.embeddings, labels=planted.labels, true_labels=planted.true_labels,
           flipped=planted.flipped, copies=planted.copies)
