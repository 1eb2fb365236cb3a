"""Whole image splits of a prepared TFDS builder as host NumPy arrays.

Shared by the families whose images fit in host memory (Fashion-MNIST,
CIFAR): TFDS's random-access data source reads the array_record files
without TensorFlow, and images are read whole (`in_memory=True`, fastest for
small datasets) or decoded on demand (`SplitImages`): then each process of a
multi-host run decodes only the rows it feeds to its devices, and a host
holds a batch of images at a time, not the split. Labels are always read
whole (4 bytes an example).

Order of examples: the data source's, except for builders with an `id`
feature (TFDS's official CIFAR builders): those are put back in the
official files' order, which the ids give.
"""

from collections.abc import Callable
import time
from typing import Any

from absl import logging
import numpy as np

from svp_jax.data import registry
from svp_jax.data import tfds_util
from svp_jax.data.errors import DataError
from svp_jax.data.info import DatasetInfo


class SplitImages:
  """A split's images decoded on demand: `images[indices]` -> uint8 array.

  Stands in for the in-memory image array wherever batches are gathered
  (`train.global_batch` indexes it with a process's rows of a batch), so a
  process decodes only the images it feeds. `images[a:b]` is a view.
  """

  def __init__(self, source: Any, positions: np.ndarray,
               image_shape: tuple[int, ...], image_key: str = 'image'):
    self._source = source
    self._image_key = image_key
    self._positions = positions  # Row i of the split is source[positions[i]].
    self.shape = (len(positions), *image_shape)
    self.dtype = np.dtype(np.uint8)
    self.ndim = len(self.shape)

  def __len__(self) -> int:
    return self.shape[0]

  def __getitem__(self, rows):
    if isinstance(rows, slice):
      return SplitImages(self._source, self._positions[rows], self.shape[1:],
                         self._image_key)
    rows = np.asarray(rows)
    out = np.empty((len(rows), *self.shape[1:]), np.uint8)
    if len(rows):
      examples = self._source.__getitems__(self._positions[rows].tolist())
      for i, example in enumerate(examples):
        out[i] = example[self._image_key]
    return out


def loader(find_builder: Callable[[str, str, str | None, bool], Any]
           ) -> registry.Loader:
  """A family's loader (`registry.Loader`) over `read_split`.

  Args:
    find_builder: (name, data_dir, manual_dir or None, download) -> the
      dataset's builder, prepared.
  """
  def load(info: DatasetInfo, split: str, options: registry.LoadOptions
           ) -> tuple[np.ndarray | SplitImages, np.ndarray]:
    data_dir, manual_dir = tfds_util.resolve_dirs(options.data_dir,
                                                  options.manual_dir)
    builder = find_builder(info.name, data_dir, manual_dir, options.download)
    return read_split(builder, info, split, options.in_memory)

  return load


def read_split(builder: Any, info: DatasetInfo, split: str, in_memory: bool,
               image_key: str = 'image', label_key: str = 'label',
               order_by_id: bool = True
               ) -> tuple[np.ndarray | SplitImages, np.ndarray]:
  """A prepared builder's split as (uint8 images, int32 labels).

  Images (feature `image_key`) are a (N, H, W, C) array with `in_memory`,
  else `SplitImages`; labels are feature `label_key`. `order_by_id`: put
  the examples of a builder with an `id` feature in the official files'
  order (TFDS's CIFAR builders; other datasets' ids mean other things).
  """
  start = time.perf_counter()
  keys = (image_key, label_key, order_by_id)
  if in_memory:
    images, labels = _read_whole(builder, split, info.image_shape, *keys)
  else:
    images, labels = _index(builder, split, info.image_shape, *keys)
  logging.info('Read %s[%s] from %s: %d examples%s in %.1f s.', info.name,
               split, builder.data_dir, len(labels),
               '' if in_memory else ' (labels; images on demand)',
               time.perf_counter() - start)
  return images, labels


def _read_whole(builder: Any, split: str, image_shape: tuple[int, ...],
                image_key: str, label_key: str, order_by_id: bool
                ) -> tuple[np.ndarray, np.ndarray]:
  """All examples of a split as (uint8 images, int32 labels)."""
  source = builder.as_data_source(split=split)
  num = len(source)
  images = np.empty((num, *image_shape), np.uint8)
  labels = np.empty((num,), np.int32)
  ids = [] if order_by_id and 'id' in builder.info.features else None
  try:
    for start, chunk in tfds_util.read_chunks(source):
      for offset, example in enumerate(chunk):
        images[start + offset] = example[image_key]
        labels[start + offset] = example[label_key]
        if ids is not None:
          ids.append(_file_index(example['id']))
  except ImportError as e:
    # TFDS decodes official `Image` features (PNG) with Pillow or OpenCV.
    raise DataError(f'{builder.name}: decoding its images needs Pillow '
                    f'(pip install -r requirements.txt): {e}') from e
  order = _file_order(ids)
  if order is not None:
    images, labels = images[order], labels[order]
  return images, labels


def _index(builder: Any, split: str, image_shape: tuple[int, ...],
           image_key: str, label_key: str, order_by_id: bool
           ) -> tuple[SplitImages, np.ndarray]:
  """Labels now and images on demand, in the same order as `_read_whole`."""
  # Labels and ids only: the images stay encoded.
  light = builder.as_data_source(
      split=split,
      decoders={image_key: tfds_util.tfds().decode.SkipDecoding()})
  labels = np.empty((len(light),), np.int32)
  ids = [] if order_by_id and 'id' in builder.info.features else None
  for start, chunk in tfds_util.read_chunks(light):
    for offset, example in enumerate(chunk):
      labels[start + offset] = example[label_key]
      if ids is not None:
        ids.append(_file_index(example['id']))
  positions = _file_order(ids)
  if positions is None:
    positions = np.arange(len(light))
  images = SplitImages(builder.as_data_source(split=split), positions,
                       tuple(image_shape), image_key)
  return images, labels[positions]


def _file_order(ids: list[int] | None) -> np.ndarray | None:
  """Positions in the original files' order; None: as stored (no ids)."""
  if ids is None:
    return None
  # TFDS stores examples in an order shuffled by key; the official
  # builders' ids give back the original files' order.
  return np.argsort(np.asarray(ids), kind='stable')


def _file_index(example_id: bytes | str) -> int:
  """42 from the CIFAR builders' id 'train_00042' (bytes or str)."""
  if isinstance(example_id, bytes):
    example_id = example_id.decode()
  return int(example_id.rsplit('_', 1)[-1])
