"""ResNets in Flax Linen: pre-activation for CIFAR, standard for ImageNet.

The pre-activation ResNets for CIFAR-sized images (He et al. 2016) follow the
PyTorch SVP reference (see docs/reference.md), so parameter counts match
it exactly: preact20 has 272,282 trainable parameters for 10 classes,
preact164 1,703,258.

The ImageNet ResNets are torchvision's resnet18 and resnet50 (v1.5: the
bottleneck strides in its 3x3 conv, not the first 1x1), with torchvision's
default initialisation (kaiming-normal fan_out convs, BatchNorm scale 1 and
bias 0, no zero-init of the last BatchNorm of a block) and a 7x7/2 conv,
BatchNorm, ReLU, 3x3/2 max-pool stem; 11,689,512 and 25,557,032 trainable
parameters for 1000 classes.

Every model maps `(images, train, mask)` to `(logits, features)`, where
`features` is the input of the final linear layer (what greedy k-centers uses).
Each architecture is one entry of ARCHITECTURES, declared to the model
registry (svp_jax.model_registry) by its spec in SPECS.
`mask` marks the real examples of a padded batch so that BatchNorm statistics
ignore padding: the reference keeps the last partial batch of an epoch, and
padding it to a fixed shape must not change its statistics.

The convolutions are XLA's (1x1 ones as dots, see `pointwise_conv`) unless
the model is given `conv_general_dilated`: svp_jax.runtime gives the oneDNN
one of svp_jax.cpu.conv for runs on the CPU. The choice changes neither the
parameters nor their paths.
"""

from collections.abc import Callable, Sequence
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from svp_jax.model_spec import ModelSpec

# A drop-in for lax.conv_general_dilated that also takes a keyword
# `fallback`: the convolution the model would use itself, for whatever the
# drop-in does not compute (svp_jax.cpu.conv.conv_general_dilated is one).
ConvFn = Callable[..., jax.Array]

# PyTorch's kaiming_normal_(mode='fan_out') draws from an untruncated normal.
conv_init = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')


def torch_linear_init(fan_in: int) -> Callable[..., jax.Array]:
  """PyTorch's default nn.Linear init: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


class TorchDense(nn.Module):
  """A dense layer with PyTorch's default initialisation for kernel and bias."""

  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    init = torch_linear_init(x.shape[-1])
    return nn.Dense(self.features, kernel_init=init, bias_init=init)(x)


@jax.custom_vjp
def _weighted_moments(x: jax.Array, weights: jax.Array, count: jax.Array
                      ) -> tuple[jax.Array, jax.Array]:
  """Per-channel sum_i weights_i * x_i / count and the same of x^2.

  The sums run per example (over every axis but the first and last) and are
  then weighted, so that the forward reads x once per moment and never
  builds the weights at x's shape. `weights` and `count` get no gradient:
  they come from the mask.
  """
  spatial = tuple(range(1, x.ndim - 1))
  w = weights[:, None]
  return (jnp.sum(w * jnp.sum(x, spatial), 0) / count,
          jnp.sum(w * jnp.sum(jnp.square(x), spatial), 0) / count)


def _weighted_moments_fwd(x, weights, count):
  return _weighted_moments(x, weights, count), (x, weights, count)


def _weighted_moments_bwd(residuals, cotangents):
  x, weights, count = residuals
  d_mean, d_mean_of_squares = cotangents
  weights_like_x = jnp.broadcast_to(
      weights.reshape((-1,) + (1,) * (x.ndim - 1)), x.shape)
  if jax.default_backend() == 'cpu':
    # Built once at x's shape: fused into the elementwise gradient instead,
    # XLA:CPU's broadcast of a per-example value over H, W and C made that
    # fusion ~10x slower (preact164 training step 1.6 -> 2.4 s).
    weights_like_x = jax.lax.optimization_barrier(weights_like_x)
  dx = weights_like_x * (d_mean + 2 * x * d_mean_of_squares) / count
  return dx, None, None


_weighted_moments.defvjp(_weighted_moments_fwd, _weighted_moments_bwd)


def batch_norm_statistics(x: jax.Array, mask: jax.Array | None
                          ) -> tuple[jax.Array, jax.Array]:
  """Per-channel mean and biased variance over every axis but the last.

  Rows whose `mask` entry is zero (padding) are left out. The variance is
  E[x^2] - E[x]^2 clipped at zero, as nn.BatchNorm's default computes it;
  nn.BatchNorm's mask of x's full shape cost a pass of its own and selects
  in the gradient (docs/performance.md).
  """
  # At least float32, as nn.BatchNorm reduces (a no-op for our models).
  x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
  weights = (jnp.ones(x.shape[:1], x.dtype) if mask is None else
             mask.astype(bool).astype(x.dtype))
  count = jnp.sum(weights) * math.prod(x.shape[1:-1])
  mean, mean_of_squares = _weighted_moments(x, weights, count)
  return mean, jnp.maximum(0.0, mean_of_squares - jnp.square(mean))


@jax.custom_vjp
def _shift_and_scale(x: jax.Array, mean: jax.Array, a: jax.Array,
                     bias: jax.Array) -> jax.Array:
  return (x - mean) * a + bias


def _shift_and_scale_fwd(x, mean, a, bias):
  # Saves x, not x - mean: the backward recomputes it inside its reduction
  # instead of writing and reading an array of x's size.
  return _shift_and_scale(x, mean, a, bias), (x, mean, a)


def _shift_and_scale_bwd(residuals, dy):
  x, mean, a = residuals
  axes = tuple(range(x.ndim - 1))
  d_bias = jnp.sum(dy, axes)
  return (dy * a, -a * d_bias, jnp.sum(dy * (x - mean), axes), d_bias)


_shift_and_scale.defvjp(_shift_and_scale_fwd, _shift_and_scale_bwd)


def normalize(x: jax.Array, mean: jax.Array, var: jax.Array, scale: jax.Array,
              bias: jax.Array, epsilon: float) -> jax.Array:
  """(x - mean) / sqrt(var + epsilon) * scale + bias.

  Not x * a + (bias - mean * a), which XLA:CPU fused as well without help but
  which cancels where |mean| >> std: with XLA's own convolutions preact20's
  float32 gradients then differed from float64 ones by up to 5%
  (docs/performance.md). The written-out gradient keeps the passes as few.
  """
  return _shift_and_scale(x, mean, scale * jax.lax.rsqrt(var + epsilon), bias)


class BatchNorm(nn.Module):
  """nn.BatchNorm's variables and function, with a per-example mask.

  The reference's momentum 0.9 (PyTorch's 0.1) and epsilon 1e-5; the running
  variance is updated with the biased batch variance, as nn.BatchNorm does.
  Training normalises with the batch statistics of the rows `mask` keeps
  (all rows if it is None); under jit with a sharded batch XLA sums them
  across devices, so the statistics are those of the global batch.
  """

  train: bool
  momentum: float = 0.9
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | None) -> jax.Array:
    features = (x.shape[-1],)
    running_mean = self.variable('batch_stats', 'mean', jnp.zeros, features,
                                 jnp.float32)
    running_var = self.variable('batch_stats', 'var', jnp.ones, features,
                                jnp.float32)
    scale = self.param('scale', nn.initializers.ones, features, jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, features, jnp.float32)
    if not self.train:
      return normalize(x, running_mean.value, running_var.value, scale, bias,
                       self.epsilon)
    mean, var = batch_norm_statistics(x, mask)
    if not self.is_initializing():
      running_mean.value = (self.momentum * running_mean.value +
                            (1 - self.momentum) * mean)
      running_var.value = (self.momentum * running_var.value +
                           (1 - self.momentum) * var)
    return normalize(x, mean, var, scale, bias, self.epsilon)


class MaskedBatchNorm(nn.Module):
  """BatchNorm under the name that keeps nn.BatchNorm's variable paths.

  Parameters live at .../MaskedBatchNorm_k/BatchNorm_0/{scale,bias}, where
  they were when this wrapped nn.BatchNorm, so earlier checkpoints restore.
  """

  train: bool

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | None) -> jax.Array:
    return BatchNorm(self.train)(x, mask)


def pointwise_conv(lhs: jax.Array, rhs: jax.Array, window_strides, padding,
                   *, lhs_dilation=None, rhs_dilation=None,
                   dimension_numbers=None, feature_group_count: int = 1,
                   precision=None) -> jax.Array:
  """A 1x1 convolution (NHWC input, HWIO kernel) computed as a matrix product.

  Takes lax.conv_general_dilated's arguments, as flax's nn.Conv passes them.
  The same sums over input channels, but XLA:CPU runs a convolution with a
  1x1 window through its generic convolution kernel at 13-98 GFLOP/s, and
  the equivalent dot at 169-201 GFLOP/s on this benchmark machine
  (docs/performance.md); other backends compute the same product
  either way. Where a model is given svp_jax.cpu.conv's oneDNN kernels they
  are used instead (`conv`): training through the dot's gradients ran
  preact164 at 28 images/s, through oneDNN's at 66.
  """
  del dimension_numbers  # nn.Conv's only layout: NHWC input, HWIO kernel.
  if (rhs.shape[:2] != (1, 1) or any(p != (0, 0) for p in padding) or
      feature_group_count != 1 or
      any(d not in (None, (1, 1)) for d in (lhs_dilation, rhs_dilation))):
    raise ValueError('pointwise_conv takes a 1x1 window with no padding, '
                     f'dilation or groups; got kernel {rhs.shape}, padding '
                     f'{padding}')
  sh, sw = window_strides
  return jnp.einsum('bhwc,co->bhwo', lhs[:, ::sh, ::sw, :], rhs[0, 0],
                    precision=precision)


def conv(features: int, kernel: int, stride: int = 1,
         conv_general_dilated: ConvFn | None = None) -> nn.Conv:
  """A square convolution without bias, through `conv_general_dilated`.

  None: the model's own convolution, a dot for a 1x1 window.
  """
  own = pointwise_conv if kernel == 1 else jax.lax.conv_general_dilated
  chosen = (own if conv_general_dilated is None else
            functools.partial(conv_general_dilated, fallback=own))
  return nn.Conv(
      features, (kernel, kernel), strides=(stride, stride),
      padding=[(kernel // 2, kernel // 2)] * 2, use_bias=False,
      kernel_init=conv_init, conv_general_dilated=chosen)


class _Block(nn.Module):
  """What every residual block is given; `_conv` builds its convolutions."""

  planes: int
  stride: int
  train: bool
  conv_general_dilated: ConvFn | None = None

  def _conv(self, features: int, kernel: int, stride: int = 1) -> nn.Conv:
    return conv(features, kernel, stride, self.conv_general_dilated)


class PreActBasicBlock(_Block):
  """BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus shortcut; no ReLU after the add."""

  expansion = 1

  @nn.compact
  def __call__(self, x, mask):
    out = nn.relu(MaskedBatchNorm(self.train)(x, mask))
    # The projection shortcut sees the pre-activated input, as in the reference.
    needs_projection = self.stride != 1 or x.shape[-1] != self.planes
    shortcut = (self._conv(self.planes, 1, self.stride)(out)
                if needs_projection else x)
    out = self._conv(self.planes, 3, self.stride)(out)
    out = nn.relu(MaskedBatchNorm(self.train)(out, mask))
    out = self._conv(self.planes, 3)(out)
    return out + shortcut


class PreActBottleneck(_Block):
  """BN-ReLU-conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1 (x4) plus shortcut."""

  expansion = 4

  @nn.compact
  def __call__(self, x, mask):
    out_planes = self.planes * self.expansion
    out = nn.relu(MaskedBatchNorm(self.train)(x, mask))
    needs_projection = self.stride != 1 or x.shape[-1] != out_planes
    shortcut = (self._conv(out_planes, 1, self.stride)(out)
                if needs_projection else x)
    out = self._conv(self.planes, 1)(out)
    out = nn.relu(MaskedBatchNorm(self.train)(out, mask))
    out = self._conv(self.planes, 3, self.stride)(out)
    out = nn.relu(MaskedBatchNorm(self.train)(out, mask))
    out = self._conv(out_planes, 1)(out)
    return out + shortcut


def residual_stages(network: nn.Module, x: jax.Array, train: bool,
                    mask: jax.Array | None) -> jax.Array:
  """`network`'s stages of blocks; each stage but the first starts at stride 2.

  Called from a network's compact `__call__`, so the blocks are its children
  and keep their names (PreActBasicBlock_0, ...).
  """
  for stage, (planes, num_blocks) in enumerate(
      zip(network.stage_planes, network.blocks_per_stage)):
    for i in range(num_blocks):
      stride = 2 if stage > 0 and i == 0 else 1
      x = network.block(planes, stride, train,
                        network.conv_general_dilated)(x, mask)
  return x


class PreActResNet(nn.Module):
  """Three stages of 16/32/64 base filters, global average pool, linear."""

  block: Any
  blocks_per_stage: Sequence[int]
  num_classes: int
  stage_planes: Sequence[int] = (16, 32, 64)
  conv_general_dilated: ConvFn | None = None

  @nn.compact
  def __call__(self, images: jax.Array, train: bool,
               mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    x = conv(self.stage_planes[0], 3, 1, self.conv_general_dilated)(images)
    x = residual_stages(self, x, train, mask)
    x = nn.relu(MaskedBatchNorm(train)(x, mask))
    features = jnp.mean(x, axis=(1, 2))
    logits = TorchDense(self.num_classes)(features)
    return logits, features


def projection_shortcut(x: jax.Array, out_planes: int, stride: int,
                        train: bool, mask: jax.Array | None,
                        conv_fn: ConvFn | None) -> jax.Array:
  """Identity, or 1x1 conv + BN where the shape changes (torchvision).

  Called from inside a compact block, so its layers belong to that block.
  """
  if stride == 1 and x.shape[-1] == out_planes:
    return x
  return MaskedBatchNorm(train)(conv(out_planes, 1, stride, conv_fn)(x), mask)


class BasicBlock(_Block):
  """conv3x3-BN-ReLU-conv3x3-BN plus shortcut, then ReLU (torchvision)."""

  expansion = 1

  @nn.compact
  def __call__(self, x, mask):
    out = nn.relu(MaskedBatchNorm(self.train)(
        self._conv(self.planes, 3, self.stride)(x), mask))
    out = MaskedBatchNorm(self.train)(self._conv(self.planes, 3)(out), mask)
    return nn.relu(out + projection_shortcut(
        x, self.planes, self.stride, self.train, mask,
        self.conv_general_dilated))


class Bottleneck(_Block):
  """ResNet v1.5 bottleneck: conv1x1, conv3x3 (strided), conv1x1 (x4)."""

  expansion = 4

  @nn.compact
  def __call__(self, x, mask):
    out_planes = self.planes * self.expansion
    out = nn.relu(MaskedBatchNorm(self.train)(
        self._conv(self.planes, 1)(x), mask))
    # v1.5: the stride sits on the 3x3 conv, as in torchvision (v1 put it on
    # the first 1x1, which then skips three quarters of its input).
    out = nn.relu(MaskedBatchNorm(self.train)(
        self._conv(self.planes, 3, self.stride)(out), mask))
    out = MaskedBatchNorm(self.train)(self._conv(out_planes, 1)(out), mask)
    return nn.relu(out + projection_shortcut(
        x, out_planes, self.stride, self.train, mask,
        self.conv_general_dilated))


class ResNet(nn.Module):
  """ImageNet ResNet: 7x7/2 stem, 3x3/2 max-pool, four stages, linear."""

  block: Any
  blocks_per_stage: Sequence[int]
  num_classes: int
  stage_planes: Sequence[int] = (64, 128, 256, 512)
  conv_general_dilated: ConvFn | None = None

  @nn.compact
  def __call__(self, images: jax.Array, train: bool,
               mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    x = conv(self.stage_planes[0], 7, 2, self.conv_general_dilated)(images)
    x = nn.relu(MaskedBatchNorm(train)(x, mask))
    # Flax pads max-pooling with -inf, like PyTorch's MaxPool2d(3, 2, 1).
    x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    x = residual_stages(self, x, train, mask)
    features = jnp.mean(x, axis=(1, 2))
    logits = TorchDense(self.num_classes)(features)
    return logits, features


# Name -> (network, block, blocks per stage). preact8 is a tiny variant for
# tests only; resnet18/resnet50 are the ImageNet proxy and target.
ARCHITECTURES = {
    'preact8': (PreActResNet, PreActBasicBlock, (1, 1, 1)),
    'preact20': (PreActResNet, PreActBasicBlock, (3, 3, 3)),
    'preact56': (PreActResNet, PreActBasicBlock, (9, 9, 9)),
    'preact110': (PreActResNet, PreActBasicBlock, (18, 18, 18)),
    'preact164': (PreActResNet, PreActBottleneck, (18, 18, 18)),
    'resnet18': (ResNet, BasicBlock, (2, 2, 2, 2)),
    'resnet50': (ResNet, Bottleneck, (3, 4, 6, 3)),
}
MODEL_NAMES = tuple(ARCHITECTURES)


def create_model(name: str, num_classes: int,
                 conv_general_dilated: ConvFn | None = None) -> nn.Module:
  """Returns the model registered under `name` (see MODEL_NAMES).

  `conv_general_dilated`: what its convolutions run through (see ConvFn);
  None: XLA's. svp_jax.runtime.current() says which this process uses.
  """
  if name not in ARCHITECTURES:
    raise ValueError(
        f'model.name={name!r} is not a known model; allowed: {MODEL_NAMES}')
  network, block, blocks = ARCHITECTURES[name]
  return network(block=block, blocks_per_stage=blocks,
                 num_classes=num_classes,
                 conv_general_dilated=conv_general_dilated)


def feature_dim(name: str) -> int:
  """Width of the penultimate feature vector of model `name`."""
  network, block, _ = ARCHITECTURES[name]
  return network.stage_planes[-1] * block.expansion


def _spec(name: str) -> ModelSpec:
  """The registry's entry of architecture `name`: pixels as loaded."""
  return ModelSpec(
      name=name, modality='image', module=ARCHITECTURES[name][0],
      create=lambda section, num_classes, conv_general_dilated: (
          create_model(name, num_classes, conv_general_dilated)),
      feature_dim=lambda section: feature_dim(name))


SPECS = tuple(_spec(name) for name in ARCHITECTURES)


def count_params(params: Any) -> int:
  """Number of trainable parameters (BatchNorm running statistics excluded)."""
  return sum(x.size for x in jax.tree_util.tree_leaves(params))
