"""Text classification splits as host lists and arrays, through TFDS, no TF.

Mirrors `svp_jax.data.loading` for the review datasets: a split is prepared
once as array_record in data_dir by our `amazon_reviews` builder (from the
CSV files in manual_dir, default <data_dir>/downloads/manual) and then read
with TFDS's random-access data source, which needs neither TensorFlow nor
network. Nothing can be downloaded: the Zhang et al. archives are manual.

Examples come back in CSV line order. Models see `documents(split)`, the
title and body joined by a space, as the reference does.
"""

import os
import time
from typing import Any, NamedTuple

from absl import logging
import numpy as np

from svp_jax.data import zhang_csv
from svp_jax.data.errors import DataError

TEXT_DATASETS: tuple[str, ...] = tuple(zhang_csv.DATASETS)
# Examples decoded per data-source call (see loading._READ_CHUNK).
_READ_CHUNK = 4096


class TextSplit(NamedTuple):
  titles: list[str]
  texts: list[str]  # Review bodies.
  labels: np.ndarray  # int32, 0-based.


def num_classes(name: str) -> int:
  return zhang_csv.csv_dataset(name).num_classes


def documents(split: TextSplit) -> list[str]:
  """Title + ' ' + body per example: the text both reference models read."""
  return [f'{title} {text}' for title, text in zip(split.titles, split.texts)]


def default_data_dir() -> str:
  """TFDS's default: $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
  return os.environ.get('TFDS_DATA_DIR') or os.path.join(
      os.path.expanduser('~'), 'tensorflow_datasets')


def load_text_split(name: str, split: str, *, data_dir: str | None = None,
                    manual_dir: str | None = None) -> TextSplit:
  """Reads a split, preparing it from the CSV files first if needed.

  Args:
    name: one of `TEXT_DATASETS` (a config of the `amazon_reviews` builder).
    split: 'train' or 'test'.
    data_dir: TFDS data folder (default: `default_data_dir()`).
    manual_dir: folder with the CSV files or archive (default
      <data_dir>/downloads/manual); see `svp_jax.data.zhang_csv`.

  Returns:
    titles, texts (lists of str) and int32 labels, in CSV line order.

  Raises:
    ValueError: unknown name or split.
    DataError: not prepared and no CSV files in manual_dir; the message names
      the folder and the expected file names.
  """
  dataset = zhang_csv.csv_dataset(name)
  if split not in zhang_csv.SPLITS:
    raise ValueError(f'split={split!r} is not a split of {name}: expected '
                     f'one of {zhang_csv.SPLITS}')
  data_dir = os.path.expanduser(data_dir or default_data_dir())
  builder = _prepared_builder(dataset, data_dir)
  if builder is None:
    manual_dir = os.path.expanduser(
        manual_dir or os.path.join(data_dir, 'downloads', 'manual'))
    # Checked here, before TFDS, so that the error is ours and immediate.
    zhang_csv.find_source(manual_dir, dataset)
    builder = _builder(dataset, data_dir)
    _prepare(builder, manual_dir)
  start = time.perf_counter()
  result = _read_split(builder, split)
  logging.info('Read %s[%s] from %s: %d examples in %.1f s.', name, split,
               builder.data_dir, len(result.labels),
               time.perf_counter() - start)
  return result


def _builder(dataset: zhang_csv.CsvDataset, data_dir: str) -> Any:
  # Imported on use: registers `amazon_reviews` with TFDS, and TFDS takes a
  # second to import.
  # pylint: disable-next=g-import-not-at-top
  from svp_jax.data.builders import amazon_reviews
  return amazon_reviews.AmazonReviews(config=dataset.name, data_dir=data_dir)


def _prepared_builder(dataset: zhang_csv.CsvDataset,
                      data_dir: str) -> Any | None:
  """The builder if this config is prepared in data_dir as array_record."""
  # pylint: disable-next=g-import-not-at-top
  from svp_jax.data.builders import amazon_reviews
  version_dir = os.path.join(data_dir, amazon_reviews.AmazonReviews.name,
                             dataset.name,
                             str(amazon_reviews.AmazonReviews.VERSION))
  # Checked before constructing the builder, which otherwise logs warnings
  # about a missing folder.
  if not os.path.isfile(os.path.join(version_dir, 'dataset_info.json')):
    return None
  builder = _builder(dataset, data_dir)
  if not builder.is_prepared():
    return None
  formats = {f.value for f in builder.info.available_file_formats()}
  if 'array_record' not in formats:
    raise DataError(
        f'{dataset.name} is prepared in {version_dir} only as '
        f'{sorted(formats)}, which cannot be read without TensorFlow. '
        f'Remove that folder or use another data_dir.')
  return builder


def _prepare(builder: Any, manual_dir: str):
  # pylint: disable-next=g-import-not-at-top
  import tensorflow_datasets as tfds
  logging.info('Preparing %s as array_record in %s (once).',
               builder.info.full_name, builder.data_dir)
  start = time.perf_counter()
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir),
      file_format='array_record')
  logging.info('Prepared %s in %.1f s.', builder.info.full_name,
               time.perf_counter() - start)


def _read_split(builder: Any, split: str) -> TextSplit:
  source = builder.as_data_source(split=split)
  num = len(source)
  titles, texts = [], []
  labels = np.empty((num,), np.int32)
  for start in range(0, num, _READ_CHUNK):
    chunk = source.__getitems__(
        list(range(start, min(start + _READ_CHUNK, num))))
    for offset, example in enumerate(chunk):
      titles.append(_as_str(example['title']))
      texts.append(_as_str(example['text']))
      labels[start + offset] = example['label']
  return TextSplit(titles, texts, labels)


def _as_str(value: bytes | str) -> str:
  # TFDS returns `Text` features as UTF-8 bytes.
  return value.decode('utf-8') if isinstance(value, bytes) else value
