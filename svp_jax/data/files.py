"""The `files` dataset: a user's own images, texts or arrays, no code needed.

  python main.py --config=configs/own_images.py --config.data.path=ROOT
  python main.py --config=configs/own_texts.py --config.data.path=FILE.csv

What `config.data.path` may point at: `svp_jax.data.own_files`. The files
are read and checked once, prepared as TFDS array_record (the built-ins'
form, read back without TensorFlow) in
`<data_dir>/user_files/<content key>/1.0.0/`, and read from there while the
files stay the same: the key covers the files' names and bytes and every
option that shapes the examples, so a changed folder is prepared again and
an unchanged one is not. Preparing writes a scratch folder beside that one
and renames it into place when complete, so two processes preparing the
same files at once both succeed (the second uses the first's folder). A
data_dir that is not writable (a shared read-only mount) is still read;
files not prepared there are prepared in the user's cache instead
(`$XDG_CACHE_HOME/svp_jax/data/`, else `~/.cache/svp_jax/data/`).
Per-channel mean and std are computed from the training split when it is
prepared, in bounded memory, and kept in its metadata.

Importing this module registers the dynamic family `files`: its one
dataset's facts (classes, shape, modality) come from the files.
"""

import os
import shutil
import tempfile
import threading
import time
from typing import Any

from absl import logging
import numpy as np

from svp_jax.data import image_splits
from svp_jax.data import own_files
from svp_jax.data import registry
from svp_jax.data import statistics
from svp_jax.data import tfds_util
from svp_jax.data.errors import DataError
from svp_jax.data.info import DatasetInfo

NAME = 'files'
BUILDER_NAME = 'user_files'
_VERSION = '1.0.0'
# (path, read options, data_dir) -> (fingerprint, prepared folder): the
# content is hashed once per process while the files' names, sizes and
# mtimes stay.
_PREPARED: dict[tuple[str, own_files.ReadOptions, str], tuple[Any, str]] = {}
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
  data_dir, _ = tfds_util.resolve_dirs(options.data_dir, None)
  with _LOCK:
    fingerprint = own_files.fingerprint(path)
    cached = _PREPARED.get((path, reading, data_dir))
    if cached and cached[0] == fingerprint:
      return cached[1]
    key = own_files.content_key(path, reading)
    # Prepared earlier in data_dir, or in the user's cache because data_dir
    # was read-only then.
    for base in (data_dir, fallback_data_dir()):
      folder = version_folder(base, key)
      if _complete(folder):
        break
    else:
      base = data_dir
      if not statistics.writable(data_dir):
        base = fallback_data_dir()
        logging.warning('data_dir=%s is not writable: preparing %s in %s.',
                        data_dir, path, base)
      _prepare(path, reading, base, key)
      folder = version_folder(base, key)
    _PREPARED[(path, reading, data_dir)] = (fingerprint, folder)
    return folder


def fallback_data_dir() -> str:
  """Where files are prepared when data_dir is not writable."""
  return os.path.join(statistics.user_cache_dir(), 'data')


def version_folder(data_dir: str, key: str) -> str:
  """The prepared folder of the files with content key `key`."""
  return os.path.join(data_dir, BUILDER_NAME, key, _VERSION)


def _complete(folder: str) -> bool:
  # Written last, by the rename that puts a finished folder into place.
  return os.path.isfile(os.path.join(folder, 'dataset_info.json'))


def _prepare(path: str, reading: own_files.ReadOptions, data_dir: str,
             key: str):
  """Reads, checks and writes the files' dataset as array_record.

  Written into a scratch folder beside its destination and renamed into
  place when complete: another process preparing the same files at the same
  time renames first or second, and the second uses the first's folder
  (the same key, the same content).
  """
  start = time.perf_counter()
  data = own_files.read(path, reading)
  read_seconds = time.perf_counter() - start
  # Registers `user_files` with TFDS, hence imported only here.
  # pylint: disable-next=g-import-not-at-top
  from svp_jax.data.builders import user_files
  config = user_files.UserFilesConfig(
      name=key, description=path, data=data, metadata=metadata(data))
  destination = version_folder(data_dir, key)
  parent = os.path.dirname(destination)
  try:
    os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix='.incomplete-', dir=parent)
  except OSError as e:
    raise DataError(f'cannot write the prepared files in data_dir={data_dir} '
                    f'({e.strerror or e}); set config.data.data_dir to a '
                    'writable folder') from None
  try:
    builder = user_files.UserFiles(config=config, data_dir=scratch)
    builder.download_and_prepare(file_format='array_record')
    _move_into_place(builder.data_dir, destination)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  logging.info('Prepared %s (%d train, %d test examples, %d unlabeled) as '
               '%s in %.1f s (%.1f s reading the files).', path,
               len(data.train.labels), len(data.test.labels),
               int((data.train.labels == own_files.UNLABELED).sum()),
               destination, time.perf_counter() - start, read_seconds)


def _move_into_place(prepared: str, destination: str):
  """Renames the complete folder `prepared` to `destination` (atomic)."""
  try:
    os.rename(prepared, destination)
  except OSError as e:
    if _complete(destination):
      logging.info('%s was prepared by another process meanwhile; using it.',
                   destination)
      return
    raise DataError(f'{destination}: cannot put the prepared files there '
                    f'({e.strerror or e}); if it is an unfinished leftover, '
                    'remove it') from None
  # The rename itself survives a power loss only once its folder is synced.
  descriptor = os.open(os.path.dirname(destination), os.O_RDONLY)
  try:
    os.fsync(descriptor)
  finally:
    os.close(descriptor)


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
  """Per-channel mean and population std on the [0, 1] scale.

  In bounded memory: a few MB beside the images (`svp_jax.data.statistics`).
  """
  return statistics.channel_statistics(images)


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
