"""Two photometric and geometric views of each aligned face, for the view-invariance loss.

A view rescales the face by a factor in [1 − scale, 1 + scale] about a centre
shifted by up to `shift` of the side, mirrors it with probability ½, and
changes brightness and contrast by up to `colour` (x ↦ a·x + b with
a ∈ [1 − colour, 1 + colour], b ∈ 255·[−colour/2, colour/2]). Faces stay
aligned up to that jitter, so facial regions keep their places.

Shapes: images uint8 or float [B, S, S, C] in [0, 255] → float32 [B, S, S, C] in [0, 255].
"""
import jax
import jax.numpy as jnp


def _one_view(key: jax.Array, image: jax.Array, scale: float, shift: float, colour: float) -> jax.Array:
  size = image.shape[0]
  zoom_key, shift_key, flip_key, gain_key, offset_key = jax.random.split(key, 5)
  zoom = jax.random.uniform(zoom_key, (), minval=1.0 - scale, maxval=1.0 + scale)
  centre_shift = jax.random.uniform(shift_key, (2,), minval=-shift, maxval=shift) * size
  # Output pixel o samples input pixel (o − t) / zoom: keep the (shifted) centre fixed.
  translation = (size / 2) * (1.0 - zoom) + centre_shift
  view = jax.image.scale_and_translate(image, (size, size, image.shape[2]), (0, 1), jnp.array([zoom, zoom]),
                                       translation, "linear")
  view = jnp.where(jax.random.bernoulli(flip_key), view[:, ::-1], view)
  gain = jax.random.uniform(gain_key, (), minval=1.0 - colour, maxval=1.0 + colour)
  offset = jax.random.uniform(offset_key, (), minval=-colour / 2, maxval=colour / 2) * 255.0
  return jnp.clip(gain * view + offset, 0.0, 255.0)


def random_views(key: jax.Array, images: jax.Array, scale: float = 0.1, shift: float = 0.05,
                 colour: float = 0.2) -> jax.Array:
  """One random view of every image: float32 [B, S, S, C] in [0, 255]."""
  keys = jax.random.split(key, images.shape[0])
  return jax.vmap(_one_view, in_axes=(0, 0, None, None, None))(keys, images.astype(jnp.float32), scale, shift,
                                                               colour)
