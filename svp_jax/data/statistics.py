"""Per-channel pixel statistics in bounded memory; a cache for read-only data.

The mean and population std of uint8 images, on the [0, 1] scale, come from
a per-channel histogram of the 256 pixel levels: exact (integer sums), and
built a chunk at a time, so the memory they need beyond the images is a few
MB however many images there are. (Float copies of every pixel once took
16 times the pixels' own bytes: about 48 GB for 20,000 images at 224 px.)

What svp_jax caches beside prepared data goes to the user's cache folder
(`user_cache_dir`) when the data's folder is not writable, as on a shared
read-only mount.
"""

import os

import numpy as np

# A channel whose pixels are all equal would divide by zero when normalising.
STD_FLOOR = 1e-3
_LEVELS = 256
# Pixel values turned into histogram indices at a time: the one temporary
# (int64) is 8 times this many bytes, 4 MB.
_CHUNK_VALUES = 1 << 19


class ChannelHistogram:
  """Counts of each pixel level per channel, added a batch at a time."""

  def __init__(self, channels: int):
    self.counts = np.zeros((channels, _LEVELS), np.int64)
    # Channel c's levels count in bins 256 c ... 256 c + 255 of one bincount.
    self._offsets = np.arange(channels, dtype=np.intp) * _LEVELS

  def add(self, images: np.ndarray):
    """Counts the pixels of uint8 `images` (..., channels)."""
    channels = len(self.counts)
    if images.dtype != np.uint8 or images.shape[-1] != channels:
      raise ValueError(f'expected uint8 pixels with {channels} channels, got '
                       f'{images.dtype} {images.shape}')
    values = images.reshape(-1, channels)  # A view of contiguous images.
    rows = max(1, _CHUNK_VALUES // channels)
    for start in range(0, len(values), rows):
      chunk = values[start:start + rows].astype(np.intp)
      chunk += self._offsets
      self.counts += np.bincount(chunk.ravel(),
                                 minlength=channels * _LEVELS).reshape(
                                     channels, _LEVELS)
      del chunk  # Else two chunks are alive while the next is made.

  def mean_std(self) -> tuple[list[float], list[float]]:
    """Per-channel mean and population std on [0, 1] (std floored)."""
    means, stds = [], []
    for counts in self.counts.tolist():  # Python ints: exact sums.
      n = sum(counts)
      if not n:
        means.append(0.0)
        stds.append(1.0)  # No pixels: nothing to normalise.
        continue
      total = sum(level * c for level, c in enumerate(counts))
      squares = sum(level * level * c for level, c in enumerate(counts))
      variance = (n * squares - total * total) / (n * n * 255 * 255)
      means.append(total / (n * 255))
      stds.append(max(variance ** 0.5, STD_FLOOR))
    return means, stds


def channel_statistics(images: np.ndarray) -> tuple[list[float],
                                                    list[float]]:
  """Per-channel mean and population std of uint8 (N, H, W, C), on [0, 1]."""
  histogram = ChannelHistogram(images.shape[-1])
  histogram.add(images)
  return histogram.mean_std()


def user_cache_dir() -> str:
  """svp_jax's folder in the user's cache: $XDG_CACHE_HOME, else ~/.cache."""
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(
      os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'svp_jax')


def writable(folder: str) -> bool:
  """Whether files can be created in `folder` (or where it would be made).

  A folder that does not exist yet is as writable as its nearest existing
  parent. Root passes `os.access` on any local folder, but not on a
  read-only mount.
  """
  folder = os.path.abspath(folder)
  while not os.path.exists(folder):
    parent = os.path.dirname(folder)
    if parent == folder:
      return False
    folder = parent
  return os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)
