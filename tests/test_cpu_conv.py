"""oneDNN convolutions on the CPU (svp_jax/cpu/conv.py) against lax's own.

Values and both gradients for the geometries the models use (3x3 and 1x1
with stride 1 and 2, the ImageNet 7x7 stem, uneven padding), on 1 device and
with the batch split over 8 simulated devices; the compiled program really
calls the kernels, keeps the batch split, and the fallbacks go to lax.

Tests that need the kernels skip where the machine has no C++ compiler or no
oneDNN, and fail instead if oneDNN was asked for (SVP_JAX_CPU_CONV=onednn) or
the build itself is broken.
"""

import platform
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svp_jax import models
from svp_jax import runtime
from svp_jax import sharding
from svp_jax.cpu import conv as cpu_conv

pytestmark = pytest.mark.skipif(
    platform.machine() != 'x86_64' or sys.platform != 'linux',
    reason='the oneDNN wheel in requirements.txt is x86-64 Linux only')

NHWC_HWIO = ('NHWC', 'HWIO', 'NHWC')
GEOMETRIES = [
    # input, kernel, strides, padding
    ((16, 9, 9, 3), (3, 3, 3, 8), (1, 1), ((1, 1), (1, 1))),
    ((16, 10, 10, 4), (3, 3, 4, 6), (2, 2), ((1, 1), (1, 1))),
    ((8, 12, 12, 3), (7, 7, 3, 5), (2, 2), ((3, 3), (3, 3))),
    ((8, 8, 8, 4), (3, 3, 4, 4), (1, 2), ((0, 1), (2, 0))),
    ((8, 8, 8, 16), (1, 1, 16, 32), (1, 1), ((0, 0), (0, 0))),
    ((8, 8, 8, 16), (1, 1, 16, 8), (2, 2), ((0, 0), (0, 0))),
]


def loss_fn(conv, strides, padding):
  # sin() makes the output gradient vary per element.
  return lambda x, w: jnp.sum(jnp.sin(conv(
      x, w, strides, padding, dimension_numbers=NHWC_HWIO)))


def value_and_grads(conv, x, w, strides, padding):
  return jax.jit(jax.value_and_grad(loss_fn(conv, strides, padding),
                                    argnums=(0, 1)))(x, w)


def custom_call_targets(fn, *args):
  text = jax.jit(fn).lower(*args).compile().as_text()
  return [line.split('custom_call_target="')[1].split('"')[0]
          for line in text.splitlines() if 'custom_call_target="' in line]


def inputs(x_shape, w_shape):
  x = jax.random.normal(jax.random.key(0), x_shape)
  w = jax.random.normal(jax.random.key(1), w_shape) * 0.3
  return x, w


@pytest.fixture(scope='module')
def kernels():
  """The kernels are built and registered, or the test skips (or fails)."""
  error = cpu_conv.kernel_error()
  if error is None:
    return
  asked = runtime.conv_mode() == 'onednn'
  if asked or not isinstance(error, cpu_conv.MissingDependency):
    pytest.fail(f'oneDNN kernels unavailable{" but asked for" * asked}: '
                f'{error}')
  pytest.skip(f'oneDNN kernels cannot be built here: {error}')


@pytest.mark.usefixtures('kernels')
def test_kernels_build_and_are_used_on_cpu():
  assert cpu_conv.onednn_enabled()
  assert cpu_conv.build() == cpu_conv.build()  # cached, not rebuilt
  x, w = inputs(*GEOMETRIES[0][:2])
  grad = jax.grad(loss_fn(cpu_conv.conv_general_dilated, (1, 1),
                          ((1, 1), (1, 1))), argnums=(0, 1))
  assert sorted(custom_call_targets(grad, x, w)) == sorted(
      cpu_conv._TARGETS.values())


@pytest.mark.usefixtures('kernels')
@pytest.mark.parametrize('x_shape,w_shape,strides,padding', GEOMETRIES)
@pytest.mark.parametrize('devices', [1, 8])
def test_matches_lax_values_and_gradients(x_shape, w_shape, strides, padding,
                                          devices):
  x, w = inputs(x_shape, w_shape)
  mesh = sharding.make_mesh(jax.devices()[:devices])
  x = jax.device_put(x, sharding.data_sharded(mesh))
  w = jax.device_put(w, sharding.replicated(mesh))
  expected = value_and_grads(jax.lax.conv_general_dilated, x, w, strides,
                             padding)
  got = value_and_grads(cpu_conv.conv_general_dilated, x, w, strides, padding)
  for e, g in zip(jax.tree.leaves(expected), jax.tree.leaves(got)):
    np.testing.assert_allclose(g, e, rtol=2e-5,
                               atol=2e-5 * float(jnp.abs(e).max()))
  # The batch stays split: the input gradient comes back as x went in.
  assert got[1][0].sharding.is_equivalent_to(x.sharding, x.ndim)


@pytest.mark.usefixtures('kernels')
def test_sharded_batch_is_not_gathered():
  """Each device convolves its own examples; only the weight gradient is summed."""
  mesh = sharding.make_mesh()
  x, w = inputs((16, 8, 8, 4), (3, 3, 4, 4))
  x = jax.device_put(x, sharding.data_sharded(mesh))
  grad = jax.jit(jax.grad(loss_fn(cpu_conv.conv_general_dilated, (1, 1),
                                  ((1, 1), (1, 1))), argnums=(0, 1)))
  text = grad.lower(x, w).compile().as_text()
  assert 'all-gather' not in text
  # Per-device shapes: 16 examples over 8 devices.
  assert 'f32[2,8,8,4]{3,2,1,0} custom-call' in text
  # The weight gradient's sum over devices.
  assert re.search(r'= f32\[3,3,4,4\]\{[\d,]+\} all-reduce\(', text)


@pytest.mark.usefixtures('kernels')
def test_preact_training_gradients_match_lax():
  x = jax.random.normal(jax.random.key(0), (8, 32, 32, 3))
  variables = models.create_model('preact20', 10).init(
      jax.random.key(1), x, train=False)

  def grads(mode):
    model = models.create_model('preact20', 10, runtime.convolution(mode))

    def loss(params):
      (logits, _), _ = model.apply({**variables, 'params': params}, x,
                                   train=True, mutable=['batch_stats'])
      return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - logits[:, 0])
    return jax.jit(jax.grad(loss))(variables['params'])

  got = grads('onednn')
  expected = grads('xla')
  for e, g in zip(jax.tree.leaves(expected), jax.tree.leaves(got)):
    np.testing.assert_allclose(g, e, rtol=1e-3,
                               atol=1e-4 * float(jnp.abs(e).max()) + 1e-7)


@pytest.mark.parametrize('mode,calls_onednn', [('xla', False),
                                                ('auto', True)])
def test_environment_chooses_the_models_convolution(mode, calls_onednn,
                                                    monkeypatch, request):
  if calls_onednn:
    request.getfixturevalue('kernels')
  monkeypatch.setenv(runtime.CONV_ENV, mode)
  model = models.create_model(
      'preact8', 10, runtime.current().conv_general_dilated)
  x = jnp.zeros((2, 8, 8, 3))
  variables = model.init(jax.random.key(0), x, train=False)
  targets = custom_call_targets(
      lambda v, x: model.apply(v, x, train=False), variables, x)
  assert (cpu_conv.FORWARD_TARGET in targets) == calls_onednn


@pytest.mark.parametrize('kwargs,cast', [
    ({'rhs_dilation': (2, 2)}, jnp.float32),
    ({}, jnp.bfloat16),
    ({'padding': 'SAME'}, jnp.float32),
    ({'dimension_numbers': ('NCHW', 'OIHW', 'NCHW')}, jnp.float32),
])
def test_uncovered_convolutions_fall_back_to_lax(kwargs, cast):
  x, w = inputs((2, 8, 8, 8), (3, 3, 8, 8))
  if 'dimension_numbers' in kwargs:
    w = jnp.transpose(w, (3, 2, 0, 1))
  args = {'padding': ((1, 1), (1, 1)), 'dimension_numbers': NHWC_HWIO,
          **kwargs}
  fn = lambda x, w: cpu_conv.conv_general_dilated(x, w, (1, 1), **args)
  x, w = x.astype(cast), w.astype(cast)
  assert not custom_call_targets(fn, x, w)
  np.testing.assert_array_equal(
      jax.jit(fn)(x, w),
      jax.jit(lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), **args))(
          x, w))


def test_missing_compiler_is_a_missing_dependency(monkeypatch, tmp_path):
  monkeypatch.setenv('SVP_JAX_CACHE_DIR', str(tmp_path))  # nothing built here
  monkeypatch.setenv('CXX', str(tmp_path / 'no-such-compiler'))
  with pytest.raises(cpu_conv.MissingDependency, match='no-such-compiler'):
    cpu_conv.build()


def test_build_failure_falls_back_in_auto_and_stops_in_onednn(monkeypatch):
  monkeypatch.setattr(cpu_conv, 'kernel_error', lambda: (
      cpu_conv.MissingDependency('no C++ compiler found')))
  x, w = inputs(*GEOMETRIES[0][:2])

  def convolve(mode):
    fn = lambda x, w: runtime.convolution(mode)(
        x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=NHWC_HWIO)
    return custom_call_targets(fn, x, w)

  assert not convolve('auto')  # XLA's, with a warning
  with pytest.raises(cpu_conv.BuildError, match='no C\\+\\+ compiler'):
    convolve('onednn')
