"""Pre-activation ResNets for CIFAR-sized images (He et al. 2016), in Flax Linen.

The architectures, initialisation and BatchNorm settings follow the PyTorch SVP
reference (see ../shared/REFERENCE.md), so parameter counts match it exactly:
preact20 has 272,282 trainable parameters for 10 classes, preact164 1,703,258.

Every model maps `(images, train, mask)` to `(logits, features)`, where
`features` is the input of the final linear layer (what greedy k-centers uses).
`mask` marks the real examples of a padded batch so that BatchNorm statistics
ignore padding: the reference keeps the last partial batch of an epoch, and
padding it to a fixed shape must not change its statistics.
"""

from collections.abc import Callable, Sequence
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

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


class MaskedBatchNorm(nn.Module):
  """BatchNorm with the reference's momentum/epsilon that ignores padded rows."""

  train: bool

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | None) -> jax.Array:
    bn = nn.BatchNorm(
        use_running_average=not self.train, momentum=0.9, epsilon=1e-5)
    if mask is None or not self.train:
      return bn(x)
    # Flax wants a mask of x's full shape; broadcast the per-example flag.
    full_mask = jnp.broadcast_to(
        mask.reshape((-1,) + (1,) * (x.ndim - 1)).astype(bool), x.shape)
    return bn(x, mask=full_mask)


def conv(features: int, kernel: int, stride: int = 1) -> nn.Conv:
  return nn.Conv(
      features, (kernel, kernel), strides=(stride, stride),
      padding=[(kernel // 2, kernel // 2)] * 2, use_bias=False,
      kernel_init=conv_init)


class PreActBasicBlock(nn.Module):
  """BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus shortcut; no ReLU after the add."""

  planes: int
  stride: int
  train: bool
  expansion = 1

  @nn.compact
  def __call__(self, x, mask):
    out = nn.relu(MaskedBatchNorm(self.train)(x, mask))
    # The projection shortcut sees the pre-activated input, as in the reference.
    needs_projection = self.stride != 1 or x.shape[-1] != self.planes
    shortcut = conv(self.planes, 1, self.stride)(out) if needs_projection else x
    out = conv(self.planes, 3, self.stride)(out)
    out = nn.relu(MaskedBatchNorm(self.train)(out, mask))
    out = conv(self.planes, 3)(out)
    return out + shortcut


class PreActBottleneck(nn.Module):
  """BN-ReLU-conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1 (x4) plus shortcut."""

  planes: int
  stride: int
  train: bool
  expansion = 4

  @nn.compact
  def __call__(self, x, mask):
    out_planes = self.planes * self.expansion
    out = nn.relu(MaskedBatchNorm(self.train)(x, mask))
    needs_projection = self.stride != 1 or x.shape[-1] != out_planes
    shortcut = conv(out_planes, 1, self.stride)(out) if needs_projection else x
    out = conv(self.planes, 1)(out)
    out = nn.relu(MaskedBatchNorm(self.train)(out, mask))
    out = conv(self.planes, 3, self.stride)(out)
    out = nn.relu(MaskedBatchNorm(self.train)(out, mask))
    out = conv(out_planes, 1)(out)
    return out + shortcut


class PreActResNet(nn.Module):
  """Three stages of 16/32/64 base filters, global average pool, linear."""

  block: Any
  blocks_per_stage: Sequence[int]
  num_classes: int
  stage_planes: Sequence[int] = (16, 32, 64)

  @nn.compact
  def __call__(self, images: jax.Array, train: bool,
               mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    x = conv(self.stage_planes[0], 3)(images)
    for stage, (planes, num_blocks) in enumerate(
        zip(self.stage_planes, self.blocks_per_stage)):
      for i in range(num_blocks):
        stride = 2 if stage > 0 and i == 0 else 1
        x = self.block(planes, stride, train)(x, mask)
    x = nn.relu(MaskedBatchNorm(train)(x, mask))
    features = jnp.mean(x, axis=(1, 2))
    logits = TorchDense(self.num_classes)(features)
    return logits, features


# Name -> (block, blocks per stage). preact8 is a tiny variant for tests only.
ARCHITECTURES = {
    'preact8': (PreActBasicBlock, (1, 1, 1)),
    'preact20': (PreActBasicBlock, (3, 3, 3)),
    'preact56': (PreActBasicBlock, (9, 9, 9)),
    'preact110': (PreActBasicBlock, (18, 18, 18)),
    'preact164': (PreActBottleneck, (18, 18, 18)),
}
MODEL_NAMES = tuple(ARCHITECTURES)


def create_model(name: str, num_classes: int) -> PreActResNet:
  """Returns the model registered under `name` (see MODEL_NAMES)."""
  if name not in ARCHITECTURES:
    raise ValueError(
        f'model.name={name!r} is not a known model; allowed: {MODEL_NAMES}')
  block, blocks = ARCHITECTURES[name]
  return PreActResNet(block=block, blocks_per_stage=blocks,
                      num_classes=num_classes)


def feature_dim(name: str) -> int:
  """Width of the penultimate feature vector of model `name`."""
  block, _ = ARCHITECTURES[name]
  return PreActResNet.stage_planes[-1] * block.expansion


def count_params(params: Any) -> int:
  """Number of trainable parameters (BatchNorm running statistics excluded)."""
  return sum(x.size for x in jax.tree_util.tree_leaves(params))
