"""Masked image modelling for aligned faces with a patch codebook (PaCo-style): the pretraining model.

Its encoder (`embed_patch`, `encoder`) is the product's `models.vit.PatchEncoder`, which reads it from an
`encoder.msgpack` to embed faces for IQ.

Pieces (each behind a config switch, for ablations):
- Patches: the image is cut into P × P patches (G × G of them).
- Corruption: masked patches (see `masking.py`) keep only a coarse 2 × 2
  summary of their pixels (the mean colour of each quadrant).
- Patch codebook (`use_codebook`): K code vectors in token space. Each clean
  patch's target code is its nearest code (VQ, with codebook and commitment
  losses). A small predictor reads the corrupted patch and scores the K codes;
  the masked patch enters the encoder as the softmax-weighted mix of its top
  `candidates` codes. During the first `incubation_steps` the predictor is
  trained on the targets while the encoder gets the target code itself.
  Without the codebook a masked patch enters as a learned mask token (MAE).
- Encoder (ViT) over all G² tokens, decoder (a smaller ViT) back to pixels;
  the reconstruction loss is the MSE on masked patches.
- Spatial loss, the spatial-consistency constraint (`spatial_weight` > 0): a head reads each encoder
  token's grid position; the predicted centres of the eyes, nose and mouth must
  keep their canonical displacements from each other.
- Codebook health: usage perplexity is reported; `revive_dead_codes` moves
  codes unused for a while onto patches of the current batch.
- View invariance (`invariance_weight` > 0): the masked input is one random
  view of the face (`views.py`) and a second, clean view goes through the
  encoder too; the pooled tokens of both, through a small projector, are tied
  by VICReg (invariance, variance and covariance terms), so the pooled
  embedding keeps what two views of one face share.

- Teacher target (`teacher_weight` > 0, off by default): from the masked
  face's mean encoder token, a linear head predicts the pretrained face
  network's 128-D embedding of the whole face (cosine loss) — a global,
  MaskDistill-style distillation target. The teacher was trained with labels
  on other data; no label of the pretraining faces is used.

Embeddings for IQ: the mean encoder token of the uncorrupted image, L2-normalised.

Shapes: images uint8 or float [B, H, W, C]; patches float32 [B, G², P·P·C];
tokens float32 [B, G², D]; codebook float32 [K, D].
"""
from typing import Any, Dict

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from facequal_jax.models.vit import Tower, patchify, unit_mean_token
from facequal_jax.research import masking


def coarse(patches: jax.Array, patch: int, channels: int) -> jax.Array:
  """Corrupts patches to the mean colour of their four quadrants (same shape)."""
  b, n, _ = patches.shape
  half = patch // 2
  x = patches.reshape(b, n, 2, half, 2, half, channels)
  means = x.mean(axis=(3, 5), keepdims=True)
  return jnp.broadcast_to(means, x.shape).reshape(b, n, patch * patch * channels)


class PacoMIM(nn.Module):
  """The masked-image-modelling model; `config` is the `model` section of a pretraining config."""
  config: ml_collections.ConfigDict

  def setup(self):
    c = self.config
    self.embed_patch = nn.Dense(c.dim, name="embed_patch")
    self.encoder = Tower(c.dim, c.depth, c.heads, c.mlp_ratio, name="encoder")
    self.to_decoder = nn.Dense(c.decoder_dim, name="to_decoder")
    self.decoder = Tower(c.decoder_dim, c.decoder_depth, c.heads, c.mlp_ratio, name="decoder")
    self.to_pixels = nn.Dense(c.patch * c.patch * c.channels, name="to_pixels")
    self.position_head = nn.Dense(2, name="position_head")
    if c.get("invariance_weight", 0.0) > 0:  # absent from older encoder.msgpack files
      self.projector = nn.Sequential([nn.Dense(c.projector_dim), nn.gelu, nn.Dense(c.projector_dim)],
                                     name="projector")
    if c.get("teacher_weight", 0.0) > 0:  # absent from older encoder.msgpack files
      self.teacher_head = nn.Dense(c.teacher_dim, name="teacher_head")
    if c.use_codebook:
      self.codebook = self.param("codebook", nn.initializers.normal(0.5), (c.codebook_size, c.dim))
      self.predictor = nn.Sequential([nn.Dense(c.dim), nn.gelu, nn.Dense(c.codebook_size)], name="predictor")
    else:
      self.mask_token = self.param("mask_token", nn.initializers.normal(0.02), (c.dim,))

  def embed(self, images):
    """uint8 [B, H, W, C] → L2-normalised float32 [B, dim] (no corruption; as `vit.PatchEncoder` computes it)."""
    return unit_mean_token(self.encoder(self.embed_patch(patchify(images, self.config.patch))))

  def __call__(self, images, masks, teacher_forcing, other_view=None, teacher=None):
    """Losses and statistics of one batch.

    Args:
      images: [B, H, W, C] faces; masks: bool [B, G²] patches to corrupt;
      teacher_forcing: bool scalar, True during incubation;
      other_view: [B, H, W, C] a second view of the same faces (needed when
        `invariance_weight` > 0);
      teacher: float32 [B, teacher_dim] the teacher's embeddings of the faces
        (needed when `teacher_weight` > 0).

    Returns:
      dict of float32 scalars (loss terms) and `code_histogram` [K].
    """
    c = self.config
    patches = patchify(images, c.patch)
    clean = self.embed_patch(patches)
    out: Dict[str, Any] = {}
    if c.use_codebook:
      distances = (jnp.sum(clean ** 2, -1, keepdims=True) - 2 * clean @ self.codebook.T
                   + jnp.sum(self.codebook ** 2, -1))
      target = jnp.argmin(distances, axis=-1)  # [B, N]
      chosen = self.codebook[target]
      weight = masks.astype(jnp.float32)
      denominator = jnp.maximum(weight.sum(), 1.0)
      squared = lambda a, b: (jnp.sum((a - b) ** 2, -1) * weight).sum() / denominator
      out["codebook_loss"] = squared(jax.lax.stop_gradient(clean), chosen)
      out["commitment_loss"] = squared(clean, jax.lax.stop_gradient(chosen))
      logits = self.predictor(coarse(patches, c.patch, c.channels))
      log_probs = jax.nn.log_softmax(logits)
      out["code_loss"] = -(jnp.take_along_axis(log_probs, target[..., None], -1)[..., 0] * weight).sum() / denominator
      top_logits, top_codes = jax.lax.top_k(logits, c.candidates)
      mixed = jnp.einsum("bnk,bnkd->bnd", jax.nn.softmax(top_logits), self.codebook[top_codes])
      corrupted = jnp.where(teacher_forcing, chosen, mixed)
      out["code_histogram"] = jnp.zeros(c.codebook_size).at[target.ravel()].add(1.0)
      out["code_accuracy"] = ((top_codes[..., 0] == target) * weight).sum() / denominator
    else:
      corrupted = jnp.broadcast_to(self.mask_token, clean.shape)
    tokens = self.encoder(jnp.where(masks[..., None], corrupted, clean))

    pixels = self.to_pixels(self.decoder(self.to_decoder(tokens)))
    error = jnp.mean((pixels - patches) ** 2, axis=-1)
    out["reconstruction_loss"] = (error * masks).sum() / jnp.maximum(masks.sum(), 1)

    grid = int(np.sqrt(masks.shape[1]))
    geometry = c.get("geometry", "arcface")  # absent from older encoder.msgpack files
    regions = jnp.asarray(masking.patch_regions(grid, geometry))
    member = (regions[None, :] == jnp.arange(len(masking.REGION_NAMES))[:, None]).astype(jnp.float32)  # [R, N]
    predicted = self.position_head(tokens)  # [B, N, 2]
    centres = jnp.einsum("rn,bnp->brp", member, predicted) / jnp.maximum(member.sum(1), 1.0)[None, :, None]
    canonical = jnp.asarray(masking.region_centres(grid, geometry))
    offsets = centres[:, :, None, :] - centres[:, None, :, :]
    true_offsets = canonical[:, None, :] - canonical[None, :, :]
    out["spatial_loss"] = jnp.mean(jnp.sum((offsets - true_offsets) ** 2, -1))
    if c.get("teacher_weight", 0.0) > 0:
      out["teacher_loss"] = cosine_distance(self.teacher_head(tokens.mean(axis=1)), teacher)
    if c.invariance_weight > 0:
      other_tokens = self.encoder(self.embed_patch(patchify(other_view, c.patch)))
      out.update(vicreg_terms(self.projector(tokens.mean(axis=1)), self.projector(other_tokens.mean(axis=1))))
    return out


def cosine_distance(predicted: jax.Array, target: jax.Array) -> jax.Array:
  """Mean of 1 − cos over the rows of two float [B, E] arrays."""
  unit = lambda x: x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
  return jnp.mean(1.0 - jnp.sum(unit(predicted) * unit(target), axis=-1))


def vicreg_terms(a: jax.Array, b: jax.Array) -> Dict[str, jax.Array]:
  """VICReg terms of two [B, E] batches of projected embeddings (Bardes et al., 2022).

  view_mse: mean squared difference of paired rows; view_variance: mean hinge
  max(0, 1 − std) over the columns of each batch; view_covariance: squared
  off-diagonal covariances of each batch, summed and divided by E.
  """
  def variance(z):
    return jnp.mean(jax.nn.relu(1.0 - jnp.sqrt(z.var(axis=0) + 1e-4)))

  def covariance(z):
    z = z - z.mean(axis=0)
    cov = z.T @ z / (z.shape[0] - 1)
    return (jnp.sum(cov ** 2) - jnp.sum(jnp.diag(cov) ** 2)) / z.shape[1]

  return {"view_mse": jnp.mean(jnp.sum((a - b) ** 2, -1)) / a.shape[1],
          "view_variance": variance(a) + variance(b),
          "view_covariance": covariance(a) + covariance(b)}


def total_loss(terms: Dict[str, jax.Array], config: ml_collections.ConfigDict) -> jax.Array:
  """Weighted sum of the loss terms that the config switches on."""
  loss = terms["reconstruction_loss"] + config.spatial_weight * terms["spatial_loss"]
  if config.get("teacher_weight", 0.0) > 0:
    loss += config.teacher_weight * terms["teacher_loss"]
  if config.invariance_weight > 0:
    loss += config.invariance_weight * (25.0 * terms["view_mse"] + 25.0 * terms["view_variance"]
                                        + terms["view_covariance"])
  if config.use_codebook:
    loss += (config.code_weight * terms["code_loss"] + terms["codebook_loss"]
             + config.commitment_weight * terms["commitment_loss"])
  return loss


def perplexity(histogram: jax.Array) -> jax.Array:
  """exp(entropy) of code usage counts [K] (K when all codes are used equally)."""
  p = histogram / jnp.maximum(histogram.sum(), 1.0)
  return jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)))


def revive_dead_codes(codebook: jax.Array, usage: jax.Array, patch_tokens: jax.Array, key: jax.Array,
                      threshold: float) -> jax.Array:
  """Moves codes whose running usage is below `threshold` onto random patch tokens of the batch.

  Args:
    codebook: float32 [K, D]; usage: float32 [K] running (EMA) usage counts;
    patch_tokens: float32 [M, D] clean patch embeddings of the batch.
  """
  picks = jax.random.randint(key, (codebook.shape[0],), 0, patch_tokens.shape[0])
  return jnp.where((usage < threshold)[:, None], patch_tokens[picks], codebook)
