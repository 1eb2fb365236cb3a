"""IDX files (the MNIST family's format): find, check and read with NumPy.

Fashion-MNIST's four IDX files are read from a folder (Debian's
`dataset-fashion-mnist` puts them in /usr/share/datasets/fashion-mnist). The
content is checked here instead of by checksum because Debian re-packed the
gzip headers, so the files' sha256 differs from the upstream ones.
"""

import gzip
import math
import os
import zlib

import numpy as np

from svp_jax.data.errors import DataError

# split -> (images file, labels file, number of examples), names without '.gz'.
FASHION_MNIST_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 60_000),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte', 10_000),
}
FASHION_MNIST_FILENAMES = tuple(
    f'{name}.gz' for images, labels, _ in FASHION_MNIST_FILES.values()
    for name in (images, labels))
_IMAGE_SIZE = 28
_NUM_CLASSES = 10
_UBYTE = 0x08  # IDX type code of unsigned bytes, the only one used here.


def _read_bytes(path: str) -> bytes:
  """The file's content, gunzipped when it starts with the gzip magic."""
  with open(path, 'rb') as f:
    compressed = f.read(2) == b'\x1f\x8b'
  try:
    with (gzip.open(path, 'rb') if compressed else open(path, 'rb')) as f:
      return f.read()
  except (OSError, EOFError, zlib.error) as e:
    raise DataError(f'{path}: cannot decompress ({e}); the file is '
                    'truncated or corrupt.') from e


def read_idx(path: str, ndim: int) -> np.ndarray:
  """An IDX file of unsigned bytes with `ndim` dimensions, as a uint8 array.

  Raises:
    DataError: the magic number or the data size does not match.
  """
  raw = _read_bytes(path)
  magic = int.from_bytes(raw[:4], 'big') if len(raw) >= 4 else None
  expected_magic = (_UBYTE << 8) | ndim
  if magic != expected_magic:
    found = 'no header' if magic is None else f'magic number 0x{magic:08x}'
    raise DataError(f'{path}: not an IDX file of {ndim}-d unsigned bytes '
                    f'({found}, expected 0x{expected_magic:08x}).')
  header = 4 + 4 * ndim
  if len(raw) < header:
    raise DataError(f'{path}: truncated IDX header ({len(raw)} bytes).')
  shape = tuple(int(d) for d in np.frombuffer(raw, '>u4', ndim, offset=4))
  size = math.prod(shape)
  if len(raw) - header != size:
    raise DataError(f'{path}: the header announces shape {shape} '
                    f'({size} bytes of data) but the file holds '
                    f'{len(raw) - header}; it is truncated or corrupt.')
  return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def find_fashion_mnist_files(directory: str) -> dict[str, str]:
  """Paths of the Fashion-MNIST files present in `directory`.

  Keys are the names without '.gz'; a file may be gzipped (as distributed)
  or not. Missing files are simply absent from the result.
  """
  found = {}
  for images, labels, _ in FASHION_MNIST_FILES.values():
    for name in (images, labels):
      for candidate in (f'{name}.gz', name):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
          found[name] = path
          break
  return found


def read_fashion_mnist(directory: str, split: str
                       ) -> tuple[np.ndarray, np.ndarray]:
  """One split from the IDX files in `directory`, in file order.

  Returns:
    images uint8 (N, 28, 28, 1) and labels uint8 (N,).

  Raises:
    DataError: a file is missing or its content is not Fashion-MNIST's.
  """
  images_name, labels_name, num_examples = FASHION_MNIST_FILES[split]
  files = find_fashion_mnist_files(directory)
  for name in (images_name, labels_name):
    if name not in files:
      raise DataError(f'{name}.gz is missing from {directory}.')
  images = read_idx(files[images_name], ndim=3)
  labels = read_idx(files[labels_name], ndim=1)
  expected = (num_examples, _IMAGE_SIZE, _IMAGE_SIZE)
  if images.shape != expected:
    raise DataError(f'{files[images_name]}: images of shape {images.shape}, '
                    f'expected {expected} for the {split} split.')
  if labels.shape != (num_examples,):
    raise DataError(f'{files[labels_name]}: {labels.shape[0]} labels, '
                    f'expected {num_examples} for the {split} split.')
  if labels.max() >= _NUM_CLASSES:
    raise DataError(f'{files[labels_name]}: label {labels.max()} out of '
                    f'range [0, {_NUM_CLASSES}).')
  return images[..., np.newaxis], labels
