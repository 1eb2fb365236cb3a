"""Any TFDS classification dataset by name (svp_jax.data.tfds_catalog).

TFDS's own catalogue cannot be downloaded here, so the datasets are TFDS
builders written by the test into a package of their own (as a user's or a
TFDS release's would be): real TFDS machinery end to end, offline. Their
images are made up: plumbing and facts, not learning.
"""

import importlib
import os
import sys
import textwrap

import numpy as np
import pytest

from configs import fashion_mnist_svp
from svp_jax import data
from svp_jax import experiment
from svp_jax.data import tfds_catalog
from svp_jax.data import tfds_util

BUILDERS = '''
import numpy as np
import tensorflow_datasets as tfds


def _images(split, n):
  rng = np.random.default_rng(len(split))
  labels = np.arange(n) % 3
  images = rng.integers(0, 60, (n, 6, 6, 3), dtype=np.uint8)
  return images + (labels * 90).astype(np.uint8)[:, None, None, None], labels


class SvpTestShapes(tfds.core.GeneratorBasedBuilder):
  """Three classes of 6x6 colour images; splits train, validation."""
  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeaturesDict({
            'picture': tfds.features.Tensor(shape=(6, 6, 3), dtype=np.uint8),
            'kind': tfds.features.ClassLabel(names=['dark', 'mid', 'light']),
        }),
        supervised_keys=('picture', 'kind'), disable_shuffling=True)

  def _split_generators(self, dl_manager):
    return {'train': self._generate_examples('train', 30),
            'validation': self._generate_examples('validation', 9)}

  def _generate_examples(self, split, n):
    for i, (x, y) in enumerate(zip(*_images(split, n))):
      yield i, {'picture': x, 'kind': int(y)}


class SvpTestSayings(tfds.core.GeneratorBasedBuilder):
  """Two classes of short texts; splits train, test."""
  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeaturesDict({
            'text': tfds.features.Text(),
            'label': tfds.features.ClassLabel(names=['sad', 'happy']),
        }),
        supervised_keys=('text', 'label'), disable_shuffling=True)

  def _split_generators(self, dl_manager):
    return {'train': self._generate_examples(20),
            'test': self._generate_examples(6)}

  def _generate_examples(self, n):
    for i in range(n):
      yield i, {'text': ('so sad', 'so happy')[i % 2] + f' {i}',
                'label': i % 2}


class SvpTestNoLabels(tfds.core.GeneratorBasedBuilder):
  """Not a classification dataset: no supervised keys."""
  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
        {'value': tfds.features.Tensor(shape=(), dtype=np.float32)}))

  def _split_generators(self, dl_manager):
    return {'train': self._generate_examples()}

  def _generate_examples(self):
    yield 0, {'value': 1.0}
'''


@pytest.fixture(scope='module')
def builders(tmp_path_factory):
  """Registers the test builders with TFDS (a package on sys.path)."""
  root = tmp_path_factory.mktemp('builders')
  package = root / 'svp_test_builders'
  package.mkdir()
  (package / '__init__.py').write_text(textwrap.dedent(BUILDERS))
  sys.path.insert(0, str(root))
  try:
    yield importlib.import_module('svp_test_builders')
  finally:
    sys.path.remove(str(root))


def test_images_by_name_facts_from_the_builder(builders, tmp_path):
  del builders
  info = data.dataset_info('svp_test_shapes', data_dir=str(tmp_path),
                           test_split='validation')
  assert info.num_classes == 3 and info.class_names == ('dark', 'mid',
                                                        'light')
  assert info.image_shape == (6, 6, 3) and info.modality == 'image'
  assert (info.train_split, info.test_split) == ('train', 'validation')
  images, labels = data.load_split('svp_test_shapes', 'train',
                                   data_dir=str(tmp_path),
                                   test_split='validation')
  assert images.shape == (30, 6, 6, 3) and labels.tolist()[:4] == [0, 1, 2, 0]
  # Statistics from the training images, cached beside the data.
  pixels = images.reshape(-1, 3) / 255.0
  np.testing.assert_allclose(info.mean, pixels.mean(0), rtol=1e-6)
  np.testing.assert_allclose(info.std, pixels.std(0), rtol=1e-5)
  cached = [f for _, _, names in os.walk(tmp_path) for f in names
            if f == tfds_catalog.STATISTICS_FILE]
  assert cached == [tfds_catalog.STATISTICS_FILE]
  streamed, _ = data.load_split('svp_test_shapes', 'validation',
                                data_dir=str(tmp_path), in_memory=False,
                                test_split='validation')
  whole, _ = data.load_split('svp_test_shapes', 'validation',
                             data_dir=str(tmp_path), test_split='validation')
  np.testing.assert_array_equal(streamed[np.arange(9)], whole)


def test_a_missing_split_names_the_splits(builders, tmp_path):
  del builders
  with pytest.raises(data.DataError,
                     match=r"no split 'test' \(splits: \['train', "
                           r"'validation'\]\); set config.data.test_split"):
    data.dataset_info('svp_test_shapes', data_dir=str(tmp_path))


def test_texts_by_name(builders, tmp_path):
  del builders
  info = data.dataset_info('svp_test_sayings', data_dir=str(tmp_path))
  assert info.modality == 'text' and info.class_names == ('sad', 'happy')
  documents, labels = data.load_split('svp_test_sayings', 'test',
                                      data_dir=str(tmp_path))
  assert documents[1] == 'so happy 1' and labels.tolist() == [0, 1] * 3


def test_not_a_classification_dataset(builders, tmp_path):
  del builders
  with pytest.raises(data.DataError, match='not a classification dataset'):
    data.dataset_info('svp_test_no_labels', data_dir=str(tmp_path))


def test_unknown_names_are_still_refused():
  with pytest.raises(ValueError, match="'no_such_dataset_anywhere'"):
    data.dataset_info('no_such_dataset_anywhere')
  assert data.registry.known_dataset('mnist')
  assert not data.registry.known_dataset('no_such_dataset_anywhere')


def test_a_simulated_run_on_a_tfds_dataset(builders, tmp_path):
  del builders
  config = fashion_mnist_svp.get_config('quick')
  config.data.name = 'svp_test_shapes'
  config.data.data_dir = str(tmp_path)
  config.data.test_split = 'validation'
  config.selection.initial_subset = 6.0
  config.selection.rounds = (6.0,)
  job = experiment.load_job(config, str(tmp_path / 'run'),
                            {'target': config.target})
  assert job.info.num_classes == 3 and len(job.test[1]) == 9


def test_an_unreachable_download_fails_at_once(tmp_path, monkeypatch):
  builder_cls = tfds_util.tfds().builder_cls('mnist')
  assert tfds_util.download_hosts(builder_cls)
  monkeypatch.setattr(tfds_util, 'reachable', lambda host: False)
  with pytest.raises(data.DataError, match='cannot be reached'):
    data.dataset_info('mnist', data_dir=str(tmp_path))
  with pytest.raises(data.DataError, match='downloading is off'):
    data.dataset_info('mnist', data_dir=str(tmp_path), download=False)


def test_a_reachable_download_prepares_without_a_flag(tmp_path, monkeypatch):
  prepared = []
  monkeypatch.setattr(tfds_util, 'reachable', lambda host: True)
  monkeypatch.setattr(tfds_util, 'require_tensorflow', lambda *a: None)

  def prepare(builder, manual_dir):
    del manual_dir
    prepared.append(builder.info.full_name)
    raise data.DataError('stop here: nothing is downloaded in tests')

  monkeypatch.setattr(tfds_util, 'prepare', prepare)
  with pytest.raises(data.DataError, match='stop here'):
    data.dataset_info('mnist', data_dir=str(tmp_path))  # download='auto'.
  assert prepared == ['mnist/3.0.1']
