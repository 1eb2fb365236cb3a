"""Any TFDS classification dataset by its TFDS name: `mnist`, `svhn_cropped`, ...

A dataset qualifies when its builder's supervised keys are (image, label) or
(text, label), with a `ClassLabel` label. Number of classes, class names,
image shape and modality come from the builder's own info; the split names
are `data.train_split` / `data.test_split` ('' : `train`, and `test` where
the builder has one). The data is prepared once as array_record in
`data_dir` (downloading it needs internet: `data.download`, and TensorFlow
for TFDS's own image encodings) and read back without TensorFlow; the
per-channel mean and std of the training split's images are computed on
first use, in bounded memory, and cached beside the prepared data
(`<version dir>/svp_jax_statistics.json`), or, where that folder is not
writable (a shared read-only data_dir), in the user's cache
(`$XDG_CACHE_HOME/svp_jax/statistics/`, else `~/.cache/svp_jax/...`),
keyed by the folder's path.

The registered built-in names (fashion_mnist, cifar10, ...) keep their own
families; this one claims the other names TFDS knows. Importing it
registers the catch-all family `tfds_catalog`.
"""

import hashlib
import os
import time
from typing import Any

from absl import logging
import numpy as np

from svp_jax import results
from svp_jax.data import image_splits
from svp_jax.data import registry
from svp_jax.data import statistics
from svp_jax.data import tfds_util
from svp_jax.data.errors import DataError
from svp_jax.data.info import DatasetInfo

FAMILY = 'tfds_catalog'
STATISTICS_FILE = 'svp_jax_statistics.json'


def knows(name: str) -> bool:
  """Whether TFDS has a builder named `name` ('name' or 'name/config')."""
  if not isinstance(name, str) or not name:
    return False
  try:
    tfds_util.tfds().builder_cls(name.split('/')[0])
  except Exception:  # pylint: disable=broad-except
    # DatasetNotFoundError, or a builder module that fails to import.
    return False
  return True


def _builder(name: str, data_dir: str) -> Any:
  try:
    return tfds_util.tfds().builder(name, data_dir=data_dir)
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f'config.data.name={name!r}: TFDS cannot make its '
                    f'builder ({type(e).__name__}: {e})') from None


def supervised_features(builder: Any) -> tuple[str, str, str]:
  """(input key, label key, modality) of a classification builder.

  Raises:
    DataError: no supervised keys, a label that is not a ClassLabel, or
      inputs that are neither an image nor a text.
  """
  tfds = tfds_util.tfds()
  keys = builder.info.supervised_keys
  name = builder.info.full_name
  if not keys or len(keys) != 2 or not all(isinstance(k, str) for k in keys):
    raise DataError(f'{name}: not a classification dataset svp_jax can read '
                    f'(supervised keys {keys!r}; expected (image or text, '
                    'label))')
  x_key, y_key = keys
  features = builder.info.features
  if not isinstance(features[y_key], tfds.features.ClassLabel):
    raise DataError(f'{name}: its label {y_key!r} is '
                    f'{type(features[y_key]).__name__}, not a ClassLabel')
  inputs = features[x_key]
  if isinstance(inputs, tfds.features.Image) or (
      isinstance(inputs, tfds.features.Tensor) and inputs.dtype == np.uint8
      and len(inputs.shape) == 3):  # Raw pixels, as svp_jax's own builders.
    modality = 'image'
  elif isinstance(inputs, tfds.features.Text):
    modality = 'text'
  else:
    raise DataError(f'{name}: its input {x_key!r} is '
                    f'{type(inputs).__name__}; svp_jax reads images (Image, '
                    'or a uint8 Tensor of shape (H, W, C)) and texts')
  return x_key, y_key, modality


def prepared_builder(name: str, options: registry.LoadOptions) -> Any:
  """The builder of `name`, prepared as array_record (preparing if allowed)."""
  data_dir, manual_dir = tfds_util.resolve_dirs(options.data_dir,
                                                options.manual_dir)
  builder = _builder(name, data_dir)
  supervised_features(builder)  # Checked before any download.
  if builder.is_prepared():
    formats = sorted(f.value for f in builder.info.available_file_formats())
    if 'array_record' not in formats:
      raise DataError(
          f'{name} is prepared in {builder.data_dir} only as {formats}, which '
          'cannot be read without TensorFlow. Convert it (tfds '
          f'convert_format --dataset_version_dir={builder.data_dir} '
          '--out_file_format=array_record) or use another data_dir.')
    return builder
  if not tfds_util.may_download(builder, options.download):
    raise DataError(
        f'{name} is not prepared in data_dir={data_dir}, and '
        f'{tfds_util.download_refusal(builder, options.download)}. Prepare '
        f'it where the internet is (tfds build {name} '
        '--file_format=array_record) and copy its folder into data_dir, or '
        'put its manual files in manual_dir.')
  x_key = supervised_features(builder)[0]
  if isinstance(builder.info.features[x_key], tfds_util.tfds().features.Image):
    # TFDS encodes Image features with TensorFlow (docs/data.md).
    tfds_util.require_tensorflow(name, "preparing TFDS's image encoding")
  try:
    tfds_util.prepare(builder, manual_dir)
  except DataError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    # Manual files missing, a failed download: TFDS's own words.
    first_line = (str(e).strip().splitlines() or [''])[0]
    raise DataError(f'{name}: TFDS could not prepare it in {data_dir} '
                    f'({type(e).__name__}: {first_line})') from e
  return builder


def _split_names(builder: Any, options: registry.LoadOptions
                 ) -> tuple[str, str]:
  """(train, test) split names: configured, else `train` and `test`."""
  available = tuple(builder.info.splits)
  train = options.train_split or 'train'
  test = options.test_split or 'test'
  for key, split in (('train_split', train), ('test_split', test)):
    if split not in available:
      raise DataError(
          f'{builder.info.full_name} has no split {split!r} (splits: '
          f'{list(available)}); set config.data.{key} to one of them')
  return train, test


def channel_statistics(builder: Any, split: str, x_key: str
                       ) -> tuple[list[float], list[float]]:
  """Per-channel mean and std of a split's images, on the [0, 1] scale.

  Computed once in bounded memory (`statistics.ChannelHistogram`) and
  cached: beside the prepared data when its folder is writable, else (a
  read-only data_dir) in the user's cache, keyed by the folder's path.
  """
  folder = builder.data_dir
  beside, in_cache = _statistics_paths(folder)
  # The cache file beside the data travels with it (a copied data_dir); the
  # one in the user's cache is only for the folder it names.
  cached = (_read_statistics(beside, split)
            or _read_statistics(in_cache, split, os.path.abspath(folder)))
  if cached:
    return cached
  start = time.perf_counter()
  histogram = None
  source = builder.as_data_source(split=split)
  for _, chunk in tfds_util.read_chunks(source):
    for example in chunk:
      image = np.asarray(example[x_key])
      if histogram is None:
        histogram = statistics.ChannelHistogram(image.shape[-1])
      histogram.add(image)
  if histogram is None:
    raise DataError(f'{builder.info.full_name}[{split}] has no images to '
                    'compute the normalisation statistics from')
  mean, std = histogram.mean_std()
  path = _write_statistics(folder, {'folder': os.path.abspath(folder),
                                    'split': split, 'mean': mean, 'std': std})
  logging.info('Computed %s[%s] channel statistics in %.1f s (cached in %s).',
               builder.info.full_name, split, time.perf_counter() - start,
               path)
  return mean, std


def _statistics_paths(folder: str) -> tuple[str, str]:
  """(beside the data, in the user's cache) for a prepared folder."""
  key = hashlib.sha256(os.path.abspath(folder).encode(
      'utf-8', 'surrogateescape')).hexdigest()[:16]
  return (os.path.join(folder, STATISTICS_FILE),
          os.path.join(statistics.user_cache_dir(), 'statistics',
                       f'{key}-{STATISTICS_FILE}'))


def _read_statistics(path: str, split: str, folder: str | None = None
                     ) -> tuple[list[float], list[float]] | None:
  """A cache file's (mean, std) for `split` (of `folder` if given) or None."""
  try:
    cached = results.read_json(path)
  except (OSError, ValueError):  # Missing or unreadable: computed again.
    return None
  if (not isinstance(cached, dict) or cached.get('split') != split
      or not {'mean', 'std'} <= set(cached)
      or (folder is not None and cached.get('folder') != folder)):
    return None
  return cached['mean'], cached['std']


def _write_statistics(folder: str, record: dict[str, Any]) -> str:
  """Writes the cache beside the data if possible, else in the user cache.

  Returns where it went. A cache that cannot be written anywhere is logged,
  not fatal.
  """
  beside, in_cache = _statistics_paths(folder)
  if statistics.writable(folder):
    try:
      results.write_json(beside, record)
      return beside
    except OSError as e:  # A read-only mount that os.access did not see.
      logging.info('Cannot cache statistics beside the data (%s).', e)
  try:
    results.write_json(in_cache, record)
  except OSError as e:  # Computed again next time; the run goes on.
    logging.warning('Cannot cache the channel statistics (%s).', e)
    return 'nowhere'
  return in_cache


def describe(name: str, options: registry.LoadOptions) -> DatasetInfo:
  """The facts of TFDS dataset `name`, from its builder (prepared first)."""
  builder = prepared_builder(name, options)
  x_key, y_key, modality = supervised_features(builder)
  train, test = _split_names(builder, options)
  label = builder.info.features[y_key]
  if modality == 'text':
    return DatasetInfo(
        name=name, num_classes=label.num_classes, image_shape=(), mean=(),
        std=(), train_split=train, test_split=test, modality='text',
        class_names=tuple(label.names))
  shape = tuple(builder.info.features[x_key].shape)
  if None in shape:
    raise DataError(f'{name}: its images vary in size {shape}; svp_jax '
                    'reads datasets whose images share one size')
  mean, std = channel_statistics(builder, train, x_key)
  return DatasetInfo(
      name=name, num_classes=label.num_classes, image_shape=shape,
      mean=tuple(mean), std=tuple(std), train_split=train, test_split=test,
      class_names=tuple(label.names))


def load(info: DatasetInfo, split: str, options: registry.LoadOptions
         ) -> tuple[Any, np.ndarray]:
  """The family's loader: images (or documents) and int32 labels."""
  builder = prepared_builder(info.name, options)
  x_key, y_key, modality = supervised_features(builder)
  if modality == 'image':
    images, labels = image_splits.read_split(builder, info, split,
                                             options.in_memory,
                                             image_key=x_key,
                                             label_key=y_key,
                                             order_by_id=False)
    return images, labels
  source = builder.as_data_source(split=split)
  documents = np.empty((len(source),), object)
  labels = np.empty((len(source),), np.int32)
  for first, chunk in tfds_util.read_chunks(source):
    for offset, example in enumerate(chunk):
      text = example[x_key]
      documents[first + offset] = (text.decode('utf-8')
                                   if isinstance(text, bytes) else text)
      labels[first + offset] = example[y_key]
  return documents, labels


registry.register(registry.DatasetFamily(
    name=FAMILY, infos=(), load=load, describe=describe, claims=knows))
