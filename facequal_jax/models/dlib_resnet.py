"""dlib's pretrained face-recognition ResNet (`dlib_face_recognition_resnet_model_v1`) in Flax.

150 × 150 RGB face chip → 128-d descriptor, the network of dlib's
`dnn_face_recognition_ex.cpp` (`anet_type`), layer for layer:

  stem    7 × 7 / 2 convolution (32, no padding) → affine → ReLU → 3 × 3 / 2 max pool   150 → 72 → 35
  stage1  3 residual blocks, 32 channels                                                  35
  stage2  1 downsampling + 3 residual blocks, 64 channels                                 35 → 17
  stage3  1 downsampling + 2 residual blocks, 128 channels                                17 → 8
  stage4  1 downsampling + 2 residual blocks, 256 channels                                8 → 4
  stage5  1 downsampling block, 256 channels                                              4 → 2
  head    mean over the spatial grid → 256 × 128 dense layer without bias

A residual block is ReLU(x + affine(conv(ReLU(affine(conv(x)))))) with 3 × 3
convolutions (stride 1, padding 1, with bias). A downsampling block strides its
first convolution by 2 without padding and adds a 2 × 2 / 2 average pool of x.
"affine" is dlib's frozen batch norm: scale · x + bias per channel.

dlib's `add_prev` sums two tensors of different sizes where both exist and
keeps the larger size (zero padding at the high end of H, W and C). It matters
for the channel increase of every downsampling block and, spatially, in stage4
(the 3 × 3 convolution branch plus the 4 × 4 pooled input) and stage5 (1 × 1
plus 2 × 2).

Weights: `facequal_jax.encoders.dlib_weights.read_network` turns dlib's `.dat`
file into this module's params.
"""
from typing import Any, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

# (channels, blocks) per stage; every stage after the first starts with a downsampling block.
STAGES: Sequence[Tuple[int, int]] = ((32, 3), (64, 4), (128, 3), (256, 3), (256, 1))
STEM_CHANNELS = 32
EMBEDDING_DIM = 128
CHIP_SIZE = 150
# dlib's `input_rgb_image` per-channel means (R, G, B); inputs are (pixel - mean) / 256.
MEAN_RGB = (122.782, 117.001, 104.298)

_HIGHEST = jax.lax.Precision.HIGHEST


class Affine(nn.Module):
  """Per-channel scale · x + bias (dlib's `affine_`): [..., C] → [..., C] in x's dtype (float32 parameters)."""

  @nn.compact
  def __call__(self, x):
    scale = self.param("scale", nn.initializers.ones, (x.shape[-1],), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],), jnp.float32)
    return x * scale.astype(x.dtype) + bias.astype(x.dtype)


def zero_padded_add(a: jax.Array, b: jax.Array) -> jax.Array:
  """dlib's `add_prev`: [B, H, W, C] tensors of any H, W, C → their sum, zero-padded to the larger of each size."""
  shape = [max(p, q) for p, q in zip(a.shape, b.shape)]
  pad = lambda t: jnp.pad(t, [(0, s - d) for s, d in zip(shape, t.shape)])
  return pad(a) + pad(b)


class DlibFaceResNet(nn.Module):
  """uint8 or float [B, 150, 150, 3] RGB chips in [0, 255] → float32 [B, 128] descriptors (not normalised).

  The chips are what dlib's `compute_face_descriptor` receives; the mean
  subtraction and scaling of dlib's input layer happen here. `dtype` is the computation's (float32 at the
  highest matmul precision, or bfloat16 with float32 parameters: about twice the faces per second on
  accelerators); the descriptors are float32 either way.
  """
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images):
    x = ((images.astype(jnp.float32) - jnp.asarray(MEAN_RGB, jnp.float32)) / 256.0).astype(self.dtype)
    precision = _HIGHEST if self.dtype == jnp.float32 else None

    def conv(y, features, size, stride, name):
      # dlib pads by size // 2 at stride 1 and not at all otherwise.
      pad = size // 2 if stride == 1 else 0
      return nn.Conv(features, (size, size), stride, padding=[(pad, pad)] * 2, precision=precision,
                     dtype=self.dtype, name=name)(y)

    x = nn.relu(Affine(name="stem_affine")(conv(x, STEM_CHANNELS, 7, 2, "stem_conv")))
    x = nn.max_pool(x, window_shape=(3, 3), strides=(2, 2))  # by keyword, as jax2onnx's export of pools needs
    for stage, (features, blocks) in enumerate(STAGES, 1):
      for block in range(1, blocks + 1):
        prefix = f"stage{stage}_block{block}_"
        stride = 2 if stage > 1 and block == 1 else 1
        y = nn.relu(Affine(name=prefix + "affine1")(conv(x, features, 3, stride, prefix + "conv1")))
        y = Affine(name=prefix + "affine2")(conv(y, features, 3, 1, prefix + "conv2"))
        shortcut = x if stride == 1 else nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
        x = nn.relu(zero_padded_add(shortcut, y))
    x = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
    return nn.Dense(EMBEDDING_DIM, use_bias=False, precision=_HIGHEST, name="embedding")(x)
