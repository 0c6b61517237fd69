"""The ViT face encoder of PaCo-FR: patches → a transformer tower → the unit mean token.

`PatchEncoder` holds the parameters `embed_patch` and `encoder` under the names
the masked-image-modelling model that pretrains it gives them, so an
`encoder.msgpack` is read by name (`encoders.mim`).

Shapes: images uint8 or float [B, H, W, C]; patches float32 [B, G², P·P·C];
tokens float32 [B, G², D].
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections


def patchify(images: jax.Array, patch: int) -> jax.Array:
  """[B, H, W, C] (uint8 or float in [0, 255]) → float32 [B, (H/P)·(W/P), P·P·C] in [−1, 1]."""
  b, h, w, c = images.shape
  x = images.astype(jnp.float32) / 127.5 - 1.0
  x = x.reshape(b, h // patch, patch, w // patch, patch, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, (h // patch) * (w // patch), patch * patch * c)


class Block(nn.Module):
  """Pre-norm transformer block; with `drop_path` > 0 and not `deterministic`, each sample skips each branch
  with that probability (stochastic depth; the kept branches are scaled by 1 / (1 − drop_path))."""
  dim: int
  heads: int
  mlp_ratio: int
  drop_path: float = 0.0

  @nn.compact
  def __call__(self, x, deterministic: bool = True):
    drop = nn.Dropout(self.drop_path, broadcast_dims=(1, 2), deterministic=deterministic)
    x = x + drop(nn.MultiHeadDotProductAttention(num_heads=self.heads)(nn.LayerNorm()(x)))
    h = nn.Dense(self.dim * self.mlp_ratio)(nn.LayerNorm()(x))
    return x + drop(nn.Dense(self.dim)(nn.gelu(h)))


class Tower(nn.Module):
  """Learned positions + `depth` blocks + final norm over [B, N, dim] tokens; block i drops its branches with
  probability drop_path · i / (depth − 1) when not `deterministic` (needs a "dropout" rng)."""
  dim: int
  depth: int
  heads: int
  mlp_ratio: int
  drop_path: float = 0.0

  @nn.compact
  def __call__(self, tokens, deterministic: bool = True):
    positions = self.param("positions", nn.initializers.normal(0.02), tokens.shape[1:])
    x = tokens + positions
    for i in range(self.depth):
      x = Block(self.dim, self.heads, self.mlp_ratio, self.drop_path * i / max(self.depth - 1, 1))(x, deterministic)
    return nn.LayerNorm()(x)


def unit_mean_token(tokens: jax.Array) -> jax.Array:
  """float32 [B, N, D] tokens → their mean, L2-normalised [B, D]."""
  pooled = tokens.mean(axis=1)
  return pooled / jnp.linalg.norm(pooled, axis=1, keepdims=True)


class PatchEncoder(nn.Module):
  """uint8 [B, H, W, C] faces → unit float32 [B, dim]; `config`: patch, dim, depth, heads, mlp_ratio."""
  config: ml_collections.ConfigDict

  @nn.compact
  def __call__(self, images):
    c = self.config
    tokens = nn.Dense(c.dim, name="embed_patch")(patchify(images, c.patch))
    return unit_mean_token(Tower(c.dim, c.depth, c.heads, c.mlp_ratio, name="encoder")(tokens))
