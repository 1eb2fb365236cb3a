"""Whole dataset splits as host NumPy arrays, through TFDS, without TensorFlow.

A split is prepared once as array_record in `data_dir` and then read with
TFDS's random-access data source, which needs neither TensorFlow nor network.
Where the data comes from:

* fashion_mnist: TFDS's official `fashion_mnist` if already prepared as
  array_record; else our `fashion_mnist_idx` builder, prepared (no TensorFlow)
  from the four IDX files in manual_dir (default: Debian's
  /usr/share/datasets/fashion-mnist, then <data_dir>/downloads/manual); else,
  with `download=True`, the official builder downloads and prepares.
* cifar10, cifar100: TFDS's official, unmodified builders, prepared from the
  official *binary* archive in manual_dir (default <data_dir>/downloads/manual)
  or downloaded with `download=True`.

Preparing official builders (their `Image` features) needs TensorFlow
(requirements-prepare.txt); reading them back needs only Pillow.

Order of examples: CIFAR is returned in the official files' order (sorted by
the builder's `id`), `fashion_mnist_idx` in IDX file order; an official
`fashion_mnist` prepared elsewhere comes in TFDS's fixed shuffled order.

Images are read whole into host memory (`in_memory=True`, fastest for
small datasets) or decoded on demand (`SplitImages`): then each process of a
multi-host run decodes only the rows it feeds to its devices, and a host
holds a batch of images at a time, not the split. Labels are always read
whole (4 bytes an example).
"""

import os
import time
from typing import Any

from absl import logging
import jax
from jax.experimental import multihost_utils
import numpy as np

from svp_jax.data import idx
from svp_jax.data import info as info_lib
from svp_jax.data import text
from svp_jax.data.errors import DataError

# Debian's dataset-fashion-mnist package installs the IDX files here.
FASHION_MNIST_SYSTEM_DIR = '/usr/share/datasets/fashion-mnist'
# The official binary archives TFDS's cifar builders register (name, size).
CIFAR_ARCHIVES = {
    'cifar10': ('cifar-10-binary.tar.gz', 170_052_171),
    'cifar100': ('cifar-100-binary.tar.gz', 168_513_733),
}
# Examples decoded per data-source call: large enough to amortise the call,
# small enough that the decoded Python objects stay a few MB.
_READ_CHUNK = 4096
_PREPARE_HINT = 'pip install -r requirements-prepare.txt'


def default_data_dir() -> str:
  """TFDS's default: $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
  return os.environ.get('TFDS_DATA_DIR') or os.path.join(
      os.path.expanduser('~'), 'tensorflow_datasets')


class SplitImages:
  """A split's images decoded on demand: `images[indices]` -> uint8 array.

  Stands in for the in-memory image array wherever batches are gathered
  (`train.global_batch` indexes it with a process's rows of a batch), so a
  process decodes only the images it feeds. `images[a:b]` is a view.
  """

  def __init__(self, source: Any, positions: np.ndarray,
               image_shape: tuple[int, ...]):
    self._source = source
    self._positions = positions  # Row i of the split is source[positions[i]].
    self.shape = (len(positions), *image_shape)
    self.dtype = np.dtype(np.uint8)
    self.ndim = len(self.shape)

  def __len__(self) -> int:
    return self.shape[0]

  def __getitem__(self, rows):
    if isinstance(rows, slice):
      return SplitImages(self._source, self._positions[rows], self.shape[1:])
    rows = np.asarray(rows)
    out = np.empty((len(rows), *self.shape[1:]), np.uint8)
    if len(rows):
      examples = self._source.__getitems__(self._positions[rows].tolist())
      for i, example in enumerate(examples):
        out[i] = example['image']
    return out


def load_split(name: str, split: str, *, data_dir: str | None = None,
               manual_dir: str | None = None, download: bool = False,
               in_memory: bool = True
               ) -> tuple[np.ndarray | SplitImages, np.ndarray]:
  """Reads a split, preparing it first if needed.

  Args:
    name: one of `SUPPORTED_DATASETS` (a TFDS name).
    split: the dataset's train or test split name.
    data_dir: TFDS data folder (default: `default_data_dir()`).
    manual_dir: folder with local source files (see the module docstring).
    download: allow TFDS to download (needs internet and TensorFlow). Off by
      default so that missing data fails at once instead of after minutes of
      download retries.
    in_memory: decode every image now (uint8 array) or on demand
      (`SplitImages`, indexed like the array).

  Returns:
    images uint8 (N, H, W, C) and labels int32 (N,).

  Raises:
    ValueError: unknown name or split.
    DataError: the data is missing or cannot be prepared here; the message
      says how to provide it.
  """
  info = info_lib.dataset_info(name)
  splits = (info.train_split, info.test_split)
  if split not in splits:
    raise ValueError(f'split={split!r} is not a split of {name}: expected '
                     f'one of {splits}')
  data_dir = os.path.expanduser(data_dir or default_data_dir())
  manual_dir = os.path.expanduser(manual_dir) if manual_dir else None
  if name == 'fashion_mnist':
    builder = _fashion_mnist_builder(data_dir, manual_dir, download)
  else:
    builder = _cifar_builder(name, data_dir, manual_dir, download)
  start = time.perf_counter()
  if in_memory:
    images, labels = _read_split(builder, split, info.image_shape)
  else:
    images, labels = _index_split(builder, split, info.image_shape)
  logging.info('Read %s[%s] from %s: %d examples%s in %.1f s.', name, split,
               builder.data_dir, len(labels),
               '' if in_memory else ' (labels; images on demand)',
               time.perf_counter() - start)
  return images, labels


def _tfds():
  # Imported on use: TFDS takes a second to import, and `svp_jax.data` is
  # imported by code (and tests) that never read a dataset.
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds


def _prepared(builder_cls: Any, data_dir: str) -> Any | None:
  """The builder if its current version is prepared as array_record."""
  version_dir = os.path.join(data_dir, builder_cls.name,
                             str(builder_cls.VERSION))
  # Checked before constructing the builder, which otherwise logs warnings
  # about a missing folder.
  if not os.path.isfile(os.path.join(version_dir, 'dataset_info.json')):
    return None
  builder = builder_cls(data_dir=data_dir)
  if not builder.is_prepared():
    return None
  formats = builder.info.available_file_formats()
  if 'array_record' not in {f.value for f in formats}:
    raise DataError(
        f'{builder_cls.name} is prepared in {version_dir} only as '
        f'{sorted(f.value for f in formats)}, which cannot be read without '
        'TensorFlow. Convert it (tfds convert_format --dataset_version_dir='
        f'{version_dir} --out_file_format=array_record) or use another '
        'data_dir.')
  return builder


def _require_tensorflow(name: str, why: str):
  try:
    import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    raise DataError(
        f'{name}: {why} needs TensorFlow, which is not installed: '
        f'{_PREPARE_HINT} (reading the prepared data later does not).'
    ) from e


def _download_config(manual_dir: str):
  tfds = _tfds()
  return tfds.download.DownloadConfig(manual_dir=manual_dir)


def _prepare(builder: Any, manual_dir: str | None):
  logging.info('Preparing %s as array_record in %s (once).', builder.name,
               builder.data_dir)
  start = time.perf_counter()
  config = _download_config(manual_dir) if manual_dir else None
  builder.download_and_prepare(download_config=config,
                               file_format='array_record')
  logging.info('Prepared %s in %.1f s.', builder.name,
               time.perf_counter() - start)


def _fashion_mnist_builder(data_dir: str, manual_dir: str | None,
                           download: bool) -> Any:
  """See the module docstring for the order of sources."""
  tfds = _tfds()
  official_cls = tfds.builder_cls('fashion_mnist')
  try:
    builder = _prepared(official_cls, data_dir)
  except DataError as e:
    # Our own builder is an equally good source; no need to fail.
    logging.warning('%s Using fashion_mnist_idx instead.', e)
    builder = None
  if builder:
    return builder
  # Registers `fashion_mnist_idx` with TFDS, hence imported only here.
  # pylint: disable-next=g-import-not-at-top
  from svp_jax.data.builders import fashion_mnist_idx
  builder = _prepared(fashion_mnist_idx.FashionMnistIdx, data_dir)
  if builder:
    return builder

  searched = ([manual_dir] if manual_dir else
              [FASHION_MNIST_SYSTEM_DIR,
               os.path.join(data_dir, 'downloads', 'manual')])
  for folder in searched:
    found = idx.find_fashion_mnist_files(folder)
    if len(found) == len(idx.FASHION_MNIST_FILENAMES):
      builder = fashion_mnist_idx.FashionMnistIdx(data_dir=data_dir)
      _prepare(builder, folder)
      return builder
    if found:
      missing = [f for f in idx.FASHION_MNIST_FILENAMES
                 if f.removesuffix('.gz') not in found]
      raise DataError(f'fashion_mnist: {folder} holds only some of the IDX '
                      f'files; missing {missing}.')

  if download:
    _require_tensorflow('fashion_mnist', "preparing TFDS's download")
    builder = official_cls(data_dir=data_dir)
    _prepare(builder, None)
    return builder

  raise DataError(
      f'fashion_mnist is not prepared in data_dir={data_dir} and its four '
      f'IDX files ({", ".join(idx.FASHION_MNIST_FILENAMES)}) are not in '
      f'{" or ".join(searched)}. Provide them in one of these ways:\n'
      '  * as root: apt-get install dataset-fashion-mnist (installs them in '
      f'{FASHION_MNIST_SYSTEM_DIR});\n'
      '  * without root: apt-get download dataset-fashion-mnist && '
      'dpkg -x dataset-fashion-mnist_*.deb DIR, then '
      f'--config.data.manual_dir=DIR{FASHION_MNIST_SYSTEM_DIR};\n'
      '  * with internet: --config.data.download=True (after '
      f'{_PREPARE_HINT}).')


def _cifar_builder(name: str, data_dir: str, manual_dir: str | None,
                   download: bool) -> Any:
  """TFDS's official builder, prepared if needed from the binary archive."""
  tfds = _tfds()
  builder_cls = tfds.builder_cls(name)
  builder = _prepared(builder_cls, data_dir)
  if builder:
    return builder

  archive, size = CIFAR_ARCHIVES[name]
  manual_dir = manual_dir or os.path.join(data_dir, 'downloads', 'manual')
  have_archive = os.path.isfile(os.path.join(manual_dir, archive))
  if not (have_archive or download):
    raise DataError(
        f'{name} is not prepared in data_dir={data_dir} and the official '
        f'binary archive {archive} ({size:,} bytes, the "binary version" of '
        f'CIFAR, not the python one) is not in manual_dir={manual_dir}. '
        'Copy it there (or set --config.data.manual_dir to its folder), or '
        'let TFDS download it with --config.data.download=True (needs '
        f'internet). Preparing needs TensorFlow: {_PREPARE_HINT}.')

  _require_tensorflow(name, 'preparing the official TFDS builder')
  # Not re-exported by TFDS's public API.
  # pylint: disable-next=g-import-not-at-top
  from tensorflow_datasets.core.download import download_manager
  builder = builder_cls(data_dir=data_dir)
  try:
    _prepare(builder, manual_dir)
  except download_manager.NonMatchingChecksumError as e:
    raise DataError(
        f'{name}: {os.path.join(manual_dir, archive)} is not the official '
        f'archive TFDS registers ({size:,} bytes, fixed sha256); get the '
        f'original file or remove it and use --config.data.download=True.'
    ) from e
  return builder


def _read_split(builder: Any, split: str, image_shape: tuple[int, ...]
                ) -> tuple[np.ndarray, np.ndarray]:
  """All examples of a split as (uint8 images, int32 labels)."""
  source = builder.as_data_source(split=split)
  num = len(source)
  images = np.empty((num, *image_shape), np.uint8)
  labels = np.empty((num,), np.int32)
  ids = [] if 'id' in builder.info.features else None
  for start in range(0, num, _READ_CHUNK):
    try:
      chunk = source.__getitems__(
          list(range(start, min(start + _READ_CHUNK, num))))
    except ImportError as e:
      # TFDS decodes official `Image` features (PNG) with Pillow or OpenCV.
      raise DataError(f'{builder.name}: decoding its images needs Pillow '
                      f'(pip install -r requirements.txt): {e}') from e
    for offset, example in enumerate(chunk):
      images[start + offset] = example['image']
      labels[start + offset] = example['label']
      if ids is not None:
        ids.append(_file_index(example['id']))
  if ids is not None:
    # TFDS stores examples in an order shuffled by key; the official
    # builders' ids give back the original files' order.
    order = np.argsort(np.asarray(ids), kind='stable')
    images, labels = images[order], labels[order]
  return images, labels


def _index_split(builder: Any, split: str, image_shape: tuple[int, ...]
                 ) -> tuple[SplitImages, np.ndarray]:
  """Labels now and images on demand, in the same order as `_read_split`."""
  tfds = _tfds()
  # Labels and ids only: the images stay encoded.
  light = builder.as_data_source(
      split=split, decoders={'image': tfds.decode.SkipDecoding()})
  num = len(light)
  labels = np.empty((num,), np.int32)
  ids = [] if 'id' in builder.info.features else None
  for start in range(0, num, _READ_CHUNK):
    chunk = light.__getitems__(list(range(start, min(start + _READ_CHUNK,
                                                     num))))
    for offset, example in enumerate(chunk):
      labels[start + offset] = example['label']
      if ids is not None:
        ids.append(_file_index(example['id']))
  positions = (np.argsort(np.asarray(ids), kind='stable') if ids is not None
               else np.arange(num))
  images = SplitImages(builder.as_data_source(split=split), positions,
                       tuple(image_shape))
  return images, labels[positions]


def _file_index(example_id: bytes | str) -> int:
  """42 from the CIFAR builders' id 'train_00042' (bytes or str)."""
  if isinstance(example_id, bytes):
    example_id = example_id.decode()
  return int(example_id.rsplit('_', 1)[-1])


def load_configured_split(data_config: Any, split: str,
                          limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """`load_split` driven by a config's `data` section.

  '' in data_dir / manual_dir means the default place; `limit` > 0 keeps the
  first `limit` examples (for quick runs). ImageNet comes back streamed
  (svp_jax.data.imagenet.StreamingImages). Text datasets come back as an
  object array of documents (title + ' ' + body), which `svp_jax.inputs`
  encodes for each model.
  """
  def read():
    if data_config.name == 'imagenet2012':
      # Imported here: svp_jax.data.imagenet builds on this module.
      # pylint: disable-next=g-import-not-at-top
      from svp_jax.data import imagenet
      # The eval view (resize + center crop); training reads its crop view
      # (svp_jax.inputs.training_view).
      return imagenet.load_imagenet_split(
          split, data_dir=data_config.data_dir or None,
          manual_dir=data_config.manual_dir or None, mode='eval',
          size=data_config.get('image_size', 224))
    if data_config.name in text.TEXT_DATASETS:
      split_data = text.load_text_split(
          data_config.name, split, data_dir=data_config.data_dir or None,
          manual_dir=data_config.manual_dir or None)
      return (np.array(text.documents(split_data), dtype=object),
              split_data.labels)
    return load_split(
        data_config.name, split, data_dir=data_config.data_dir or None,
        manual_dir=data_config.manual_dir or None,
        download=data_config.download, in_memory=data_config.in_memory)

  if jax.process_count() == 1:
    images, labels = read()
  else:
    # Process 0 prepares the split first: processes preparing the same
    # data_dir at once would race for its files.
    if jax.process_index() == 0:
      images, labels = read()
    multihost_utils.sync_global_devices(f'svp_jax: {data_config.name} '
                                        f'{split} prepared')
    if jax.process_index() != 0:
      images, labels = read()
  if limit:
    images, labels = images[:limit], labels[:limit]
  return images, labels
