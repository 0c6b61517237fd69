"""From accepted decisions to what happens to every sample of a source (`resolve` → `Plan`).

Rules, in order of strength: a sample's own `drop`, its own `relabel:`, its
identity's `drop`, its identity's `merge:` (merges chain: A → B and B → C send
A's samples to C). A decision about an item the source does not have, two
different decisions about one item, a merge cycle, or a merge into a dropped
identity is an error that names the file's line.
"""
import dataclasses
from typing import Dict, List, Sequence

import numpy as np

from facequal_jax.cleaning.decisions import Decision
from facequal_jax.errors import DataError


@dataclasses.dataclass(frozen=True)
class Plan:
  """What applying the decisions does to a source of N samples.

  Attributes:
    keep: bool [N] samples that stay.
    identity: the final identity name of every sample (dropped ones keep theirs).
    changed: bool [N] kept samples whose identity changed.
    summary: counts for people (see `resolve`).
  """
  keep: np.ndarray
  identity: List[str]
  changed: np.ndarray
  summary: dict


def _where(path: str, decision: Decision) -> str:
  return f"{path}: line {decision.line}" if decision.line else path


def _one_per_item(decisions: Sequence[Decision], path: str) -> Dict[tuple, Decision]:
  chosen: Dict[tuple, Decision] = {}
  for decision in decisions:
    key = (decision.kind, decision.item)
    earlier = chosen.get(key)
    if earlier is not None and earlier.action != decision.action:
      raise DataError(f"{_where(path, decision)}: {decision.kind} {decision.item!r} is decided twice "
                      f"({earlier.action!r} on line {earlier.line}, {decision.action!r} here): keep one")
    chosen[key] = decision
  return chosen


def _merge_targets(merges: Dict[str, Decision], dropped: set, names: set, path: str) -> Dict[str, str]:
  """identity → the identity its samples finally join, following chains."""
  final = {}
  for name, decision in merges.items():
    seen, current = [name], decision.target
    while current in merges:
      if current in seen:
        raise DataError(f"{_where(path, decision)}: merges form a cycle ({' → '.join(seen + [current])})")
      seen.append(current)
      current = merges[current].target
    if current not in names:
      raise DataError(f"{_where(path, decision)}: merge:{decision.target} names no identity of the source")
    if current in dropped:
      raise DataError(f"{_where(path, decision)}: {name!r} is merged into {current!r}, which is dropped")
    final[name] = current
  return final


def resolve(decisions: Sequence[Decision], sample_ids: Sequence[str], identities: Sequence[str],
            path: str = "decisions") -> Plan:
  """The plan of the accepted (`apply`) decisions for a source.

  Args:
    decisions: read from the file `path` (named in errors).
    sample_ids: [N] each sample's name within the source.
    identities: [N] each sample's identity name.

  Returns:
    The plan; its summary holds samples and identities before and after, and
    how many samples were dropped (by sample / by identity), relabelled and
    merged, and how many rows were left for review.
  """
  accepted = [d for d in decisions if d.apply]
  chosen = _one_per_item(accepted, path)
  position = {sample: i for i, sample in enumerate(sample_ids)}
  if len(position) != len(sample_ids):
    raise DataError("the source names two samples alike; decisions cannot tell them apart")
  names = set(identities)
  for (kind, item), decision in chosen.items():
    if (item not in position) if kind == "sample" else (item not in names):
      raise DataError(f"{_where(path, decision)}: the source has no {kind} {item!r}")
  dropped = {item for (kind, item), d in chosen.items() if kind == "identity" and d.verb == "drop"}
  merges = {item: d for (kind, item), d in chosen.items() if kind == "identity" and d.verb == "merge"}
  final = _merge_targets(merges, dropped, names, path)

  own = {position[item]: d for (kind, item), d in chosen.items() if kind == "sample"}
  has_own = np.zeros(len(sample_ids), bool)
  has_own[list(own)] = True
  in_dropped = np.array([name in dropped for name in identities], bool)
  keep = ~in_dropped
  identity = [final.get(name, name) for name in identities]
  for i, decision in own.items():
    if decision.verb == "relabel" and final.get(decision.target, decision.target) in dropped:
      raise DataError(f"{_where(path, decision)}: relabel:{decision.target} names an identity that is dropped")
    keep[i] = decision.verb == "relabel"  # a sample's own decision wins over its identity's
    if keep[i]:
      identity[i] = final.get(decision.target, decision.target)
  changed = keep & (np.asarray(identity, object) != np.asarray(identities, object))
  merged = np.array([name in final for name in identities], bool) & keep & ~has_own
  summary = {"samples_before": len(sample_ids), "samples_after": int(keep.sum()),
             "identities_before": len(names), "identities_after": len({identity[i] for i in np.flatnonzero(keep)}),
             "dropped_samples": int(np.sum(has_own & ~keep)),
             "dropped_with_their_identity": int(np.sum(in_dropped & ~has_own)),
             "relabelled_samples": int(np.sum(has_own & keep)), "merged_identities": len(merges),
             "samples_merged": int(merged.sum()),
             "identities_dropped": len(dropped), "changed_labels": int(changed.sum()),
             "decisions_applied": len(chosen), "left_for_review": len(decisions) - len(accepted)}
  return Plan(keep, identity, changed, summary)
