"""The proxy's face backbones: a compact residual CNN, and the PaCo-FR ViT encoder with an embedding head.

Both map uint8 or float faces [B, H, W, C] to float32 [B, embedding_dim]
embeddings (not normalised) and take `train` (True while training: the ViT's
stochastic depth is on, a BatchNorm head uses the batch's statistics).

The CNN's blocks use GroupNorm, free of batch statistics. The embedding head
ends in `head_norm` (HEAD_NORMS): "layernorm" normalises each embedding on its
own; "batchnorm" — ArcFace's output BN — centres and scales every dimension
over the batch (running averages, collection "batch_stats", at inference),
which keeps a direction shared by all faces out of the embeddings (README,
"The proxy's spectrum"). Under `jit` with the batch split over the mesh its
moments are those of the whole global batch.
"""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from facequal_jax.models.vit import Tower, patchify

HEAD_NORMS = ("layernorm", "batchnorm")
# Running-average momentum of the BatchNorm head (PyTorch's 0.1, as ArcFace trains with).
BATCHNORM_MOMENTUM = 0.9


def head_norm(kind: str, train: bool, name: str = None) -> nn.Module:
  """The embedding head's last layer (see the module docstring); `kind` one of HEAD_NORMS."""
  if kind == "layernorm":
    return nn.LayerNorm(name=name)
  if kind == "batchnorm":
    # the scale is fixed, as in ArcFace's head: only the direction of an embedding counts
    return nn.BatchNorm(use_running_average=not train, momentum=BATCHNORM_MOMENTUM, use_scale=False, name=name)
  raise ValueError(f"head_norm must be one of {HEAD_NORMS}, got {kind!r}")


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
  a dense layer and `head_norm`, as ArcFace's "BN-Dropout-FC-BN" output head.
  """
  widths: Sequence[int] = (32, 64, 128)
  blocks_per_stage: int = 1
  embedding_dim: int = 128
  stem_stride: int = 2
  head_norm: str = "layernorm"

  @nn.compact
  def __call__(self, images, train: bool = False):
    x = images.astype(jnp.float32) / 127.5 - 1.0
    x = nn.relu(nn.GroupNorm(num_groups=8)(nn.Conv(self.widths[0], (3, 3), self.stem_stride, use_bias=False)(x)))
    for stage, features in enumerate(self.widths):
      for block in range(self.blocks_per_stage):
        x = BasicBlock(features, 2 if stage > 0 and block == 0 else 1)(x)
    x = nn.Dense(self.embedding_dim)(x.reshape(x.shape[0], -1))
    return head_norm(self.head_norm, train)(x)


POOLS = ("flatten", "mean")


class FaceViT(nn.Module):
  """The PaCo-FR encoder as a face backbone: uint8 or float [B, H, W, C] → float32 [B, embedding_dim].

  `embed_patch` and `encoder` have the names, structure and shapes of `PacoMIM`'s (see `paco.py`), so a
  pretraining checkpoint's encoder loads into them (`training/finetune.py`). The head reads the final
  tokens [B, N, dim] — all of them flattened (`pool="flatten"`, the spatial layout kept, as ArcFace's
  output head does with a CNN's feature map) or their mean (`"mean"`) — through a dense layer and `head_norm`.
  """
  patch: int = 8
  dim: int = 128
  depth: int = 4
  heads: int = 4
  mlp_ratio: int = 2
  embedding_dim: int = 128
  pool: str = "flatten"
  drop_path: float = 0.0
  head_norm: str = "layernorm"

  @nn.compact
  def __call__(self, images, train: bool = False):
    tokens = nn.Dense(self.dim, name="embed_patch")(patchify(images, self.patch))
    tokens = Tower(self.dim, self.depth, self.heads, self.mlp_ratio, self.drop_path, name="encoder")(
        tokens, deterministic=not train)
    features = tokens.reshape(tokens.shape[0], -1) if self.pool == "flatten" else tokens.mean(axis=1)
    return head_norm(self.head_norm, train, name="head_norm")(nn.Dense(self.embedding_dim, name="head")(features))
