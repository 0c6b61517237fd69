"""ArcFace additive angular margin loss with a class-sharded classifier (Partial-FC style).

For unit embedding x and unit class centre w_j, cos θ_j = x·w_j. The target
logit becomes s·cos(θ_y + m), the others stay s·cos θ_j (Deng et al., 2019).
Where θ_y + m would pass π the target falls back to s·(cos θ_y − m·sin m), as
in insightface, so the logit stays monotone in θ_y.

Many identities: the classifier `[C, D]` is split over the mesh along C, as
Partial-FC does (without its negative-class sampling: every class is used).
Each device all-gathers the batch's embeddings, scores them against its own
classes, and the softmax normaliser is assembled with a `pmax` and a `psum`,
so no device ever holds the full `[B, C]` logits or the full classifier.
"""
import functools
import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import Mesh, PartitionSpec

from facequal_jax import sharding


def margin_logits(cosines: jax.Array, target: jax.Array, scale: float, margin: float) -> jax.Array:
  """ArcFace logits.

  Args:
    cosines: float32 [B, C] cos θ between unit embeddings and unit class centres.
    target: bool [B, C] True at each row's own class.
    scale, margin: s and m (radians).

  Returns:
    float32 [B, C] s·cos(θ + m) at the target, s·cos θ elsewhere.
  """
  sine = jnp.sqrt(jnp.clip(1.0 - cosines ** 2, 0.0, 1.0))
  with_margin = cosines * math.cos(margin) - sine * math.sin(margin)
  with_margin = jnp.where(cosines > math.cos(math.pi - margin), with_margin, cosines - margin * math.sin(margin))
  return scale * jnp.where(target, with_margin, cosines)


def _unit(x: jax.Array, axis: int = -1) -> jax.Array:
  return x / jnp.maximum(jnp.linalg.norm(x, axis=axis, keepdims=True), 1e-12)


def _shard_loss(embeddings, labels, centres, *, scale, margin, num_classes):
  """Per-device body: embeddings [b, D] and labels [b] of this device's batch rows,
  centres [C/P, D] of this device's classes → the mean loss over the whole batch."""
  everyone = lax.all_gather(embeddings, sharding.ROWS, tiled=True)
  all_labels = lax.all_gather(labels, sharding.ROWS, tiled=True)
  local_classes = centres.shape[0]
  first = lax.axis_index(sharding.ROWS) * local_classes
  class_ids = first + jnp.arange(local_classes)
  cosines = _unit(everyone) @ _unit(centres).T
  logits = margin_logits(cosines, all_labels[:, None] == class_ids[None, :], scale, margin)
  logits = jnp.where(class_ids[None, :] < num_classes, logits, -jnp.inf)  # padding classes
  peak = lax.pmax(lax.stop_gradient(jnp.max(logits, axis=1)), sharding.ROWS)
  normaliser = lax.psum(jnp.sum(jnp.exp(logits - peak[:, None]), axis=1), sharding.ROWS)
  own = lax.psum(jnp.sum(jnp.where(all_labels[:, None] == class_ids[None, :], logits, 0.0), axis=1),
                 sharding.ROWS)
  return jnp.mean(jnp.log(normaliser) + peak - own)


def sharded_loss(embeddings: jax.Array, labels: jax.Array, centres: jax.Array, *, mesh: Mesh, scale: float,
                 margin: float, num_classes: int) -> jax.Array:
  """Mean ArcFace cross-entropy of a batch.

  Args:
    embeddings: float32 [B, D] (any norm), B a multiple of the mesh size,
      sharded or not over the mesh rows.
    labels: int32 [B] class of each row in [0, num_classes).
    centres: float32 [C_pad, D] class centres (any norm), C_pad a multiple of
      the mesh size, split over the mesh along the classes; rows
      >= num_classes are padding and never scored.

  Returns:
    float32 scalar.
  """
  body = functools.partial(_shard_loss, scale=scale, margin=margin, num_classes=num_classes)
  rows = PartitionSpec(sharding.ROWS)
  return jax.shard_map(body, mesh=mesh, in_specs=(rows, rows, rows), out_specs=PartitionSpec(),
                       check_vma=False)(embeddings, labels, centres)
