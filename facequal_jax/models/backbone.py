"""A compact residual CNN face backbone (ResNet-style basic blocks, GroupNorm).

GroupNorm instead of BatchNorm keeps the model free of batch statistics, so a
data-parallel step needs no cross-device moment sync and evaluation equals
training-mode inference.
"""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


class BasicBlock(nn.Module):
  """Two 3 × 3 convolutions with a residual connection; `stride` 2 halves H and W."""
  features: int
  stride: int = 1

  @nn.compact
  def __call__(self, x):
    norm = lambda: nn.GroupNorm(num_groups=min(8, self.features))
    y = nn.relu(norm()(nn.Conv(self.features, (3, 3), self.stride, use_bias=False)(x)))
    y = norm()(nn.Conv(self.features, (3, 3), 1, use_bias=False)(y))
    if self.stride != 1 or x.shape[-1] != self.features:
      x = norm()(nn.Conv(self.features, (1, 1), self.stride, use_bias=False)(x))
    return nn.relu(x + y)


class FaceResNet(nn.Module):
  """uint8 or float [B, H, W, C] faces → float32 [B, embedding_dim] embeddings (not normalised).

  A 3 × 3 stem, then one stage per entry of `widths` (the first at stride 1,
  the others halving the resolution), then the flattened feature map through
  a dense layer and LayerNorm, as ArcFace's "BN-Dropout-FC-BN" output head does
  with batch statistics.
  """
  widths: Sequence[int] = (32, 64, 128)
  blocks_per_stage: int = 1
  embedding_dim: int = 128
  stem_stride: int = 2

  @nn.compact
  def __call__(self, images):
    x = images.astype(jnp.float32) / 127.5 - 1.0
    x = nn.relu(nn.GroupNorm(num_groups=8)(nn.Conv(self.widths[0], (3, 3), self.stem_stride, use_bias=False)(x)))
    for stage, features in enumerate(self.widths):
      for block in range(self.blocks_per_stage):
        x = BasicBlock(features, 2 if stage > 0 and block == 0 else 1)(x)
    x = nn.Dense(self.embedding_dim)(x.reshape(x.shape[0], -1))
    return nn.LayerNorm()(x)
