r"""The suspicion score against cleanlab's Datalab on real faces: LFW-dev with faces moved between identities.

LFW-dev's identities with >= `min_images` images are kept; `moved` of their faces (seeded) are filed under
another identity drawn at random. Both rankers get the very same embeddings and labels, in one process:
facequal_jax's suspicion score (`fq.diagnose`, every sample ranked) and cleanlab's `Datalab` label issues
(k-NN on the features; ranked by 1 − label score), as a user runs it (its defaults) and with the same k. Printed per seed: average precision, precision at the
number of moved faces, recall at precision 0.95, seconds, and the default suspect list's precision and
recall (score >= `diagnostics.suspect_score`); last, the mean average precisions over the seeds. The embeddings come from the IQ job on the folder:

  python -m facequal_jax --workdir=W --config.data.images=../shared/data/lfw_dev
  pip install "cleanlab[datalab]"   # the peer; a benchmark dependency only
  python benchmarks/suspects_lfw.py --embeddings=W/embeddings/embeddings.npz
"""
import time

import numpy as np
from absl import app, flags

import facequal_jax as fq

_EMBEDDINGS = flags.DEFINE_string("embeddings", None, "WORKDIR/embeddings/embeddings.npz of the IQ job on LFW-dev.")
_MIN_IMAGES = flags.DEFINE_integer("min_images", 4, "Identities with fewer images are left out.")
_MOVED = flags.DEFINE_float("moved", 0.1, "Share of the faces filed under another identity.")
_SEEDS = flags.DEFINE_list("seeds", [str(seed) for seed in range(10)], "One row per seed (which faces move, and "
                           "where).")
_K = flags.DEFINE_integer("k", 10, "Neighbours per sample, for both.")
flags.mark_flag_as_required("embeddings")


def moved_faces(labels: np.ndarray, share: float, seed: int):
  """(the labels with `share` of the faces moved to another identity, bool [n] which moved)."""
  rng = np.random.default_rng(seed)
  identities = np.unique(labels)
  moved = rng.permutation(len(labels))[:int(round(share * len(labels)))]
  noisy = labels.copy()
  for row in moved:
    noisy[row] = rng.choice(identities[identities != labels[row]])
  return noisy, noisy != labels


def ranking_quality(truth: np.ndarray, score: np.ndarray) -> dict:
  """Average precision, precision at the number of wrong labels and recall at precision 0.95 of the ranking by
  `score` (highest first; NaN last), worked out directly from the ranked truth."""
  order = np.argsort(-np.nan_to_num(score, nan=-np.inf), kind="stable")
  hits = truth[order]
  found = np.cumsum(hits)
  precision = found / np.arange(1, len(hits) + 1)
  wrong = int(truth.sum())
  reaching = np.flatnonzero(precision >= 0.95)
  return {"ap": float(precision[hits].sum() / wrong), "p_at_n": float(found[wrong - 1] / wrong),
          "r_at_p95": float(found[reaching[-1]] / wrong) if len(reaching) else 0.0}


def main(argv):
  del argv
  from cleanlab import Datalab  # pylint: disable=import-outside-toplevel  (the peer: a benchmark dependency)
  with np.load(_EMBEDDINGS.value) as stored:
    embeddings, labels = stored["embeddings"].astype(np.float32), stored["labels"]
  kept = np.bincount(labels)[labels] >= _MIN_IMAGES.value
  embeddings, labels = embeddings[kept], labels[kept]
  print(f"LFW-dev identities with >= {_MIN_IMAGES.value} images: {len(labels):,} faces, "
        f"{len(np.unique(labels))} identities; {_MOVED.value:.0%} moved; k = {_K.value}")
  print(f"{'seed':<6}{'ranker':<28}{'AP':>8}{'P@moved':>9}{'R@P.95':>8}{'seconds':>9}   default list")
  precisions = {}
  for seed in map(int, _SEEDS.value):
    noisy, truth = moved_faces(labels, _MOVED.value, seed)
    start = time.perf_counter()
    report = fq.intrinsic_quality(embeddings, noisy, k=_K.value)
    found = fq.diagnose(report, embeddings)
    ours = time.perf_counter() - start
    listed = np.zeros(len(noisy), bool)
    listed[[item["sample"] for item in found["suspected_mislabeled"]]] = True
    rows = [("facequal_jax suspicion", found.suspicion, ours,
             f"{listed.sum()} listed, precision {truth[listed].mean():.3f}, "
             f"recall {truth[listed].sum() / truth.sum():.3f}")]
    for name, options in (("cleanlab Datalab", {}), (f"cleanlab Datalab, k={_K.value}", {"k": _K.value})):
      start = time.perf_counter()
      lab = Datalab(data={"label": noisy}, label_name="label", verbosity=0)
      lab.find_issues(features=embeddings, issue_types={"label": options})
      rows.append((name, 1.0 - lab.get_issues("label")["label_score"].to_numpy(), time.perf_counter() - start, ""))
    for name, score, seconds, extra in rows:
      quality = ranking_quality(truth, score)
      precisions.setdefault(name, []).append(quality["ap"])
      print(f"{seed:<6}{name:<28}{quality['ap']:>8.4f}{quality['p_at_n']:>9.4f}{quality['r_at_p95']:>8.4f}"
            f"{seconds:>9.2f}   {extra}".rstrip())
  ours, theirs = np.mean(precisions["facequal_jax suspicion"]), np.mean(precisions["cleanlab Datalab"])
  print(f"mean average precision over {len(_SEEDS.value)} seeds: facequal_jax {ours:.4f}, cleanlab {theirs:.4f}, "
        f"lead {ours - theirs:+.4f}")


if __name__ == "__main__":
  app.run(main)
