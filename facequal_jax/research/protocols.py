"""How the validation experiment measures a variant's intrinsic metrics: one table, to compute and to report.

  whole set          every face of the variant (the first two runs' only protocol). Consis then depends on how
                     many identities the variant has: more identities, more faces to confuse.
  fixed-size subset  the reference paper's protocol: a stratified identity subset with the same number of
                     identities, and of faces per identity where the variant has them, for every variant
                     (`stratified_identity_subset` with `max_identities`), k = faces per identity − 1 so that every
                     face can find all of its own; each metric is the mean over `subset.draws` seeded draws,
                     the same draws for every seed of a variant.
  cross-fitted       the same subsets, each face scored by a proxy trained on the other half of every identity's
                     faces (`crossfit.py`): an out-of-sample Consis. Its IQ takes r̃ from the fixed-size subset
                     protocol (the spectrum uses no labels, so there is nothing of them to memorise).

Each protocol is a prefix of the result row's fields (`subset_iq`, `fixed_consistency`, …).
"""
import dataclasses
from typing import Dict, List, Sequence

import ml_collections
import numpy as np

from facequal_jax.metrics import quality
from facequal_jax.metrics.subsets import stratified_identity_subset
from facequal_jax.research import crossfit

# field → label
METRIC_LABELS = {"iq": "IQ", "consistency": "Consis", "effective_rank_normalized": "r̃", "rankme": "RankMe",
                 "stable_rank": "stable rank", "alpha_req": "α-ReQ"}


@dataclasses.dataclass(frozen=True)
class Protocol:
  """prefix: of the row's fields; label: for tables; fields: the metrics it gives; encoder: "proxy" or "fixed";
  needs: the config switch it depends on ("" always, "subset", "crossfit"); rank_prefix: the protocol whose r̃
  its IQ takes (its own unless it gives no r̃)."""
  prefix: str
  label: str
  fields: Sequence[str]
  encoder: str
  needs: str
  rank_prefix: str = None

  @property
  def rank_field(self) -> str:
    """The row field of the r̃ its IQ is made with."""
    return (self.prefix if self.rank_prefix is None else self.rank_prefix) + "effective_rank_normalized"


PROTOCOLS = (
    Protocol("subset_", "proxy, fixed-size subset", tuple(METRIC_LABELS), "proxy", "subset"),
    Protocol("crossfit_", "proxy, cross-fitted subset", ("iq", "consistency"), "proxy", "crossfit", "subset_"),
    Protocol("", "proxy, whole set", tuple(METRIC_LABELS), "proxy", ""),
    Protocol("fixed_subset_", "face network, fixed-size subset", tuple(METRIC_LABELS), "fixed", "subset"),
    Protocol("fixed_", "face network, whole set", tuple(METRIC_LABELS), "fixed", ""),
)


def active(config: ml_collections.ConfigDict) -> List[Protocol]:
  """The protocols `config` measures (the subset ones with `subset.draws` > 0, cross-fitting with
  `crossfit.enabled` as well)."""
  switches = {"": True, "subset": config.subset.draws > 0,
              "crossfit": config.subset.draws > 0 and config.crossfit.enabled}
  return [protocol for protocol in PROTOCOLS if switches[protocol.needs]]


def metric_names(config: ml_collections.ConfigDict) -> Dict[str, str]:
  """Row field → label ("IQ (proxy, fixed-size subset)"), every active protocol's metrics in table order."""
  return {p.prefix + field: f"{METRIC_LABELS[field]} ({p.label})" for p in active(config) for field in p.fields}


def metric_fields(embeddings: np.ndarray, labels: np.ndarray, k: int, alpha: float, prefix: str) -> dict:
  """{prefix + metric: value} of every metric of METRIC_LABELS on all rows."""
  report = quality.intrinsic_quality(embeddings, labels, k=k, alpha=alpha)
  return {prefix + name: float(getattr(report, name)) for name in METRIC_LABELS}


def subsets(labels: np.ndarray, config: ml_collections.ConfigDict) -> List[np.ndarray]:
  """The `subset.draws` fixed-size subsets of a variant with `labels` [n]: int64 row arrays, draw d seeded
  with d."""
  s = config.subset
  return [stratified_identity_subset(labels, s.identities * s.images_per_identity, s.images_per_identity,
                                     min_images=2, seed=draw, max_identities=s.identities)
          for draw in range(s.draws)]


def subset_k(config: ml_collections.ConfigDict) -> int:
  return config.subset.images_per_identity - 1


def subset_fields(embeddings: np.ndarray, labels: np.ndarray, rows: List[np.ndarray],
                  config: ml_collections.ConfigDict, prefix: str) -> dict:
  """Every metric of METRIC_LABELS, the mean over the subsets `rows`."""
  draws = [metric_fields(embeddings[r], labels[r], subset_k(config), config.iq.alpha, prefix) for r in rows]
  return {name: float(np.mean([draw[name] for draw in draws])) for name in draws[0]}


def crossfit_fields(half_embeddings: np.ndarray, labels: np.ndarray, half: np.ndarray, rows: List[np.ndarray],
                    config: ml_collections.ConfigDict, rank: float) -> dict:
  """The cross-fitted Consis (mean over the subsets `rows` of `crossfit.out_of_sample_consistency`'s mean) and
  its IQ with `rank`, the r̃ of its `rank_field`.

  Args:
    half_embeddings: float [2, n, d]: the variant's faces embedded by the proxies trained on half 0 and half 1.
    labels, half: int [n].
  """
  consistency = float(np.mean([np.nanmean(crossfit.out_of_sample_consistency(
      half_embeddings[:, r], labels[r], half[r], subset_k(config))) for r in rows]))
  return {"crossfit_consistency": consistency,
          "crossfit_iq": config.iq.alpha * consistency + (1 - config.iq.alpha) * rank}
