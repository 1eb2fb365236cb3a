"""Per-example image preprocessing in JAX (jit- and vmap-friendly).

Order matches the reference: augment the raw pixels (padding with 0, i.e.
black, as torchvision pads the PIL image), then normalise. So the padded
border becomes (0 - mean) / std after `normalize`, not 0.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp


def normalize(images: jax.Array, mean: Sequence[float],
              std: Sequence[float]) -> jax.Array:
  """(x / 255 - mean) / std per channel, as float32.

  Args:
    images: (..., C) pixels on the [0, 255] scale, uint8 or float.
    mean: per-channel mean on the [0, 1] scale.
    std: per-channel standard deviation on the [0, 1] scale.
  """
  x = jnp.asarray(images).astype(jnp.float32) / 255.0
  return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)


def random_crop_flip(key: jax.Array, images: jax.Array,
                     padding: int = 4) -> jax.Array:
  """Pad with zeros, crop back at a random offset, flip left-right w.p. 1/2.

  Each example gets its own offset and flip, drawn from `key` alone, so the
  result is a deterministic function of (key, images).

  Args:
    key: a PRNG key.
    images: (N, H, W, C) raw (unnormalised) pixels, any dtype.
    padding: zero pixels added on each side before cropping (static).

  Returns:
    Images of the same shape and dtype.
  """
  _, height, width, channels = images.shape
  padded = jnp.pad(images,
                   ((0, 0), (padding, padding), (padding, padding), (0, 0)))

  def crop_flip(key, image):
    offset_key, flip_key = jax.random.split(key)
    top, left = jax.random.randint(offset_key, (2,), 0, 2 * padding + 1)
    crop = jax.lax.dynamic_slice(image, (top, left, 0),
                                 (height, width, channels))
    return jnp.where(jax.random.bernoulli(flip_key), crop[:, ::-1], crop)

  keys = jax.random.split(key, images.shape[0])
  return jax.vmap(crop_flip)(keys, padded)
