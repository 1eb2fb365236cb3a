"""PyTorch twins of svp_jax.models' pre-activation ResNets, for benchmarks only.

Same architecture, initialisation and BatchNorm settings as the Flax models
(and so as the SVP reference), hence exactly the same parameter count; the
test tests/test_benchmarks_torch.py checks this for every model. The train
step mirrors svp_jax.train.train_step: random crop (zero padding 4) + flip
done on the tensor, normalisation, cross-entropy, SGD with momentum 0.9 and
coupled weight decay 5e-4. Both steps run in channels_last, PyTorch's fastest
ordinary CPU setting for convnets.

torch is optional: it is imported only by this module, which nothing in
svp_jax imports (requirements-bench.txt installs it into .venv-bench).
"""

from collections.abc import Callable, Sequence
import os

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# Name -> (bottleneck?, blocks per stage): the preact entries of
# svp_jax.models.ARCHITECTURES.
ARCHITECTURES = {
    'preact8': (False, (1, 1, 1)),
    'preact20': (False, (3, 3, 3)),
    'preact56': (False, (9, 9, 9)),
    'preact110': (False, (18, 18, 18)),
    'preact164': (True, (18, 18, 18)),
}


def set_threads() -> int:
  """Uses every core for intra-op parallelism, as JAX's CPU backend does."""
  torch.set_num_threads(os.cpu_count() or 1)
  return torch.get_num_threads()


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Conv2d:
  conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2,
                   bias=False)
  nn.init.kaiming_normal_(conv.weight, mode='fan_out', nonlinearity='relu')
  return conv


def _bn(channels: int) -> nn.BatchNorm2d:
  # PyTorch momentum 0.1 is Flax momentum 0.9.
  return nn.BatchNorm2d(channels, momentum=0.1, eps=1e-5)


class PreActBasicBlock(nn.Module):
  """BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus shortcut; no ReLU after the add."""

  expansion = 1

  def __init__(self, cin: int, planes: int, stride: int):
    super().__init__()
    self.bn1 = _bn(cin)
    self.conv1 = _conv(cin, planes, 3, stride)
    self.bn2 = _bn(planes)
    self.conv2 = _conv(planes, planes, 3)
    needs_projection = stride != 1 or cin != planes
    self.shortcut = _conv(cin, planes, 1, stride) if needs_projection else None

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    out = F.relu(self.bn1(x))
    # The projection sees the pre-activated input, as in svp_jax.models.
    shortcut = self.shortcut(out) if self.shortcut is not None else x
    out = self.conv1(out)
    out = self.conv2(F.relu(self.bn2(out)))
    return out + shortcut


class PreActBottleneck(nn.Module):
  """BN-ReLU-conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1 (x4) plus shortcut."""

  expansion = 4

  def __init__(self, cin: int, planes: int, stride: int):
    super().__init__()
    out_planes = planes * self.expansion
    self.bn1 = _bn(cin)
    self.conv1 = _conv(cin, planes, 1)
    self.bn2 = _bn(planes)
    self.conv2 = _conv(planes, planes, 3, stride)
    self.bn3 = _bn(planes)
    self.conv3 = _conv(planes, out_planes, 1)
    needs_projection = stride != 1 or cin != out_planes
    self.shortcut = (_conv(cin, out_planes, 1, stride)
                     if needs_projection else None)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    out = F.relu(self.bn1(x))
    shortcut = self.shortcut(out) if self.shortcut is not None else x
    out = self.conv1(out)
    out = self.conv2(F.relu(self.bn2(out)))
    out = self.conv3(F.relu(self.bn3(out)))
    return out + shortcut


class PreActResNet(nn.Module):
  """Three stages of 16/32/64 base filters, global average pool, linear."""

  def __init__(self, bottleneck: bool, blocks_per_stage: Sequence[int],
               num_classes: int, in_channels: int = 3,
               stage_planes: Sequence[int] = (16, 32, 64)):
    super().__init__()
    block = PreActBottleneck if bottleneck else PreActBasicBlock
    self.stem = _conv(in_channels, stage_planes[0], 3)
    layers = []
    cin = stage_planes[0]
    for stage, (planes, num_blocks) in enumerate(
        zip(stage_planes, blocks_per_stage)):
      for i in range(num_blocks):
        stride = 2 if stage > 0 and i == 0 else 1
        layers.append(block(cin, planes, stride))
        cin = planes * block.expansion
    self.blocks = nn.Sequential(*layers)
    self.bn = _bn(cin)
    self.linear = nn.Linear(cin, num_classes)  # PyTorch's default init.

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = self.blocks(self.stem(x))
    features = torch.mean(F.relu(self.bn(x)), dim=(2, 3))
    return self.linear(features)


def create_model(name: str, num_classes: int) -> PreActResNet:
  """The twin of svp_jax.models.create_model(name, num_classes)."""
  if name not in ARCHITECTURES:
    raise ValueError(f'unknown model {name!r}; allowed: {tuple(ARCHITECTURES)}')
  bottleneck, blocks = ARCHITECTURES[name]
  return PreActResNet(bottleneck, blocks, num_classes)


def count_params(model: nn.Module) -> int:
  """Trainable parameters (BatchNorm running statistics are buffers)."""
  return sum(p.numel() for p in model.parameters() if p.requires_grad)


def random_crop_flip(images: torch.Tensor, padding: int = 4,
                     generator: torch.Generator | None = None) -> torch.Tensor:
  """Zero-pad, crop back at a random offset, flip left-right w.p. 1/2.

  Vectorised over the batch with one gather, like svp_jax.data's vmap.

  Args:
    images: (N, H, W, C) pixels, any dtype.
    padding: zero pixels added on each side before cropping.
    generator: optional torch RNG.

  Returns:
    (N, H, W, C) images of the same dtype.
  """
  n, height, width, _ = images.shape
  padded = F.pad(images, (0, 0, padding, padding, padding, padding))
  top = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator)
  left = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator)
  flip = torch.rand((n, 1), generator=generator) < 0.5
  rows = top + torch.arange(height)
  cols = torch.arange(width).expand(n, width)
  cols = left + torch.where(flip, cols.flip(1), cols)
  batch = torch.arange(n)[:, None, None]
  return padded[batch, rows[:, :, None], cols[:, None, :]]


def to_input(images: torch.Tensor, mean: Sequence[float],
             std: Sequence[float]) -> torch.Tensor:
  """(N, H, W, C) pixels on [0, 255] -> normalised NCHW in channels_last."""
  x = images.to(torch.float32) / 255.0
  x = (x - torch.tensor(mean)) / torch.tensor(std)
  # The NHWC buffer viewed as NCHW already has channels_last strides.
  return x.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


def make_train_step(model: nn.Module, mean: Sequence[float],
                    std: Sequence[float], *, lr: float = 0.1,
                    momentum: float = 0.9, weight_decay: float = 5e-4,
                    augment: bool = True
                    ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
  """A function (uint8 NHWC images, int64 labels) -> loss doing one SGD step."""
  model.to(memory_format=torch.channels_last)
  optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                              weight_decay=weight_decay)

  def step(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    model.train()  # The same model may also be timed in eval mode.
    if augment:
      images = random_crop_flip(images)
    loss = F.cross_entropy(model(to_input(images, mean, std)), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()

  return step


def make_predict_step(model: nn.Module, mean: Sequence[float],
                      std: Sequence[float]
                      ) -> Callable[[torch.Tensor], torch.Tensor]:
  """A function (uint8 NHWC images) -> logits, in eval mode, no autograd."""
  model.to(memory_format=torch.channels_last)

  def predict(images: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.inference_mode():
      return model(to_input(images, mean, std))

  return predict


def torch_runners(name: str, steps: int, *, train_batch: int = 128,
                  eval_batch: int = 512, num_classes: int = 10,
                  mean: Sequence[float] = (0.49, 0.48, 0.45),
                  std: Sequence[float] = (0.25, 0.24, 0.26),
                  seed: int = 0) -> dict[str, object]:
  """Closures running `steps` train / predict steps, like jax_steps.jax_runners.

  The same random uint8 images (NumPy seed `seed`) as the JAX closures.
  """
  torch.manual_seed(seed)
  model = create_model(name, num_classes)
  rng = np.random.default_rng(seed)
  size = max(train_batch, eval_batch)
  images = torch.from_numpy(
      rng.integers(0, 256, (size, 32, 32, 3), dtype=np.uint8))
  labels = torch.from_numpy(rng.integers(0, num_classes, size)).to(torch.int64)
  train_step = make_train_step(model, mean, std)
  predict = make_predict_step(model, mean, std)
  train_images, train_labels = images[:train_batch], labels[:train_batch]
  eval_images = images[:eval_batch]

  def train_once():
    for _ in range(steps):
      loss = train_step(train_images, train_labels)
    loss.item()  # Eager: already done; keeps the two closures alike.

  def eval_once():
    for _ in range(steps):
      predict(eval_images)

  return {'train': train_once, 'eval': eval_once,
          'parameters': count_params(model), 'model': model}
