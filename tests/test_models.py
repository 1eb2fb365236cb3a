"""Architecture facts: exact parameter counts, shapes, init, BatchNorm masking."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svp_jax import models

# REFERENCE.md: trainable parameters of the PyTorch reference.
REFERENCE_PARAMS = {
    ('preact20', 10): 272_282, ('preact20', 100): 278_132,
    ('preact56', 10): 855_578, ('preact56', 100): 861_428,
    ('preact110', 10): 1_730_522, ('preact110', 100): 1_736_372,
    ('preact164', 10): 1_703_258, ('preact164', 100): 1_726_388,
}


def abstract_variables(model, shape):
  return jax.eval_shape(
      lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False))


@pytest.mark.parametrize('name,classes', sorted(REFERENCE_PARAMS))
def test_parameter_counts_match_reference(name, classes):
  variables = abstract_variables(models.create_model(name, classes),
                                 (1, 32, 32, 3))
  assert models.count_params(variables['params']) == REFERENCE_PARAMS[
      (name, classes)]


@pytest.mark.parametrize('name', models.MODEL_NAMES)
@pytest.mark.parametrize('shape', [(2, 32, 32, 3), (3, 28, 28, 1)])
def test_forward_shapes_any_input(name, shape):
  model = models.create_model(name, 7)
  variables = abstract_variables(model, shape)
  logits, features = jax.eval_shape(
      lambda v: model.apply(v, jnp.zeros(shape), train=False), variables)
  assert logits.shape == (shape[0], 7)
  assert features.shape == (shape[0], models.feature_dim(name))


def test_unknown_model_name_is_a_clear_error():
  with pytest.raises(ValueError, match=r"model.name='resnet9000'.*preact20"):
    models.create_model('resnet9000', 10)


def test_init_matches_pytorch_defaults():
  model = models.create_model('preact20', 10)
  params = model.init(jax.random.key(1), jnp.zeros((1, 32, 32, 3)),
                      train=False)['params']
  # Kaiming normal, fan_out: std = sqrt(2 / (k*k*out_channels)).
  last_conv = params['PreActBasicBlock_8']['Conv_1']['kernel']
  assert last_conv.shape == (3, 3, 64, 64)
  assert np.std(last_conv) == pytest.approx(np.sqrt(2 / (9 * 64)), rel=0.05)
  # Linear: uniform(+-1/sqrt(fan_in)) for kernel and bias.
  dense = params['TorchDense_0']['Dense_0']
  bound = 1 / np.sqrt(64)
  assert np.abs(dense['kernel']).max() <= bound
  assert np.abs(dense['kernel']).max() > 0.9 * bound
  assert np.abs(dense['bias']).max() <= bound
  assert np.any(dense['bias'] != 0)
  bn = params['MaskedBatchNorm_0']['BatchNorm_0']
  np.testing.assert_array_equal(bn['scale'], 1.0)
  np.testing.assert_array_equal(bn['bias'], 0.0)


def test_masked_batchnorm_ignores_padding():
  """A padded batch trains exactly like the unpadded one (stats and output)."""
  model = models.create_model('preact8', 10)
  x = jax.random.normal(jax.random.key(2), (5, 16, 16, 3))
  variables = model.init(jax.random.key(3), x, train=False)
  padded = jnp.concatenate([x, 100 * jnp.ones((3, 16, 16, 3))])
  mask = jnp.array([1, 1, 1, 1, 1, 0, 0, 0], jnp.float32)
  (logits, _), stats = model.apply(variables, x, train=True,
                                   mutable=['batch_stats'])
  (padded_logits, _), padded_stats = model.apply(
      variables, padded, train=True, mask=mask, mutable=['batch_stats'])
  np.testing.assert_allclose(padded_logits[:5], logits, rtol=1e-4, atol=1e-4)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4,
                                                       atol=1e-5),
               padded_stats, stats)
