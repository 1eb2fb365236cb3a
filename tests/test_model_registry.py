"""The model registry: every built-in model is one entry, and a model
registered from outside the library runs in an active round."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svp_jax import active
from svp_jax import model_registry
from svp_jax import models
from svp_jax import text_models
from svp_jax import train
from svp_jax import validation
from svp_jax.model_spec import IntOption
from svp_jax.model_spec import ModelSpec
import test_active  # Its tiny config (tests/ is on the path under pytest).


def test_builtins_are_their_modules_models_by_modality():
  assert model_registry.names('image') == models.MODEL_NAMES
  assert model_registry.names('text') == text_models.TEXT_MODEL_NAMES
  assert model_registry.names() == (models.MODEL_NAMES +
                                    text_models.TEXT_MODEL_NAMES)


def test_unknown_or_repeated_names_are_one_clear_error():
  with pytest.raises(ValueError, match=r"model 'resnet9000' is not "
                     r"registered: expected one of \('preact8', 'preact20', "):
    model_registry.get('resnet9000')
  with pytest.raises(ValueError, match="'preact8' is already registered"):
    model_registry.register(model_registry.get('preact8'))
  with pytest.raises(ValueError, match=r"modality='audio', expected one of"):
    ModelSpec('x', 'audio', nn.Dense, lambda *a: None, lambda s: 1)


@pytest.mark.parametrize('name', model_registry.names())
def test_a_spec_says_how_its_model_trains_and_how_wide_its_features_are(
    name):
  spec = model_registry.get(name)
  model = model_registry.create_default(name, 3)
  assert isinstance(model, spec.module)
  # Validation reads the hooks from the spec's class, building nothing.
  assert train.hooks_for(spec.module) is train.hooks_for(model)
  assert (train.hooks_for(model) is text_models.FASTTEXT_HOOKS) == (
      name == 'fasttext')
  shape, dtype = (((2, 32, 32, 3), jnp.float32) if spec.modality == 'image'
                  else ((2, text_models.MIN_DOCUMENT_LENGTH), jnp.int32))
  logits, features = jax.eval_shape(
      lambda: model.init_with_output(jax.random.key(0), jnp.zeros(shape, dtype),
                                     train=False)[0])
  assert logits.shape == (2, 3)
  assert features.shape == (2, spec.feature_dim({'name': name}))


def test_options_default_and_are_checked_from_the_spec():
  fasttext = model_registry.get('fasttext')
  assert fasttext.option({'name': 'fasttext'}, 'num_buckets') == 10_000_000
  assert model_registry.create_default('fasttext', 2).num_buckets == (
      10_000_000)
  with pytest.raises(KeyError, match="no option 'document_length'"):
    fasttext.option({}, 'document_length')
  config = test_active.tiny_config('')
  config.data.name = 'rotten_tomatoes'
  for role in ('selector', 'target'):
    config[role].model.name = 'vdcnn9-maxpool'
    config[role].train.augment = False
  config.selector.model.document_length = 63
  with pytest.raises(validation.ConfigError, match=(
      r'config.selector.model.document_length=63 is not allowed: expected '
      r'an integer >= 64')):
    validation.validate_active_config(config)


# ----------------------------------------------------------------------------
# A model registered here: one linear layer over the pixels, features
# `width` wide, trained by the default dense SGD.


class _TinyLinear(nn.Module):
  num_classes: int
  width: int

  @nn.compact
  def __call__(self, images, train, mask=None):
    del train, mask  # No BatchNorm or dropout.
    features = nn.relu(nn.Dense(self.width)(images.reshape(len(images), -1)))
    return nn.Dense(self.num_classes)(features), features


_WIDTH = IntOption('width', 8, 1)
TINY = ModelSpec(
    name='tiny_linear', modality='image', module=_TinyLinear,
    create=lambda section, num_classes, conv: _TinyLinear(
        num_classes, _WIDTH.value(section)),
    feature_dim=_WIDTH.value, options=(_WIDTH,))


@pytest.fixture
def tiny():
  spec = model_registry.register(TINY)
  yield spec
  model_registry.unregister(spec.name)


def test_a_model_registered_here_runs_an_active_round(
    fashion_mnist_dir, tmp_path, tiny):
  config = test_active.tiny_config(fashion_mnist_dir, method='kcenters',
                                   rounds=(50.0,), train_target=False)
  for role in ('selector', 'target'):
    config[role].model.name = tiny.name
  config.selector.model.width = 0
  with pytest.raises(validation.ConfigError, match=(
      r'config.selector.model.width=0 is not allowed: expected an integer '
      r'>= 1')):
    validation.validate_active_config(config)  # Its own option, checked.
  config.selector.model.width = 5
  validation.validate_active_config(config)  # Accepted by name.
  summary = active.run(config, str(tmp_path))
  assert summary['complete'] and summary['selector'] == 'tiny_linear'
  initial = np.loadtxt(tmp_path / 'initial_subset_50.index', dtype=np.int64)
  labeled = np.loadtxt(tmp_path / 'proxy' / '100' / 'labeled_100.index',
                       dtype=np.int64)
  # k-centers, from its features, added 50 new points to the initial 50.
  assert len(set(labeled)) == 100 and set(initial) <= set(labeled)
