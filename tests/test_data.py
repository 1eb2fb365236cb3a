"""svp_jax.data loading: real Fashion-MNIST, dataset facts and error paths.

The Fashion-MNIST tests use the real files of Debian's dataset-fashion-mnist
package (CI installs it) and prepare them once per session (~10 s).
"""

import gzip
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from svp_jax import data
from svp_jax.data import fashion_mnist
from svp_jax.data import idx
from svp_jax.data import tfds_util

SYSTEM_DIR = fashion_mnist.FASHION_MNIST_SYSTEM_DIR


def _idx_split(split):
  """The split decoded straight from the IDX files, as an oracle."""
  images_name, labels_name, _ = idx.FASHION_MNIST_FILES[split]
  arrays = []
  for name, header in ((images_name, 16), (labels_name, 8)):
    with gzip.open(os.path.join(SYSTEM_DIR, name + '.gz')) as f:
      arrays.append(np.frombuffer(f.read(), np.uint8, offset=header))
  return arrays[0].reshape(-1, 28, 28, 1), arrays[1]


# `fashion_mnist_dir` (conftest.py) prepares the system files into a temp
# data_dir with no manual_dir given: so the default folder is found, too.


@pytest.fixture(scope='session')
def fashion_train(fashion_mnist_dir):
  return data.load_split('fashion_mnist', 'train', data_dir=fashion_mnist_dir)


def test_fashion_mnist_train_is_the_real_idx_data(fashion_train):
  images, labels = fashion_train
  assert images.shape == (60_000, 28, 28, 1) and images.dtype == np.uint8
  assert labels.shape == (60_000,) and labels.dtype == np.int32
  np.testing.assert_array_equal(np.bincount(labels), [6000] * 10)
  want_images, want_labels = _idx_split('train')
  # Same order as the IDX file, so index-wise equality.
  for i in (0, 1, 12_345, 59_999):
    np.testing.assert_array_equal(images[i], want_images[i])
  np.testing.assert_array_equal(images, want_images)
  np.testing.assert_array_equal(labels, want_labels)


def test_fashion_mnist_normalisation_constants_fit_the_data(fashion_train):
  pixels = fashion_train[0] / 255.0
  info = data.dataset_info('fashion_mnist')
  np.testing.assert_allclose(pixels.mean(), info.mean[0], atol=5e-5)
  np.testing.assert_allclose(pixels.std(), info.std[0], atol=5e-5)


def test_fashion_mnist_test_split(fashion_mnist_dir):
  images, labels = data.load_split('fashion_mnist', 'test',
                                   data_dir=fashion_mnist_dir)
  assert images.shape == (10_000, 28, 28, 1) and labels.shape == (10_000,)
  np.testing.assert_array_equal(np.bincount(labels), [1000] * 10)
  want_images, want_labels = _idx_split('test')
  np.testing.assert_array_equal(images, want_images)
  np.testing.assert_array_equal(labels, want_labels)


def test_prepared_data_is_read_without_sources_or_tensorflow(
    fashion_mnist_dir, tmp_path):
  # A fresh interpreter: other tests in this session may import TensorFlow.
  script = textwrap.dedent(f"""
      import sys
      from svp_jax import data
      images, labels = data.load_split(
          'fashion_mnist', 'test', data_dir={fashion_mnist_dir!r},
          manual_dir={str(tmp_path)!r})
      assert images.shape == (10000, 28, 28, 1), images.shape
      print('tensorflow imported:', 'tensorflow' in sys.modules)
  """)
  result = subprocess.run(
      [sys.executable, '-c', script], capture_output=True, text=True,
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
      check=False, timeout=120)
  assert result.returncode == 0, result.stderr
  assert 'tensorflow imported: False' in result.stdout


def test_missing_fashion_mnist_fails_at_once_saying_how_to_get_it(tmp_path):
  data_dir, manual_dir = tmp_path / 'tfds', tmp_path / 'manual'
  manual_dir.mkdir()
  with pytest.raises(data.DataError) as error:
    data.load_split('fashion_mnist', 'train', data_dir=str(data_dir),
                    manual_dir=str(manual_dir))
  message = str(error.value)
  for part in ('fashion_mnist', str(data_dir), str(manual_dir),
               'apt-get install dataset-fashion-mnist',
               'apt-get download dataset-fashion-mnist',
               '--config.data.manual_dir', '--config.data.download=True'):
    assert part in message
  assert not (data_dir / 'fashion_mnist_idx').exists()


@pytest.mark.parametrize('name, archive', [
    ('cifar10', 'cifar-10-binary.tar.gz'),
    ('cifar100', 'cifar-100-binary.tar.gz'),
])
def test_missing_cifar_fails_at_once_naming_the_archive(tmp_path, name,
                                                        archive):
  data_dir = tmp_path / 'tfds'
  with pytest.raises(data.DataError) as error:
    data.load_split(name, 'train', data_dir=str(data_dir))
  message = str(error.value)
  # manual_dir defaults to TFDS's <data_dir>/downloads/manual.
  for part in (name, str(data_dir), str(data_dir / 'downloads' / 'manual'),
               archive, '--config.data.download=True'):
    assert part in message


@pytest.mark.parametrize('name', ['fashion_mnist'])
def test_preparing_without_tensorflow_says_what_to_install(monkeypatch,
                                                           tmp_path, name):
  # None in sys.modules makes `import tensorflow` raise ImportError. (CIFAR
  # prepares without TensorFlow: tests/test_data_official.py.)
  monkeypatch.setitem(sys.modules, 'tensorflow', None)
  manual_dir = tmp_path / 'manual'
  manual_dir.mkdir()
  with pytest.raises(data.DataError) as error:
    data.load_split(name, 'train', data_dir=str(tmp_path / 'tfds'),
                    manual_dir=str(manual_dir), download=True)
  assert name in str(error.value)
  assert 'pip install -r requirements-prepare.txt' in str(error.value)


def test_default_data_dir_follows_tfds(monkeypatch):
  monkeypatch.setenv('TFDS_DATA_DIR', '/somewhere/tfds')
  assert tfds_util.default_data_dir() == '/somewhere/tfds'
  monkeypatch.delenv('TFDS_DATA_DIR')
  assert tfds_util.default_data_dir() == os.path.expanduser(
      '~/tensorflow_datasets')


def test_unknown_dataset_name_names_key_value_and_choices(tmp_path):
  for call in (lambda: data.dataset_info('no_such_set'),
               lambda: data.load_split('no_such_set', 'train',
                                       data_dir=str(tmp_path))):
    with pytest.raises(ValueError) as error:
      call()
    message = str(error.value)
    assert 'data.name' in message and "'no_such_set'" in message
    assert all(name in message for name in data.SUPPORTED_DATASETS)
    assert 'TFDS classification dataset' in message


def test_unknown_split(tmp_path):
  with pytest.raises(ValueError, match=r"'validation'.*'train', 'test'"):
    data.load_split('cifar10', 'validation', data_dir=str(tmp_path))


def test_dataset_info_facts():
  assert data.SUPPORTED_DATASETS == (
      'cifar10', 'cifar100', 'fashion_mnist', 'imagenet2012',
      'amazon_review_polarity', 'amazon_review_full', 'rotten_tomatoes',
      'files')
  for name in data.SUPPORTED_DATASETS[:-1]:  # 'files' needs files: own tests.
    info = data.dataset_info(name)
    assert info.name == name
    assert info.train_split == 'train'
    assert info.test_split == ('validation' if name == 'imagenet2012'
                               else 'test')
    if info.modality == 'image':
      assert len(info.mean) == len(info.std) == info.image_shape[-1]
    else:
      assert info.modality == 'text' and not info.image_shape
  assert data.dataset_info('imagenet2012').host_augmentation
  assert data.dataset_info('imagenet2012').num_classes == 1000
  assert data.dataset_info('amazon_review_full').num_classes == 5
  assert data.dataset_info('cifar100').num_classes == 100
  assert data.dataset_info('cifar10').mean == (0.4914, 0.4822, 0.4465)
  assert data.dataset_info('cifar100').std == (0.2673, 0.2564, 0.2762)


# IDX checks, on small hand-made files.


def _write_idx(path, array, magic=None, compress=True, cut=0):
  array = np.asarray(array, np.uint8)
  magic = (0x0800 | array.ndim) if magic is None else magic
  raw = (magic.to_bytes(4, 'big')
         + b''.join(d.to_bytes(4, 'big') for d in array.shape)
         + array.tobytes())
  raw = raw[:len(raw) - cut]
  with (gzip.open(path, 'wb') if compress else open(path, 'wb')) as f:
    f.write(raw)


def test_read_idx_round_trip_gzipped_or_not(tmp_path):
  array = np.arange(2 * 3 * 4).reshape(2, 3, 4)
  for compress in (True, False):
    path = tmp_path / f'a{compress}'
    _write_idx(path, array, compress=compress)
    np.testing.assert_array_equal(idx.read_idx(str(path), ndim=3), array)


def test_read_idx_rejects_wrong_magic(tmp_path):
  path = tmp_path / 'x.gz'
  _write_idx(path, np.zeros((2, 28, 28)), magic=0x0000080D)
  with pytest.raises(data.DataError, match=r'x\.gz.*magic.*0x00000803'):
    idx.read_idx(str(path), ndim=3)


def test_read_idx_rejects_truncated_data(tmp_path):
  path = tmp_path / 'x.gz'
  _write_idx(path, np.zeros((5, 28, 28)), cut=10)
  with pytest.raises(data.DataError, match=r'\(5, 28, 28\).*truncated'):
    idx.read_idx(str(path), ndim=3)


def test_read_idx_rejects_corrupt_gzip(tmp_path):
  path = tmp_path / 'x.gz'
  _write_idx(path, np.zeros((5, 28, 28)))
  raw = path.read_bytes()
  path.write_bytes(raw[:len(raw) // 2])
  with pytest.raises(data.DataError, match=r'x\.gz.*decompress'):
    idx.read_idx(str(path), ndim=3)


def test_read_fashion_mnist_checks_sizes_and_labels(tmp_path):
  _write_idx(tmp_path / 't10k-images-idx3-ubyte.gz',
             np.zeros((10_000, 28, 28)))
  _write_idx(tmp_path / 't10k-labels-idx1-ubyte.gz', np.full(10_000, 10))
  with pytest.raises(data.DataError, match='label 10 out of range'):
    idx.read_fashion_mnist(str(tmp_path), 'test')
  _write_idx(tmp_path / 't10k-labels-idx1-ubyte.gz', np.zeros(9_999))
  with pytest.raises(data.DataError, match='9999 labels, expected 10000'):
    idx.read_fashion_mnist(str(tmp_path), 'test')


def _fake_fashion_files(folder, num_train=3):
  for split, (images, labels, num) in idx.FASHION_MNIST_FILES.items():
    num = num_train if split == 'train' else num
    _write_idx(folder / f'{images}.gz', np.zeros((num, 28, 28)))
    _write_idx(folder / f'{labels}.gz', np.zeros(num))


def test_bad_idx_file_fails_preparation_clearly(tmp_path):
  manual_dir = tmp_path / 'manual'
  manual_dir.mkdir()
  _fake_fashion_files(manual_dir, num_train=3)
  with pytest.raises(data.DataError,
                     match=r'train-images.*\(3, 28, 28\), expected'):
    data.load_split('fashion_mnist', 'test', data_dir=str(tmp_path / 'tfds'),
                    manual_dir=str(manual_dir))
  # Nothing half-prepared is left to be mistaken for data later.
  assert not (tmp_path / 'tfds' / 'fashion_mnist_idx' / '1.0.0').exists()


def test_some_idx_files_missing(tmp_path):
  _fake_fashion_files(tmp_path)
  os.remove(tmp_path / 't10k-labels-idx1-ubyte.gz')
  # Uncompressed files count as present too.
  with gzip.open(tmp_path / 'train-labels-idx1-ubyte.gz') as f:
    (tmp_path / 'train-labels-idx1-ubyte').write_bytes(f.read())
  os.remove(tmp_path / 'train-labels-idx1-ubyte.gz')
  with pytest.raises(data.DataError) as error:
    data.load_split('fashion_mnist', 'test', data_dir=str(tmp_path / 'tfds'),
                    manual_dir=str(tmp_path))
  assert "missing ['t10k-labels-idx1-ubyte.gz']" in str(error.value)


def test_images_on_demand_equal_the_in_memory_split(fashion_mnist_dir,
                                                    fashion_train):
  images, labels = data.load_split('fashion_mnist', 'train',
                                   data_dir=fashion_mnist_dir,
                                   in_memory=False)
  assert isinstance(images, data.SplitImages)
  assert images.shape == (60_000, 28, 28, 1) and len(images) == 60_000
  np.testing.assert_array_equal(labels, fashion_train[1])
  rows = np.array([59_999, 0, 12_345, 0, 7])  # Any order, repeats allowed.
  np.testing.assert_array_equal(images[rows], fashion_train[0][rows])
  head = images[:100]  # A view, as max_train_examples takes it.
  assert len(head) == 100
  np.testing.assert_array_equal(head[np.arange(90, 100)],
                                fashion_train[0][90:100])
  assert images[np.array([], np.int64)].shape == (0, 28, 28, 1)
