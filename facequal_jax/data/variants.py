"""Dataset variants for experiments, as index views over a source (never copies).

A `View` is (source, rows, labels): which samples of the source take part and
the identity each carries. Every function here returns a new view and leaves
the source alone, so one decoded image cache or embedding file serves them all.
"""
import dataclasses
from typing import Optional, Sequence

import numpy as np



@dataclasses.dataclass(frozen=True)
class View:
  """Rows of a source with (possibly altered) labels.

  Attributes:
    source: the face source.
    rows: int64 [n] source rows.
    labels: int64 [n] identity of each row (source label space).
    flipped: bool [n] True where `flip_labels` changed the label.
  """
  source: object
  rows: np.ndarray
  labels: np.ndarray
  flipped: Optional[np.ndarray] = None

  def __len__(self) -> int:
    return len(self.rows)

  def select(self, positions: np.ndarray) -> "View":
    """The sub-view at `positions` (indices into this view)."""
    positions = np.asarray(positions, np.int64)
    flipped = None if self.flipped is None else self.flipped[positions]
    return View(self.source, self.rows[positions], self.labels[positions], flipped)


def full_view(source) -> View:
  return View(source, np.arange(len(source), dtype=np.int64), np.asarray(source.labels, np.int64))


def flip_labels(view: View, rate: float, seed: int = 0) -> View:
  """Uniform closed-set label noise: exactly round(rate · n) samples get another identity.

  The flipped samples are drawn uniformly without replacement; each new label
  is drawn uniformly from the view's other identities, so it never equals the
  original. `flipped` records which samples changed.
  """
  if not 0.0 <= rate <= 1.0:
    raise ValueError(f"label-flip rate must be in [0, 1], got {rate}")
  identities = np.unique(view.labels)
  if len(identities) < 2 and rate > 0:
    raise ValueError("label flips need at least two identities")
  rng = np.random.default_rng(seed)
  count = int(round(rate * len(view)))
  chosen = rng.choice(len(view), size=count, replace=False)
  original = np.searchsorted(identities, view.labels[chosen])
  # Draw among the other C − 1 identities: shift draws at or above the original by one.
  draw = rng.integers(0, len(identities) - 1, size=count)
  draw += draw >= original
  labels = view.labels.copy()
  labels[chosen] = identities[draw]
  flipped = np.zeros(len(view), bool) if view.flipped is None else view.flipped.copy()
  flipped[chosen] = True
  return View(view.source, view.rows, labels, flipped)


def identity_subset(view: View, identities: Sequence[int]) -> View:
  """Only the samples whose label is in `identities`."""
  return view.select(np.flatnonzero(np.isin(view.labels, np.asarray(identities))))


def cap_images_per_identity(view: View, cap: int, seed: int = 0) -> View:
  """At most `cap` random samples of each identity (order kept)."""
  if cap <= 0:
    raise ValueError(f"cap must be > 0, got {cap}")
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(view))
  by_label = order[np.argsort(view.labels[order], kind="stable")]
  labels_sorted = view.labels[by_label]
  first = np.searchsorted(labels_sorted, labels_sorted)
  rank = np.arange(len(view)) - first
  return view.select(np.sort(by_label[rank < cap]))
