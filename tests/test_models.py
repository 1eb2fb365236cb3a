"""Architecture facts: exact parameter counts, shapes, init, BatchNorm masking."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svp_jax import models
from svp_jax import runtime

# docs/reference.md: trainable parameters of the PyTorch reference.
REFERENCE_PARAMS = {
    ('preact20', 10): 272_282, ('preact20', 100): 278_132,
    ('preact56', 10): 855_578, ('preact56', 100): 861_428,
    ('preact110', 10): 1_730_522, ('preact110', 100): 1_736_372,
    ('preact164', 10): 1_703_258, ('preact164', 100): 1_726_388,
    # torchvision's resnet18 and resnet50 (v1.5).
    ('resnet18', 1000): 11_689_512, ('resnet50', 1000): 25_557_032,
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


@pytest.mark.parametrize('name', ['preact164', 'resnet18'])
def test_convolution_choice_keeps_variables_and_paths(name):
  # Checkpoints and the pinned counts above hold whichever convolution runs.
  def variables(mode):
    model = models.create_model(name, 10, runtime.convolution(mode))
    return jax.tree.map(jnp.shape, abstract_variables(model, (1, 32, 32, 3)))

  # auto: oneDNN where it builds (onednn would fail where it does not).
  assert variables('auto') == variables('xla')


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


@functools.cache
def imagenet_model_and_variables(name):
  """A 1000-class ImageNet ResNet and real initial variables, shared by tests.

  Compiling the init of an ImageNet ResNet takes seconds on CPU, so do it once.
  """
  model = models.create_model(name, 1000)
  init = jax.jit(model.init, static_argnames='train')
  return model, init(jax.random.key(6), jnp.zeros((1, 64, 64, 3)),
                     train=False)


def test_imagenet_resnets_init_like_torchvision():
  _, variables = imagenet_model_and_variables('resnet18')
  params = variables['params']
  stem = params['Conv_0']['kernel']
  assert stem.shape == (7, 7, 3, 64)
  assert np.std(stem) == pytest.approx(np.sqrt(2 / (49 * 64)), rel=0.05)
  # zero_init_residual=False: every BatchNorm, the last of each block
  # included, starts at scale 1 and bias 0.
  bns = {jax.tree_util.keystr(path): leaf for path, leaf in
         jax.tree_util.tree_leaves_with_path(params)
         if 'BatchNorm' in jax.tree_util.keystr(path)}
  assert len(bns) == 2 * (1 + 2 * 8 + 3)  # Stem, 8 blocks, 3 projections.
  for path, leaf in bns.items():
    np.testing.assert_array_equal(leaf, 1.0 if "'scale'" in path else 0.0)
  dense = params['TorchDense_0']['Dense_0']
  assert dense['kernel'].shape == (512, 1000)
  bound = 1 / np.sqrt(512)
  assert bound * 0.9 < np.abs(dense['kernel']).max() <= bound
  assert 0 < np.abs(dense['bias']).max() <= bound


def test_imagenet_stem_and_v1_5_strides():
  """64x64 -> 32 (7x7/2 conv) -> 16 (3x3/2 max-pool, padding 1); stage 2
  of resnet50 strides in the bottleneck's 3x3 conv and its shortcut."""
  model = models.create_model('resnet50', 10)
  x = jnp.zeros((1, 64, 64, 3))
  variables = abstract_variables(model, x.shape)
  _, state = jax.eval_shape(
      lambda v: model.apply(v, x, train=False,
                            capture_intermediates=True), variables)
  inter = state['intermediates']
  assert inter['Conv_0']['__call__'][0].shape == (1, 32, 32, 64)
  first = inter['Bottleneck_0']
  assert first['Conv_0']['__call__'][0].shape == (1, 16, 16, 64)
  assert first['__call__'][0].shape == (1, 16, 16, 256)
  down = inter['Bottleneck_3']  # First block of the second stage.
  assert down['Conv_0']['__call__'][0].shape == (1, 16, 16, 128)  # 1x1.
  assert down['Conv_1']['__call__'][0].shape == (1, 8, 8, 128)  # 3x3/2.
  assert down['Conv_2']['__call__'][0].shape == (1, 8, 8, 512)
  assert down['Conv_3']['__call__'][0].shape == (1, 8, 8, 512)  # Shortcut.
  assert variables['params']['Bottleneck_3']['Conv_1']['kernel'].shape == (
      3, 3, 128, 128)


def masked_loss_and_grads(model, variables, images, labels, mask):
  """Mean cross-entropy over the real rows; returns (logits, features, new
  batch stats) and the parameter gradients."""

  def loss_fn(params):
    (logits, features), state = model.apply(
        {**variables, 'params': params}, images, train=True, mask=mask,
        mutable=['batch_stats'])
    weights = jnp.ones(len(images)) if mask is None else mask
    losses = -jnp.take_along_axis(jax.nn.log_softmax(logits),
                                  labels[:, None], axis=1)[:, 0]
    loss = jnp.sum(weights * losses) / jnp.sum(weights)
    return loss, (logits, features, state['batch_stats'])

  return jax.grad(loss_fn, has_aux=True)(variables['params'])


@pytest.mark.parametrize('name', [
    'resnet18', pytest.param('resnet50', marks=pytest.mark.slow)])
def test_imagenet_resnet_train_step_ignores_padding(name):
  """Forward and backward at 64x64: shapes, feature width, and a padded batch
  gives the same outputs, batch statistics and gradients as the real rows.

  In float64: with 3 real rows, BatchNorm over 2x2 maps in the last stage is
  so ill-conditioned that float32 rounding alone moves resnet50's gradients by
  about 1%; in float64 the two agree to ~1e-11, so padding really has no effect.
  """
  model, variables = imagenet_model_and_variables(name)
  step = jax.jit(masked_loss_and_grads, static_argnums=0)
  with jax.enable_x64(True):
    x = jax.random.normal(jax.random.key(5), (3, 64, 64, 3), jnp.float64)
    labels = jnp.array([1, 4, 999])
    variables = jax.tree.map(lambda v: v.astype(jnp.float64), variables)
    padded = jnp.concatenate([x, 100 * jnp.ones((2, 64, 64, 3))])
    padded_labels = jnp.concatenate([labels, jnp.zeros(2, labels.dtype)])
    mask = jnp.array([1, 1, 1, 0, 0], jnp.float64)
    # To NumPy inside the context: float64 JAX arrays outside it warn.
    grads, (logits, features, stats) = jax.device_get(
        step(model, variables, x, labels, None))
    padded_grads, (padded_logits, padded_features, padded_stats) = (
        jax.device_get(step(model, variables, padded, padded_labels, mask)))
  assert padded_logits.shape == (5, 1000)
  assert padded_features.shape == (5, models.feature_dim(name))
  assert padded_features.dtype == np.float64
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
  close(padded_logits[:3], logits)
  close(padded_features[:3], features)
  jax.tree.map(close, padded_stats, stats)
  assert jax.tree.structure(padded_grads) == jax.tree.structure(
      variables['params'])
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(padded_grads))
  assert all(np.any(g != 0) for g in jax.tree.leaves(padded_grads))
  jax.tree.map(close, padded_grads, grads)


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


@pytest.mark.parametrize('shape', [(6, 5, 5, 4), (6, 7, 4)])
@pytest.mark.parametrize('masked', [False, True])
@pytest.mark.parametrize('train', [False, True])
def test_batchnorm_equals_flax_batchnorm(shape, masked, train):
  """Outputs, gradients and running statistics of nn.BatchNorm, same paths."""
  x = 3 * jax.random.normal(jax.random.key(0), shape) + 1
  mask = jnp.array([1, 0, 1, 1, 0, 1], jnp.float32) if masked else None
  ours = models.MaskedBatchNorm(train)
  variables = ours.init(jax.random.key(1), x, mask)
  theirs = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                        epsilon=1e-5)
  assert jax.tree.map(jnp.shape, variables['params']['BatchNorm_0']) == (
      jax.tree.map(jnp.shape, theirs.init(jax.random.key(1), x)['params']))
  # Statistics away from their initial values, so that eval uses them.
  variables = jax.tree.map(lambda v: v + 0.5, variables)
  full_mask = None if mask is None else jnp.broadcast_to(
      mask.astype(bool).reshape((-1,) + (1,) * (x.ndim - 1)), x.shape)
  cotangent = jax.random.normal(jax.random.key(2), shape)

  def loss(fn, params, x):
    y, updates = fn(params, x)
    return jnp.sum(y * cotangent), updates

  def apply_ours(params, x):
    return ours.apply({'params': params,
                       'batch_stats': variables['batch_stats']}, x, mask,
                      mutable=['batch_stats'])

  def apply_theirs(params, x):
    y, updates = theirs.apply(
        {'params': params['BatchNorm_0'],
         'batch_stats': variables['batch_stats']['BatchNorm_0']},
        x, mask=full_mask, mutable=['batch_stats'])
    return y, {'batch_stats': {'BatchNorm_0': updates['batch_stats']}}

  results = [jax.value_and_grad(functools.partial(loss, fn), (0, 1),
                                has_aux=True)(variables['params'], x)
             for fn in (apply_ours, apply_theirs)]
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=2e-5,
                                 atol=2e-5), *results)


@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('cpu_conv_mode', ['auto', 'xla'])
def test_pointwise_conv_equals_the_convolution(stride, cpu_conv_mode):
  # 1x1 convs run through oneDNN on the CPU (auto), else as a dot (faster
  # than XLA:CPU's convolution); values and gradients must be those of the
  # convolution.
  x = jax.random.normal(jax.random.key(0), (3, 6, 6, 5))
  layer = models.conv(7, 1, stride, runtime.convolution(cpu_conv_mode))
  params = layer.init(jax.random.key(1), x)

  def by_conv(x, kernel):
    return jax.lax.conv_general_dilated(
        x, kernel, (stride, stride), [(0, 0), (0, 0)],
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))

  def by_layer(x, kernel):
    return layer.apply({'params': {'kernel': kernel}}, x)

  kernel = params['params']['kernel']
  assert kernel.shape == (1, 1, 5, 7)
  np.testing.assert_allclose(by_layer(x, kernel), by_conv(x, kernel),
                             rtol=1e-5, atol=1e-5)
  loss = lambda f: lambda x, k: jnp.sum(jnp.sin(f(x, k)))
  for got, want in zip(jax.grad(loss(by_layer), (0, 1))(x, kernel),
                       jax.grad(loss(by_conv), (0, 1))(x, kernel)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_pointwise_conv_rejects_other_windows():
  with pytest.raises(ValueError, match='1x1 window'):
    models.pointwise_conv(jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 2)),
                          (1, 1), [(1, 1), (1, 1)])
