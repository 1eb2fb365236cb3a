"""Text classification splits as host lists and arrays, through TFDS, no TF.

The review datasets in Zhang et al.'s CSV layout (`svp_jax.data.zhang_csv`):
Amazon Review Polarity and Full, and Rotten Tomatoes, their offline stand-in
(docs/data.md). A split is prepared once as array_record in data_dir by our
`amazon_reviews` builder (from the CSV files in manual_dir, default
<data_dir>/downloads/manual) and then read with TFDS's random-access data
source, which needs neither TensorFlow nor network. Nothing can be
downloaded: the Zhang et al. archives are manual.

Examples come back in CSV line order. Models see `documents(split)`, the
title and body joined by a space, as the reference does; the registered
`zhang_csv` family (registered when this module is imported) returns those.
"""

import time
from typing import Any, NamedTuple

from absl import logging
import numpy as np

from svp_jax.data import registry
from svp_jax.data import tfds_util
from svp_jax.data import zhang_csv
from svp_jax.data.info import DatasetInfo

TEXT_DATASETS: tuple[str, ...] = tuple(zhang_csv.DATASETS)
INFOS = tuple(
    DatasetInfo(name=d.name, num_classes=d.num_classes, image_shape=(),
                mean=(), std=(), train_split=zhang_csv.SPLITS[0],
                test_split=zhang_csv.SPLITS[1], modality='text')
    for d in zhang_csv.DATASETS.values())


class TextSplit(NamedTuple):
  titles: list[str]
  texts: list[str]  # Review bodies.
  labels: np.ndarray  # int32, 0-based.


def num_classes(name: str) -> int:
  return zhang_csv.csv_dataset(name).num_classes


def documents(split: TextSplit) -> list[str]:
  """Title + ' ' + body per example: the text both reference models read."""
  return [f'{title} {text}' for title, text in zip(split.titles, split.texts)]


def load_text_split(name: str, split: str, *, data_dir: str | None = None,
                    manual_dir: str | None = None) -> TextSplit:
  """Reads a split, preparing it from the CSV files first if needed.

  Args:
    name: one of `TEXT_DATASETS` (a config of the `amazon_reviews` builder).
    split: 'train' or 'test'.
    data_dir: TFDS data folder (default: `tfds_util.default_data_dir()`).
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
  data_dir, manual_dir = tfds_util.resolve_dirs(data_dir, manual_dir)
  builder = _prepared_builder(dataset, data_dir)
  if builder is None:
    manual_dir = manual_dir or tfds_util.default_manual_dir(data_dir)
    # Checked here, before TFDS, so that the error is ours and immediate.
    zhang_csv.find_source(manual_dir, dataset)
    builder = _builder(dataset, data_dir)
    tfds_util.prepare(builder, manual_dir)
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
  # Our own builder: without the folder it prepares again, as array_record.
  return tfds_util.prepared(
      amazon_reviews.AmazonReviews, data_dir, config=dataset.name,
      remedy='Remove that folder or use another data_dir.')


def _read_split(builder: Any, split: str) -> TextSplit:
  source = builder.as_data_source(split=split)
  titles, texts = [], []
  labels = np.empty((len(source),), np.int32)
  for start, chunk in tfds_util.read_chunks(source):
    for offset, example in enumerate(chunk):
      titles.append(_as_str(example['title']))
      texts.append(_as_str(example['text']))
      labels[start + offset] = example['label']
  return TextSplit(titles, texts, labels)


def _as_str(value: bytes | str) -> str:
  # TFDS returns `Text` features as UTF-8 bytes.
  return value.decode('utf-8') if isinstance(value, bytes) else value


def load(info: DatasetInfo, split: str, options: registry.LoadOptions
         ) -> tuple[np.ndarray, np.ndarray]:
  """The family's loader (`registry.Loader`): documents and labels.

  Documents (title + ' ' + body) as an object array, which each model's
  encoding reads (svp_jax.model_registry). Nothing can be downloaded, and
  text is always read whole, whatever `options` say.
  """
  split_data = load_text_split(info.name, split, data_dir=options.data_dir,
                               manual_dir=options.manual_dir)
  return np.array(documents(split_data), dtype=object), split_data.labels


registry.register(registry.DatasetFamily(name='zhang_csv', infos=INFOS,
                                         load=load))
