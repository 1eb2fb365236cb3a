"""The `files` dataset: a user's own images, texts or arrays, no code needed.

  python main.py --config=configs/own_images.py --config.data.path=ROOT
  python main.py --config=configs/own_texts.py --config.data.path=FILE.csv

What `config.data.path` may point at: `svp_jax.data.own_files`. The files
are read and checked once, prepared as TFDS array_record (the built-ins'
form, read back without TensorFlow) in
`<data_dir>/user_files/<content key>/1.0.0/`, and read from there while the
files stay the same: the key covers the files' names and bytes and every
option that shapes the examples, so a changed folder is prepared again and
an unchanged one is not. Per-channel mean and std are computed from the
training split when it is prepared and kept in its metadata.

Importing this module registers the dynamic family `files`: its one
dataset's facts (classes, shape, modality) come from the files.
"""

import os
import threading
import time
from typing import Any

from absl import logging
import numpy as np

from svp_jax.data import image_splits
from svp_jax.data import own_files
from svp_jax.data import registry
from svp_jax.data import tfds_util
from svp_jax.data.errors import DataError
from svp_jax.data.info import DatasetInfo

NAME = 'files'
BUILDER_NAME = 'user_files'
_VERSION = '1.0.0'
# (path, read options) -> (fingerprint, prepared folder): the content is
# hashed once per process while the files' names, sizes and mtimes stay.
_PREPARED: dict[tuple[str, own_files.ReadOptions], tuple[Any, str]] = {}
_LOCK = threading.Lock()


def read_options(options: registry.LoadOptions) -> own_files.ReadOptions:
  """The reading options of `own_files` from a family's load options.

  The class names are the config's or a classes.txt's beside the files
  (own_files.class_names_for), read here so that the content key covers
  them: an edited classes.txt is prepared again.
  """
  class_names = options.class_names
  if options.path:
    class_names = own_files.class_names_for(
        os.path.abspath(os.path.expanduser(options.path)), class_names)
  return own_files.ReadOptions(
      image_size=options.image_size or 0, text_column=options.text_column,
      label_column=options.label_column, test_fraction=options.test_fraction,
      seed=options.seed, class_names=tuple(class_names))


def prepared_folder(options: registry.LoadOptions) -> str:
  """The prepared folder of `options.path`'s files, preparing it if needed.

  Raises:
    DataError: no path, or files that cannot be read (named, with the line
      where it applies); nothing is written then.
  """
  if not options.path:
    raise DataError('config.data.name=files needs config.data.path: a folder '
                    'of images, a .csv/.tsv/.jsonl table of texts or an .npz')
  path = os.path.abspath(os.path.expanduser(options.path))
  reading = read_options(options)
  own_files.file_format(path)  # A missing path fails here, named.
  with _LOCK:
    fingerprint = own_files.fingerprint(path)
    cached = _PREPARED.get((path, reading))
    if cached and cached[0] == fingerprint:
      return cached[1]
    data_dir, _ = tfds_util.resolve_dirs(options.data_dir, None)
    key = own_files.content_key(path, reading)
    folder = os.path.join(data_dir, BUILDER_NAME, key, _VERSION)
    if not os.path.isfile(os.path.join(folder, 'dataset_info.json')):
      _prepare(path, reading, data_dir, key)
    _PREPARED[(path, reading)] = (fingerprint, folder)
    return folder


def _prepare(path: str, reading: own_files.ReadOptions, data_dir: str,
             key: str):
  """Reads, checks and writes the files' dataset as array_record."""
  start = time.perf_counter()
  data = own_files.read(path, reading)
  read_seconds = time.perf_counter() - start
  # Registers `user_files` with TFDS, hence imported only here.
  # pylint: disable-next=g-import-not-at-top
  from svp_jax.data.builders import user_files
  config = user_files.UserFilesConfig(
      name=key, description=path, data=data, metadata=metadata(data))
  builder = user_files.UserFiles(config=config, data_dir=data_dir)
  # TFDS writes into an `incomplete.*` folder and renames it when done.
  builder.download_and_prepare(file_format='array_record')
  logging.info('Prepared %s (%d train, %d test examples, %d unlabeled) as '
               '%s in %.1f s (%.1f s reading the files).', path,
               len(data.train.labels), len(data.test.labels),
               int((data.train.labels == own_files.UNLABELED).sum()),
               builder.data_dir, time.perf_counter() - start, read_seconds)


def metadata(data: own_files.OwnData) -> dict[str, Any]:
  """What a prepared dataset records beside its examples."""
  if data.modality == 'image':
    mean, std = channel_statistics(data.train.inputs)
  else:
    mean, std = [], []
  return {'modality': data.modality, 'class_names': list(data.class_names),
          'mean': mean, 'std': std}


def channel_statistics(images: np.ndarray) -> tuple[list[float],
                                                    list[float]]:
  """Per-channel mean and population std on the [0, 1] scale."""
  pixels = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
  # A constant channel would divide by zero when normalising.
  std = np.maximum(pixels.std(axis=0), 1e-3)
  return pixels.mean(axis=0).tolist(), std.tolist()


def _builder(folder: str) -> Any:
  return tfds_util.tfds().builder_from_directory(folder)


def describe(name: str, options: registry.LoadOptions) -> DatasetInfo:
  """The `DatasetInfo` of the files at `options.path` (prepared first)."""
  del name  # Always NAME.
  builder = _builder(prepared_folder(options))
  meta = builder.info.metadata
  image_shape = (() if meta['modality'] == 'text' else
                 tuple(builder.info.features['inputs'].shape))
  return DatasetInfo(
      name=NAME, num_classes=len(meta['class_names']),
      image_shape=image_shape, mean=tuple(meta['mean']),
      std=tuple(meta['std']), train_split='train', test_split='test',
      modality=meta['modality'], class_names=tuple(meta['class_names']))


def read_sources(options: registry.LoadOptions, split: str) -> list[str]:
  """Where each example of `split` came from (file path, line, array row)."""
  builder = _builder(prepared_folder(options))
  if not _has_examples(builder, split):
    return []
  source = builder.as_data_source(split=split)
  return [_as_str(e['source']) for _, chunk in tfds_util.read_chunks(source)
          for e in chunk]


def _has_examples(builder: Any, split: str) -> bool:
  # A split without examples is not written (builders/user_files.py).
  return split in builder.info.splits


def load(info: DatasetInfo, split: str, options: registry.LoadOptions
         ) -> tuple[Any, np.ndarray]:
  """The family's loader: images (or documents) and labels, -1: unlabeled."""
  builder = _builder(prepared_folder(options))
  if not _has_examples(builder, split):  # The test split of zero labels.
    inputs = (np.empty((0, *info.image_shape), np.uint8)
              if info.modality == 'image' else np.empty((0,), object))
    return inputs, np.empty((0,), np.int32)
  if info.modality == 'image':
    return image_splits.read_split(builder, info, split, options.in_memory,
                                   image_key='inputs')
  start = time.perf_counter()
  source = builder.as_data_source(split=split)
  documents = np.empty((len(source),), object)
  labels = np.empty((len(source),), np.int32)
  for first, chunk in tfds_util.read_chunks(source):
    for offset, example in enumerate(chunk):
      documents[first + offset] = _as_str(example['inputs'])
      labels[first + offset] = example['label']
  logging.info('Read %s[%s]: %d documents in %.1f s.', options.path, split,
               len(labels), time.perf_counter() - start)
  return documents, labels


def _as_str(value: bytes | str) -> str:
  return value.decode('utf-8') if isinstance(value, bytes) else value


registry.register(registry.DatasetFamily(name=NAME, infos=(), load=load,
                                         describe=describe))
