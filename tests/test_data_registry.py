"""The dataset registry: a family registered from outside the library.

`TINY` lives only in this file: a family backed by in-memory NumPy arrays,
registered with one `data.register` call and then used through the same
public API as the built-in datasets (facts, loading, config validation, a
training job). No library file names it, which is the point: adding a
dataset is one registration.
"""

import dataclasses

import numpy as np
import pytest

from configs import common
from svp_jax import data
from svp_jax import validation

NAME = 'tiny_squares'
SHAPE = (8, 8, 3)
NUM_CLASSES = 2
SPLIT_SIZES = {'train': 32, 'test': 16}
BUILT_IN = ('cifar10', 'cifar100', 'fashion_mnist', 'imagenet2012',
            'amazon_review_polarity', 'amazon_review_full', 'rotten_tomatoes',
            'files')


def tiny_split(split):
  """Bright images are class 1, dark ones class 0; fixed per split."""
  rng = np.random.default_rng(SPLIT_SIZES[split])
  labels = np.arange(SPLIT_SIZES[split], dtype=np.int32) % NUM_CLASSES
  images = rng.integers(0, 100, (len(labels), *SHAPE), dtype=np.uint8)
  return images + (labels * 150).astype(np.uint8)[:, None, None, None], labels


TINY_INFO = data.DatasetInfo(
    name=NAME, num_classes=NUM_CLASSES, image_shape=SHAPE,
    mean=(0.5, 0.5, 0.5), std=(0.3, 0.3, 0.3),
    train_split='train', test_split='test')


@pytest.fixture
def tiny():
  """Registers the tiny family for one test; yields the options it saw."""
  seen = []

  def load(info, split, options):
    seen.append((info, split, options))
    return tiny_split(split)

  data.register(data.DatasetFamily(name='tiny', infos=(TINY_INFO,),
                                   load=load))
  try:
    yield seen
  finally:
    data.unregister('tiny')


def test_registered_family_is_found_by_name(tiny):
  del tiny
  assert data.dataset_info(NAME) is TINY_INFO
  assert data.supported_datasets() == (*BUILT_IN, NAME)
  assert data.SUPPORTED_DATASETS == (*BUILT_IN, NAME)


def test_load_split_goes_through_the_family(tiny):
  images, labels = data.load_split(NAME, 'test', data_dir='/unused',
                                   in_memory=False)
  want_images, want_labels = tiny_split('test')
  np.testing.assert_array_equal(images, want_images)
  np.testing.assert_array_equal(labels, want_labels)
  assert tiny == [(TINY_INFO, 'test', data.LoadOptions(
      data_dir='/unused', in_memory=False))]
  # The registry checks the split before the family is asked.
  with pytest.raises(ValueError, match=r"'validation'.*'train', 'test'"):
    data.load_split(NAME, 'validation')
  assert len(tiny) == 1


def test_load_configured_split_passes_the_config_and_limit(tiny):
  config = common.data_config(NAME)
  config.manual_dir = '/manual'
  images, labels = data.load_configured_split(config, 'train', limit=5)
  np.testing.assert_array_equal(images, tiny_split('train')[0][:5])
  np.testing.assert_array_equal(labels, tiny_split('train')[1][:5])
  # '' in the config means the default place: None for the family.
  ((_, _, options),) = tiny
  assert options == data.LoadOptions(data_dir=None, manual_dir='/manual',
                                     download='auto', in_memory=True)


def test_config_validation_takes_names_from_the_registry(tiny):
  del tiny
  config = common.base_config(NAME, 'preact8', ((1, 0.1),))
  validation.validate_train_config(config)


def test_unregistered_family_is_gone():
  with pytest.raises(ValueError) as error:
    data.dataset_info(NAME)
  # Same words as for any unknown name, listing what is registered.
  assert str(error.value) == (
      f'config.data.name={NAME!r} is not supported: expected one of '
      f'{BUILT_IN} or the name of a TFDS classification dataset')
  with pytest.raises(validation.ConfigError, match=NAME):
    validation.check_data(common.data_config(NAME))


def test_names_and_families_cannot_be_registered_twice(tiny):
  del tiny
  clash = data.DatasetFamily(name='other', infos=(
      dataclasses.replace(TINY_INFO, name='cifar10'),), load=None)
  with pytest.raises(ValueError, match=r"'other'.*\['cifar10'\]"):
    data.register(clash)
  with pytest.raises(ValueError, match="'tiny'"):
    data.register(data.DatasetFamily(name='tiny', infos=(), load=None))
  assert data.supported_datasets() == (*BUILT_IN, NAME)


@pytest.mark.slow  # About 20 s, mostly compiling a ResNet on the CPU.
def test_a_training_job_runs_on_the_registered_family(tiny, tmp_path):
  # pylint: disable-next=g-import-not-at-top
  from svp_jax import train_job  # Imports the models: only for this test.
  config = common.base_config(NAME, 'preact8', ((2, 0.05),), batch_size=16)
  config.train.eval_batch_size = 16
  summary = train_job.run(config, str(tmp_path))
  assert summary['dataset'] == NAME
  assert (summary['train_examples'], summary['test_examples']) == (32, 16)
  assert [split for _, split, _ in tiny] == ['train', 'test']
