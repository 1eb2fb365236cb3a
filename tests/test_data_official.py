"""TFDS's real, unmodified builders (CIFAR, Fashion-MNIST), offline.

No CIFAR is reachable here, so each test writes a tiny archive in the official
binary layout with known pixels and labels, registers its size and sha256 as
the builder's expected checksum (the only thing patched), and lets
`load_split` prepare it from manual_dir exactly as it would the real archive.
svp_jax prepares CIFAR with a builder of its own (no TensorFlow); TFDS's
official builders, when prepared already, are read in preference and give
the same arrays (preparing those needs TensorFlow, requirements-prepare.txt).
The official `fashion_mnist` builder is fed Debian's real files the same way.
"""

import gzip
import io
import os
import subprocess
import sys
import tarfile
import textwrap

import numpy as np
import pytest

from svp_jax import data
from svp_jax.data import cifar
from svp_jax.data import fashion_mnist

# name -> (folder in the archive, label bytes per record, files per split,
#          label-name files with their number of names)
LAYOUTS = {
    'cifar10': ('cifar-10-batches-bin', 1,
                {'train': [f'data_batch_{i}.bin' for i in range(1, 6)],
                 'test': ['test_batch.bin']},
                {'batches.meta.txt': 10}),
    'cifar100': ('cifar-100-binary', 2,
                 {'train': ['train.bin'], 'test': ['test.bin']},
                 {'coarse_label_names.txt': 20, 'fine_label_names.txt': 100}),
}
RECORDS_PER_FILE = {'train': 3, 'test': 4}


@pytest.fixture(scope='module', autouse=True)
def tensorflow():
  return pytest.importorskip(
      'tensorflow', reason='preparing official TFDS builders needs '
      'TensorFlow: pip install -r requirements-prepare.txt')


def _add(tar, name, payload):
  member = tarfile.TarInfo(name)
  member.size = len(payload)
  tar.addfile(member, io.BytesIO(payload))


def write_standin_archive(name, folder, seed=0):
  """A small archive in the official binary layout, and what it holds.

  Returns:
    The archive's path and {split: (images HWC uint8, labels)} in file
    order, where labels are the (fine) class labels.
  """
  prefix, label_bytes, files, name_files = LAYOUTS[name]
  num_classes = data.dataset_info(name).num_classes
  rng = np.random.default_rng(seed)
  expected = {}
  path = os.path.join(folder, cifar.CIFAR_ARCHIVES[name][0])
  with tarfile.open(path, 'w:gz') as tar:
    for split, filenames in files.items():
      images, labels = [], []
      for filename in filenames:
        records = []
        for _ in range(RECORDS_PER_FILE[split]):
          planes = rng.integers(0, 256, (3, 32, 32), dtype=np.uint8)
          label = int(rng.integers(num_classes))
          # CIFAR100 records start with (coarse, fine) labels.
          head = [label] if label_bytes == 1 else [label % 20, label]
          records.append(bytes(head) + planes.tobytes())
          images.append(planes.transpose(1, 2, 0))  # R,G,B planes -> HWC.
          labels.append(label)
        _add(tar, f'{prefix}/{filename}', b''.join(records))
      expected[split] = (np.stack(images), np.array(labels))
    for filename, count in name_files.items():
      names = ''.join(f'class_{i}\n' for i in range(count))
      _add(tar, f'{prefix}/{filename}', names.encode())
  return path, expected


def register_checksum(monkeypatch, name, archive):
  """Makes TFDS's builder expect `archive` in place of the real download."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  # pylint: disable-next=g-import-not-at-top
  from tensorflow_datasets.core.download import checksums
  builder_cls = tfds.builder_cls(name)
  (url,) = builder_cls.url_infos  # The one archive the builder downloads.
  assert url.endswith(os.path.basename(archive))
  # `url_infos` is a class property; patching it on this class is undone
  # after the test. The manual file is used only if size and sha256 match.
  monkeypatch.setattr(builder_cls, 'url_infos',
                      {url: checksums.compute_url_info(archive)})


@pytest.mark.parametrize('name', ['cifar10', 'cifar100'])
def test_official_builder_prepares_standin_archive(monkeypatch, tmp_path,
                                                   name):
  manual_dir = tmp_path / 'manual'
  manual_dir.mkdir()
  archive, expected = write_standin_archive(name, str(manual_dir))
  register_checksum(monkeypatch, name, archive)
  data_dir = str(tmp_path / 'tfds')
  for split in ('train', 'test'):
    images, labels = data.load_split(name, split, data_dir=data_dir,
                                     manual_dir=str(manual_dir))
    want_images, want_labels = expected[split]
    assert images.dtype == np.uint8 and labels.dtype == np.int32
    assert images.shape == want_images.shape
    # The files' order, pixel for pixel.
    np.testing.assert_array_equal(images, want_images)
    np.testing.assert_array_equal(labels, want_labels)
    # Decoded on demand: the same rows in the same (files') order.
    lazy, lazy_labels = data.load_split(name, split, data_dir=data_dir,
                                        in_memory=False)
    rows = np.arange(len(want_labels))[::-1]
    np.testing.assert_array_equal(lazy[rows], want_images[rows])
    np.testing.assert_array_equal(lazy_labels, want_labels)
  # Prepared by svp_jax's own builder (no TensorFlow), as array_record.
  version_dir = tmp_path / 'tfds' / 'cifar_binary' / name / '1.0.0'
  assert any('array_record' in f.name for f in version_dir.iterdir())
  assert not (tmp_path / 'tfds' / name).exists()


@pytest.mark.parametrize('name', ['cifar10', 'cifar100'])
def test_official_builder_is_preferred_and_reads_the_same(monkeypatch,
                                                          tmp_path, name):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  manual_dir = tmp_path / 'manual'
  manual_dir.mkdir()
  archive, expected = write_standin_archive(name, str(manual_dir))
  register_checksum(monkeypatch, name, archive)
  data_dir = str(tmp_path / 'tfds')
  tfds.builder_cls(name)(data_dir=data_dir).download_and_prepare(
      download_config=tfds.download.DownloadConfig(
          manual_dir=str(manual_dir)), file_format='array_record')
  for split in ('train', 'test'):
    images, labels = data.load_split(name, split, data_dir=data_dir,
                                     manual_dir=str(manual_dir))
    np.testing.assert_array_equal(images, expected[split][0])
    np.testing.assert_array_equal(labels, expected[split][1])
  assert not (tmp_path / 'tfds' / 'cifar_binary').exists()


def test_cifar_prepares_without_tensorflow(monkeypatch, tmp_path):
  archive, expected = write_standin_archive('cifar100', str(tmp_path))
  register_checksum(monkeypatch, 'cifar100', archive)
  # None in sys.modules makes `import tensorflow` raise ImportError.
  monkeypatch.setitem(sys.modules, 'tensorflow', None)
  images, labels = data.load_split('cifar100', 'train',
                                   data_dir=str(tmp_path / 'tfds'),
                                   manual_dir=str(tmp_path))
  np.testing.assert_array_equal(images, expected['train'][0])
  np.testing.assert_array_equal(labels, expected['train'][1])


def test_a_download_is_checked_and_renamed_when_complete(monkeypatch,
                                                         tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from svp_jax.data import tfds_util  # pylint: disable=g-import-not-at-top
  archive, expected = write_standin_archive('cifar10', str(tmp_path))
  register_checksum(monkeypatch, 'cifar10', archive)
  served = []

  def urlopen(url, timeout):
    del timeout
    served.append(url)
    return open(archive, 'rb')

  monkeypatch.setattr(tfds_util.urllib.request, 'urlopen', urlopen)
  monkeypatch.setattr(tfds_util, 'reachable', lambda host: True)
  data_dir = tmp_path / 'tfds'
  images, _ = data.load_split('cifar10', 'test', data_dir=str(data_dir))
  np.testing.assert_array_equal(images, expected['test'][0])
  (url,) = tfds.builder_cls('cifar10').url_infos
  assert served == [url]
  downloaded = os.listdir(data_dir / 'downloads')
  assert 'cifar-10-binary.tar.gz' in downloaded
  assert not [f for f in downloaded if f.endswith('.part')]
  # A download that is not the registered file is refused and removed.
  monkeypatch.setattr(tfds_util.urllib.request, 'urlopen',
                      lambda url, timeout: open(__file__, 'rb'))
  other = tmp_path / 'other'
  with pytest.raises(data.DataError, match='not the official'):
    data.load_split('cifar10', 'test', data_dir=str(other))
  assert os.listdir(other / 'downloads') == []


def test_prepared_cifar_is_read_without_tensorflow(monkeypatch, tmp_path):
  archive, expected = write_standin_archive('cifar10', str(tmp_path))
  register_checksum(monkeypatch, 'cifar10', archive)
  data_dir = str(tmp_path / 'tfds')
  data.load_split('cifar10', 'test', data_dir=data_dir,
                  manual_dir=str(tmp_path))
  np.save(tmp_path / 'want.npy', expected['test'][0])
  script = textwrap.dedent(f"""
      import sys
      import numpy as np
      from svp_jax import data
      images, _ = data.load_split('cifar10', 'test', data_dir={data_dir!r})
      np.testing.assert_array_equal(images, np.load({
          str(tmp_path / 'want.npy')!r}))
      print('tensorflow imported:', 'tensorflow' in sys.modules)
  """)
  result = subprocess.run(
      [sys.executable, '-c', script], capture_output=True, text=True,
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
      check=False, timeout=120)
  assert result.returncode == 0, result.stderr
  assert 'tensorflow imported: False' in result.stdout


def test_archive_with_wrong_checksum_is_refused(tmp_path):
  # Not registered: TFDS still expects the real archive's sha256.
  write_standin_archive('cifar10', str(tmp_path))
  with pytest.raises(data.DataError, match='not the official'):
    data.load_split('cifar10', 'train', data_dir=str(tmp_path / 'tfds'),
                    manual_dir=str(tmp_path))


@pytest.mark.slow  # About 25 s: TFDS encodes 70,000 PNGs.
def test_official_fashion_mnist_is_read_when_prepared(monkeypatch, tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  # pylint: disable-next=g-import-not-at-top
  from tensorflow_datasets.core.download import checksums
  system_dir = fashion_mnist.FASHION_MNIST_SYSTEM_DIR
  if not os.path.isdir(system_dir):
    pytest.skip(f'{system_dir} is absent: '
                'apt-get install dataset-fashion-mnist')
  # Debian re-packed the gzip headers: register the local files' checksums.
  builder_cls = tfds.builder_cls('fashion_mnist')
  monkeypatch.setattr(builder_cls, 'url_infos', {
      url: checksums.compute_url_info(
          os.path.join(system_dir, os.path.basename(url)))
      for url in builder_cls.url_infos})
  data_dir = str(tmp_path / 'tfds')
  builder_cls(data_dir=data_dir).download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=system_dir),
      file_format='array_record')

  empty = tmp_path / 'empty'
  empty.mkdir()
  images, labels = data.load_split('fashion_mnist', 'test',
                                   data_dir=data_dir, manual_dir=str(empty))
  assert not os.path.exists(os.path.join(data_dir, 'fashion_mnist_idx'))
  assert images.shape == (10_000, 28, 28, 1) and images.dtype == np.uint8
  with gzip.open(os.path.join(system_dir, 't10k-images-idx3-ubyte.gz')) as f:
    want_images = np.frombuffer(f.read(), np.uint8, offset=16)
  with gzip.open(os.path.join(system_dir, 't10k-labels-idx1-ubyte.gz')) as f:
    want_labels = np.frombuffer(f.read(), np.uint8, offset=8)
  # TFDS shuffled the official copy: compare (image, label) multisets.
  def rows(images, labels):
    flat = np.concatenate([np.reshape(images, (len(labels), -1)),
                           np.asarray(labels, np.uint8)[:, None]], axis=1)
    return flat[np.lexsort(flat.T[::-1])]
  np.testing.assert_array_equal(rows(images, labels),
                                rows(want_images, want_labels))
